//! One mailbox directory: its index (mapped), cache, keyword table, message
//! files and per-user seen files, and every operation on them.
//!
//! Everything here is synchronous; the async trait methods run it on the
//! blocking pool. One [`Shared`] exists per mailbox directory per process
//! (the store's registry hands out the same `Arc`), so all handles share
//! its lock, its in-memory header and its notifier.
//!
//! The files of this module, by what they hold:
//!
//! - `mod.rs`: the shared state ([`Shared`], [`Inner`], [`Slot`]), its
//!   locks and guards, watchers;
//! - `files.rs`: the directory layout and its small files (keyword table,
//!   seen files, an empty mailbox);
//! - `load.rs`: loading and checking the index, the freshness check, the
//!   sweeps of an interrupted commit's leftovers;
//! - `read.rs`: STATUS, snapshots, changes, metadata, cache and contents;
//! - `append.rs`: APPEND's group commit, MULTIAPPEND and the commit of new
//!   messages that COPY, MOVE and replication share;
//! - `write.rs`: index writes every change uses (header, records, keywords);
//! - `flags.rs`: STORE; `expunge.rs`: EXPUNGE and repack; `seen.rs`:
//!   viewers' own \Seen; `replica.rs`: replication on one mailbox.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mailroom_core::{Error, MailboxNotifier, MailboxRef, MailboxWatch, ModSeq, Result};

use crate::ctx::Ctx;
use crate::index::{Counts, Header, Record};
use crate::layout::{
    CACHE_FRAME_SIZE, HDR_FLAG_DIRTY, HEADER_SIZE, REC_FLAG_EXPUNGED, REC_FLAG_HAS_SENT_DATE,
    RECORD_SIZE,
};
use crate::map::Map;

mod append;
mod expunge;
mod files;
mod flags;
mod load;
mod read;
mod replica;
mod seen;
mod sort_keys;
mod write;

#[cfg(test)]
pub(crate) use sort_keys::RANK_ENTRY;

use append::{AppendQueue, sync_dir_alongside, write_new_file};
pub(crate) use append::{Prepared, Source};
pub(crate) use files::{
    cache_file_header, create_empty, create_layout, decode_keywords, decode_seen, encode_keywords,
    encode_seen, msg_path, tmp_path,
};
use load::FileStamp;
pub(crate) use read::{read_full_at, read_message};
pub(crate) use seen::has_seen;
use write::{add_counts, sub_counts, usage_of};

/// File names inside a mailbox directory.
pub(crate) const INDEX_FILE: &str = "index";
pub(crate) const CACHE_FILE: &str = "cache";
pub(crate) const KEYWORDS_FILE: &str = "keywords";
pub(crate) const MSG_DIR: &str = "msg";
pub(crate) const TMP_DIR: &str = "tmp";
pub(crate) const SEEN_DIR: &str = "seen";
pub(crate) const QUARANTINE_DIR: &str = "quarantine";

/// Repack automatically once this many expunged records accumulate (and
/// they outnumber the live ones).
pub(crate) const AUTO_REPACK_EXPUNGED: u32 = 10_000;

/// The longest message file read whole (a bound against runaway files).
pub(crate) const MAX_MESSAGE_SIZE: u64 = 1 << 32;

/// The loaded state of a mailbox.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The index file's path (for the freshness check).
    path: PathBuf,
    /// The index file open for writing: opened by a change and closed by
    /// the header write that ends it, never kept by readers (the map does
    /// not need it), so a mailbox costs no file descriptor between changes.
    index: OnceLock<File>,
    map: Map,
    /// The header bytes we last wrote or verified; the map showing other
    /// bytes means the file changed behind us.
    hdr_bytes: [u8; HEADER_SIZE],
    /// The index file's identity when we last wrote or verified it.
    stamp: Option<FileStamp>,
    /// Every committed record (live and expunged), decoded and CRC-checked
    /// once: built on first use from the map, then kept in step by every
    /// write. A record failing its CRC leaves it unbuilt (and the read that
    /// wanted it fails with `Error::Corruption`), so nothing corrupt is ever
    /// cached or served.
    view: OnceLock<Vec<Record>>,
    /// Serializes building `view` (so two readers do not both verify).
    view_build: Mutex<()>,
    /// Records the index file currently has room for.
    cap: usize,
    pub(crate) hdr: Header,
    keywords: Vec<String>,
    cache: OnceLock<File>,
    /// Per-user seen sets loaded so far (sorted UIDs).
    seen: Mutex<HashMap<String, Arc<Vec<u32>>>>,
    /// SORT and THREAD keys computed so far (see `sort_keys.rs`).
    sort_keys: Mutex<sort_keys::SortKeyCache>,
    /// The viewers with a seen file (sorted), once `seen/` was listed:
    /// replication reads them for every page of records and every batch
    /// it applies, so the directory is listed once per loaded mailbox and
    /// kept up to date by `set_seen`, the only writer of seen files.
    viewers: Mutex<Option<Vec<String>>>,
    /// A change failed half-way (I/O error): the in-memory state may not
    /// match the disk; the next access reloads (and recounts).
    broken: bool,
    /// The header's counts were recomputed when it was loaded (it was
    /// dirty): quota usage counted from the old header may differ.
    pub(crate) recounted: bool,
}

/// The slot behind the lock: loaded lazily, emptied on delete.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) inner: Option<Inner>,
    pub(crate) deleted: bool,
}

/// One mailbox directory, shared by every handle in the process.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) owner: String,
    pub(crate) id: u64,
    pub(crate) dir: PathBuf,
    /// The mailbox's current name (changes on rename).
    pub(crate) name: Mutex<MailboxRef>,
    pub(crate) slot: RwLock<Slot>,
    notifier: Mutex<Option<MailboxNotifier>>,
    pub(crate) ctx: Arc<Ctx>,
    /// APPENDs waiting for a group commit (see [`Shared::append`]).
    appends: Mutex<AppendQueue>,
    /// `tmp/` was cleared of earlier processes' leftovers.
    tmp_swept: std::sync::atomic::AtomicBool,
}

/// A read guard on a loaded mailbox.
pub(crate) struct ReadGuard<'a>(RwLockReadGuard<'a, Slot>);
/// A write guard on a loaded mailbox.
pub(crate) struct WriteGuard<'a>(RwLockWriteGuard<'a, Slot>);

impl std::ops::Deref for ReadGuard<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        // ensured by `Shared::read`
        self.0
            .inner
            .as_ref()
            .unwrap_or_else(|| unreachable!("read guard on unloaded slot"))
    }
}
impl std::ops::Deref for WriteGuard<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.0
            .inner
            .as_ref()
            .unwrap_or_else(|| unreachable!("write guard on unloaded slot"))
    }
}
impl std::ops::DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.0
            .inner
            .as_mut()
            .unwrap_or_else(|| unreachable!("write guard on unloaded slot"))
    }
}

fn poisoned() -> Error {
    Error::Backend("mailbox lock poisoned by an earlier panic".into())
}

/// Who looks at the mailbox: `None` is the owner.
pub(crate) type Viewer<'a> = Option<&'a str>;

impl Shared {
    pub(crate) fn new(
        owner: &str,
        id: u64,
        dir: PathBuf,
        name: MailboxRef,
        ctx: Arc<Ctx>,
    ) -> Shared {
        Shared {
            owner: owner.to_owned(),
            id,
            dir,
            name: Mutex::new(name),
            slot: RwLock::new(Slot::default()),
            notifier: Mutex::new(None),
            ctx,
            appends: Mutex::new(AppendQueue::default()),
            tmp_swept: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn mref(&self) -> MailboxRef {
        self.name
            .lock()
            .map(|n| n.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn gone(&self) -> Error {
        Error::NoSuchMailbox(self.mref().to_string())
    }

    /// Wraps a corruption error: logs and queues the mailbox.
    pub(crate) fn fail(&self, e: Error) -> Error {
        self.ctx.check(&self.mref(), e)
    }

    /// The write lock on the slot, whether loaded or not.
    pub(crate) fn slot_write(&self) -> Result<RwLockWriteGuard<'_, Slot>> {
        self.slot.write().map_err(|_| poisoned())
    }

    pub(crate) fn read(&self) -> Result<ReadGuard<'_>> {
        loop {
            let g = self.slot.read().map_err(|_| poisoned())?;
            if g.deleted {
                return Err(self.gone());
            }
            if g.inner
                .as_ref()
                .is_some_and(|i| !i.broken && i.unchanged_on_disk())
            {
                return Ok(ReadGuard(g));
            }
            drop(g);
            let mut w = self.slot_write()?;
            self.load_into(&mut w)?;
        }
    }

    pub(crate) fn write(&self) -> Result<WriteGuard<'_>> {
        let mut w = self.slot_write()?;
        self.load_into(&mut w)?;
        Ok(WriteGuard(w))
    }

    /// Publishes HIGHESTMODSEQ to watchers (and the change to replication).
    pub(crate) fn notify(&self, modseq: u64) {
        self.ctx.feed.touch(&self.owner);
        if let Ok(n) = self.notifier.lock()
            && let Some(n) = n.as_ref()
        {
            n.notify(ModSeq(modseq));
        }
    }

    /// A watch on this mailbox (ends at once if it was deleted).
    ///
    /// Lock order: the slot, then the notifier — the order every writer
    /// takes them in (it publishes its change while holding the slot).
    pub(crate) fn watch(&self) -> MailboxWatch {
        let slot = self.slot.read();
        let (current, deleted) = match &slot {
            Ok(s) => (
                s.inner.as_ref().map(|i| i.hdr.highest_modseq).unwrap_or(0),
                s.deleted,
            ),
            Err(_) => (0, true),
        };
        let mut guard = match self.notifier.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        drop(slot);
        if deleted {
            let (n, w) = MailboxWatch::channel(ModSeq(current));
            drop(n);
            return w;
        }
        match guard.as_ref() {
            Some(n) => n.subscribe(),
            None => {
                let (n, w) = MailboxWatch::channel(ModSeq(current));
                *guard = Some(n);
                w
            }
        }
    }

    /// Whether the mailbox is known to be deleted (its state is never
    /// kept idle). Never waits: a slot locked by a writer counts as not
    /// deleted (a deleted mailbox kept idle only costs its grace period).
    pub(crate) fn is_deleted(&self) -> bool {
        match self.slot.try_read() {
            Ok(s) => s.deleted,
            Err(std::sync::TryLockError::WouldBlock) => false,
            Err(std::sync::TryLockError::Poisoned(_)) => true,
        }
    }

    /// Marks the mailbox deleted and ends every watch.
    pub(crate) fn mark_deleted(&self) -> Result<()> {
        let mut w = self.slot_write()?;
        w.deleted = true;
        w.inner = None;
        if let Ok(mut n) = self.notifier.lock() {
            n.take();
        }
        Ok(())
    }

    /// Drops the loaded state so the next access reloads from disk.
    pub(crate) fn unload(slot: &mut Slot) {
        slot.inner = None;
    }
}
