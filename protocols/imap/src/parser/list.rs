//! LIST (RFC 3501, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
//! SPECIAL-USE RFC 6154), LSUB and XLIST.

use std::borrow::Cow;

use crate::command::{Command, ListArgs, ListReturn};

use super::primitives::{Cursor, PResult, err, is_list_char};
use super::status::status_item;

/// `list-mailbox = 1*list-char / string`, decoded like a mailbox name:
/// `Err(raw)` for a pattern that is not valid modified UTF-7 (it matches
/// no mailbox).
fn list_mailbox(c: &mut Cursor<'_>) -> PResult<Result<String, String>> {
    let raw = match c.peek() {
        Some(b'"' | b'{') => c.string()?,
        Some(b'~') if c.is_literal8() => c.string()?,
        _ => Cow::Borrowed(c.token(is_list_char, "expected a mailbox pattern")?),
    };
    c.mailbox_name_or_raw(raw)
}

/// The patterns that can match something; when none can, the command is
/// marked as naming an invalid mailbox (so it matches nothing).
fn valid_patterns(c: &mut Cursor<'_>, patterns: Vec<Result<String, String>>) -> Vec<String> {
    let mut invalid = None;
    let mut valid = Vec::with_capacity(patterns.len());
    for p in patterns {
        match p {
            Ok(p) => valid.push(p),
            Err(raw) => {
                invalid.get_or_insert(raw);
            }
        }
    }
    if valid.is_empty()
        && let Some(raw) = invalid
    {
        c.invalid_mailbox.get_or_insert(raw.clone());
        valid.push(raw);
    }
    valid
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
    let patterns = if c.peek() == Some(b'(') {
        c.enter()?;
        let patterns = c.list(false, list_mailbox)?;
        c.leave();
        patterns
    } else {
        vec![list_mailbox(c)?]
    };
    args.patterns = valid_patterns(c, patterns);
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
    let pattern = valid_patterns(c, vec![pattern]).pop().unwrap_or_default();
    Ok(if xlist {
        Command::Xlist { reference, pattern }
    } else {
        Command::Lsub { reference, pattern }
    })
}
