//! ESORT (RFC 5267 §3): `SORT RETURN (MIN MAX ALL COUNT)`, answered with
//! `* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set`, where MIN and
//! MAX are the first and last message in sort order (not the lowest and
//! highest numbers) and ALL lists the messages in sort order: a
//! `sequence-set` whose ranges `a:b` only stand for runs of consecutive
//! ascending numbers, written in the order the messages sort, e.g.
//! `7,2:4,1` for 7, 2, 3, 4, 1.

use mailroom_core::{SeqBound, SeqRange, SeqSet};

/// The numbers in the order given, as a sequence set (`None` if empty).
pub(crate) fn ordered_set(ids: &[u32]) -> Option<SeqSet> {
    let mut ranges: Vec<SeqRange> = Vec::new();
    let mut iter = ids.iter().copied();
    let first = iter.next()?;
    let (mut lo, mut hi) = (first, first);
    for n in iter {
        if hi.checked_add(1) == Some(n) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_and_joins_ascending_runs() {
        let s = ordered_set(&[7, 2, 3, 4, 1]).map(|s| s.to_string());
        assert_eq!(s.as_deref(), Some("7,2:4,1"));
        let s = ordered_set(&[5, 4, 3]).map(|s| s.to_string());
        assert_eq!(s.as_deref(), Some("5,4,3"));
        assert_eq!(ordered_set(&[]), None);
    }
}
