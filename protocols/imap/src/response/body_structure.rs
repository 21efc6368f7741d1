//! ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) from the
//! [`MessageSummary`](mailroom_core::MessageSummary) parts, and the IMAP
//! string encoders every response writer uses.
//!
//! The layout follows RFC 3501's grammar and, where the RFC leaves a choice,
//! what Dovecot writes (a list for Content-Language, every extension field
//! present, one empty `text/plain` part for a multipart without parts), so
//! that clients caching BODYSTRUCTURE see what they are used to.

use mailroom_core::mime::{Address, BodyPart, Disposition, Envelope, PartKind};

// ---------------------------------------------------------------------------
// IMAP strings: the one place that decides quoted string vs literal
// ---------------------------------------------------------------------------

/// More `"` and `\` than this and a literal is shorter than the escaped
/// quoted string.
const MAX_QUOTED_ESCAPES: usize = 4;

/// The UTF-8 replacement character, written instead of NUL (which no IMAP
/// string can carry).
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// Writes `s` as an IMAP `string` (RFC 3501 §4.3): a quoted string when it
/// can be one, else a literal `{n}\r\n` followed by the bytes.
///
/// A quoted string is used unless `s` holds CR, LF, a byte above 0x7F or
/// more than four `"`/`\` (which are escaped with `\` in a quoted string).
/// NUL bytes are replaced by U+FFFD (and so go out as a literal): no IMAP
/// string may contain NUL.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    // one pass decides; the common case (nothing to escape) is one copy
    let mut escapes = 0;
    let mut literal = false;
    for &b in s {
        match b {
            0 => return write_literal_without_nul(out, s),
            b'\r' | b'\n' | 0x80..=0xff => literal = true,
            b'"' | b'\\' => escapes += 1,
            _ => {}
        }
    }
    if literal || escapes > MAX_QUOTED_ESCAPES {
        return write_literal(out, s);
    }
    out.reserve(s.len() + escapes + 2);
    out.push(b'"');
    if escapes == 0 {
        out.extend_from_slice(s);
    } else {
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
    }
    out.push(b'"');
}

/// A literal of `s` with each NUL replaced by U+FFFD.
fn write_literal_without_nul(out: &mut Vec<u8>, s: &[u8]) {
    let mut clean = Vec::with_capacity(s.len() + 2);
    for &b in s {
        if b == 0 {
            clean.extend_from_slice(REPLACEMENT);
        } else {
            clean.push(b);
        }
    }
    write_literal(out, &clean);
}

/// An unsigned number in decimal, without going through `fmt` (a FETCH of
/// a whole mailbox writes hundreds of thousands of them).
pub(crate) fn write_uint(out: &mut Vec<u8>, n: u64) {
    let mut n = n;
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes `s` as an IMAP `nstring`: `NIL` for `None`, else as
/// [`write_string`].
pub(crate) fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes `s` as an IMAP `astring`: a bare atom when every byte is an
/// `ASTRING-CHAR` (and `s` is neither empty nor `NIL`, which would read as
/// nil), else as [`write_string`].
pub(crate) fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        write_string(out, s);
    }
}

/// A literal: `{n}\r\n` and the bytes.
fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    write_uint(out, s.len() as u64);
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

/// `ASTRING-CHAR` of RFC 3501: `ATOM-CHAR` or `]`.
fn is_astring_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

// ---------------------------------------------------------------------------
// ENVELOPE
// ---------------------------------------------------------------------------

/// Writes an `envelope` (with its parentheses).
pub(crate) fn write_envelope(out: &mut Vec<u8>, env: &Envelope) {
    out.push(b'(');
    write_nstring(out, env.date.as_deref());
    out.push(b' ');
    write_nstring(out, env.subject.as_deref());
    for list in [
        &env.from,
        &env.sender,
        &env.reply_to,
        &env.to,
        &env.cc,
        &env.bcc,
    ] {
        out.push(b' ');
        write_addresses(out, list);
    }
    out.push(b' ');
    write_nstring(out, env.in_reply_to.as_deref());
    out.push(b' ');
    write_nstring(out, env.message_id.as_deref());
    out.push(b')');
}

/// An address list, `NIL` when empty.
fn write_addresses(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring(out, a.name.as_deref());
        out.push(b' ');
        write_nstring(out, a.adl.as_deref());
        out.push(b' ');
        write_nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        write_nstring(out, a.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

// ---------------------------------------------------------------------------
// BODY and BODYSTRUCTURE
// ---------------------------------------------------------------------------

/// What a multipart without parts shows as its one part (RFC 3501 requires
/// at least one).
const EMPTY_PART: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";

/// Writes a `body` (with its parentheses): BODYSTRUCTURE when `extensible`
/// (with the extension data: MD5, disposition, language and location for
/// single parts; parameters, disposition, language and location for
/// multiparts), BODY otherwise.
pub(crate) fn write_body_structure(out: &mut Vec<u8>, part: &BodyPart, extensible: bool) {
    out.push(b'(');
    match &part.kind {
        PartKind::Multipart(children) => {
            if children.is_empty() {
                out.extend_from_slice(EMPTY_PART);
                if extensible {
                    out.extend_from_slice(b" NIL NIL NIL NIL");
                }
                out.push(b')');
            }
            for child in children {
                write_body_structure(out, child, extensible);
            }
            out.push(b' ');
            write_string(out, part.media_subtype.as_bytes());
            if extensible {
                out.push(b' ');
                write_params(out, &part.params);
                write_common_extension(out, part);
            }
        }
        kind => {
            write_string(out, part.media_type.as_bytes());
            out.push(b' ');
            write_string(out, part.media_subtype.as_bytes());
            out.push(b' ');
            write_params(out, &part.params);
            out.push(b' ');
            write_nstring(out, part.id.as_deref().map(str::as_bytes));
            out.push(b' ');
            write_nstring(out, part.description.as_deref().map(str::as_bytes));
            out.push(b' ');
            write_string(out, part.encoding.as_bytes());
            out.push(b' ');
            write_uint(out, part.body_len);
            match kind {
                PartKind::Message { envelope, body } => {
                    out.push(b' ');
                    write_envelope(out, envelope);
                    out.push(b' ');
                    write_body_structure(out, body, extensible);
                    out.push(b' ');
                    write_uint(out, u64::from(part.lines));
                }
                _ if part.has_lines() => {
                    out.push(b' ');
                    write_uint(out, u64::from(part.lines));
                }
                _ => {}
            }
            if extensible {
                out.push(b' ');
                write_nstring(out, part.md5.as_deref().map(str::as_bytes));
                write_common_extension(out, part);
            }
        }
    }
    out.push(b')');
}

/// ` disposition language location`, shared by both kinds of part.
fn write_common_extension(out: &mut Vec<u8>, part: &BodyPart) {
    out.push(b' ');
    write_disposition(out, part.disposition.as_ref());
    out.push(b' ');
    if part.language.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, lang) in part.language.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_string(out, lang.as_bytes());
        }
        out.push(b')');
    }
    out.push(b' ');
    write_nstring(out, part.location.as_deref().map(str::as_bytes));
}

fn write_disposition(out: &mut Vec<u8>, disposition: Option<&Disposition>) {
    match disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            write_string(out, d.kind.as_bytes());
            out.push(b' ');
            write_params(out, &d.params);
            out.push(b')');
        }
    }
}

/// `("name" "value" ...)` or `NIL`.
fn write_params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, name.as_bytes());
        out.push(b' ');
        write_string(out, value.as_bytes());
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::MessageSummary;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn strings() {
        assert_eq!(s(|o| write_string(o, b"")), "\"\"");
        assert_eq!(
            s(|o| write_string(o, b"a \"b\" \\")),
            "\"a \\\"b\\\" \\\\\""
        );
        assert_eq!(s(|o| write_string(o, b"\"\"\"\"\"")), "{5}\r\n\"\"\"\"\"");
        assert_eq!(s(|o| write_string(o, b"a\r\nb")), "{4}\r\na\r\nb");
        assert_eq!(s(|o| write_string(o, "é".as_bytes())), "{2}\r\né");
        assert_eq!(s(|o| write_string(o, b"a\0")), "{4}\r\na\u{fffd}");
        assert_eq!(s(|o| write_nstring(o, None)), "NIL");
        assert_eq!(s(|o| write_nstring(o, Some(b"NIL"))), "\"NIL\"");
        assert_eq!(s(|o| write_astring(o, b"INBOX")), "INBOX");
        assert_eq!(s(|o| write_astring(o, b"nil")), "\"nil\"");
        assert_eq!(s(|o| write_astring(o, b"a b")), "\"a b\"");
        assert_eq!(s(|o| write_astring(o, b"a]b")), "a]b");
        assert_eq!(s(|o| write_astring(o, b"")), "\"\"");
    }

    /// Reads back one string written by [`write_string`].
    fn read_string(out: &[u8]) -> Vec<u8> {
        match out.first() {
            Some(b'"') => {
                let mut value = Vec::new();
                let mut bytes = out[1..out.len() - 1].iter();
                while let Some(&b) = bytes.next() {
                    assert!(
                        b != b'"' && b != b'\r' && b != b'\n' && b < 0x80,
                        "bad quoted {out:?}"
                    );
                    if b == b'\\' {
                        value.push(*bytes.next().expect("escaped byte"));
                    } else {
                        value.push(b);
                    }
                }
                value
            }
            Some(b'{') => {
                let close = out.iter().position(|&b| b == b'}').expect("literal length");
                let n: usize = std::str::from_utf8(&out[1..close])
                    .expect("utf8")
                    .parse()
                    .expect("number");
                assert_eq!(&out[close + 1..close + 3], b"\r\n");
                assert_eq!(out.len(), close + 3 + n);
                out[close + 3..].to_vec()
            }
            _ => panic!("not a string: {out:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn strings_read_back(s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let mut out = Vec::new();
            write_string(&mut out, &s);
            let mut expected = Vec::new();
            for &b in &s {
                if b == 0 {
                    expected.extend_from_slice(REPLACEMENT);
                } else {
                    expected.push(b);
                }
            }
            proptest::prop_assert_eq!(read_string(&out), expected);
            proptest::prop_assert!(!out.contains(&0));
        }
    }

    #[test]
    fn single_part() {
        let m = MessageSummary::parse(
            b"Subject: hi\r\nFrom: A <a@b.c>\r\n\r\nline one\r\nline two\r\n",
        );
        assert_eq!(
            s(|o| write_body_structure(o, &m.structure, true)),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 2 NIL NIL NIL NIL)"
        );
        assert_eq!(
            s(|o| write_body_structure(o, &m.structure, false)),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 2)"
        );
        assert_eq!(
            s(|o| write_envelope(o, &m.envelope)),
            "(NIL \"hi\" ((\"A\" NIL \"a\" \"b.c\")) ((\"A\" NIL \"a\" \"b.c\")) \
             ((\"A\" NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn multipart_with_message() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\npreamble\r\n--xx\r\n\
Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=m.eml\r\n\r\n\
Subject: inner\r\n\r\nbody\r\n--xx\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\nContent-Language: en, de\r\n\r\nAAAA\r\n--xx--\r\n";
        let m = MessageSummary::parse(raw);
        assert_eq!(
            s(|o| write_body_structure(o, &m.structure, true)),
            "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 22 \
             (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) \
             (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL NIL NIL) 2 \
             NIL (\"attachment\" (\"filename\" \"m.eml\")) NIL NIL)\
             (\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 4 NIL NIL (\"en\" \"de\") NIL) \
             \"mixed\" (\"boundary\" \"xx\") NIL NIL NIL)"
        );
    }

    #[test]
    fn empty_multipart() {
        let m =
            MessageSummary::parse(b"Content-Type: multipart/alternative\r\n\r\nno boundary\r\n");
        assert_eq!(
            s(|o| write_body_structure(o, &m.structure, false)),
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"alternative\")"
        );
    }
}
