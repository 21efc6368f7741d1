//! APPEND (RFC 3501 §6.3.11), with LITERAL+ for the message.

use crate::command::Command;

use super::primitives::{Cursor, PResult, err};

/// `APPEND SP mailbox [SP flag-list] [SP date-time] SP literal`
pub(super) fn append(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        flags = c.flag_list()?;
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        date = Some(c.date_time()?);
        c.sp()?;
    }
    let message = match c.peek() {
        Some(b'{') => c.literal()?,
        Some(b'~') if c.is_literal8() => return err("literal8 (BINARY) is not supported"),
        Some(b'(') => return err("flags must come before the date"),
        _ => return err("expected the message as a literal"),
    };
    Ok(Command::Append {
        mailbox,
        flags,
        date,
        message,
    })
}
