//! Quota charged atomically with the write: one in-memory ledger per
//! account that has had a charged write.
//!
//! A ledger holds the owner's committed usage (the sum of the
//! `quota_bytes` and `exists` of their mailbox headers, counted once and
//! then kept in step by every commit) and the charges of writes in flight.
//! A charged write reserves its bytes and messages under the ledger's mutex
//! (refused with [`Error::OverQuota`] if committed usage, the charges in
//! flight and its own would pass a limit), and the commit that makes it
//! visible settles its charge in the same critical section that adds the
//! commit to the usage. So at every moment usage + charges counts every
//! charged write exactly once, and no interleaving of charged writes to one
//! account, in one mailbox or several, can overshoot a limit.
//!
//! Counting the usage from the headers races with commits; each commit
//! bumps the ledger's generation (while it still holds its mailbox's write
//! lock), and a count is only taken if no commit happened while it ran
//! (otherwise it is counted again). Anything that changes usage outside a
//! commit (reconstruct, a mailbox deleted or imported, a reload that found
//! the index changed) forgets the count, so the next charge counts afresh
//! from the headers: usage stays exact across crashes, as the headers are.
//!
//! Lock order: a ledger's mutex is a leaf (taken while holding a mailbox
//! lock, never held while taking one), and so is the table's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mailroom_core::{Error, QuotaLimits, Result};

/// How many times a count is retried when commits keep coming in while it
/// runs, before the charge gives up with [`Error::Busy`].
const COUNT_ATTEMPTS: usize = 32;

/// Ledgers nobody holds are dropped once the table has this many (their
/// count is only a cache: the next charge counts again).
const MAX_IDLE_LEDGERS: usize = 1024;

/// Bytes and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    pub(crate) bytes: u64,
    pub(crate) messages: u64,
}

impl Usage {
    pub(crate) fn new(bytes: u64, messages: u64) -> Usage {
        Usage { bytes, messages }
    }

    fn add(self, o: Usage) -> Usage {
        Usage::new(
            self.bytes.saturating_add(o.bytes),
            self.messages.saturating_add(o.messages),
        )
    }

    fn sub(self, o: Usage) -> Usage {
        Usage::new(
            self.bytes.saturating_sub(o.bytes),
            self.messages.saturating_sub(o.messages),
        )
    }
}

#[derive(Debug, Default)]
struct State {
    /// Committed usage, if counted since it was last forgotten.
    used: Option<Usage>,
    /// Charges of writes reserved and not yet committed or abandoned.
    pending: Usage,
    /// Bumped by every commit and every `forget`.
    generation: u64,
}

/// The quota ledger of one account.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    state: Mutex<State>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, State> {
        // the state is plain numbers, consistent after any panic
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `add` against `limits`; `count` adds up the owner's
    /// committed usage from the headers (called without any lock held here).
    pub(crate) fn reserve(
        self: &Arc<Self>,
        add: Usage,
        limits: QuotaLimits,
        mut count: impl FnMut() -> Result<Usage>,
    ) -> Result<Charge> {
        for _ in 0..COUNT_ATTEMPTS {
            let generation = {
                let mut st = self.lock();
                if let Some(used) = st.used {
                    let with = used.add(st.pending);
                    if !limits.allow(with.bytes, with.messages, add.bytes, add.messages) {
                        return Err(Error::OverQuota);
                    }
                    st.pending = st.pending.add(add);
                    return Ok(Charge {
                        ledger: Some(self.clone()),
                        amount: add,
                    });
                }
                st.generation
            };
            let counted = count()?;
            let mut st = self.lock();
            if st.generation == generation {
                st.used = Some(counted);
            }
        }
        Err(Error::Busy(
            "quota usage keeps changing while it is counted; try again".into(),
        ))
    }

    /// A commit changed the owner's usage from `before` to `after` (one
    /// mailbox's header figures) and made the writes of `settled` visible:
    /// their charges become usage, in one step.
    pub(crate) fn committed(&self, before: Usage, after: Usage, settled: &mut [Charge]) {
        let mut st = self.lock();
        st.generation += 1;
        if let Some(used) = st.used {
            st.used = Some(used.sub(before).add(after));
        }
        for c in settled {
            if c.ledger.take().is_some() {
                st.pending = st.pending.sub(c.amount);
            }
        }
    }

    /// Usage changed outside a commit: count again at the next charge.
    pub(crate) fn forget(&self) {
        let mut st = self.lock();
        st.generation += 1;
        st.used = None;
    }
}

/// A reservation on a ledger. Settled by the commit that makes the write
/// visible ([`Ledger::committed`]); dropped unsettled (the write failed or
/// was abandoned), it gives its amount back.
#[derive(Debug)]
pub(crate) struct Charge {
    ledger: Option<Arc<Ledger>>,
    amount: Usage,
}

impl Charge {
    /// A charge of nothing, for writes that are not charged.
    pub(crate) fn none() -> Charge {
        Charge {
            ledger: None,
            amount: Usage::default(),
        }
    }

    /// Lowers the reservation to what the write turned out to take (a copy
    /// whose messages were partly expunged meanwhile).
    pub(crate) fn shrink_to(&mut self, amount: Usage) {
        if let Some(l) = &self.ledger
            && (amount.bytes < self.amount.bytes || amount.messages < self.amount.messages)
        {
            let give_back = self.amount.sub(amount);
            let mut st = l.lock();
            st.pending = st.pending.sub(give_back);
            self.amount = self.amount.sub(give_back);
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(l) = self.ledger.take() {
            let mut st = l.lock();
            st.pending = st.pending.sub(self.amount);
        }
    }
}

/// The ledgers of the accounts with charged writes.
#[derive(Debug, Default)]
pub(crate) struct Ledgers {
    map: Mutex<HashMap<String, Arc<Ledger>>>,
}

impl Ledgers {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Ledger>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ledger of `owner`, made if needed.
    pub(crate) fn get(&self, owner: &str) -> Arc<Ledger> {
        let mut map = self.map();
        if let Some(l) = map.get(owner) {
            return l.clone();
        }
        if map.len() >= MAX_IDLE_LEDGERS {
            // only the table holds them: no charge, no count in flight
            map.retain(|_, l| Arc::strong_count(l) > 1);
        }
        let l = Arc::new(Ledger::default());
        map.insert(owner.to_owned(), l.clone());
        l
    }

    /// The ledger of `owner` if there is one (commits only update existing
    /// ledgers: without one, nobody has counted anything to keep in step).
    pub(crate) fn existing(&self, owner: &str) -> Option<Arc<Ledger>> {
        self.map().get(owner).cloned()
    }

    /// Forgets the count of `owner` (see [`Ledger::forget`]).
    pub(crate) fn forget(&self, owner: &str) {
        if let Some(l) = self.existing(owner) {
            l.forget();
        }
    }
}

/// Most users whose limits are kept in memory; past it the table is
/// emptied and refilled from the files as users come back.
const MAX_CACHED_LIMITS: usize = 4096;

/// The limits of the users' `quota` files, as last read or written by this
/// process, so that a delivery needs no file read (nor a trip to the
/// blocking pool) to learn its recipient's limits. Only this process writes
/// the files (the data directory is locked against others), always through
/// [`LimitsCache::set`], so the copy cannot go stale.
#[derive(Debug, Default)]
pub(crate) struct LimitsCache {
    map: Mutex<HashMap<String, QuotaLimits>>,
}

impl LimitsCache {
    /// The limits of `user`, if known.
    pub(crate) fn get(&self, user: &str) -> Option<QuotaLimits> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .copied()
    }

    /// Records the limits of `user` (read from or written to their file).
    pub(crate) fn set(&self, user: &str, limits: QuotaLimits) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHED_LIMITS && !map.contains_key(user) {
            map.clear();
        }
        map.insert(user.to_owned(), limits);
    }

    /// Forgets `user` (their file could not be written: read it again).
    pub(crate) fn forget(&self, user: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn limit(bytes: u64) -> QuotaLimits {
        QuotaLimits {
            storage_bytes: Some(bytes),
            messages: None,
        }
    }

    #[test]
    fn charges_in_flight_count_until_settled_or_dropped() {
        let l = Arc::new(Ledger::default());
        let count = || Ok(Usage::new(50, 1));
        let a = l.reserve(Usage::new(30, 1), limit(100), count).unwrap();
        let mut b = l.reserve(Usage::new(20, 1), limit(100), count).unwrap();
        assert!(matches!(
            l.reserve(Usage::new(1, 1), limit(100), count),
            Err(Error::OverQuota)
        ));
        drop(a);
        let c = l.reserve(Usage::new(30, 1), limit(100), count).unwrap();
        // b commits: usage 50 -> 70, its charge settled in the same step
        l.committed(
            Usage::new(50, 1),
            Usage::new(70, 2),
            std::slice::from_mut(&mut b),
        );
        drop(b);
        assert!(matches!(
            l.reserve(Usage::new(1, 1), limit(100), count),
            Err(Error::OverQuota)
        ));
        drop(c);
        assert!(l.reserve(Usage::new(30, 1), limit(100), count).is_ok());
    }

    #[test]
    fn a_count_overtaken_by_a_commit_is_taken_again() {
        let l = Arc::new(Ledger::default());
        let mut counts = 0;
        let l2 = l.clone();
        let charge = l
            .reserve(Usage::new(10, 1), limit(100), || {
                counts += 1;
                if counts == 1 {
                    // a commit lands while the first count runs
                    l2.committed(Usage::new(0, 0), Usage::new(80, 1), &mut []);
                    Ok(Usage::new(0, 0))
                } else {
                    Ok(Usage::new(80, 1))
                }
            })
            .unwrap();
        assert_eq!(counts, 2);
        drop(charge);
        assert!(matches!(
            l.reserve(Usage::new(21, 1), limit(100), || Ok(Usage::new(0, 0))),
            Err(Error::OverQuota)
        ));
    }
}
