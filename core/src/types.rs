//! Numeric identifiers of the IMAP data model: UIDs, UIDVALIDITY, MODSEQ and
//! message sequence numbers, and sequence sets over them.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;

/// A message's unique identifier within one mailbox (RFC 3501 §2.3.1.1).
///
/// UIDs start at 1 and strictly ascend; a UID is never reused within one
/// [`UidValidity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub u32);

/// The UIDVALIDITY of a mailbox: when it changes, every cached UID is void.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(pub u32);

/// A modification sequence number (RFC 7162). Zero is never assigned to a
/// message; every change to a mailbox takes a higher one than before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ModSeq(pub u64);

impl ModSeq {
    /// The next modseq after this one.
    pub fn next(self) -> ModSeq {
        ModSeq(self.0.saturating_add(1))
    }
}

/// A message sequence number: the 1-based position of a message in a
/// session's view of the selected mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNum(pub u32);

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(Uid, UidValidity, ModSeq, SeqNum);

/// One end of a [`SeqRange`]: a number, or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqBound {
    /// A concrete number.
    Value(u32),
    /// `*`: the largest sequence number or UID in the mailbox.
    Largest,
}

impl SeqBound {
    fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqBound::Value(v) => v,
            SeqBound::Largest => largest,
        }
    }
}

/// `a:b` or a single number in a sequence set. The ends may come in either
/// order (`4:2` is `2:4`, RFC 3501 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The first end as written.
    pub start: SeqBound,
    /// The second end as written (equal to `start` for a single number).
    pub end: SeqBound,
}

impl SeqRange {
    /// The inclusive range of numbers this stands for, given the largest
    /// number in use (`*`). With an empty mailbox `*` resolves to 0.
    pub fn resolve(&self, largest: u32) -> (u32, u32) {
        let a = self.start.resolve(largest);
        let b = self.end.resolve(largest);
        if a <= b { (a, b) } else { (b, a) }
    }
}

/// A sequence set (`1,3:5,7:*`) of sequence numbers or UIDs.
///
/// ```
/// use mailroom_core::SeqSet;
/// let set: SeqSet = "1,3:5,9:*".parse().unwrap();
/// assert!(set.contains(4, 12));
/// assert!(set.contains(12, 12));
/// assert!(!set.contains(6, 12));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeqSet {
    /// The ranges in the order they were written. Never empty.
    pub ranges: Vec<SeqRange>,
}

/// The most ranges a sequence set may hold; a bound on untrusted input.
pub const MAX_SEQ_RANGES: usize = 10_000;

impl SeqSet {
    /// A set of one number.
    pub fn single(n: u32) -> SeqSet {
        SeqSet {
            ranges: vec![SeqRange {
                start: SeqBound::Value(n),
                end: SeqBound::Value(n),
            }],
        }
    }

    /// The set `a:b`.
    pub fn range(a: u32, b: u32) -> SeqSet {
        SeqSet {
            ranges: vec![SeqRange {
                start: SeqBound::Value(a),
                end: SeqBound::Value(b),
            }],
        }
    }

    /// The set `1:*`.
    pub fn all() -> SeqSet {
        SeqSet {
            ranges: vec![SeqRange {
                start: SeqBound::Value(1),
                end: SeqBound::Largest,
            }],
        }
    }

    /// A set holding exactly the given numbers, compressed into ranges.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Option<SeqSet> {
        let mut v: Vec<u32> = numbers.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        let mut ranges: Vec<SeqRange> = Vec::new();
        let mut iter = v.into_iter();
        let first = iter.next()?;
        let (mut lo, mut hi) = (first, first);
        for n in iter {
            if n == hi + 1 {
                hi = n;
            } else {
                ranges.push(SeqRange {
                    start: SeqBound::Value(lo),
                    end: SeqBound::Value(hi),
                });
                lo = n;
                hi = n;
            }
        }
        ranges.push(SeqRange {
            start: SeqBound::Value(lo),
            end: SeqBound::Value(hi),
        });
        Some(SeqSet { ranges })
    }

    /// Whether `n` is in the set, `largest` being what `*` stands for.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.ranges.iter().any(|r| {
            let (a, b) = r.resolve(largest);
            a <= n && n <= b
        })
    }

    /// Whether the set mentions `*`.
    pub fn uses_largest(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| r.start == SeqBound::Largest || r.end == SeqBound::Largest)
    }

    /// The members of the set that are also in the sorted slice `present`,
    /// in ascending order without duplicates. `*` is the last element of
    /// `present` (or, if `present` is empty, nothing matches).
    ///
    /// This costs O(ranges × log(present)) plus the size of the answer, so
    /// `1:4294967295` against a small mailbox is cheap.
    pub fn select_from<T: Copy + Ord>(&self, present: &[T], key: impl Fn(T) -> u32) -> Vec<T> {
        let Some(&last) = present.last() else {
            return Vec::new();
        };
        let largest = key(last);
        let mut spans: Vec<(usize, usize)> = self
            .ranges
            .iter()
            .map(|r| {
                let (a, b) = r.resolve(largest);
                let lo = present.partition_point(|&x| key(x) < a);
                let hi = present.partition_point(|&x| key(x) <= b);
                (lo, hi)
            })
            .filter(|(lo, hi)| lo < hi)
            .collect();
        spans.sort_unstable();
        let mut out = Vec::new();
        let mut upto = 0usize;
        for (lo, hi) in spans {
            let lo = lo.max(upto);
            if lo < hi {
                out.extend_from_slice(&present[lo..hi]);
                upto = hi;
            }
        }
        out
    }
}

impl fmt::Display for SeqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let w = |b: SeqBound, f: &mut fmt::Formatter<'_>| match b {
                SeqBound::Value(v) => write!(f, "{v}"),
                SeqBound::Largest => f.write_str("*"),
            };
            w(r.start, f)?;
            if r.end != r.start {
                f.write_str(":")?;
                w(r.end, f)?;
            }
        }
        Ok(())
    }
}

impl FromStr for SeqSet {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn bound(s: &str) -> Result<SeqBound, ParseError> {
            if s == "*" {
                return Ok(SeqBound::Largest);
            }
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0') {
                return Err(ParseError::new("invalid sequence number"));
            }
            s.parse::<u32>()
                .ok()
                .filter(|&v| v > 0)
                .map(SeqBound::Value)
                .ok_or_else(|| ParseError::new("sequence number out of range"))
        }
        let mut ranges = Vec::new();
        for part in s.split(',') {
            if ranges.len() >= MAX_SEQ_RANGES {
                return Err(ParseError::new("sequence set too long"));
            }
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (bound(a)?, bound(b)?),
                None => {
                    let a = bound(part)?;
                    (a, a)
                }
            };
            ranges.push(SeqRange { start: a, end: b });
        }
        Ok(SeqSet { ranges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let s: SeqSet = "1,3:5,7:*".parse().unwrap();
        assert_eq!(s.to_string(), "1,3:5,7:*");
        assert!("0".parse::<SeqSet>().is_err());
        assert!("".parse::<SeqSet>().is_err());
        assert!("1:".parse::<SeqSet>().is_err());
        assert!("01".parse::<SeqSet>().is_err());
        assert!("4294967296".parse::<SeqSet>().is_err());
    }

    #[test]
    fn reversed_range_and_star() {
        let s: SeqSet = "5:2".parse().unwrap();
        assert!(s.contains(3, 10));
        let s: SeqSet = "*:4".parse().unwrap();
        assert!(s.contains(10, 10) && s.contains(4, 10) && !s.contains(3, 10));
    }

    #[test]
    fn select_from_dedups_and_sorts() {
        let present = [2u32, 4, 6, 8, 10];
        let s: SeqSet = "9:*,1:5,4".parse().unwrap();
        assert_eq!(s.select_from(&present, |x| x), vec![2, 4, 10]);
        assert!(s.select_from(&[] as &[u32], |x| x).is_empty());
    }

    proptest! {
        #[test]
        fn select_matches_contains(nums in proptest::collection::btree_set(1u32..200, 0..40),
                                   set in "[1-9][0-9]{0,2}(:([1-9][0-9]{0,2}|\\*))?(,[1-9][0-9]{0,2}(:([1-9][0-9]{0,2}|\\*))?){0,4}") {
            let set: SeqSet = set.parse().unwrap();
            let present: Vec<u32> = nums.into_iter().collect();
            let largest = present.last().copied().unwrap_or(0);
            let expected: Vec<u32> = present.iter().copied().filter(|&n| set.contains(n, largest)).collect();
            prop_assert_eq!(set.select_from(&present, |x| x), expected);
        }

        #[test]
        fn from_numbers_roundtrip(nums in proptest::collection::btree_set(1u32..500, 1..60)) {
            let set = SeqSet::from_numbers(nums.iter().copied()).unwrap();
            let reparsed: SeqSet = set.to_string().parse().unwrap();
            for n in 1..500 {
                prop_assert_eq!(reparsed.contains(n, 500), nums.contains(&n));
            }
        }
    }
}
