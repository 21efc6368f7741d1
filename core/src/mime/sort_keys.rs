//! [`SortKeys`]: what SORT and THREAD compare of one message, computed
//! once from its [`SortFields`] (RFC 2047 words decoded, base subject
//! extracted, every string in its `i;unicode-casemap` form, message IDs
//! parsed), so that ordering many messages is a series of byte
//! comparisons with no allocation. Stores may keep them per message while
//! a mailbox is open ([`crate::Mailbox::sort_keys`]): a message's keys
//! never change (its content is immutable under its UID).
//!
//! A message's keys take one allocation: the strings one after the
//! other in one buffer, the message IDs last, each preceded by its length
//! (a little-endian `u32`).

use super::collate::{
    MAX_REFERENCES, base_subject, decode_words, message_ids, unicode_casemap_bytes,
};
use super::{Address, SortFields};
use crate::Uid;

/// Indexes into [`SortKeys::ends`].
const SUBJECT: usize = 0;
const FROM: usize = 1;
const TO: usize = 2;
const CC: usize = 3;
const DISPLAY_FROM: usize = 4;
const DISPLAY_TO: usize = 5;
const STRINGS: usize = 6;

/// The sort and thread keys of one message (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKeys {
    /// `Date:` in seconds since the epoch (UTC) and its zone offset in
    /// minutes, if it parsed.
    sent_date: Option<(i64, i16)>,
    /// The subject was a reply or forward (RFC 5256 §2.1).
    reply: bool,
    /// Whether the first message ID in `buf` is the Message-ID (else
    /// every ID there is a reference).
    has_message_id: bool,
    /// Where each string ends in `buf` (they start where the one before
    /// ends; the first at 0).
    ends: [u32; STRINGS],
    /// The strings, then the IDs (Message-ID if any, then the references
    /// oldest first), each ID as a `u32` length and its bytes.
    buf: Box<[u8]>,
}

impl SortKeys {
    /// The keys of a message with these fields (`None`: the store had
    /// none; every string empty, no IDs, no date).
    pub fn of(fields: Option<&SortFields>) -> SortKeys {
        let Some(f) = fields else {
            return SortKeys {
                sent_date: None,
                reply: false,
                has_message_id: false,
                ends: [0; STRINGS],
                buf: Box::default(),
            };
        };
        let (base, reply) = base_subject(&decode_words(f.subject.as_deref().unwrap_or_default()));
        let strings: [Vec<u8>; STRINGS] = [
            unicode_casemap_bytes(base.as_bytes()),
            unicode_casemap_bytes(&addr_mailbox(f.from.as_ref())),
            unicode_casemap_bytes(&addr_mailbox(f.to.as_ref())),
            unicode_casemap_bytes(&addr_mailbox(f.cc.as_ref())),
            unicode_casemap_bytes(&display(f.from.as_ref())),
            unicode_casemap_bytes(&display(f.to.as_ref())),
        ];
        let message_id = f
            .message_id
            .as_deref()
            .and_then(|raw| message_ids(raw).into_iter().next());
        let mut refs = f.references.as_deref().map(message_ids).unwrap_or_default();
        if refs.is_empty() {
            refs = f
                .in_reply_to
                .as_deref()
                .map(message_ids)
                .unwrap_or_default();
            refs.truncate(1);
        }
        // Only the last MAX_REFERENCES count: keep no more.
        refs.drain(..refs.len().saturating_sub(MAX_REFERENCES));
        let len = strings.iter().map(Vec::len).sum::<usize>()
            + message_id
                .iter()
                .chain(&refs)
                .map(|i| 4 + i.len())
                .sum::<usize>();
        let mut buf = Vec::with_capacity(len);
        let mut ends = [0u32; STRINGS];
        for (end, s) in ends.iter_mut().zip(&strings) {
            buf.extend_from_slice(s);
            *end = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        }
        for id in message_id.iter().chain(&refs) {
            buf.extend_from_slice(&u32::try_from(id.len()).unwrap_or(0).to_le_bytes());
            buf.extend_from_slice(id);
        }
        SortKeys {
            sent_date: f.sent_date,
            reply,
            has_message_id: message_id.is_some(),
            ends,
            buf: buf.into_boxed_slice(),
        }
    }

    /// One of the strings SORT orders by.
    pub fn text(&self, t: SortText) -> &[u8] {
        self.string(t.index())
    }

    fn string(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    /// The base subject (RFC 5256 §2.1), in `i;unicode-casemap` form.
    pub fn subject(&self) -> &[u8] {
        self.string(SUBJECT)
    }

    /// Whether the subject was a reply or forward (what THREAD uses).
    pub fn reply(&self) -> bool {
        self.reply
    }

    /// The addr-mailbox of the first From address (a group's name for a
    /// group, RFC 3501 §7.4.2), in `i;unicode-casemap` form; empty when
    /// there is none.
    pub fn from(&self) -> &[u8] {
        self.string(FROM)
    }

    /// As [`SortKeys::from`], of the first To address.
    pub fn to(&self) -> &[u8] {
        self.string(TO)
    }

    /// As [`SortKeys::from`], of the first Cc address.
    pub fn cc(&self) -> &[u8] {
        self.string(CC)
    }

    /// RFC 5957 §3: the display name of the first From address (RFC 2047
    /// words decoded, trimmed), or else its `local@domain`, in
    /// `i;unicode-casemap` form.
    pub fn display_from(&self) -> &[u8] {
        self.string(DISPLAY_FROM)
    }

    /// As [`SortKeys::display_from`], of the first To address.
    pub fn display_to(&self) -> &[u8] {
        self.string(DISPLAY_TO)
    }

    /// The `Date:` field in seconds since the epoch, if it parsed.
    pub fn sent_date(&self) -> Option<i64> {
        self.sent_date.map(|(t, _)| t)
    }

    /// The day of the `Date:` field in its own time zone (days since the
    /// epoch), if it parsed: what SENTBEFORE, SENTON and SENTSINCE compare.
    pub fn sent_day(&self) -> Option<i64> {
        self.sent_date
            .map(|(t, off)| (t + i64::from(off) * 60).div_euclid(86_400))
    }

    fn ids(&self) -> Ids<'_> {
        Ids {
            rest: self
                .buf
                .get(self.ends[STRINGS - 1] as usize..)
                .unwrap_or_default(),
        }
    }

    /// The first message ID of `Message-ID:` (without `<>`), if valid.
    pub fn message_id(&self) -> Option<&[u8]> {
        if self.has_message_id {
            self.ids().next()
        } else {
            None
        }
    }

    /// The references, oldest first: the message IDs of `References:`,
    /// else the first of `In-Reply-To:`; at most [`MAX_REFERENCES`] (the
    /// last ones).
    pub fn references(&self) -> impl Iterator<Item = &[u8]> {
        self.ids().skip(usize::from(self.has_message_id))
    }

    /// Bytes this value holds on the heap and inline (what a cache of it
    /// costs per message, besides the cache's own table).
    pub fn memory(&self) -> usize {
        std::mem::size_of::<SortKeys>() + self.buf.len()
    }
}

/// The strings of [`SortKeys`] a SORT orders by, one per string
/// criterion (what [`SortKeys::text`] and [`crate::Mailbox::sort_ranks`]
/// take).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortText {
    /// [`SortKeys::subject`].
    Subject,
    /// [`SortKeys::from`].
    From,
    /// [`SortKeys::to`].
    To,
    /// [`SortKeys::cc`].
    Cc,
    /// [`SortKeys::display_from`].
    DisplayFrom,
    /// [`SortKeys::display_to`].
    DisplayTo,
}

impl SortText {
    /// How many there are: [`SortText::index`] is below it.
    pub const COUNT: usize = STRINGS;

    /// Its position among the strings, `0..COUNT` (for tables kept per
    /// string).
    pub fn index(self) -> usize {
        match self {
            SortText::Subject => SUBJECT,
            SortText::From => FROM,
            SortText::To => TO,
            SortText::Cc => CC,
            SortText::DisplayFrom => DISPLAY_FROM,
            SortText::DisplayTo => DISPLAY_TO,
        }
    }
}

/// The rank of each string among `texts` (same order): equal strings have
/// equal ranks, a smaller string (byte order, which is the collation's
/// order of the forms [`SortKeys`] holds) a smaller rank, the empty string
/// 0 and the others from 1 up without gaps. What
/// [`crate::Mailbox::sort_ranks`] answers, so that SORT orders messages
/// by integers.
pub fn text_ranks(texts: &[&[u8]]) -> Vec<u32> {
    // Ordered by (first eight bytes, then the rest): most comparisons are
    // of one u64 in a contiguous array.
    let mut order: Vec<(u64, u32)> = texts
        .iter()
        .enumerate()
        .map(|(i, s)| (prefix(s), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let text = |i: u32| texts.get(i as usize).copied().unwrap_or_default();
    order.sort_unstable_by(|&(pa, a), &(pb, b)| pa.cmp(&pb).then_with(|| text(a).cmp(text(b))));
    let mut ranks = vec![0u32; texts.len()];
    let mut rank = 0u32;
    let mut last: &[u8] = &[];
    for (_, i) in order {
        let s = text(i);
        if s != last {
            rank += 1;
            last = s;
        }
        if let Some(r) = ranks.get_mut(i as usize) {
            *r = rank;
        }
    }
    ranks
}

/// The first eight bytes of a string, big-endian, padded with zeros: a
/// u64 whose order never contradicts the strings' (equal prefixes may
/// still be different strings).
fn prefix(s: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s[..n]);
    u64::from_be_bytes(b)
}

/// [`text_ranks`] of the `text` strings of these keys: each UID with its
/// rank (what [`crate::Mailbox::sort_ranks`] answers when nothing is kept).
pub fn rank_keys<K: std::ops::Deref<Target = SortKeys>>(
    keys: &[(Uid, K)],
    text: SortText,
) -> Vec<(Uid, u32)> {
    let texts: Vec<&[u8]> = keys.iter().map(|(_, k)| k.text(text)).collect();
    keys.iter()
        .map(|(u, _)| *u)
        .zip(text_ranks(&texts))
        .collect()
}

/// The length-prefixed IDs at the end of a [`SortKeys`] buffer.
struct Ids<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Ids<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (id, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(id)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageSummary;

    fn keys(raw: &str) -> SortKeys {
        SortKeys::of(Some(&SortFields::of(&MessageSummary::parse(
            raw.as_bytes(),
        ))))
    }

    #[test]
    fn keys_of_a_message() {
        let k = keys(
            "From: \"Ann\" <ann@example.com>, bob@example.com\r\nTo: undisclosed:;\r\n\
Cc: =?utf-8?q?Gr=C3=BC=C3=9Fe?= <g@x>\r\nSubject: Re: [list] h\u{e9}llo (fwd)\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <m@x>\r\n\
In-Reply-To: <p@x>\r\nReferences: <a@x>\r\n <p@x>\r\n\r\nbody\r\n",
        );
        assert_eq!(k.subject(), "HE\u{301}LLO".as_bytes());
        assert!(k.reply());
        assert_eq!(k.from(), b"ANN");
        assert_eq!(k.to(), b"UNDISCLOSED");
        assert_eq!(k.cc(), b"G");
        assert_eq!(k.display_from(), b"ANN");
        assert_eq!(k.display_to(), b"UNDISCLOSED");
        assert_eq!(k.sent_date(), Some(1_700_000_000));
        assert_eq!(k.sent_day(), Some(1_700_000_000 / 86_400));
        assert_eq!(k.message_id(), Some(&b"m@x"[..]));
        assert_eq!(k.references().collect::<Vec<_>>(), [&b"a@x"[..], b"p@x"]);
        assert!(k.memory() >= std::mem::size_of::<SortKeys>());
    }

    #[test]
    fn in_reply_to_without_references_and_no_message_id() {
        let k = keys("Subject: plain\r\nIn-Reply-To: <p@x> <q@x>\r\nFrom: x@y\r\n\r\n");
        assert_eq!(k.subject(), b"PLAIN");
        assert!(!k.reply());
        assert_eq!(k.message_id(), None);
        assert_eq!(k.references().collect::<Vec<_>>(), [&b"p@x"[..]]);
        assert_eq!(k.display_from(), b"X@Y");
        assert_eq!(k.cc(), b"");
        assert_eq!(k.sent_date(), None);
        assert_eq!(k.sent_day(), None);
        // A zone east of UTC can move the day.
        let k = keys("Date: Thu, 1 Jan 1970 23:00:00 -0200\r\n\r\n");
        assert_eq!(k.sent_date(), Some(25 * 3600));
        assert_eq!(k.sent_day(), Some(0));
    }

    #[test]
    fn no_fields_no_keys() {
        let k = SortKeys::of(None);
        assert_eq!(k.subject(), b"");
        assert_eq!(k.message_id(), None);
        assert_eq!(k.references().count(), 0);
    }

    #[test]
    fn texts_by_criterion() {
        let k = keys("From: a@x\r\nTo: b@x\r\nCc: c@x\r\nSubject: s\r\n\r\n");
        let got: Vec<&[u8]> = [
            SortText::Subject,
            SortText::From,
            SortText::To,
            SortText::Cc,
            SortText::DisplayFrom,
            SortText::DisplayTo,
        ]
        .into_iter()
        .map(|t| k.text(t))
        .collect();
        assert_eq!(got, [&b"S"[..], b"A", b"B", b"C", b"A@X", b"B@X"]);
    }

    #[test]
    fn ranks_of_texts() {
        let texts: [&[u8]; 7] = [
            b"TOPIC 12345",
            b"",
            b"TOPIC 12",
            b"TOPIC 12345",
            b"TOPIC 123456789",
            b"",
            b"A",
        ];
        assert_eq!(text_ranks(&texts), [3, 0, 2, 3, 4, 0, 1]);
        assert!(text_ranks(&[]).is_empty());
    }

    proptest::proptest! {
        /// Ranks order as the strings do, equal strings equal ranks, the
        /// empty string 0, no gaps.
        #[test]
        fn ranks_agree_with_the_strings(texts in proptest::collection::vec("(AB|A|B|\\u{e9}){0,6}", 0..40)) {
            let texts: Vec<&[u8]> = texts.iter().map(|s| s.as_bytes()).collect();
            let ranks = text_ranks(&texts);
            for (i, a) in texts.iter().enumerate() {
                proptest::prop_assert_eq!(ranks[i] == 0, a.is_empty());
                for (j, b) in texts.iter().enumerate() {
                    proptest::prop_assert_eq!(ranks[i].cmp(&ranks[j]), a.cmp(b));
                }
            }
            let mut distinct: Vec<&[u8]> = texts.iter().copied().filter(|t| !t.is_empty()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            proptest::prop_assert_eq!(ranks.iter().max().copied().unwrap_or(0) as usize, distinct.len());
        }
    }

    #[test]
    fn only_the_last_references_are_kept() {
        let refs: String = (0..MAX_REFERENCES + 5)
            .map(|i| format!(" <r{i}@x>"))
            .collect();
        let k = keys(&format!("References:{refs}\r\n\r\n"));
        let got: Vec<&[u8]> = k.references().collect();
        assert_eq!(got.len(), MAX_REFERENCES);
        assert_eq!(got[0], b"r5@x");
    }
}
