//! UID EXPUNGE (RFC 4315 §2.1); plain EXPUNGE takes no arguments.

use crate::command::Command;
use crate::extension::searchres;

use super::primitives::{Cursor, PResult};

/// `UID EXPUNGE SP (sequence-set / "$")`
pub(super) fn uid_expunge(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let set = c.seq_set_or_saved()?;
    Ok(searchres::wrap(set, |set| Command::Expunge {
        uids: Some(set),
    }))
}
