//! LIST (RFC 3501, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
//! SPECIAL-USE RFC 6154), LSUB and XLIST.

use std::borrow::Cow;

use crate::command::{Command, ListArgs, ListReturn};

use super::primitives::{Cursor, PResult, err, is_list_char};
use super::status::status_item;

/// `list-mailbox = 1*list-char / string`, decoded like a mailbox name.
fn list_mailbox(c: &mut Cursor<'_>) -> PResult<String> {
    let raw = match c.peek() {
        Some(b'"' | b'{') => c.string()?,
        Some(b'~') if c.is_literal8() => c.string()?,
        _ => Cow::Borrowed(c.token(is_list_char, "expected a mailbox pattern")?),
    };
    c.mailbox_name(raw)
}

/// `LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
pub(super) fn list(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mut args = ListArgs::default();
    if c.peek() == Some(b'(') {
        c.enter()?;
        args.selection = c.list(true, |c| c.keyword())?;
        c.leave();
        c.sp()?;
    }
    args.reference = c.mailbox()?;
    c.sp()?;
    if c.peek() == Some(b'(') {
        c.enter()?;
        args.patterns = c.list(false, list_mailbox)?;
        c.leave();
    } else {
        args.patterns = vec![list_mailbox(c)?];
    }
    if c.eat(b' ') {
        if !c.eat_word("RETURN") {
            return err("expected RETURN");
        }
        c.sp()?;
        c.enter()?;
        let mut returns = ListReturn::default();
        c.list(true, |c| {
            let opt = c.keyword()?;
            match opt.as_str() {
                "SUBSCRIBED" => returns.subscribed = true,
                "CHILDREN" => returns.children = true,
                "SPECIAL-USE" => returns.special_use = true,
                "STATUS" => {
                    c.sp()?;
                    c.enter()?;
                    let items = c.list(false, status_item)?;
                    c.leave();
                    returns.status = Some(items);
                }
                _ => return err("unknown LIST return option"),
            }
            Ok(())
        })?;
        c.leave();
        args.returns = returns;
    }
    Ok(Command::List(args))
}

/// `LSUB SP mailbox SP list-mailbox` (and XLIST, same grammar).
pub(super) fn lsub(c: &mut Cursor<'_>, xlist: bool) -> PResult<Command> {
    c.sp()?;
    let reference = c.mailbox()?;
    c.sp()?;
    let pattern = list_mailbox(c)?;
    Ok(if xlist {
        Command::Xlist { reference, pattern }
    } else {
        Command::Lsub { reference, pattern }
    })
}
