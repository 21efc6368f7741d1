//! Body sections (`BODY[1.2.MIME]`, `BODY[HEADER.FIELDS (From)]`, ...) as
//! slices of the stored message, located with the part offsets of the
//! cached [`MessageSummary`]; nothing is copied except filtered header
//! fields.

use bytes::{Bytes, BytesMut};
use mailroom_core::MessageSummary;
use mailroom_core::mime::{BodyPart, PartKind, find_header_end};

use crate::command::{Section, SectionText};

/// Whether a section can be answered from the summary alone (the top-level
/// header, or fields of it) without opening the message.
pub(crate) fn from_summary_only(section: &Section) -> bool {
    section.part.is_empty()
        && matches!(
            section.text,
            Some(
                SectionText::Header
                    | SectionText::HeaderFields(_)
                    | SectionText::HeaderFieldsNot(_)
            )
        )
}

/// The bytes of a section, `None` if the section does not exist (FETCH
/// then answers an empty string, as Dovecot does and as BINARY does here;
/// CATENATE refuses the URL).
/// `content` may be `None` only when [`from_summary_only`] holds.
pub(crate) fn section_bytes(
    summary: &MessageSummary,
    content: Option<&Bytes>,
    section: &Section,
) -> Option<Bytes> {
    if section.part.is_empty() {
        let header_end = summary.structure.body_offset;
        return match &section.text {
            None => content.cloned(),
            Some(SectionText::Header) => Some(Bytes::copy_from_slice(&summary.header)),
            Some(SectionText::HeaderFields(names)) => {
                Some(filter_header(&summary.header, names, true))
            }
            Some(SectionText::HeaderFieldsNot(names)) => {
                Some(filter_header(&summary.header, names, false))
            }
            Some(SectionText::Text) => slice(content?, header_end, u64::MAX),
            Some(SectionText::Mime) => None,
        };
    }
    let content = content?;
    let part = find_part(&summary.structure, &section.part)?;
    match &section.text {
        None => slice(content, part.body_offset, part.body_len),
        Some(SectionText::Mime) => slice(
            content,
            part.header_offset,
            part.body_offset.saturating_sub(part.header_offset),
        ),
        Some(text) => {
            // HEADER/TEXT after a part number: the part must be message/rfc822.
            let PartKind::Message { body, .. } = &part.kind else {
                return None;
            };
            let end = part.body_offset.saturating_add(part.body_len);
            let header = slice(
                content,
                body.header_offset,
                body.body_offset.saturating_sub(body.header_offset),
            )?;
            match text {
                SectionText::Header => Some(header),
                SectionText::HeaderFields(names) => Some(filter_header(&header, names, true)),
                SectionText::HeaderFieldsNot(names) => Some(filter_header(&header, names, false)),
                SectionText::Text => slice(
                    content,
                    body.body_offset,
                    end.saturating_sub(body.body_offset),
                ),
                SectionText::Mime => None,
            }
        }
    }
}

/// Finds the part a section's part numbers name (RFC 3501 §6.4.5).
pub(crate) fn find_part<'a>(root: &'a BodyPart, path: &[u32]) -> Option<&'a BodyPart> {
    in_message(root, path)
}

/// `path` counted inside a message whose body is `body`.
fn in_message<'a>(body: &'a BodyPart, path: &[u32]) -> Option<&'a BodyPart> {
    let (&n, rest) = path.split_first()?;
    let child = match &body.kind {
        PartKind::Multipart(children) => children.get(usize::try_from(n).ok()?.checked_sub(1)?)?,
        _ if n == 1 => body,
        _ => return None,
    };
    descend(child, rest)
}

fn descend<'a>(part: &'a BodyPart, rest: &[u32]) -> Option<&'a BodyPart> {
    if rest.is_empty() {
        return Some(part);
    }
    match &part.kind {
        PartKind::Multipart(children) => {
            let child = children.get(usize::try_from(rest[0]).ok()?.checked_sub(1)?)?;
            descend(child, &rest[1..])
        }
        PartKind::Message { body, .. } => in_message(body, rest),
        PartKind::Single => None,
    }
}

fn slice(content: &Bytes, offset: u64, len: u64) -> Option<Bytes> {
    let total = content.len();
    let start = usize::try_from(offset).ok()?.min(total);
    let end = start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .min(total);
    Some(content.slice(start..end))
}

/// Applies `<origin.length>` to section data: the bytes from `origin`, at
/// most `length` of them; empty when `origin` is at or past the end.
pub(crate) fn partial(data: Bytes, origin: u64, length: u64) -> Bytes {
    let total = data.len();
    let start = usize::try_from(origin).map_or(total, |o| o.min(total));
    let end = start
        .saturating_add(usize::try_from(length).unwrap_or(usize::MAX))
        .min(total);
    data.slice(start..end)
}

/// A FETCH item's `<origin.length>` applied to its data: the origin to
/// label the response with and the bytes.
pub(crate) fn apply_partial(
    range: Option<(u64, u64)>,
    data: Option<Bytes>,
) -> (Option<u64>, Option<Bytes>) {
    match range {
        Some((origin, len)) => (Some(origin), data.map(|d| partial(d, origin, len))),
        None => (None, data),
    }
}

/// The header lines whose field names are (`keep`) or are not in `names`,
/// continuation lines included, followed by the blank line.
pub(crate) fn filter_header(header: &[u8], names: &[String], keep: bool) -> Bytes {
    let header = &header[..find_header_end(header).min(header.len())];
    let mut out = BytesMut::new();
    let mut include = false;
    for line in split_lines(header) {
        let trimmed = trim_eol(line);
        if trimmed.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if include {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = match trimmed.iter().position(|&b| b == b':') {
            Some(p) => trim_ws(&trimmed[..p]),
            None => trimmed,
        };
        let listed = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        include = listed == keep;
        if include {
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

pub(crate) fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_with_continuations() {
        let h = b"From: a@b\r\nSubject: hello\r\n world\r\nTo: c@d\r\n\r\n";
        let got = filter_header(h, &["subject".into()], true);
        assert_eq!(&got[..], b"Subject: hello\r\n world\r\n\r\n");
        let got = filter_header(h, &["Subject".into()], false);
        assert_eq!(&got[..], b"From: a@b\r\nTo: c@d\r\n\r\n");
        let got = filter_header(h, &["X-None".into()], true);
        assert_eq!(&got[..], b"\r\n");
    }

    #[test]
    fn partial_clamps() {
        let b = Bytes::from_static(b"0123456789");
        assert_eq!(&partial(b.clone(), 2, 3)[..], b"234");
        assert_eq!(&partial(b.clone(), 8, 10)[..], b"89");
        assert!(partial(b.clone(), 20, 1).is_empty());
        // 64-bit origins and lengths (RFC 9051 `partial`).
        assert!(partial(b.clone(), 5_000_000_000, 10).is_empty());
        assert_eq!(&partial(b, 7, u64::MAX)[..], b"789");
    }

    fn part(kind: PartKind, h: u64, b: u64, len: u64) -> BodyPart {
        BodyPart {
            header_offset: h,
            body_offset: b,
            body_len: len,
            lines: 0,
            media_type: "text".into(),
            media_subtype: "plain".into(),
            params: vec![],
            id: None,
            description: None,
            encoding: "7BIT".into(),
            md5: None,
            disposition: None,
            language: vec![],
            location: None,
            kind,
        }
    }

    #[test]
    fn finds_nested_parts() {
        let leaf1 = part(PartKind::Single, 10, 20, 5);
        let inner_body = part(PartKind::Single, 40, 50, 3);
        let msg = part(
            PartKind::Message {
                envelope: Box::default(),
                body: Box::new(inner_body.clone()),
            },
            30,
            40,
            13,
        );
        let root = part(
            PartKind::Multipart(vec![leaf1.clone(), msg.clone()]),
            0,
            8,
            60,
        );
        assert_eq!(find_part(&root, &[1]), Some(&leaf1));
        assert_eq!(find_part(&root, &[2]), Some(&msg));
        assert_eq!(find_part(&root, &[2, 1]), Some(&inner_body));
        assert_eq!(find_part(&root, &[3]), None);
        assert_eq!(find_part(&root, &[0]), None);
        assert_eq!(find_part(&root, &[1, 1]), None);
        let single = part(PartKind::Single, 0, 5, 5);
        assert_eq!(find_part(&single, &[1]), Some(&single));
        assert_eq!(find_part(&single, &[2]), None);
    }
}
