//! FETCH and UID FETCH: data items, macros, body sections and partials, and
//! the CHANGEDSINCE / VANISHED modifiers (RFC 7162).

use mailroom_core::ModSeq;

use crate::command::{Command, FetchAttr, Section, SectionText};
use crate::extension::searchres;

use super::primitives::{Cursor, PResult, err, utf8};

/// The most part numbers in a section (`1.2.3...`).
const MAX_PART_DEPTH: usize = 64;

/// `FETCH SP (sequence-set / "$") SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`
pub(super) fn fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.seq_set_or_saved()?;
    c.sp()?;
    let items = if c.eat_word("ALL") {
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
        ]
    } else if c.eat_word("FAST") {
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ]
    } else if c.eat_word("FULL") {
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body,
        ]
    } else if c.peek() == Some(b'(') {
        c.enter()?;
        let items = c.list(false, fetch_att)?;
        c.leave();
        items
    } else {
        vec![fetch_att(c)?]
    };
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b' ') {
        c.enter()?;
        c.list(false, |c| {
            let m = c.keyword()?;
            match m.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    let v = c.number64()?;
                    if v == 0 {
                        return err("modseq must not be zero");
                    }
                    if changed_since.replace(ModSeq(v)).is_some() {
                        return err("CHANGEDSINCE given twice");
                    }
                }
                "VANISHED" => {
                    if !uid {
                        return err("VANISHED is only allowed with UID FETCH");
                    }
                    vanished = true;
                }
                _ => return err("unknown FETCH modifier"),
            }
            Ok(())
        })?;
        c.leave();
        if vanished && changed_since.is_none() {
            return err("VANISHED requires CHANGEDSINCE");
        }
    }
    Ok(searchres::wrap(set, |set| Command::Fetch {
        uid,
        set,
        items,
        changed_since,
        vanished,
    }))
}

/// One `fetch-att`.
pub(super) fn fetch_att(c: &mut Cursor<'_>) -> PResult<FetchAttr> {
    // The name runs up to '[' (an atom char, so not `keyword()`).
    let name = String::from_utf8_lossy(c.token(
        |b| b.is_ascii_alphanumeric() || b == b'.',
        "expected a FETCH item",
    )?)
    .to_ascii_uppercase();
    Ok(match name.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "EMAILID" => FetchAttr::EmailId,
        "THREADID" => FetchAttr::ThreadId,
        "SAVEDATE" => FetchAttr::SaveDate,
        "PREVIEW" => {
            // RFC 8970: `"PREVIEW" [SP "(" "LAZY" ")"]`; LAZY changes
            // nothing here (see `extension::preview`).
            if c.rest().len() >= 7 && c.rest()[..7].eq_ignore_ascii_case(b" (LAZY)") {
                c.sp()?;
                c.expect(b'(', "expected (")?;
                c.keyword()?;
                c.expect(b')', "expected )")?;
            }
            FetchAttr::Preview
        }
        "BODY" if c.peek() != Some(b'[') => FetchAttr::Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(c)?;
            let partial = partial(c)?;
            FetchAttr::BodySection {
                peek: name == "BODY.PEEK",
                section,
                partial,
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = section_binary(c)?;
            let partial = partial(c)?;
            FetchAttr::Binary {
                peek: name == "BINARY.PEEK",
                part,
                partial,
            }
        }
        "BINARY.SIZE" => FetchAttr::BinarySize {
            part: section_binary(c)?,
        },
        "ALL" | "FAST" | "FULL" => return err("fetch macros cannot be used in a list"),
        _ => return err("unknown FETCH item"),
    })
}

/// `section = "[" [section-spec] "]"`
pub(super) fn section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[', "expected '['")?;
    let mut s = Section::default();
    if c.eat(b']') {
        return Ok(s);
    }
    // section-part: nz-number *("." nz-number)
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        if s.part.len() >= MAX_PART_DEPTH {
            return err("section part too deep");
        }
        s.part.push(c.nz_number()?);
        if !c.eat(b'.') {
            break;
        }
        if !c
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || b.is_ascii_alphabetic())
        {
            return err("invalid section");
        }
    }
    if !c.eat(b']') {
        let name = c
            .token(|b| b.is_ascii_alphabetic() || b == b'.', "invalid section")?
            .to_ascii_uppercase();
        let text = match name.as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if !s.part.is_empty() => SectionText::Mime,
            b"MIME" => return err("MIME needs a part number"),
            b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                c.sp()?;
                c.enter()?;
                let names = header_list(c)?;
                c.leave();
                if name.len() == b"HEADER.FIELDS".len() {
                    SectionText::HeaderFields(names)
                } else {
                    SectionText::HeaderFieldsNot(names)
                }
            }
            _ => return err("invalid section"),
        };
        s.text = Some(text);
        c.expect(b']', "expected ']' to end the section")?;
    }
    Ok(s)
}

/// `section-binary = "[" [section-part] "]"` (RFC 3516).
fn section_binary(c: &mut Cursor<'_>) -> PResult<Vec<u32>> {
    c.expect(b'[', "expected '[' after BINARY")?;
    let mut part = Vec::new();
    if c.eat(b']') {
        return Ok(part);
    }
    loop {
        if part.len() >= MAX_PART_DEPTH {
            return err("section part too deep");
        }
        part.push(c.nz_number()?);
        if !c.eat(b'.') {
            break;
        }
    }
    c.expect(b']', "expected ']' to end the binary section")?;
    Ok(part)
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`
fn header_list(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    // Any astring is a header-fld-name (RFC 3501 §9); a name no header
    // has simply matches nothing.
    c.list(false, |c| utf8(c.astring()?))
}

/// `partial = "<" number64 "." nz-number64 ">"` (RFC 9051 §9; RFC 3501
/// had 32-bit numbers): an origin past the end is an empty string, not an
/// error (RFC 9051 Appendix E item 1).
fn partial(c: &mut Cursor<'_>) -> PResult<Option<(u64, u64)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let origin = c.number64()?;
    c.expect(b'.', "expected '.' in partial")?;
    let len = c.nz_number64()?;
    c.expect(b'>', "expected '>' to end partial")?;
    Ok(Some((origin, len)))
}
