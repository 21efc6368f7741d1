//! UID EXPUNGE (RFC 4315 §2.1); plain EXPUNGE takes no arguments.

use crate::command::Command;

use super::primitives::{Cursor, PResult};

/// `UID EXPUNGE SP sequence-set`
pub(super) fn uid_expunge(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    Ok(Command::Expunge {
        uids: Some(c.seq_set()?),
    })
}
