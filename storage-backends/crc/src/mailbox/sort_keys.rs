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
//! - Bounded: at most [`MAX_CACHE_BYTES`] of keys, header texts and
//!   ranks per mailbox (keys counted
//!   by [`SortKeys::memory`] plus the table's entry); beyond it, keys are
//!   computed per command and not kept.
//!
//! - Ranked: for each string a SORT ordered by (SUBJECT, FROM, ...), the
//!   rank of every cached message's string ([`text_ranks`]), so that
//!   SORT orders integers (`Mailbox::sort_ranks`). A table is built over
//!   every cached key the first time a SORT asks for a message it does
//!   not hold (after new mail: one ranking per change, not per command)
//!   and pruned with the keys; it is a vector of `(UID, rank)` ascending
//!   by UID, read beside the ascending UIDs a SORT asks for (no hashing,
//!   sequential reads); ranks count against the same bound ([`RANK_ENTRY`]
//!   bytes per message and string).
//! - Header texts: beside the keys, in their own table filled the same
//!   way (lazily, by the first SEARCH FROM/TO/CC/BCC/SUBJECT or HEADER of
//!   those fields), each message's [`HeaderTexts`] of its search fields
//!   (`SortFields::search_header` decoded and casemapped), so a SEARCH on
//!   those keys is substring searches in memory, without decoding cache
//!   records or parsing headers per command. Counted in the same bound
//!   (`HeaderTexts::memory` plus the table's entry), pruned with the keys.
//!
//! Cost per message: [`SortKeys::memory`] (the fixed part and one
//! allocation holding the strings and IDs) plus about 40 bytes of `Arc`
//! and table entry: 197 bytes per message for list mail (threads linked
//! by `References:`, as `mailroom-bench sort` makes them), about 20 MB
//! for a mailbox of 100,000 such messages; the unit test
//! `sort_keys_are_cached_and_follow_expunges` prints the figure. Header
//! texts cost about as much again once a SEARCH asked for them (two
//! allocations: the casemapped names and values, and their ends; a raw
//! value equal to its decoded one kept once); the unit test
//! `search_headers_are_cached_and_follow_expunges` prints the figure.
//! The sum of both, with the ranks, stays under [`MAX_CACHE_BYTES`].

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use mailroom_core::mime::codec::decode_sort_fields;
use mailroom_core::mime::{HeaderTexts, SortFields, SortKeys, SortText, rank_keys, text_ranks};
use mailroom_core::{Result, Uid};

use super::{Inner, Shared};
use crate::index::Record;

/// The most bytes of keys, header texts and ranks one mailbox keeps.
pub(crate) const MAX_CACHE_BYTES: usize = 64 << 20;

/// The fewest values of expunged messages that trigger a prune.
pub(crate) const PRUNE_SLACK: usize = 1024;

/// What one cached value costs besides its own `memory()`: the `Arc`'s
/// counts and the table's entry (key, pointer, control byte, at the
/// table's load factor).
const ENTRY_OVERHEAD: usize = 16 + 24;

/// What one message's rank costs in a rank table (UID and rank).
pub(crate) const RANK_ENTRY: usize = 8;

/// The cache (in [`Inner`]).
#[derive(Debug, Default)]
pub(crate) struct SortKeyCache {
    keys: HashMap<u32, Arc<SortKeys>>,
    /// SEARCH's header texts ([`HeaderTexts`] of the search fields).
    texts: HashMap<u32, Arc<HeaderTexts>>,
    /// Per [`SortText::index`]: `(UID, rank)` of every message ranked,
    /// ascending by UID (looked up beside the ascending UIDs a SORT asks
    /// for, no hashing), all from one ranking (empty until a SORT by
    /// that string).
    ranks: [Vec<(u32, u32)>; SortText::COUNT],
    /// The keys', the texts' and the ranks' bytes.
    bytes: usize,
}

/// What the cache keeps per message, computed from its sort fields: the
/// sort keys, and SEARCH's header texts, each in its own table.
trait Kept: Sized {
    fn make(f: &SortFields) -> Self;
    fn memory(&self) -> usize;
    fn table(c: &SortKeyCache) -> &HashMap<u32, Arc<Self>>;
    fn table_mut(c: &mut SortKeyCache) -> &mut HashMap<u32, Arc<Self>>;
}

impl Kept for SortKeys {
    fn make(f: &SortFields) -> Self {
        SortKeys::of(Some(f))
    }
    fn memory(&self) -> usize {
        SortKeys::memory(self)
    }
    fn table(c: &SortKeyCache) -> &HashMap<u32, Arc<Self>> {
        &c.keys
    }
    fn table_mut(c: &mut SortKeyCache) -> &mut HashMap<u32, Arc<Self>> {
        &mut c.keys
    }
}

impl Kept for HeaderTexts {
    fn make(f: &SortFields) -> Self {
        HeaderTexts::of(Some(f))
    }
    fn memory(&self) -> usize {
        HeaderTexts::memory(self)
    }
    fn table(c: &SortKeyCache) -> &HashMap<u32, Arc<Self>> {
        &c.texts
    }
    fn table_mut(c: &mut SortKeyCache) -> &mut HashMap<u32, Arc<Self>> {
        &mut c.texts
    }
}

impl SortKeyCache {
    fn insert<T: Kept>(&mut self, uid: u32, k: Arc<T>) -> bool {
        let cost = k.memory() + ENTRY_OVERHEAD;
        if self.bytes + cost > MAX_CACHE_BYTES {
            return false;
        }
        if T::table_mut(self).insert(uid, k).is_none() {
            self.bytes += cost;
        }
        true
    }

    /// Messages whose keys are cached, and the bytes the whole cache
    /// costs.
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
        let mut by_uid: Vec<(u32, &[u8])> =
            self.keys.iter().map(|(u, k)| (*u, k.text(text))).collect();
        by_uid.sort_unstable_by_key(|(u, _)| *u);
        let texts: Vec<&[u8]> = by_uid.iter().map(|(_, s)| *s).collect();
        let ranks = text_ranks(&texts);
        let table: Vec<(u32, u32)> = by_uid.iter().map(|(u, _)| *u).zip(ranks).collect();
        self.ranks[t] = table;
        self.bytes = bytes;
        true
    }
}

impl Shared {
    /// The sort keys of the given UIDs that are present, in the same
    /// order: from the cache, or computed from the cache records (and
    /// kept) for those not cached yet.
    pub(crate) fn sort_keys(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<SortKeys>)>> {
        self.kept(uids)
    }

    /// SEARCH's header texts of the given UIDs that are present, in the
    /// same order, as [`Shared::sort_keys`] (and beside them, in the same
    /// bound).
    pub(crate) fn search_headers(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<HeaderTexts>)>> {
        self.kept(uids)
    }

    /// The `T` of the given UIDs that are present, in the same order:
    /// from its table, or computed from the cache records (and kept, in
    /// the bound) for those not there yet.
    fn kept<T: Kept>(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<T>)>> {
        let g = self.read()?;
        let mut cache = g.sort_keys.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(Uid, Option<Arc<T>>)> = Vec::with_capacity(uids.len());
        let mut missing: Vec<Record> = Vec::new();
        let v = g.view().map_err(|e| self.fail(e))?;
        let table = T::table(&cache);
        for (uid, r) in present(v, uids) {
            match table.get(&uid.0) {
                Some(k) => out.push((uid, Some(k.clone()))),
                None => {
                    missing.push(*r);
                    out.push((uid, None));
                }
            }
        }
        if !missing.is_empty() {
            let mut made: HashMap<u32, Arc<T>> = HashMap::new();
            g.for_each_cache_payload(&self.dir, &self.ctx, &missing, |r, payload| {
                let f = decode_sort_fields(payload).map_err(|why| self.bad_cache_record(r, why))?;
                let k = Arc::new(T::make(&f));
                if !cache.insert(r.uid, k.clone()) {
                    made.insert(r.uid, k);
                }
                Ok(())
            })
            .map_err(|e| self.fail(e))?;
            let (cached, bytes) = cache.usage();
            tracing::debug!(
                mailbox = %self.mref(),
                what = std::any::type_name::<T>(),
                computed = missing.len(),
                cached,
                bytes,
                "sort keys computed"
            );
            let table = T::table(&cache);
            for (uid, k) in out.iter_mut().filter(|(_, k)| k.is_none()) {
                *k = table.get(&uid.0).or_else(|| made.get(&uid.0)).cloned();
            }
        }
        let live = g.hdr.exists as usize;
        let slack = (live / 4).max(PRUNE_SLACK);
        if cache.keys.len() > live + slack || cache.texts.len() > live + slack {
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
        let asked: Vec<Uid> = keys.iter().map(|(u, _)| *u).collect();
        if let Some(ranked) = ranks_of(&cache.ranks[t], &asked) {
            return Ok(ranked);
        }
        if !cache.rank(text, &keys) {
            // Over the memory bound: these ranked alone, nothing kept.
            return Ok(rank_keys(&keys, text));
        }
        // Every asked key was cached, so it is ranked now.
        Ok(ranks_of(&cache.ranks[t], &asked).unwrap_or_else(|| rank_keys(&keys, text)))
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
        let live: Vec<Uid> = present(v, uids).map(|(u, _)| u).collect();
        Ok(ranks_of(table, &live))
    }

    /// Messages whose keys are cached, and the bytes the cache costs.
    #[cfg(test)]
    pub(crate) fn sort_key_usage(&self) -> Result<(usize, usize)> {
        let g = self.read()?;
        let cache = g.sort_keys.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.usage())
    }
}

/// The rank of each of `uids` in a rank table (ascending by UID), in the
/// order asked; `None` when one is not in it. The UIDs usually ascend, so
/// each is found by an exponential search from the last hit.
fn ranks_of(table: &[(u32, u32)], uids: &[Uid]) -> Option<Vec<(Uid, u32)>> {
    let mut out = Vec::with_capacity(uids.len());
    let mut at = 0;
    for &uid in uids {
        let from = if table.get(at).is_some_and(|(u, _)| *u <= uid.0) {
            at
        } else {
            0
        };
        at = super::read::seek_by(table, from, uid.0, |(u, _)| *u);
        match table.get(at) {
            Some(&(u, rank)) if u == uid.0 => out.push((uid, rank)),
            _ => return None,
        }
    }
    Some(out)
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

/// Drops the keys, texts and ranks of messages no longer present.
fn prune(_g: &Inner, cache: &mut SortKeyCache, v: &[Record]) {
    let present = |uid: u32| {
        v.binary_search_by_key(&uid, |r| r.uid)
            .is_ok_and(|i| !v[i].is_expunged())
    };
    cache.keys.retain(|&uid, _| present(uid));
    cache.texts.retain(|&uid, _| present(uid));
    for table in &mut cache.ranks {
        table.retain(|&(uid, _)| present(uid));
    }
    cache.bytes = cache
        .keys
        .values()
        .map(|k| k.memory() + ENTRY_OVERHEAD)
        .sum::<usize>()
        + cache
            .texts
            .values()
            .map(|k| k.memory() + ENTRY_OVERHEAD)
            .sum::<usize>()
        + cache.ranks.iter().map(Vec::len).sum::<usize>() * RANK_ENTRY;
}
