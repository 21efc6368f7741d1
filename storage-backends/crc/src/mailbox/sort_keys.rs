//! The sort-key cache of an open mailbox: each message's [`SortKeys`]
//! (base subject, first addresses and display names in
//! `i;unicode-casemap` form, sent date, message IDs), computed from its
//! cache record the first time a SORT or THREAD asks for it and kept in
//! the loaded state ([`Inner`]) from then on, so later commands compare
//! keys without reading or decoding the cache file.
//!
//! - Filled lazily: a message appended after the last SORT gets its keys
//!   at the next one; nothing is computed at APPEND time.
//! - Always true: a message's keys never change (its content is immutable
//!   under its UID), and every answer is checked against the records, so
//!   an expunged message is never answered. Keys of expunged messages
//!   are dropped once they are more than a quarter of the cache (and at
//!   least [`PRUNE_SLACK`]), at the next lookup; the cache goes with the
//!   loaded state (a reload from disk after another process changed the
//!   mailbox, the mailbox leaving the open table).
//! - Bounded: at most [`MAX_CACHE_BYTES`] of keys per mailbox (counted
//!   by [`SortKeys::memory`] plus the table's entry); beyond it, keys are
//!   computed per command and not kept.
//!
//! - Ranked: for each string a SORT ordered by (SUBJECT, FROM, ...), the
//!   rank of every cached message's string ([`text_ranks`]), so that
//!   SORT orders integers (`Mailbox::sort_ranks`). A table is built over
//!   every cached key the first time a SORT asks for a message it does
//!   not hold (after new mail: one ranking per change, not per command)
//!   and pruned with the keys; ranks count against the same bound
//!   ([`RANK_ENTRY`] bytes per message and string).
//!
//! Cost per message: [`SortKeys::memory`] (the fixed part and one
//! allocation holding the strings and IDs) plus about 40 bytes of `Arc`
//! and table entry: 197 bytes per message for list mail (threads linked
//! by `References:`, as `mailroom-bench sort` makes them), about 20 MB
//! for a mailbox of 100,000 such messages; the unit test
//! `sort_keys_are_cached_and_follow_expunges` prints the figure.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use mailroom_core::mime::codec::decode_sort_fields;
use mailroom_core::mime::{SortKeys, SortText, rank_keys, text_ranks};
use mailroom_core::{Result, Uid};

use super::{Inner, Shared};
use crate::index::Record;

/// The most bytes of keys one mailbox keeps.
pub(crate) const MAX_CACHE_BYTES: usize = 64 << 20;

/// The fewest keys of expunged messages that trigger a prune.
pub(crate) const PRUNE_SLACK: usize = 1024;

/// What one cached message costs besides its [`SortKeys::memory`]: the
/// `Arc`'s counts and the table's entry (key, pointer, control byte, at
/// the table's load factor).
const ENTRY_OVERHEAD: usize = 16 + 24;

/// What one message's rank costs in a rank table (UID, rank, control
/// byte, at the table's load factor).
pub(crate) const RANK_ENTRY: usize = 16;

/// The cache (in [`Inner`]).
#[derive(Debug, Default)]
pub(crate) struct SortKeyCache {
    keys: HashMap<u32, Arc<SortKeys>>,
    /// Per [`SortText::index`]: the rank of each UID's string, all from
    /// one ranking (empty until a SORT by that string).
    ranks: [HashMap<u32, u32>; SortText::COUNT],
    /// The keys' and the ranks' bytes.
    bytes: usize,
}

impl SortKeyCache {
    fn insert(&mut self, uid: u32, k: Arc<SortKeys>) -> bool {
        let cost = k.memory() + ENTRY_OVERHEAD;
        if self.bytes + cost > MAX_CACHE_BYTES {
            return false;
        }
        if self.keys.insert(uid, k).is_none() {
            self.bytes += cost;
        }
        true
    }

    /// Messages cached, and the bytes they cost.
    pub(crate) fn usage(&self) -> (usize, usize) {
        (self.keys.len(), self.bytes)
    }

    /// Ranks every cached key under `text` (replacing that table); false,
    /// with nothing changed, when not every asked key is cached or the
    /// table would pass the bound.
    fn rank(&mut self, text: SortText, asked: &[(Uid, Arc<SortKeys>)]) -> bool {
        let t = text.index();
        let (old, new) = (self.ranks[t].len(), self.keys.len());
        let bytes = self.bytes.saturating_sub(old * RANK_ENTRY) + new * RANK_ENTRY;
        if bytes > MAX_CACHE_BYTES || !asked.iter().all(|(u, _)| self.keys.contains_key(&u.0)) {
            return false;
        }
        let (uids, texts): (Vec<u32>, Vec<&[u8]>) =
            self.keys.iter().map(|(u, k)| (*u, k.text(text))).unzip();
        let ranks = text_ranks(&texts);
        self.ranks[t] = uids.into_iter().zip(ranks).collect();
        self.bytes = bytes;
        true
    }
}

impl Shared {
    /// The sort keys of the given UIDs that are present, in the same
    /// order: from the cache, or computed from the cache records (and
    /// kept) for those not cached yet.
    pub(crate) fn sort_keys(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<SortKeys>)>> {
        let g = self.read()?;
        let mut cache = g.sort_keys.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(Uid, Option<Arc<SortKeys>>)> = Vec::with_capacity(uids.len());
        let mut missing: Vec<Record> = Vec::new();
        let v = g.view().map_err(|e| self.fail(e))?;
        for (uid, r) in present(v, uids) {
            match cache.keys.get(&uid.0) {
                Some(k) => out.push((uid, Some(k.clone()))),
                None => {
                    missing.push(*r);
                    out.push((uid, None));
                }
            }
        }
        if !missing.is_empty() {
            let mut made: HashMap<u32, Arc<SortKeys>> = HashMap::new();
            g.for_each_cache_payload(&self.dir, &self.ctx, &missing, |r, payload| {
                let f = decode_sort_fields(payload).map_err(|why| self.bad_cache_record(r, why))?;
                let k = Arc::new(SortKeys::of(Some(&f)));
                if !cache.insert(r.uid, k.clone()) {
                    made.insert(r.uid, k);
                }
                Ok(())
            })
            .map_err(|e| self.fail(e))?;
            let (cached, bytes) = cache.usage();
            tracing::debug!(
                mailbox = %self.mref(),
                computed = missing.len(),
                cached,
                bytes,
                "sort keys computed"
            );
            for (uid, k) in out.iter_mut().filter(|(_, k)| k.is_none()) {
                *k = cache.keys.get(&uid.0).or_else(|| made.get(&uid.0)).cloned();
            }
        }
        let live = g.hdr.exists as usize;
        if cache.keys.len() > live + (live / 4).max(PRUNE_SLACK) {
            prune(&g, &mut cache, v);
        }
        Ok(out
            .into_iter()
            .filter_map(|(uid, k)| Some((uid, k?)))
            .collect())
    }

    /// The ranks of the `text` keys of the given UIDs that are present
    /// (same order; see `Mailbox::sort_ranks`): from the rank table of
    /// that string, built over every cached key the first time a UID
    /// asked for is not in it (a SORT after new mail ranks again) and kept
    /// with the keys.
    pub(crate) fn sort_ranks(&self, uids: &[Uid], text: SortText) -> Result<Vec<(Uid, u32)>> {
        if let Some(ranked) = self.ranked_already(uids, text)? {
            return Ok(ranked);
        }
        let keys = self.sort_keys(uids)?;
        let g = self.read()?;
        let mut cache = g.sort_keys.lock().unwrap_or_else(PoisonError::into_inner);
        let t = text.index();
        let ranked = keys.iter().all(|(u, _)| cache.ranks[t].contains_key(&u.0));
        if !ranked && !cache.rank(text, &keys) {
            // Over the memory bound: these ranked alone, nothing kept.
            return Ok(rank_keys(&keys, text));
        }
        let table = &cache.ranks[t];
        Ok(keys
            .iter()
            .filter_map(|(u, _)| Some((*u, *table.get(&u.0)?)))
            .collect())
    }

    /// The ranks of the present `uids` straight from the rank table, when
    /// it has every one of them (a warm SORT): no key is looked up or
    /// cloned. `None` when one is missing, to rank again.
    fn ranked_already(&self, uids: &[Uid], text: SortText) -> Result<Option<Vec<(Uid, u32)>>> {
        let g = self.read()?;
        let cache = g.sort_keys.lock().unwrap_or_else(PoisonError::into_inner);
        let table = &cache.ranks[text.index()];
        if table.is_empty() {
            return Ok(None);
        }
        let v = g.view().map_err(|e| self.fail(e))?;
        let mut out = Vec::with_capacity(uids.len());
        for (uid, _) in present(v, uids) {
            match table.get(&uid.0) {
                Some(&rank) => out.push((uid, rank)),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Messages whose keys are cached, and the bytes they cost.
    #[cfg(test)]
    pub(crate) fn sort_key_usage(&self) -> Result<(usize, usize)> {
        let g = self.read()?;
        let cache = g.sort_keys.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.usage())
    }
}

/// The `uids` that are present (not expunged) in the records `v`, with
/// their records, in the order asked. The UIDs usually ascend, so each is
/// found by an exponential search from the last hit.
fn present<'a>(v: &'a [Record], uids: &'a [Uid]) -> impl Iterator<Item = (Uid, &'a Record)> {
    let mut at = 0;
    uids.iter().filter_map(move |&uid| {
        let i = if v.get(at).is_some_and(|r| r.uid <= uid.0) {
            super::read::seek(v, at, uid.0)
        } else {
            super::read::seek(v, 0, uid.0)
        };
        at = i;
        v.get(i)
            .filter(|r| r.uid == uid.0 && !r.is_expunged())
            .map(|r| (uid, r))
    })
}

/// Drops the keys of messages no longer present.
fn prune(_g: &Inner, cache: &mut SortKeyCache, v: &[Record]) {
    let present = |uid: u32| {
        v.binary_search_by_key(&uid, |r| r.uid)
            .is_ok_and(|i| !v[i].is_expunged())
    };
    cache.keys.retain(|&uid, _| present(uid));
    for table in &mut cache.ranks {
        table.retain(|&uid, _| present(uid));
    }
    cache.bytes = cache
        .keys
        .values()
        .map(|k| k.memory() + ENTRY_OVERHEAD)
        .sum::<usize>()
        + cache.ranks.iter().map(HashMap::len).sum::<usize>() * RANK_ENTRY;
}
