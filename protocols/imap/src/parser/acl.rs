//! The ACL commands (RFC 4314 §3): GETACL, SETACL, DELETEACL, LISTRIGHTS, MYRIGHTS.

use crate::command::Command;

use super::primitives::{Cursor, PResult};

/// `GETACL SP mailbox`
pub(super) fn get_acl(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    Ok(Command::GetAcl {
        mailbox: c.mailbox()?,
    })
}

/// `SETACL SP mailbox SP identifier SP mod-rights`
pub(super) fn set_acl(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let identifier = c.astring_utf8()?;
    c.sp()?;
    // Python's imaplib sends an empty mod-rights as nothing at all
    // (`SETACL box who ` + CRLF), and imapclient documents `setacl(box, who,
    // "")` as the way to remove an entry: take it as `""`.
    let rights = if c.at_end() {
        String::new()
    } else {
        c.astring_utf8()?
    };
    Ok(Command::SetAcl {
        mailbox,
        identifier,
        rights,
    })
}

/// `DELETEACL SP mailbox SP identifier`
pub(super) fn delete_acl(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let identifier = c.astring_utf8()?;
    Ok(Command::DeleteAcl {
        mailbox,
        identifier,
    })
}

/// `LISTRIGHTS SP mailbox SP identifier`
pub(super) fn list_rights(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let identifier = c.astring_utf8()?;
    Ok(Command::ListRights {
        mailbox,
        identifier,
    })
}

/// `MYRIGHTS SP mailbox`
pub(super) fn my_rights(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    Ok(Command::MyRights {
        mailbox: c.mailbox()?,
    })
}
