//! SORT (RFC 5256) and SORT=DISPLAY (RFC 5957): the base subject of
//! RFC 5256 §2.1 (also used by THREAD) and the sort values a message is
//! ordered by. Every value comes from the message's [`SortFields`](mailroom_core::mime::SortFields) (first
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
//!
//! Every criterion is turned into a u64 per message whose order is the
//! criterion's: numbers shifted into unsigned order, strings their rank
//! among the messages sorted (`Mailbox::sort_ranks`), so SORT orders
//! integers (see `session::op::sort`).

use mailroom_core::MessageMeta;
use mailroom_core::mime::SortText;
pub use mailroom_core::mime::collate::{MAX_SUBJECT, base_subject, decode_words};

use crate::command::SortKey;
#[cfg(doc)]
use crate::extension::i18nlevel::unicode_casemap;

/// The string a text criterion orders by (`None`: ARRIVAL, DATE, SIZE).
pub(crate) fn text_of(key: SortKey) -> Option<SortText> {
    match key {
        SortKey::Arrival | SortKey::Date | SortKey::Size => None,
        SortKey::From => Some(SortText::From),
        SortKey::To => Some(SortText::To),
        SortKey::Cc => Some(SortText::Cc),
        SortKey::DisplayFrom => Some(SortText::DisplayFrom),
        SortKey::DisplayTo => Some(SortText::DisplayTo),
        SortKey::Subject => Some(SortText::Subject),
    }
}

/// A signed number as a u64 of the same order.
pub(crate) fn number(n: i64) -> u64 {
    (n as u64) ^ (1 << 63)
}

/// The value ARRIVAL or SIZE orders by, as a u64 of the same order (0
/// for the keys that need more than the metadata).
pub(crate) fn meta_value(key: SortKey, meta: &MessageMeta) -> u64 {
    match key {
        SortKey::Arrival => number(meta.internal_date.timestamp),
        SortKey::Size => meta.size,
        _ => 0,
    }
}

/// The value DATE orders by: the sent date, else the INTERNALDATE.
pub(crate) fn date_value(meta: &MessageMeta, sent: Option<i64>) -> u64 {
    number(sent.unwrap_or(meta.internal_date.timestamp))
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
        let subject = |s: &str| {
            let raw = format!("Subject: {s}\r\n\r\n");
            let summary = mailroom_core::MessageSummary::parse(raw.as_bytes());
            let k = mailroom_core::mime::SortKeys::of(Some(&mailroom_core::mime::SortFields::of(
                &summary,
            )));
            k.text(SortText::Subject).to_vec()
        };
        assert_eq!(subject("Re: ÉCOLE"), subject("école"));
        assert_eq!(subject("straße"), subject("STRAßE"));
        assert!(subject("apple") < subject("Äpfel"));
        assert_eq!(subject("Re:"), b"");
    }

    #[test]
    fn numbers_keep_their_order() {
        let mut ns = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        ns.reverse();
        let mut us: Vec<u64> = ns.iter().map(|&n| number(n)).collect();
        us.sort_unstable();
        let back: Vec<u64> = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX]
            .iter()
            .map(|&n| number(n))
            .collect();
        assert_eq!(us, back);
        // REVERSE inverts every bit: the order turns around.
        assert!((!number(-1)) > (!number(1)));
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
