//! SORT and UID SORT (RFC 5256 §3, SORT=DISPLAY of RFC 5957): the messages
//! that match the search criteria (found as SEARCH finds them), ordered by
//! the sort criteria (see [`crate::extension::sort`] for the values
//! compared and the collation), ties by sequence number; answered
//! `* SORT n n ...`, with `(MODSEQ m)` when the criteria used MODSEQ
//! (RFC 7162 §3.1.5). The values come from the store's sort fields
//! keys (`Mailbox::sort_keys`: precomputed collation forms, kept by the
//! CRC store while the mailbox is open) and the metadata (INTERNALDATE,
//! size): no message file is opened unless a search key needs the body. With `RETURN (...)` (ESORT, RFC 5267, see
//! [`crate::extension::esort`]) the answer is an ESEARCH response.

use std::cmp::Ordering;
use std::sync::Arc;

use super::super::{Reply, State};
use super::search::{Match, matching};
use crate::command::{SearchKey, SearchReturn, SortCriterion, SortKey};
use crate::extension::sort::compare;
use crate::extension::{context, esort, searchres};
use crate::response::{Data, Response, StatusResponse};
use mailroom_core::mime::SortKeys;
use mailroom_core::{Mailbox, MessageMeta, Uid};

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
/// `found` is in mailbox order (as [`matching`] gives it). The keys come
/// from the store in one call ([`Mailbox::sort_keys`], asked only when a
/// criterion needs more than ARRIVAL and SIZE; the CRC store keeps them
/// while the mailbox is open), so comparing two messages is comparing
/// numbers and byte strings, with no allocation. When the matches are
/// already in order (ARRIVAL of mail appended as it arrived), they are
/// returned as they are after one pass that checks it.
pub(crate) async fn sorted(
    mailbox: &dyn Mailbox,
    criteria: &[SortCriterion],
    found: Vec<Match>,
) -> mailroom_core::Result<Vec<Match>> {
    let needs_keys = criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    let keys: Vec<Option<Arc<SortKeys>>> = if needs_keys {
        let uids: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
        let mut got = mailbox.sort_keys(&uids).await?.into_iter().peekable();
        // Same order as asked, the expunged left out: align by UID.
        found
            .iter()
            .map(|m| got.next_if(|(u, _)| *u == m.meta.uid).map(|(_, k)| k))
            .collect()
    } else {
        Vec::new()
    };
    let key_of = |i: usize| keys.get(i).and_then(|k| k.as_deref());
    let cmp = |a: usize, b: usize| {
        compare(
            criteria,
            (&found[a].meta, key_of(a)),
            (&found[b].meta, key_of(b)),
        )
        .then(found[a].seq.cmp(&found[b].seq))
    };
    if (1..found.len()).all(|i| cmp(i - 1, i) != Ordering::Greater) {
        return Ok(found);
    }
    // Sorted as (prefix of the first key, position): most comparisons are
    // of one u64 in a contiguous array; equal prefixes fall back to the
    // full comparison.
    let mut rows: Vec<(u64, u32)> = (0..found.len())
        .map(|i| {
            let p = criteria.first().map_or(0, |c| {
                let p = prefix(c.key, &found[i].meta, key_of(i));
                if c.reverse { !p } else { p }
            });
            (p, u32::try_from(i).unwrap_or(u32::MAX))
        })
        .collect();
    // Sequence numbers are unique: the order is total, an unstable sort
    // gives the same answer.
    rows.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb).then_with(|| cmp(a as usize, b as usize))
    });
    let mut slots: Vec<Option<Match>> = found.into_iter().map(Some).collect();
    Ok(rows
        .into_iter()
        .filter_map(|(_, i)| slots.get_mut(i as usize).and_then(Option::take))
        .collect())
}

/// A u64 whose order agrees with the order of `key` (equal values give
/// equal prefixes; different values may too): a number shifted into
/// unsigned order, or the first eight bytes of a string, big-endian,
/// padded with zeros.
fn prefix(key: SortKey, meta: &MessageMeta, keys: Option<&SortKeys>) -> u64 {
    let number = |n: i64| (n as u64) ^ (1 << 63);
    let text = |f: fn(&SortKeys) -> &[u8]| {
        let s = keys.map_or(&[][..], f);
        let mut b = [0u8; 8];
        let n = s.len().min(8);
        b[..n].copy_from_slice(&s[..n]);
        u64::from_be_bytes(b)
    };
    match key {
        SortKey::Arrival => number(meta.internal_date.timestamp),
        SortKey::Size => meta.size,
        SortKey::Date => number(
            keys.and_then(SortKeys::sent_date)
                .unwrap_or(meta.internal_date.timestamp),
        ),
        SortKey::From => text(SortKeys::from),
        SortKey::To => text(SortKeys::to),
        SortKey::Cc => text(SortKeys::cc),
        SortKey::DisplayFrom => text(SortKeys::display_from),
        SortKey::DisplayTo => text(SortKeys::display_to),
        SortKey::Subject => text(SortKeys::subject),
    }
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
    use super::*;
    use mailroom_core::mime::SortFields;
    use mailroom_core::{Flags, InternalDate, MessageGuid, MessageSummary, ModSeq};
    use proptest::prelude::*;

    fn meta(ts: i64, size: u64) -> MessageMeta {
        MessageMeta {
            uid: Uid(1),
            flags: Flags::default(),
            modseq: ModSeq(1),
            internal_date: InternalDate {
                timestamp: ts,
                offset_minutes: 0,
            },
            size,
            guid: MessageGuid::default(),
            save_date: None,
        }
    }

    fn keys(subject: &str, from: &str) -> SortKeys {
        let raw = format!("Subject: {subject}\r\nFrom: {from}@x\r\n\r\n");
        SortKeys::of(Some(&SortFields::of(&MessageSummary::parse(
            raw.as_bytes(),
        ))))
    }

    proptest! {
        /// A prefix never contradicts the full comparison: different
        /// prefixes order the values as the values order.
        #[test]
        fn prefixes_agree_with_the_order(
            sa in "[a-c\u{e9} ]{0,12}", sb in "[a-c\u{e9} ]{0,12}",
            fa in "[a-z]{1,10}", fb in "[a-z]{1,10}",
            ta in any::<i64>(), tb in any::<i64>(),
            za in any::<u64>(), zb in any::<u64>(),
        ) {
            let (ka, kb) = (keys(&sa, &fa), keys(&sb, &fb));
            let (ma, mb) = (meta(ta, za), meta(tb, zb));
            for key in [SortKey::Arrival, SortKey::Size, SortKey::Date, SortKey::Subject,
                        SortKey::From, SortKey::DisplayFrom, SortKey::To] {
                let c = [SortCriterion { key, reverse: false }];
                let full = compare(&c, (&ma, Some(&ka)), (&mb, Some(&kb)));
                let pre = prefix(key, &ma, Some(&ka)).cmp(&prefix(key, &mb, Some(&kb)));
                prop_assert!(pre == Ordering::Equal || pre == full, "{key:?}: {pre:?} vs {full:?}");
            }
        }
    }
}
