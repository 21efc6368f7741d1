//! The string forms SORT, THREAD and SEARCH compare (RFC 5051, 5256, 5957),
//! shared by the IMAP protocol (which compares them) and the stores (which
//! keep them precomputed per message, see [`super::SortKeys`]):
//!
//! - [`unicode_casemap`]: the `i;unicode-casemap` form of a string (RFC
//!   5051 §2): simple titlecase of each character, then NFKD. ASCII text
//!   takes a short cut (its form is its upper case).
//! - [`base_subject`]: the base subject of RFC 5256 §2.1.
//! - [`decode_words`]: RFC 2047 encoded words decoded (by `mail-parser`).
//! - [`message_ids`]: the message IDs of a `References:`-like value.
//!
//! Crates, and why: `icu_casemap` (ICU4X, the Unicode Consortium's own
//! Rust implementation, kept in step with each Unicode release) is the
//! maintained crate that exposes the simple titlecase mapping per
//! character (`CaseMapperBorrowed::simple_titlecase`); the standard
//! library has only the full upper and lower case mappings, which differ
//! (`ß` → `SS`, Georgian, the `ǅ` digraphs). `unicode-normalization` (the
//! unicode-rs crate, already in the build through `stringprep`) does
//! NFKD. Both moved here from the IMAP crate so that a store can cache
//! the forms per message.

use icu_casemap::CaseMapper;
use mail_parser::MessageParser;
use unicode_normalization::UnicodeNormalization;

/// The longest subject (in bytes, after decoding) that the base-subject
/// algorithm looks at; longer ones are cut (at a character boundary) so
/// that the work per message is bounded.
pub const MAX_SUBJECT: usize = 4096;

/// The most References a message contributes to threading (the last ones,
/// its nearest ancestors, are kept): a bound on the work and memory per
/// message.
pub const MAX_REFERENCES: usize = 256;

/// The `i;unicode-casemap` form of a string: simple titlecase of each
/// character, then NFKD. Strings compare under the collation as their
/// forms compare; substring matching is substring matching of forms.
pub fn unicode_casemap(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    let mapper = CaseMapper::new();
    s.chars()
        .map(|c| mapper.simple_titlecase(c))
        .nfkd()
        .collect()
}

/// [`unicode_casemap`] of bytes that should be UTF-8 (header values may
/// not be: bytes that are not UTF-8 become U+FFFD first).
pub fn unicode_casemap_bytes(s: &[u8]) -> Vec<u8> {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    match std::str::from_utf8(s) {
        Ok(s) => unicode_casemap(s).into_bytes(),
        Err(_) => unicode_casemap(&String::from_utf8_lossy(s)).into_bytes(),
    }
}
/// The base subject of RFC 5256 §2.1 and whether the subject was a reply
/// or a forward (step 2 removed a `(fwd)`, or steps 3-6 removed a `re:`,
/// `fw:`, `fwd:` leader or a `[fwd: ...]` wrapper), which THREAD uses.
///
/// `subject` is the decoded subject (RFC 2047 words already turned into
/// UTF-8, see [`decode_words`]). The result keeps the case of its input;
/// compare it by its [`unicode_casemap`] form.
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) Tabs and line breaks become spaces, runs of spaces one space.
    let mut s = String::with_capacity(subject.len().min(MAX_SUBJECT));
    let mut last_space = false;
    for ch in subject.chars() {
        if s.len() >= MAX_SUBJECT {
            break;
        }
        let space = matches!(ch, ' ' | '\t' | '\r' | '\n');
        if space {
            if !last_space {
                s.push(' ');
            }
        } else {
            s.push(ch);
        }
        last_space = space;
    }
    let mut reply = false;
    let mut rest: &str = &s;
    loop {
        // (2) Trailing "(fwd)" and spaces.
        loop {
            if let Some(r) = rest.strip_suffix(' ') {
                rest = r;
            } else if ends_with_ignore_case(rest, "(fwd)") {
                rest = &rest[..rest.len() - 5];
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders (spaces, `*blob re:`), then one blob if it leaves
        // something, until neither applies.
        loop {
            let before = rest.len();
            loop {
                if let Some(r) = rest.strip_prefix(' ') {
                    rest = r;
                } else if let Some(r) = strip_refwd_leader(rest) {
                    rest = r;
                    reply = true;
                } else {
                    break;
                }
            }
            if let Some(r) = strip_blob(rest)
                && !r.is_empty()
            {
                rest = r;
            }
            if rest.len() == before {
                break;
            }
        }
        // (6) "[fwd:" ... "]" wrapper, then again from (2).
        if rest.len() >= 6 && starts_with_ignore_case(rest, "[fwd:") && rest.ends_with(']') {
            rest = &rest[5..rest.len() - 1];
            reply = true;
            continue;
        }
        break;
    }
    (rest.to_owned(), reply)
}

/// Whether `s` starts with the ASCII `prefix`, ignoring ASCII case (so
/// that slicing `prefix.len()` bytes off is at a character boundary).
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `s` ends with the ASCII `suffix`, ignoring ASCII case.
fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at the start of `s`: what follows it.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find([']', '['])?;
    if inner.as_bytes().get(end) != Some(&b']') {
        return None;
    }
    Some(inner[end + 1..].trim_start_matches(' '))
}

/// `*subj-blob subj-refwd` at the start of `s`, where
/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`: what follows it.
fn strip_refwd_leader(s: &str) -> Option<&str> {
    let mut rest = s;
    loop {
        if let Some(after) = strip_refwd(rest) {
            return Some(after);
        }
        rest = strip_blob(rest)?;
    }
}

fn strip_refwd(s: &str) -> Option<&str> {
    let word = if starts_with_ignore_case(s, "fwd") {
        3
    } else if starts_with_ignore_case(s, "fw") || starts_with_ignore_case(s, "re") {
        2
    } else {
        return None;
    };
    let mut rest = s[word..].trim_start_matches(' ');
    if let Some(after) = strip_blob(rest) {
        rest = after;
    }
    rest.strip_prefix(':')
}

/// Decodes the RFC 2047 encoded words of an unstructured header value (a
/// subject, a display name) into UTF-8; other bytes that are not UTF-8 are
/// replaced with U+FFFD. Encoded words are decoded by `mail-parser`, the
/// MIME parser the crate already uses for SEARCH.
pub fn decode_words(raw: &[u8]) -> String {
    if !raw.windows(2).any(|w| w == b"=?") {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut header = Vec::with_capacity(raw.len() + 13);
    header.extend_from_slice(b"Subject: ");
    header.extend(
        raw.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    header.extend_from_slice(b"\r\n\r\n");
    MessageParser::new()
        .parse_headers(&header)
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

/// The message IDs (`<left@right>`, returned without the brackets and
/// with any white space inside removed) of a `References:`,
/// `In-Reply-To:` or `Message-ID:` value, in order; text that is not a
/// message ID (phrases, comments, `<>` without `@`) is skipped.
pub fn message_ids(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        let after = &rest[open + 1..];
        let Some(close) = after.iter().position(|&b| b == b'>' || b == b'<') else {
            break;
        };
        if after[close] == b'<' {
            rest = &after[close..];
            continue;
        }
        let id: Vec<u8> = after[..close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if let Some(at) = id.iter().position(|&b| b == b'@')
            && at > 0
            && at + 1 < id.len()
        {
            out.push(id);
        }
        rest = &after[close + 1..];
    }
    out
}
