//! COPY and MOVE (RFC 6851), with their UID forms.

use crate::command::Command;
use crate::extension::searchres;

use super::primitives::{Cursor, PResult};

/// `[UID] COPY SP (sequence-set / "$") SP mailbox` / `MOVE` likewise.
pub(super) fn copy(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.seq_set_or_saved()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    Ok(searchres::wrap(set, |set| {
        if is_move {
            Command::Move { uid, set, mailbox }
        } else {
            Command::Copy { uid, set, mailbox }
        }
    }))
}
