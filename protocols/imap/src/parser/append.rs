//! APPEND (RFC 3501 §6.3.11) with its extensions: several messages in one
//! command (MULTIAPPEND, RFC 3502), a message given as `literal8` (BINARY,
//! RFC 3516), built from parts (CATENATE, RFC 4469), and RFC 6855's
//! `UTF8 (literal8)` form for a message with UTF-8 headers. REPLACE
//! (RFC 8508) takes the same `append-message`.
//!
//! ```text
//! append          = "APPEND" SP mailbox 1*append-message
//! append-message  = append-opts SP append-data
//! append-opts     = [SP flag-list] [SP date-time]
//! append-data     = literal / literal8 / "UTF8" SP "(" literal8 ")"
//!                 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"
//! cat-part        = "TEXT" SP (literal / literal8) / "URL" SP astring
//! ```
//!
//! The messages of one command are bounded by the literals a command may
//! carry ([`super::MAX_LITERALS`]) and their total size by the decoder's
//! literal limit; the parts of one CATENATE by [`MAX_CATENATE_PARTS`].

use crate::command::{AppendContent, AppendMessage, CatPart, Command};

use super::primitives::{Cursor, PResult, err, utf8};

/// The most parts one CATENATE may join.
pub(crate) const MAX_CATENATE_PARTS: usize = 64;

/// The most messages one APPEND may carry (MULTIAPPEND).
pub(crate) const MAX_APPEND_MESSAGES: usize = super::MAX_LITERALS;

/// `APPEND SP mailbox 1*append-message`: [`Command::Append`] for one
/// message given as a literal, [`Command::AppendMany`] otherwise.
pub(super) fn append(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut messages = Vec::new();
    while !c.at_end() {
        if messages.len() >= MAX_APPEND_MESSAGES {
            return err("too many messages in one APPEND");
        }
        c.sp()?;
        messages.push(append_message(c)?);
    }
    if messages.is_empty() {
        return err("expected the message as a literal");
    }
    if messages.len() == 1
        && let Some(AppendMessage {
            flags,
            date,
            content: AppendContent::Literal(message),
        }) = messages.first()
    {
        return Ok(Command::Append {
            mailbox,
            flags: flags.clone(),
            date: *date,
            message: message.clone(),
        });
    }
    Ok(Command::AppendMany { mailbox, messages })
}

/// `REPLACE SP seq-number SP mailbox append-message` (RFC 8508); `UID
/// REPLACE` with a UID.
pub(super) fn replace(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let target = c.nz_number()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let message = append_message(c)?;
    Ok(Command::Replace {
        uid,
        target,
        mailbox,
        message,
    })
}

/// `[flag-list SP] [date-time SP] append-data`.
pub(crate) fn append_message(c: &mut Cursor<'_>) -> PResult<AppendMessage> {
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
    let content = match c.peek() {
        Some(b'{') => AppendContent::Literal(c.literal()?),
        Some(b'~') if c.is_literal8() => AppendContent::Literal(c.literal8()?),
        Some(b'U' | b'u' | b'C' | b'c') => {
            let word = c.atom()?;
            if word.eq_ignore_ascii_case("UTF8") {
                c.sp()?;
                c.expect(b'(', "expected ( after UTF8")?;
                let message = if c.is_literal8() {
                    c.literal8()?
                } else {
                    c.literal()?
                };
                c.expect(b')', "expected ) after the message")?;
                AppendContent::Literal(message)
            } else if word.eq_ignore_ascii_case("CATENATE") {
                c.sp()?;
                AppendContent::Catenate(catenate(c)?)
            } else {
                return err("expected the message as a literal");
            }
        }
        Some(b'(') => return err("flags must come before the date"),
        _ => return err("expected the message as a literal"),
    };
    Ok(AppendMessage {
        flags,
        date,
        content,
    })
}

/// `"(" cat-part *(SP cat-part) ")"`.
fn catenate(c: &mut Cursor<'_>) -> PResult<Vec<CatPart>> {
    c.enter()?;
    let mut n = 0usize;
    let parts = c.list(false, |c| {
        n += 1;
        if n > MAX_CATENATE_PARTS {
            return err("too many CATENATE parts");
        }
        let kind = c.atom()?;
        c.sp()?;
        if kind.eq_ignore_ascii_case("TEXT") {
            let text = if c.is_literal8() {
                c.literal8()?
            } else {
                c.literal()?
            };
            Ok(CatPart::Text(text))
        } else if kind.eq_ignore_ascii_case("URL") {
            Ok(CatPart::Url(utf8(c.astring()?)?))
        } else {
            err("expected TEXT or URL in CATENATE")
        }
    })?;
    c.leave();
    Ok(parts)
}
