//! SORT and UID SORT (RFC 5256 §3, SORT=DISPLAY of RFC 5957): the messages
//! that match the search criteria (found as SEARCH finds them), ordered by
//! the sort criteria (see [`crate::extension::sort`] for the values
//! compared and the collation), ties by sequence number; answered
//! `* SORT n n ...`, with `(MODSEQ m)` when the criteria used MODSEQ
//! (RFC 7162 §3.1.5). The values come from the store (`Mailbox::sort_ranks`:
//! the rank of each message's string among the others', and
//! `Mailbox::sort_keys` for DATE; kept by the CRC store while the mailbox
//! is open) and the metadata (INTERNALDATE, size): no message file is
//! opened unless a search key needs the body. With `RETURN (...)` (ESORT, RFC 5267, see
//! [`crate::extension::esort`]) the answer is an ESEARCH response.

use std::cmp::Ordering;

use super::super::{Reply, State};
use super::search::{Match, matching};
use crate::command::{SearchKey, SearchReturn, SortCriterion, SortKey};
use crate::extension::{context, esort, searchres, sort};
use crate::response::{Data, Response, StatusResponse};
use mailroom_core::{Mailbox, Uid};

/// SORT / UID SORT.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    return_options: Option<&[SearchReturn]>,
    criteria: &[SortCriterion],
    charset: &str,
    search: &SearchKey,
) -> Reply {
    if context::tag_in_use(state, return_options, tag) {
        return super::bad(tag, "UPDATE with the tag of a search still updated");
    }
    let save = return_options.is_some_and(|o| o.contains(&SearchReturn::Save));
    let found = match matching(state, tag, Some(charset), search).await {
        Ok(found) => found,
        Err(reply) => {
            if let (true, Some(sel)) = (save, state.selected.as_mut()) {
                sel.set_saved(Vec::new());
            }
            return reply;
        }
    };
    let uses_modseq = uses_modseq(search);
    let modseq = if uses_modseq {
        found.iter().map(|m| m.meta.modseq).max()
    } else {
        None
    };
    let Some(mailbox) = state.selected.as_ref().map(|s| s.handle.mailbox().clone()) else {
        return super::bad(tag, "no mailbox selected");
    };
    let found = match sorted(&*mailbox, criteria, found).await {
        Ok(found) => found,
        Err(e) => {
            if let (true, Some(sel)) = (save, state.selected.as_mut()) {
                sel.set_saved(Vec::new());
            }
            return super::fail(tag, &e);
        }
    };
    if let (true, Some(opts), Some(sel)) = (save, return_options, state.selected.as_mut()) {
        // RFC 5267 §3 with RFC 5182 §2.4: MIN and MAX are the first and
        // last in sort order; the saved result is a set (no order).
        let uids: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
        sel.set_saved(searchres::to_save(&uids, opts));
        if searchres::save_only(opts) {
            return super::ok(tag, "SORT completed (result saved)");
        }
    }
    let result: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
    let ids: Vec<u32> = found
        .into_iter()
        .map(|m| if uid { m.meta.uid.0 } else { m.seq })
        .collect();
    let data = match return_options {
        None => Data::Sort { ids, modseq },
        Some(opts) => {
            let want = |o: SearchReturn| opts.is_empty() || opts.contains(&o);
            Data::ESearch {
                tag: tag.to_owned(),
                uid,
                min: want(SearchReturn::Min)
                    .then(|| ids.first().copied())
                    .flatten(),
                max: want(SearchReturn::Max)
                    .then(|| ids.last().copied())
                    .flatten(),
                count: want(SearchReturn::Count)
                    .then(|| u32::try_from(ids.len()).unwrap_or(u32::MAX)),
                all: if want(SearchReturn::All) {
                    esort::ordered_set(&ids)
                } else {
                    None
                },
                modseq,
                partial: context::partial_option(opts)
                    .map(|r| context::partial_data(&ids, r, true)),
            }
        }
    };
    let mut out = vec![Response::Data(data)];
    out.extend(context::register(
        state,
        tag,
        uid,
        return_options,
        search,
        Some(criteria),
        result,
    ));
    out.push(StatusResponse::ok(tag, None, "SORT completed"));
    Reply::new(out)
}

/// The matches in the order the criteria give, ties by sequence number.
/// `found` is in mailbox order (as [`matching`] gives it).
///
/// Each criterion becomes one column of integers whose order is the
/// criterion's (REVERSE: every bit inverted): ARRIVAL and SIZE from the
/// metadata, DATE from the sent dates of the store's keys
/// ([`Mailbox::sort_keys`]), and each string criterion the rank of the
/// message's string ([`Mailbox::sort_ranks`], which the CRC store keeps
/// with the keys while the mailbox is open). Sorting is then sorting
/// integers: no string is compared and no key is touched per comparison
/// (comparing strings in place was three scattered reads per message per
/// comparison, most of the time of a SORT by SUBJECT or FROM of 100,000
/// messages, `perf record` of `mailroom-bench sort`). When the matches are
/// already in order (ARRIVAL of mail appended as it arrived), they are
/// returned as they are after one pass that checks it.
pub(crate) async fn sorted(
    mailbox: &dyn Mailbox,
    criteria: &[SortCriterion],
    found: Vec<Match>,
) -> mailroom_core::Result<Vec<Match>> {
    let uids: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
    let mut sent: Option<Vec<Option<i64>>> = None;
    let mut columns: Vec<Vec<u64>> = Vec::with_capacity(criteria.len());
    for c in criteria {
        let column: Vec<u64> = if let Some(text) = sort::text_of(c.key) {
            let ranks = mailbox.sort_ranks(&uids, text).await?;
            aligned(&found, ranks, 0, u64::from)
        } else if c.key == SortKey::Date {
            if sent.is_none() {
                let keys = mailbox.sort_keys(&uids).await?;
                sent = Some(aligned(&found, keys, None, |k| k.sent_date()));
            }
            let sent = sent.as_deref().unwrap_or_default();
            found
                .iter()
                .enumerate()
                .map(|(i, m)| sort::date_value(&m.meta, sent.get(i).copied().flatten()))
                .collect()
        } else {
            found
                .iter()
                .map(|m| sort::meta_value(c.key, &m.meta))
                .collect()
        };
        columns.push(if c.reverse {
            column.into_iter().map(|v| !v).collect()
        } else {
            column
        });
    }
    // Positions in `found` are in sequence order: the final tiebreak.
    let cmp = |a: usize, b: usize| {
        columns
            .iter()
            .map(|col| col[a].cmp(&col[b]))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    };
    if (1..found.len()).all(|i| cmp(i - 1, i) != Ordering::Greater) {
        return Ok(found);
    }
    let first = columns.first().map(Vec::as_slice).unwrap_or_default();
    let order = match columns.len() {
        1 => counting_order(first),
        _ => None,
    };
    let order = order.unwrap_or_else(|| {
        let mut rows: Vec<(u64, u32)> = (0..found.len())
            .map(|i| {
                (
                    first.get(i).copied().unwrap_or(0),
                    u32::try_from(i).unwrap_or(u32::MAX),
                )
            })
            .collect();
        // Positions are unique: the order is total, an unstable sort
        // gives the same answer.
        rows.sort_unstable_by(|&(pa, a), &(pb, b)| {
            pa.cmp(&pb).then_with(|| cmp(a as usize, b as usize))
        });
        rows.into_iter().map(|(_, i)| i).collect()
    });
    let mut found = found;
    permute(&mut found, order);
    Ok(found)
}

/// The positions of `column` in its order, ties by position, by counting
/// when its values are dense (at most a few per position apart, as ranks
/// are: `Mailbox::sort_ranks` gives 0..=n, REVERSE their complements):
/// two linear passes instead of a comparison sort. `None` when they are
/// spread wider (dates, sizes): sort them.
fn counting_order(column: &[u64]) -> Option<Vec<u32>> {
    let min = column.iter().copied().min()?;
    let max = column.iter().copied().max()?;
    let n = u64::try_from(column.len()).ok()?;
    let span = max - min;
    if span > n.saturating_mul(4).saturating_add(1024) || n >= u64::from(u32::MAX) {
        return None;
    }
    // starts[v + 1] counts the values v; then prefix sums: where each
    // value's run starts.
    let mut starts = vec![0u32; usize::try_from(span).ok()? + 2];
    for &v in column {
        starts[(v - min) as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut order = vec![0u32; column.len()];
    for (i, &v) in column.iter().enumerate() {
        let at = &mut starts[(v - min) as usize];
        order[*at as usize] = i as u32;
        *at += 1;
    }
    Some(order)
}

/// Puts `v` in the order `order` gives (`order[i]`: the position in `v`
/// of what goes at `i`; a permutation of `0..v.len()`), in place: one
/// swap per move, following each cycle, and no second vector of matches
/// (for 100,000 matches that was two allocations of several megabytes
/// per SORT, each filled page by page, page faults a good part of the
/// profile). `order` is used up as the marks of the positions done.
fn permute<T>(v: &mut [T], mut order: Vec<u32>) {
    const DONE: u32 = u32::MAX;
    if order.len() != v.len() {
        return;
    }
    for start in 0..v.len() {
        let mut at = start;
        loop {
            let next = std::mem::replace(&mut order[at], DONE);
            if next == DONE || next as usize == start {
                break;
            }
            // `at` takes what belongs there; what was at `start` travels on.
            v.swap(at, next as usize);
            at = next as usize;
        }
    }
}

/// The store's answer for the UIDs of `found` (same order, the expunged
/// left out) as one value per match: `missing` for those left out.
fn aligned<T, V: Clone>(
    found: &[Match],
    got: Vec<(Uid, T)>,
    missing: V,
    value: impl Fn(T) -> V,
) -> Vec<V> {
    let mut got = got.into_iter().peekable();
    found
        .iter()
        .map(|m| {
            got.next_if(|(u, _)| *u == m.meta.uid)
                .map_or_else(|| missing.clone(), |(_, v)| value(v))
        })
        .collect()
}

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(v) => v.iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{counting_order, permute};
    use proptest::prelude::*;

    proptest! {
        /// Counting gives the order of a comparison sort, ties by
        /// position, on dense columns (ranks, and their complements for
        /// REVERSE), and declines spread ones.
        #[test]
        fn counting_order_is_the_sorted_order(ranks in proptest::collection::vec(0u64..50, 0..200), reverse: bool) {
            let column: Vec<u64> = ranks.iter().map(|&r| if reverse { !r } else { r }).collect();
            let mut want: Vec<(u64, u32)> = column.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
            want.sort_unstable();
            let want: Vec<u32> = want.into_iter().map(|(_, i)| i).collect();
            if column.is_empty() {
                prop_assert_eq!(counting_order(&column), None);
            } else {
                prop_assert_eq!(counting_order(&column), Some(want));
            }
        }
    }

    #[test]
    fn counting_order_declines_spread_values() {
        assert_eq!(counting_order(&[0, 1 << 40, 5]), None);
        assert_eq!(counting_order(&[7, 7, 3]), Some(vec![2, 0, 1]));
    }

    /// The in-place permutation puts each item where the order says,
    /// whatever the cycles (fixed points, one long cycle, several).
    #[test]
    fn permute_in_place_follows_the_order() {
        let orders: [&[u32]; 5] = [&[], &[0], &[2, 0, 1], &[1, 0, 2, 4, 3], &[5, 3, 0, 1, 4, 2]];
        for order in orders {
            let mut v: Vec<u32> = (0..order.len() as u32).map(|i| i * 10).collect();
            permute(&mut v, order.to_vec());
            let want: Vec<u32> = order.iter().map(|&i| i * 10).collect();
            assert_eq!(v, want, "{order:?}");
        }
    }
}
