//! The QUOTA commands (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA.

use crate::command::Command;

use super::primitives::{Cursor, PResult};

/// `GETQUOTA SP quota-root-name`
pub(super) fn get_quota(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    Ok(Command::GetQuota {
        root: c.astring_utf8()?,
    })
}

/// `GETQUOTAROOT SP mailbox`
pub(super) fn get_quota_root(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    Ok(Command::GetQuotaRoot {
        mailbox: c.mailbox()?,
    })
}

/// `SETQUOTA SP quota-root-name SP "(" [setquota-resource *(SP setquota-resource)] ")"`
pub(super) fn set_quota(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let root = c.astring_utf8()?;
    c.sp()?;
    c.enter()?;
    let limits = c.list(true, |c| {
        let name = c.keyword()?;
        c.sp()?;
        let limit = c.number64()?;
        Ok((name, limit))
    })?;
    c.leave();
    Ok(Command::SetQuota { root, limits })
}
