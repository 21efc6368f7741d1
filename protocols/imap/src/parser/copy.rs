//! COPY and MOVE (RFC 6851), with their UID forms.

use crate::command::Command;

use super::primitives::{Cursor, PResult};

/// `[UID] COPY SP sequence-set SP mailbox` / `MOVE` likewise.
pub(super) fn copy(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.seq_set()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    Ok(if is_move {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    })
}
