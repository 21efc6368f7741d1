//! APPEND (RFC 3501 §6.3.11), with LITERAL+ for the message and RFC 6855's
//! `UTF8 (literal8)` form for a message with UTF-8 headers.

use crate::command::Command;

use super::primitives::{Cursor, PResult, err};

/// `APPEND SP mailbox [SP flag-list] [SP date-time] SP (literal /
/// "UTF8" SP "(" literal8 ")")`, the form Thunderbird sends once
/// UTF8=ACCEPT is enabled. Inside `UTF8 (...)` a plain literal is taken
/// too (the message is the same either way).
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
        Some(b'U' | b'u') => {
            let word = c.atom()?;
            if !word.eq_ignore_ascii_case("UTF8") {
                return err("expected the message as a literal");
            }
            c.sp()?;
            c.expect(b'(', "expected ( after UTF8")?;
            let message = if c.is_literal8() {
                c.literal8()?
            } else {
                c.literal()?
            };
            c.expect(b')', "expected ) after the message")?;
            message
        }
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
