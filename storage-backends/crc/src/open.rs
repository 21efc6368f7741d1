//! The tables of open accounts and mailboxes: memory follows the work.
//!
//! A mailbox's in-memory state ([`Shared`]: its mapped index, decoded
//! records, seen sets, watchers and append queue) exists once per process
//! while anything uses it, so every session, delivery and admin command
//! on one mailbox shares its locks. The table keeps only a [`Weak`]
//! reference: when the last user lets go, the state is dropped (index
//! unmapped, files closed) and the next access loads it again from disk,
//! where everything already is (every change is written under the
//! mailbox's write lock before that lock is released).
//!
//! Reopening right after a session leaves (a client that SELECTs again, a
//! phone that reconnects) should not pay a reload, so a session that lets go
//! of a mailbox leaves it in a small idle list: a strong reference kept for
//! [`CrcOptions::open_mailbox_grace`](crate::CrcOptions) at most, and only
//! for the [`CrcOptions::open_mailboxes`](crate::CrcOptions) most recently
//! released mailboxes (least recently released evicted first). A
//! background thread (`crc-evict`) drops expired entries, so a server that
//! goes quiet gives everything back. An append with no session behind it
//! (an LMTP delivery) enters the idle list too, under the same bound: a
//! stream of deliveries to one mailbox loads its index and account once
//! per grace period instead of once per message, and a delivery to each of
//! many accounts costs at most `open_mailboxes` entries, each gone after
//! the grace period. Other one-shot users (STATUS, a quota query) never
//! enter the idle list.
//!
//! Accounts (the decoded `account` file) work the same way: the table
//! holds [`Weak`] references; an open mailbox handle and an idle entry hold
//! the owner's account, so a user with a selected mailbox does not reread
//! the file at each command, and an account nobody uses costs nothing.
//!
//! Correctness does not depend on the idle list: whoever holds a strong
//! reference holds the one live state for that directory (the table hands
//! out upgrades of the same `Weak` under its mutex), and a new state is
//! only made when no old one is alive, so two states of one mailbox never
//! exist at once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::account::Account;
use crate::mailbox::Shared;

/// A user's account, loaded on first use (`None` until then, or when the
/// user has no account).
pub(crate) type AccountCell = Arc<Mutex<Option<Account>>>;

/// What one idle entry keeps alive.
#[derive(Debug)]
struct Idle {
    since: Instant,
    seq: u64,
    _shared: Arc<Shared>,
    _account: Option<AccountCell>,
}

/// The tables behind one mutex each (mailboxes, accounts).
#[derive(Debug, Default)]
pub(crate) struct OpenTables {
    mailboxes: Mutex<MailboxTable>,
    accounts: Mutex<WeakTable<String, Mutex<Option<Account>>>>,
}

#[derive(Debug, Default)]
struct MailboxTable {
    live: WeakTable<PathBuf, Shared>,
    /// Idle entries by directory.
    idle: HashMap<PathBuf, Idle>,
    /// The idle entries' directories, least recently released first.
    order: BTreeMap<u64, PathBuf>,
    seq: u64,
}

/// A map of weak references that forgets dead ones from time to time, so
/// its size follows the live entries.
#[derive(Debug)]
struct WeakTable<K, V> {
    map: HashMap<K, Weak<V>>,
    /// Dead entries are swept when the map reaches this size.
    sweep_at: usize,
}

impl<K, V> Default for WeakTable<K, V> {
    fn default() -> Self {
        WeakTable {
            map: HashMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }
}

/// The smallest table size at which dead entries are swept.
const MIN_SWEEP: usize = 64;

impl<K: std::hash::Hash + Eq + Clone, V> WeakTable<K, V> {
    fn get(&self, k: &K) -> Option<Arc<V>> {
        self.map.get(k).and_then(Weak::upgrade)
    }

    /// The live value under `k`, or the one `make` returns (entered).
    fn get_or_insert_with(&mut self, k: &K, make: impl FnOnce() -> V) -> Arc<V> {
        if let Some(v) = self.get(k) {
            return v;
        }
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, w| w.strong_count() > 0);
            // amortised: the next sweep comes after as many inserts again
            self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP);
        }
        let v = Arc::new(make());
        self.map.insert(k.clone(), Arc::downgrade(&v));
        v
    }

    fn remove(&mut self, k: &K) {
        self.map.remove(k);
    }

    fn live(&self) -> usize {
        self.map.values().filter(|w| w.strong_count() > 0).count()
    }

    fn shrink(&mut self) {
        self.map.retain(|_, w| w.strong_count() > 0);
        self.map.shrink_to_fit();
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP);
    }
}

/// Counts of what the store holds in memory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct OpenCounts {
    /// Mailboxes whose state is in memory: selected by a session, in use
    /// by a running operation, or idle within their grace period.
    pub mailboxes: usize,
    /// Of those, the ones no session has selected, kept for the grace
    /// period (bounded by `open_mailboxes`).
    pub idle_mailboxes: usize,
    /// Accounts whose `account` file is loaded.
    pub accounts: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // the tables hold no invariant a panic could break half-way (maps of
    // references), so a poisoned lock is still usable
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl OpenTables {
    /// The live account cell of `user` (made empty if none is alive).
    pub(crate) fn account(&self, user: &str) -> AccountCell {
        lock(&self.accounts).get_or_insert_with(&user.to_owned(), || Mutex::new(None))
    }

    /// The live state of the mailbox in `dir`, or the one `make` returns.
    pub(crate) fn mailbox(&self, dir: &Path, make: impl FnOnce() -> Shared) -> Arc<Shared> {
        lock(&self.mailboxes)
            .live
            .get_or_insert_with(&dir.to_path_buf(), make)
    }

    /// Forgets the mailbox in `dir` (deleted): a later access makes a new
    /// state, and the idle list lets go of it.
    pub(crate) fn forget(&self, dir: &Path) {
        let dropped = {
            let mut t = lock(&self.mailboxes);
            t.live.remove(&dir.to_path_buf());
            t.take_idle(dir)
        };
        drop(dropped);
    }

    /// A session let go of `shared`: keep it for `grace`, within `cap`
    /// idle entries, evicting the least recently released.
    pub(crate) fn release(
        &self,
        shared: Arc<Shared>,
        account: Option<AccountCell>,
        cap: usize,
        grace: Duration,
    ) {
        if cap == 0 || grace.is_zero() || shared.is_deleted() {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut t = lock(&self.mailboxes);
            let dir = shared.dir.clone();
            if let Some(old) = t.take_idle(&dir) {
                evicted.push(old);
            }
            t.seq += 1;
            let seq = t.seq;
            t.order.insert(seq, dir.clone());
            t.idle.insert(
                dir,
                Idle {
                    since: Instant::now(),
                    seq,
                    _shared: shared,
                    _account: account,
                },
            );
            while t.idle.len() > cap {
                let Some((_, dir)) = t.order.pop_first() else {
                    break;
                };
                if let Some(e) = t.idle.remove(&dir) {
                    evicted.push(e);
                }
            }
        }
        // unmapped and closed outside the table's lock
        drop(evicted);
    }

    /// Drops the idle entries released more than `grace` ago. Returns how
    /// many were dropped.
    pub(crate) fn expire(&self, grace: Duration) -> usize {
        let now = Instant::now();
        let mut evicted = Vec::new();
        {
            let mut t = lock(&self.mailboxes);
            while let Some((&seq, dir)) = t.order.first_key_value() {
                let expired = t
                    .idle
                    .get(dir)
                    .is_none_or(|e| now.saturating_duration_since(e.since) >= grace);
                if !expired {
                    break;
                }
                let dir = dir.clone();
                t.order.remove(&seq);
                if let Some(e) = t.idle.remove(&dir) {
                    evicted.push(e);
                }
            }
            if t.idle.is_empty() {
                t.idle.shrink_to_fit();
                t.live.shrink();
            }
        }
        let n = evicted.len();
        drop(evicted);
        if n > 0 {
            lock(&self.accounts).shrink();
        }
        n
    }

    /// Drops every idle entry now.
    pub(crate) fn clear_idle(&self) {
        let evicted: Vec<Idle> = {
            let mut t = lock(&self.mailboxes);
            t.order.clear();
            t.idle.drain().map(|(_, e)| e).collect()
        };
        drop(evicted);
        lock(&self.mailboxes).live.shrink();
        lock(&self.accounts).shrink();
    }

    /// What is in memory now.
    pub(crate) fn counts(&self) -> OpenCounts {
        let (mailboxes, idle_mailboxes) = {
            let t = lock(&self.mailboxes);
            (t.live.live(), t.idle.len())
        };
        OpenCounts {
            mailboxes,
            idle_mailboxes,
            accounts: lock(&self.accounts).live(),
        }
    }
}

impl MailboxTable {
    fn take_idle(&mut self, dir: &Path) -> Option<Idle> {
        let e = self.idle.remove(dir)?;
        self.order.remove(&e.seq);
        Some(e)
    }
}

/// Runs [`OpenTables::expire`] every `tick` until the tables are dropped.
pub(crate) fn spawn_evictor(tables: &Arc<OpenTables>, grace: Duration) {
    if grace.is_zero() {
        return;
    }
    let weak = Arc::downgrade(tables);
    let tick = (grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let spawned = std::thread::Builder::new()
        .name("crc-evict".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                let Some(tables) = weak.upgrade() else {
                    return;
                };
                let n = tables.expire(grace);
                if n > 0 {
                    tracing::debug!(dropped = n, "idle mailboxes past their grace period closed");
                }
            }
        });
    if let Err(e) = spawned {
        // without the thread, idle entries still leave under the LRU cap
        tracing::warn!(error = %e, "could not start the idle-mailbox evictor thread");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ctx::Ctx;
    use mailroom_core::{MailboxName, MailboxRef};

    fn shared(dir: &str) -> Shared {
        Shared::new(
            "alice",
            1,
            PathBuf::from(dir),
            MailboxRef::new("alice", MailboxName::inbox()),
            Arc::new(Ctx::default()),
        )
    }

    #[test]
    fn one_live_state_per_directory_and_none_once_dropped() {
        let t = OpenTables::default();
        let a = t.mailbox(Path::new("/x/1"), || shared("/x/1"));
        let b = t.mailbox(Path::new("/x/1"), || shared("/x/1"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(t.counts().mailboxes, 1);
        drop((a, b));
        assert_eq!(t.counts().mailboxes, 0);
    }

    #[test]
    fn idle_list_is_bounded_and_evicts_least_recently_released() {
        let t = OpenTables::default();
        let grace = Duration::from_secs(60);
        let dirs: Vec<String> = (0..5).map(|i| format!("/x/{i}")).collect();
        for d in &dirs {
            let s = t.mailbox(Path::new(d), || shared(d));
            t.release(s, None, 3, grace);
        }
        let c = t.counts();
        assert_eq!((c.mailboxes, c.idle_mailboxes), (3, 3));
        // /x/0 and /x/1 went first
        let w = Arc::downgrade(&t.mailbox(Path::new("/x/0"), || shared("/x/0")));
        assert_eq!(w.strong_count(), 0, "a fresh state, not a kept one");
        assert!(lock(&t.mailboxes).idle.contains_key(Path::new("/x/4")));
        t.clear_idle();
        assert_eq!(t.counts(), OpenCounts::default());
    }

    #[test]
    fn expired_entries_leave_and_a_release_renews_the_grace() {
        let t = OpenTables::default();
        let grace = Duration::from_millis(40);
        let s = t.mailbox(Path::new("/x/1"), || shared("/x/1"));
        t.release(s.clone(), None, 8, grace);
        std::thread::sleep(Duration::from_millis(60));
        t.release(s.clone(), None, 8, grace);
        assert_eq!(t.expire(grace), 0, "renewed");
        drop(s);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.expire(grace), 1);
        assert_eq!(t.counts(), OpenCounts::default());
    }

    #[test]
    fn weak_table_sweeps_dead_entries() {
        let t = OpenTables::default();
        for i in 0..1000 {
            drop(t.account(&format!("u{i}")));
        }
        let n = lock(&t.accounts).map.len();
        assert!(n <= 2 * MIN_SWEEP, "{n} entries left for no live account");
        let keep = t.account("kept");
        assert!(Arc::ptr_eq(&keep, &t.account("kept")));
        assert_eq!(t.counts().accounts, 1);
    }
}
