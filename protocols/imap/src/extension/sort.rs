//! SORT (RFC 5256) and SORT=DISPLAY (RFC 5957): the base subject of
//! RFC 5256 §2.1 (also used by THREAD) and the sort values a message is
//! ordered by. Every value comes from the message's [`SortFields`] (first
//! addresses, subject, `Date:`, which the store reads from its cache, see
//! `Mailbox::sort_fields`) and [`MessageMeta`] (INTERNALDATE, size):
//! sorting never opens a message file.
//!
//! Rules, as the RFCs give them:
//! - ARRIVAL is the INTERNALDATE; DATE the `Date:` header converted to UTC,
//!   or the INTERNALDATE when there is none or it does not parse (§2.2);
//!   SIZE is RFC822.SIZE.
//! - FROM, TO and CC compare the addr-mailbox (local part) of the first
//!   address of the field, the empty string when there is none.
//! - DISPLAYFROM and DISPLAYTO compare the display name of the first
//!   address, RFC 2047 words decoded, or its `local@domain` when it has no
//!   (or an empty) display name (RFC 5957 §3).
//! - SUBJECT compares the base subject.
//! - Strings compare under `i;unicode-casemap` (RFC 5051), the default
//!   collation of I18NLEVEL=1 (RFC 5255, see [`crate::extension::i18nlevel`]):
//!   by their simple-titlecase-then-NFKD forms, code point by code point
//!   (as Dovecot does; on ASCII it is `i;ascii-casemap`).
//! - Messages equal under every criterion are ordered by sequence number
//!   (§3: "the sequence number is the final tiebreak"); REVERSE reverses
//!   only the key that follows it.

use std::cmp::Ordering;

use mail_parser::MessageParser;
use mailroom_core::MessageMeta;
use mailroom_core::mime::{Address, SortFields};

use crate::command::{SortCriterion, SortKey};
#[cfg(doc)]
use crate::extension::i18nlevel::unicode_casemap;
use crate::extension::i18nlevel::unicode_casemap_bytes;

/// The longest subject (in bytes, after decoding) that the base-subject
/// algorithm looks at; longer ones are cut (at a character boundary) so
/// that the work per message is bounded.
pub const MAX_SUBJECT: usize = 4096;

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

/// The value of one sort key for one message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortValue {
    /// A time or a size.
    Number(i64),
    /// A string in its [`unicode_casemap`] form (I18NLEVEL=1).
    Text(Vec<u8>),
}

/// The addr-mailbox of the first entry of an address list. For a group
/// that entry is its start marker, whose addr-mailbox is the group name
/// (RFC 3501 §7.4.2): FROM of `undisclosed-recipients:;` sorts as
/// `undisclosed-recipients`, as in Dovecot.
fn addr_mailbox(first: Option<&Address>) -> Vec<u8> {
    first.and_then(|a| a.mailbox.clone()).unwrap_or_default()
}

/// RFC 5957 §3: the display name of the first address, decoded, or else
/// `local@domain` (just the group name for a group).
fn display(first: Option<&Address>) -> Vec<u8> {
    let Some(a) = first else {
        return Vec::new();
    };
    if let Some(name) = a.name.as_deref() {
        let decoded = decode_words(name);
        let trimmed = decoded.trim();
        if !trimmed.is_empty() {
            return trimmed.as_bytes().to_vec();
        }
    }
    let mut out = a.mailbox.clone().unwrap_or_default();
    if let Some(host) = a.host.as_deref() {
        out.push(b'@');
        out.extend_from_slice(host);
    }
    out
}

/// The value of `key` for a message; `fields` is `None` only when the
/// store had none (the string keys are then empty and DATE is ARRIVAL).
pub(crate) fn sort_value(
    key: SortKey,
    meta: &MessageMeta,
    fields: Option<&SortFields>,
) -> SortValue {
    let text = |f: &dyn Fn(&SortFields) -> Vec<u8>| {
        SortValue::Text(unicode_casemap_bytes(&fields.map(f).unwrap_or_default()))
    };
    match key {
        SortKey::Arrival => SortValue::Number(meta.internal_date.timestamp),
        SortKey::Size => SortValue::Number(i64::try_from(meta.size).unwrap_or(i64::MAX)),
        SortKey::Date => SortValue::Number(
            fields
                .and_then(|f| f.sent_date)
                .unwrap_or(meta.internal_date.timestamp),
        ),
        SortKey::From => text(&|f| addr_mailbox(f.from.as_ref())),
        SortKey::To => text(&|f| addr_mailbox(f.to.as_ref())),
        SortKey::Cc => text(&|f| addr_mailbox(f.cc.as_ref())),
        SortKey::DisplayFrom => text(&|f| display(f.from.as_ref())),
        SortKey::DisplayTo => text(&|f| display(f.to.as_ref())),
        SortKey::Subject => text(&|f| {
            let raw = f.subject.as_deref().unwrap_or_default();
            base_subject(&decode_words(raw)).0.into_bytes()
        }),
    }
}

/// Orders two messages by their sort values under the criteria (the
/// caller breaks remaining ties by sequence number).
pub(crate) fn compare(criteria: &[SortCriterion], a: &[SortValue], b: &[SortValue]) -> Ordering {
    for (i, c) in criteria.iter().enumerate() {
        let o = a.get(i).cmp(&b.get(i));
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base(s: &str) -> String {
        base_subject(s).0
    }

    #[test]
    fn rfc_5256_examples_and_leaders() {
        assert_eq!(base_subject("Re: hello"), ("hello".into(), true));
        assert_eq!(base_subject("hello"), ("hello".into(), false));
        assert_eq!(base("RE: Re: re: hello"), "hello");
        assert_eq!(base("Fwd: hello (fwd)"), "hello");
        assert_eq!(base_subject("hello (fwd) (FWD)"), ("hello".into(), true));
        assert_eq!(base("FW: hello"), "hello");
        assert_eq!(base("Re[2]: hello"), "hello");
        assert_eq!(base("Re [2] : hello"), "hello");
        assert_eq!(base("[mailroom] Re: hello"), "hello");
        assert_eq!(base("[mailroom] hello"), "hello");
        assert_eq!(base("[a][b] Re: [c] hello"), "hello");
        // A blob alone is kept: removing it would leave nothing.
        assert_eq!(base("[mailroom]"), "[mailroom]");
        assert_eq!(base("Re: [mailroom]"), "[mailroom]");
        assert_eq!(base_subject("[Fwd: Re: hello]"), ("hello".into(), true));
        assert_eq!(base("[fwd: [fwd: hello] (fwd)]"), "hello");
        assert_eq!(base("  hello \t  world  "), "hello world");
        assert_eq!(base("Re:"), "");
        assert_eq!(base(""), "");
        // Not leaders: "re" must be followed by ':' (after blobs and spaces).
        assert_eq!(base_subject("Report"), ("Report".into(), false));
        assert_eq!(base("Regarding: x"), "Regarding: x");
        assert_eq!(base("[unclosed Re: x"), "[unclosed Re: x");
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(
            decode_words(b"=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus"),
            "Grüße aus"
        );
        assert_eq!(decode_words(b"plain"), "plain");
        assert_eq!(base(&decode_words(b"=?utf-8?b?UmU6IGhlbGxv?=")), "hello");
    }

    #[test]
    fn subjects_compare_under_unicode_casemap() {
        let meta = MessageMeta {
            uid: mailroom_core::Uid(1),
            flags: mailroom_core::Flags::default(),
            modseq: mailroom_core::ModSeq(1),
            internal_date: mailroom_core::InternalDate {
                timestamp: 0,
                offset_minutes: 0,
            },
            size: 1,
            guid: mailroom_core::MessageGuid::default(),
            save_date: None,
        };
        let value = |subject: &str| {
            let raw = format!("Subject: {subject}\r\n\r\n");
            let summary = mailroom_core::MessageSummary::parse(raw.as_bytes());
            sort_value(SortKey::Subject, &meta, Some(&SortFields::of(&summary)))
        };
        assert_eq!(value("Re: ÉCOLE"), value("école"));
        assert_eq!(value("straße"), value("STRAßE"));
        assert!(value("apple") < value("Äpfel"));
    }

    proptest! {
        /// The base subject is a fixed point: a second pass changes nothing.
        #[test]
        fn base_subject_is_idempotent(s in "(Re: |Fwd: |\\[x\\] |\\(fwd\\) |[ a-zA-Z:\\[\\]()]){0,12}") {
            let (once, _) = base_subject(&s);
            let (twice, again) = base_subject(&once);
            prop_assert_eq!(&twice, &once);
            prop_assert!(!again, "a base subject is not a reply: {:?}", once);
        }

        /// Any number of reply leaders and forward trailers around a plain
        /// subject leaves the plain subject and marks a reply.
        #[test]
        fn leaders_and_trailers_are_removed(
            leaders in proptest::collection::vec(proptest::sample::select(vec!["Re: ", "RE:", "fwd: ", "Fw:", "re[3]: ", "[list] Re: "]), 1..5),
            trailers in proptest::collection::vec(proptest::sample::select(vec![" (fwd)", " (FWD)", " "]), 0..4),
            core in "[a-zA-Z0-9][a-zA-Z0-9 ]{0,20}[a-zA-Z0-9]",
        ) {
            let core = core.split_whitespace().collect::<Vec<_>>().join(" ");
            let subject = format!("{}{}{}", leaders.concat(), core, trailers.concat());
            let (b, reply) = base_subject(&subject);
            prop_assert!(reply);
            // The core may itself start with a leader-looking word ("re"...);
            // its base subject is what must remain.
            prop_assert_eq!(b, base_subject(&core).0);
        }

        /// Never panics and never grows the subject.
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let (b, _) = base_subject(&s);
            prop_assert!(b.len() <= s.len());
        }
    }
}
