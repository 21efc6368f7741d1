//! CREATE (with RFC 6154 USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.

use mailroom_core::SpecialUse;

use crate::command::Command;

use super::primitives::{Cursor, PResult, err};

/// `CREATE SP mailbox [SP "(" create-param *(SP create-param) ")"]`
pub(super) fn create(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        c.enter()?;
        let params = c.list(false, |c| {
            let name = c.keyword()?;
            if name != "USE" {
                return err("unknown CREATE parameter");
            }
            c.sp()?;
            c.enter()?;
            let uses = c.list(true, |c| {
                let a = c.atom_with_backslash()?;
                SpecialUse::parse(a).ok_or_else(|| {
                    super::primitives::SyntaxError::new("unknown special-use attribute")
                })
            })?;
            c.leave();
            Ok(uses)
        })?;
        c.leave();
        for uses in params {
            for u in uses {
                if !special_use.contains(&u) {
                    special_use.push(u);
                }
            }
        }
    }
    Ok(Command::Create {
        mailbox,
        special_use,
    })
}

/// `DELETE SP mailbox`
pub(super) fn delete(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    Ok(Command::Delete {
        mailbox: c.mailbox()?,
    })
}

/// `RENAME SP mailbox SP mailbox`
pub(super) fn rename(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let from = c.mailbox()?;
    c.sp()?;
    let to = c.mailbox()?;
    Ok(Command::Rename { from, to })
}

/// `SUBSCRIBE SP mailbox` / `UNSUBSCRIBE SP mailbox`
pub(super) fn subscribe(c: &mut Cursor<'_>, on: bool) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    Ok(if on {
        Command::Subscribe { mailbox }
    } else {
        Command::Unsubscribe { mailbox }
    })
}
