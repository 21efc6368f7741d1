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

use mailroom_core::MessageMeta;
use mailroom_core::mime::SortKeys;
pub use mailroom_core::mime::collate::{MAX_SUBJECT, base_subject, decode_words};

use crate::command::{SortCriterion, SortKey};
#[cfg(doc)]
use crate::extension::i18nlevel::unicode_casemap;

/// Orders two messages under one sort key by their metadata and keys
/// (`None`: the store had no keys for it; its strings are then empty and
/// DATE is ARRIVAL).
fn compare_key(
    key: SortKey,
    (a, ka): (&MessageMeta, Option<&SortKeys>),
    (b, kb): (&MessageMeta, Option<&SortKeys>),
) -> Ordering {
    let text = |f: fn(&SortKeys) -> &[u8]| ka.map_or(&[][..], f).cmp(kb.map_or(&[][..], f));
    let date = |m: &MessageMeta, k: Option<&SortKeys>| {
        k.and_then(SortKeys::sent_date)
            .unwrap_or(m.internal_date.timestamp)
    };
    match key {
        SortKey::Arrival => a.internal_date.timestamp.cmp(&b.internal_date.timestamp),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Date => date(a, ka).cmp(&date(b, kb)),
        SortKey::From => text(SortKeys::from),
        SortKey::To => text(SortKeys::to),
        SortKey::Cc => text(SortKeys::cc),
        SortKey::DisplayFrom => text(SortKeys::display_from),
        SortKey::DisplayTo => text(SortKeys::display_to),
        SortKey::Subject => text(SortKeys::subject),
    }
}

/// Orders two messages under the criteria (the caller breaks remaining
/// ties by sequence number). Strings compare as their precomputed
/// `i;unicode-casemap` forms, byte by byte.
pub(crate) fn compare(
    criteria: &[SortCriterion],
    a: (&MessageMeta, Option<&SortKeys>),
    b: (&MessageMeta, Option<&SortKeys>),
) -> Ordering {
    for c in criteria {
        let o = compare_key(c.key, a, b);
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
        let keys = |subject: &str| {
            let raw = format!("Subject: {subject}\r\n\r\n");
            let summary = mailroom_core::MessageSummary::parse(raw.as_bytes());
            SortKeys::of(Some(&mailroom_core::mime::SortFields::of(&summary)))
        };
        let by_subject = [SortCriterion {
            key: SortKey::Subject,
            reverse: false,
        }];
        let cmp = |a: &str, b: &str| {
            compare(
                &by_subject,
                (&meta, Some(&keys(a))),
                (&meta, Some(&keys(b))),
            )
        };
        assert_eq!(cmp("Re: ÉCOLE", "école"), Ordering::Equal);
        assert_eq!(cmp("straße", "STRAßE"), Ordering::Equal);
        assert_eq!(cmp("apple", "Äpfel"), Ordering::Less);
        // No keys: an empty subject.
        assert_eq!(
            compare(&by_subject, (&meta, None), (&meta, Some(&keys("")))),
            Ordering::Equal
        );
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
