//! ID (RFC 2971) and ENABLE (RFC 5161).

use crate::command::Command;

use super::primitives::{Cursor, PResult, err, utf8};

/// RFC 2971 §3.3: at most 30 field-value pairs.
const MAX_ID_PAIRS: usize = 30;
/// RFC 2971 §3.3: field names at most 30 octets.
const MAX_ID_FIELD: usize = 30;
/// RFC 2971 §3.3: values at most 1024 octets.
const MAX_ID_VALUE: usize = 1024;

/// `ID SP ("(" string SP nstring *(SP string SP nstring) ")" / nil)`
pub(super) fn id(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    if c.eat_word("NIL") {
        return Ok(Command::Id(None));
    }
    c.expect(b'(', "expected '(' or NIL")?;
    let mut pairs = Vec::new();
    // RFC 2971 allows no empty list, but some clients send "()": take it as NIL-like empty.
    if c.eat(b')') {
        return Ok(Command::Id(Some(pairs)));
    }
    loop {
        if pairs.len() >= MAX_ID_PAIRS {
            return err("too many ID fields");
        }
        let field = utf8(c.string()?)?;
        c.sp()?;
        let value = c.nstring()?.map(utf8).transpose()?;
        if field.len() > MAX_ID_FIELD || value.as_ref().is_some_and(|v| v.len() > MAX_ID_VALUE) {
            return err("ID field or value too long");
        }
        pairs.push((field, value));
        if c.eat(b')') {
            return Ok(Command::Id(Some(pairs)));
        }
        if c.at_end() {
            return err("unbalanced parentheses");
        }
        c.sp()?;
    }
}

/// `ENABLE 1*(SP capability)`
pub(super) fn enable(c: &mut Cursor<'_>) -> PResult<Command> {
    let mut caps = Vec::new();
    c.sp()?;
    loop {
        if caps.len() >= super::primitives::MAX_LIST_ITEMS {
            return err("too many capabilities");
        }
        caps.push(c.keyword()?);
        if !c.eat(b' ') {
            return Ok(Command::Enable(caps));
        }
    }
}
