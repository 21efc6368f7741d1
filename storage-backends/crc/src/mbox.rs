//! One mailbox directory: its index (mapped), cache, keyword table, message
//! files and per-user seen files, and every operation on them.
//!
//! Everything here is synchronous; the async trait methods run it on the
//! blocking pool. One [`Shared`] exists per mailbox directory per process
//! (the store's registry hands out the same `Arc`), so all handles share
//! its lock, its in-memory header and its notifier.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use mailroom_core::{
    Changes, Error, Flags, InternalDate, MailboxNotifier, MailboxRef, MailboxSnapshot,
    MailboxStatus, MailboxWatch, MessageGuid, MessageMeta, MessageSummary, ModSeq, Result, StoreOp,
    StoreResult, Uid, UidValidity,
};
use sha1::{Digest, Sha1};

use crate::ctx::{Ctx, IoStats};
use crate::fsutil::{escape_component, sync_dir, write_atomic};
use crate::index::{Counts, Header, Record, Tail};
use crate::layout::{
    CACHE_FRAME_SIZE, CACHE_HEADER_SIZE, CACHE_MAGIC, CURRENT_VERSION, HDR_FLAG_DIRTY, HEADER_SIZE,
    KEYWORDS_MAGIC, MAX_CACHE_RECORD, MAX_KEYWORDS, REC_FLAG_EXPUNGED, REC_FLAG_HAS_SENT_DATE,
    RECORD_SIZE, SEEN_MAGIC, VersionLayout,
};
use crate::map::Map;

mod replica;
use crate::quota::{Charge, Usage};

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

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary file name in `dir`.
pub(crate) fn tmp_path(dir: &Path, stem: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(TMP_DIR)
        .join(format!("{stem}.{}.{n}", std::process::id()))
}

/// The path of a message file.
pub(crate) fn msg_path(dir: &Path, uid: u32) -> PathBuf {
    dir.join(MSG_DIR).join(uid.to_string())
}

/// Creates the subdirectories of a mailbox directory.
pub(crate) fn create_layout(dir: &Path) -> std::io::Result<()> {
    for sub in [MSG_DIR, TMP_DIR, SEEN_DIR] {
        fs::create_dir_all(dir.join(sub))?;
    }
    Ok(())
}

/// Writes an empty cache file (its header only).
pub(crate) fn cache_file_header() -> [u8; CACHE_HEADER_SIZE] {
    let mut b = [0u8; CACHE_HEADER_SIZE];
    b[..8].copy_from_slice(CACHE_MAGIC);
    b[8..12].copy_from_slice(&CURRENT_VERSION.to_le_bytes());
    b
}

/// Writes a fresh, empty mailbox (index header and cache header), with the
/// given MAILBOXID (a replica's copy) or a new one.
pub(crate) fn create_empty(
    dir: &Path,
    uid_validity: u32,
    mailbox_id: Option<mailroom_core::MailboxId>,
    durable: bool,
) -> Result<()> {
    create_layout(dir)?;
    write_atomic(&dir.join(CACHE_FILE), &cache_file_header(), durable)?;
    let mut hdr = Header::new(uid_validity);
    if let Some(id) = mailbox_id {
        hdr.mailbox_id = id.0;
    }
    write_atomic(&dir.join(INDEX_FILE), &hdr.encode(), durable)?;
    sync_dir(dir, durable)?;
    Ok(())
}

/// Encodes a keyword table file.
pub(crate) fn encode_keywords(keywords: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    for k in keywords {
        body.push(k.len() as u8);
        body.extend_from_slice(k.as_bytes());
    }
    SmallFile::Keywords.encode(keywords.len(), &body)
}

/// Decodes a keyword table file.
pub(crate) fn decode_keywords(b: &[u8]) -> std::result::Result<Vec<String>, &'static str> {
    let (count, body) = SmallFile::Keywords.decode(b)?;
    if count > MAX_KEYWORDS {
        return Err("too many keywords");
    }
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let n = *body.get(at).ok_or("keyword file truncated")? as usize;
        let k = body
            .get(at + 1..at + 1 + n)
            .ok_or("keyword file truncated")?;
        out.push(String::from_utf8(k.to_vec()).map_err(|_| "keyword not UTF-8")?);
        at += 1 + n;
    }
    if at != body.len() {
        return Err("trailing bytes in keyword file");
    }
    Ok(out)
}

/// Encodes a seen file (sorted UIDs).
pub(crate) fn encode_seen(uids: &[u32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(uids.len() * 4);
    for u in uids {
        body.extend_from_slice(&u.to_le_bytes());
    }
    SmallFile::Seen.encode(uids.len(), &body)
}

/// Decodes a seen file.
pub(crate) fn decode_seen(b: &[u8]) -> std::result::Result<Vec<u32>, &'static str> {
    let (count, body) = SmallFile::Seen.decode(b)?;
    if body.len() != count * 4 {
        return Err("seen file length mismatch");
    }
    Ok(body
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The two small CRC-checked files of a mailbox, which share one 24-byte
/// header (FORMAT.md): magic (8), version 1 (u32), entry count (u32),
/// CRC32 of the body (u32), reserved zero (u32), then the body.
#[derive(Debug, Clone, Copy)]
enum SmallFile {
    Keywords,
    Seen,
}

impl SmallFile {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            SmallFile::Keywords => KEYWORDS_MAGIC,
            SmallFile::Seen => SEEN_MAGIC,
        }
    }

    /// The errors for a bad header, an unknown version and a CRC mismatch.
    fn errors(self) -> [&'static str; 3] {
        match self {
            SmallFile::Keywords => [
                "bad keyword file header",
                "unknown keyword file version",
                "keyword file CRC mismatch",
            ],
            SmallFile::Seen => [
                "bad seen file header",
                "unknown seen file version",
                "seen file CRC mismatch",
            ],
        }
    }

    fn encode(self, count: usize, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + body.len());
        out.extend_from_slice(self.magic());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(count as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Checks the header and the body's CRC; returns the entry count and body.
    fn decode(self, b: &[u8]) -> std::result::Result<(usize, &[u8]), &'static str> {
        let [bad_header, bad_version, bad_crc] = self.errors();
        if b.len() < 24 || &b[..8] != self.magic() {
            return Err(bad_header);
        }
        let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if u(8) != 1 {
            return Err(bad_version);
        }
        let body = &b[24..];
        if crc32fast::hash(body) != u(16) {
            return Err(bad_crc);
        }
        Ok((u(12) as usize, body))
    }
}

/// A message ready to be committed: everything computed outside the lock.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Where the bytes come from.
    pub(crate) source: Source,
    pub(crate) system_flags: u8,
    pub(crate) keywords: Vec<String>,
    /// For a non-owner appender/copier: their own \Seen.
    pub(crate) viewer_seen: bool,
    pub(crate) internal_date: InternalDate,
    pub(crate) sent: Option<(i64, i16)>,
    pub(crate) header_size: u32,
    pub(crate) size: u64,
    pub(crate) guid: [u8; 20],
    /// The encoded summary (cache payload).
    pub(crate) summary: Vec<u8>,
}

/// The bytes of a message to commit.
#[derive(Debug)]
pub(crate) enum Source {
    /// New bytes.
    Bytes(Bytes),
    /// An existing message file to hard-link (COPY/MOVE), with its bytes
    /// read lazily if linking fails.
    Link(PathBuf),
    /// New bytes already written to this file under `tmp/` before the
    /// mailbox was locked: the commit renames it. With the file handle, the
    /// file is not yet durable and the commit fsyncs it at the same time as
    /// `msg/` and the cache (with durability on, the handle is `None` only
    /// when the file was fsynced already).
    Written(PathBuf, Option<File>),
}

impl Prepared {
    /// Removes the file written ahead for a message that will not be
    /// committed.
    fn discard(self) {
        if let Source::Written(path, _) = self.source {
            let _ = fs::remove_file(path);
        }
    }

    /// Parses and hashes a new message.
    pub(crate) fn new(content: Bytes, flags: &Flags, date: Option<InternalDate>) -> Prepared {
        let summary = MessageSummary::parse(&content);
        let guid = MessageGuid::of(&content).0;
        Prepared {
            system_flags: flags.system_bits(),
            keywords: flags.keywords().map(str::to_owned).collect(),
            viewer_seen: false,
            internal_date: date.unwrap_or_else(InternalDate::now),
            sent: summary.sent_date,
            header_size: u32::try_from(summary.header.len()).unwrap_or(u32::MAX),
            size: content.len() as u64,
            guid,
            summary: mailroom_core::mime::codec::encode(&summary),
            source: Source::Bytes(content),
        }
    }
}

/// What identifies the index file's contents on disk: a change of any of
/// these that we did not make ourselves means the file changed behind us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path)?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

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

/// The APPENDs of one mailbox waiting for a group commit.
#[derive(Debug, Default)]
struct AppendQueue {
    pending: Vec<PendingAppend>,
    /// A thread is committing the queue (it steps down, under this
    /// queue's mutex, only when it finds the queue empty).
    leader: bool,
}

/// One APPEND waiting for a group commit.
#[derive(Debug)]
struct PendingAppend {
    prepared: Prepared,
    /// Its quota charge, settled by the commit that makes it visible.
    charge: Charge,
    reply: std::sync::mpsc::Sender<Result<mailroom_core::Appended>>,
}

/// The longest last-commit tail a STATUS from the header alone checks (a
/// longer one, from a big COPY, is checked by loading the mailbox).
const MAX_STATUS_TAIL: usize = 1024;

/// The most APPENDs one group commit takes.
const MAX_GROUP_COMMIT: usize = 256;

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

    /// Loads the mailbox if needed (upgrading an older format first).
    fn load_into(&self, slot: &mut Slot) -> Result<()> {
        if slot.deleted {
            return Err(self.gone());
        }
        if slot
            .inner
            .as_ref()
            .is_none_or(|i| i.broken || !i.unchanged_on_disk())
        {
            if slot.inner.as_ref().is_some_and(|i| !i.broken) {
                tracing::warn!(mailbox = %self.mref(), "index file changed behind our back; reloading and re-verifying it");
            }
            // a reload may find other figures than those counted
            let mut usage_may_differ = slot.inner.take().is_some();
            let first_load = !self.tmp_swept.swap(true, Ordering::Relaxed);
            if first_load {
                sweep_tmp(&self.dir);
            }
            let inner = match Inner::load(&self.dir, &self.ctx) {
                Err(LoadError::OldVersion(v)) => {
                    usage_may_differ = true;
                    crate::rebuild::upgrade(self, v).map_err(|e| self.fail(e))?;
                    Inner::load(&self.dir, &self.ctx).map_err(|e| self.fail(e.into()))?
                }
                Err(e) => return Err(self.fail(e.into())),
                Ok(i) => i,
            };
            if usage_may_differ || inner.recounted {
                self.ctx.ledgers.forget(&self.owner);
            }
            if first_load {
                sweep_uncommitted(&self.dir, inner.hdr.uid_next);
            }
            slot.inner = Some(inner);
        }
        Ok(())
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

    // ------------------------------------------------------------------
    // Reads

    /// STATUS from the in-memory header if loaded, else from the index
    /// header alone; `None` if the header alone cannot answer (dirty, old
    /// version): the caller then loads the mailbox.
    pub(crate) fn status_fast(&self) -> Result<Option<MailboxStatus>> {
        // the read lock stays held while the header is read from disk, so
        // no writer (they all hold the write lock) can tear it
        let g = self.slot.read().map_err(|_| poisoned())?;
        if g.deleted {
            return Err(self.gone());
        }
        if let Some(inner) = g
            .inner
            .as_ref()
            .filter(|i| !i.broken && i.unchanged_on_disk())
        {
            return Ok(Some(status_of(&inner.hdr)));
        }
        IoStats::bump(&self.ctx.stats.header_reads);
        let mut buf = [0u8; HEADER_SIZE];
        let f = File::open(self.dir.join(INDEX_FILE)).map_err(|e| self.not_found_or(e))?;
        let n = read_full_at(&f, &mut buf, 0)?;
        match VersionLayout::detect(&buf[..n]) {
            Some(CURRENT_VERSION) => {}
            Some(_) => return Ok(None),
            None => {
                return Err(self.fail(Error::Corruption(format!(
                    "{}: index header CRC mismatch or bad magic",
                    self.dir.join(INDEX_FILE).display()
                ))));
            }
        }
        let hdr = Header::decode(&buf[..n], &self.dir.join(INDEX_FILE).display().to_string())
            .map_err(|e| self.fail(e))?;
        if hdr.is_dirty() || hdr.mailbox_id == [0u8; 16] {
            // (no MAILBOXID yet: the load assigns one, FORMAT.md)
            return Ok(None);
        }
        if let Some(t) = Tail::of(&buf[..n]) {
            // the counts hold only if the last commit's records reached
            // the disk: checked here for a short tail, else by a load
            let len = (hdr.record_count.saturating_sub(t.start) as usize) * RECORD_SIZE;
            if len > MAX_STATUS_TAIL * RECORD_SIZE {
                return Ok(None);
            }
            let mut records = vec![0u8; len];
            let got = read_full_at(
                &f,
                &mut records,
                (HEADER_SIZE + t.start as usize * RECORD_SIZE) as u64,
            )?;
            if got != len || !t.holds(&hdr, &records) {
                return Ok(None);
            }
        }
        Ok(Some(status_of(&hdr)))
    }

    fn not_found_or(&self, e: std::io::Error) -> Error {
        if e.kind() == ErrorKind::NotFound {
            self.gone()
        } else {
            Error::Io(e)
        }
    }

    /// STATUS after a full load (for other viewers, or when the header alone
    /// cannot answer).
    pub(crate) fn status_full(&self, viewer: Viewer<'_>) -> Result<MailboxStatus> {
        let g = self.read()?;
        let mut st = status_of(&g.hdr);
        if let Some(v) = viewer {
            let seen = g.seen_set(&self.dir, v).map_err(|e| self.fail(e))?;
            let view = g.view().map_err(|e| self.fail(e))?;
            let mut unseen = 0;
            let mut si = 0usize;
            for r in view.iter().filter(|r| !r.is_expunged()) {
                while si < seen.len() && seen[si] < r.uid {
                    si += 1;
                }
                if !(si < seen.len() && seen[si] == r.uid) {
                    unseen += 1;
                }
            }
            st.unseen = unseen;
        }
        Ok(st)
    }

    pub(crate) fn snapshot(&self, viewer: Viewer<'_>) -> Result<MailboxSnapshot> {
        let g = self.read()?;
        let messages = g
            .metas(&self.dir, viewer, 0, true, None)
            .map_err(|e| self.fail(e))?;
        Ok(MailboxSnapshot {
            mailbox_id: mailroom_core::MailboxId(g.hdr.mailbox_id),
            uid_validity: UidValidity(g.hdr.uid_validity),
            uid_next: Uid(g.hdr.uid_next),
            highest_modseq: ModSeq(g.hdr.highest_modseq),
            messages,
        })
    }

    pub(crate) fn changes_since(&self, viewer: Viewer<'_>, since: ModSeq) -> Result<Changes> {
        let g = self.read()?;
        let mut expunged = Vec::new();
        let changed = g
            .metas(&self.dir, viewer, since.0, false, Some(&mut expunged))
            .map_err(|e| self.fail(e))?;
        Ok(Changes {
            highest_modseq: ModSeq(g.hdr.highest_modseq),
            changed,
            expunged,
            expunged_complete: since.0 >= g.hdr.expunge_horizon,
        })
    }

    pub(crate) fn fetch_meta(&self, viewer: Viewer<'_>, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        let g = self.read()?;
        g.metas_of(&self.dir, viewer, uids)
            .map_err(|e| self.fail(e))
    }

    pub(crate) fn summaries(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<MessageSummary>)>> {
        let g = self.read()?;
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            if let Some((_, r)) = g.find(uid.0).map_err(|e| self.fail(e))? {
                let payload = g
                    .cache_payload(&self.dir, &self.ctx, &r)
                    .map_err(|e| self.fail(e))?;
                let s = mailroom_core::mime::codec::decode(&payload).map_err(|why| {
                    self.fail(Error::Corruption(format!(
                        "{}: cache record of UID {}: {why}",
                        self.dir.display(),
                        r.uid
                    )))
                })?;
                out.push((*uid, Arc::new(s)));
            }
        }
        Ok(out)
    }

    pub(crate) fn content(&self, uid: Uid) -> Result<Bytes> {
        let g = self.read()?;
        let (_, r) = g
            .find(uid.0)
            .map_err(|e| self.fail(e))?
            .ok_or(Error::NoSuchMessage(uid))?;
        read_message(&self.dir, &self.ctx, &r).map_err(|e| self.fail(e))
    }

    // ------------------------------------------------------------------
    // Writes

    pub(crate) fn claim_recent(&self) -> Result<Uid> {
        let mut g = self.write()?;
        let from = g.hdr.recent_uid;
        let mut h = g.hdr;
        h.recent_uid = h.uid_next;
        h.recent = 0;
        g.write_header(&h, false)?;
        Ok(Uid(from))
    }

    /// APPEND (and LMTP delivery) with group commit. The message file is
    /// written and fsynced under `tmp/` before anything is locked, so
    /// concurrent appends overlap that work. Then the append joins the
    /// mailbox's queue: if no thread is committing it, this one becomes the
    /// leader and commits every queued append a batch at a time (each with
    /// its own UID and modseq; one fsync of `msg/`, the cache, the index and
    /// the header per batch); otherwise it just waits for its answer. Each
    /// caller is answered only after the batch holding its message is
    /// durable, or with the error that stopped it (nothing of a failed batch
    /// is visible).
    pub(crate) fn append(&self, p: Prepared) -> Result<mailroom_core::Appended> {
        self.append_charged(p, Charge::none())
    }

    /// [`Shared::append`] with a quota charge, settled by the commit that
    /// makes the message visible (in the same step that adds it to the
    /// owner's usage) or given back if it fails.
    pub(crate) fn append_charged(
        &self,
        mut p: Prepared,
        charge: Charge,
    ) -> Result<mailroom_core::Appended> {
        if let Source::Bytes(b) = &p.source {
            let tmp = tmp_path(&self.dir, "new");
            // not fsynced yet: see below
            let written = write_new_file(&tmp, b, false);
            match written {
                Ok(f) => p.source = Source::Written(tmp, self.ctx.durable.then_some(f)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(match e.kind() {
                        // the mailbox directory went away (deleted meanwhile)
                        ErrorKind::NotFound => self.gone(),
                        _ => e.into(),
                    });
                }
            }
        }
        let (reply, answer) = std::sync::mpsc::channel();
        let mut pending = Some(PendingAppend {
            prepared: p,
            charge,
            reply,
        });
        // Nobody committing: lead, and leave the message file's fsync to
        // the commit, which runs it at the same time as those of `msg/` and
        // the cache (one sync stage less for a lone delivery).
        let mut lead = {
            let mut q = self.append_queue();
            if q.leader {
                false
            } else {
                q.leader = true;
                q.pending.extend(pending.take());
                true
            }
        };
        if let Some(mut pa) = pending {
            // Another thread commits: make the file durable now, outside
            // every lock, so its batch never waits for this fsync.
            if let Source::Written(path, unsynced) = &mut pa.prepared.source
                && let Some(f) = unsynced.take()
                && let Err(e) = f.sync_data()
            {
                let _ = fs::remove_file(path);
                return Err(e.into());
            }
            let mut q = self.append_queue();
            q.pending.push(pa);
            lead = !std::mem::replace(&mut q.leader, true);
        }
        if lead {
            self.lead_group_commits();
        }
        // answered by the leader (us or another thread) once durable
        answer.recv().unwrap_or_else(|_| Err(unanswered()))
    }

    /// MULTIAPPEND (RFC 3502): the messages are written under `tmp/`
    /// first (fsynced by the commit, alongside `msg/` and the cache), then
    /// committed as one batch under one write lock (the
    /// commit the group commit uses, which makes all of a batch visible or
    /// none of it), with consecutive UIDs; `charge` (for all of them) is
    /// settled by that commit or given back. Not queued with single
    /// appends: its messages must not share a batch's fate with others.
    pub(crate) fn append_all(
        &self,
        mut ps: Vec<Prepared>,
        charge: Charge,
    ) -> Result<Vec<mailroom_core::Appended>> {
        let discard_all = |ps: Vec<Prepared>| ps.into_iter().for_each(Prepared::discard);
        for i in 0..ps.len() {
            let Source::Bytes(b) = &ps[i].source else {
                continue;
            };
            let tmp = tmp_path(&self.dir, "new");
            // fsynced by the commit, with `msg/` and the cache
            match write_new_file(&tmp, b, false) {
                Ok(f) => ps[i].source = Source::Written(tmp, self.ctx.durable.then_some(f)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    discard_all(ps);
                    return Err(match e.kind() {
                        ErrorKind::NotFound => self.gone(),
                        _ => e.into(),
                    });
                }
            }
        }
        let mut g = match self.write() {
            Ok(g) => g,
            Err(e) => {
                discard_all(ps);
                return Err(e);
            }
        };
        let files: Vec<PathBuf> = ps
            .iter()
            .filter_map(|p| match &p.source {
                Source::Written(path, _) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let n = ps.len();
        let mut charges = [charge];
        match self.commit_new(&mut g, ps, false, None, &mut charges) {
            Ok(done) if done.len() == n => {
                IoStats::bump(&self.ctx.stats.append_commits);
                self.ctx
                    .stats
                    .appended
                    .fetch_add(n as u64, Ordering::Relaxed);
                let uid_validity = UidValidity(g.hdr.uid_validity);
                Ok(done
                    .into_iter()
                    .map(|(uid, modseq)| mailroom_core::Appended {
                        uid_validity,
                        uid: Uid(uid),
                        modseq: ModSeq(modseq),
                    })
                    .collect())
            }
            Ok(_) => {
                g.broken = true;
                Err(Error::Backend(
                    "commit answered the wrong number of messages".into(),
                ))
            }
            Err(e) => {
                for f in &files {
                    let _ = fs::remove_file(f);
                }
                Err(e)
            }
        }
    }

    /// The leader's work: commits the queued appends a batch at a time
    /// (taking the mailbox's write lock per batch, so readers get their
    /// turn between batches) until the queue is empty, then steps down.
    /// Appends queued meanwhile ride along; none waits for the lock itself.
    fn lead_group_commits(&self) {
        loop {
            {
                // only the leader takes from the queue: non-empty here means
                // non-empty once the lock is held
                let mut q = self.append_queue();
                if q.pending.is_empty() {
                    q.leader = false;
                    return;
                }
            }
            let mut g = match self.write() {
                Ok(g) => g,
                Err(e) => {
                    // nothing can be committed now (deleted, corrupt): every
                    // queued append gets the error and leaves no file
                    let all = {
                        let mut q = self.append_queue();
                        q.leader = false;
                        std::mem::take(&mut q.pending)
                    };
                    for pa in all {
                        let err = error_for_another(&e);
                        pa.prepared.discard();
                        let _ = pa.reply.send(Err(err));
                    }
                    return;
                }
            };
            let batch: Vec<PendingAppend> = {
                let mut q = self.append_queue();
                let n = q.pending.len().min(MAX_GROUP_COMMIT);
                q.pending.drain(..n).collect()
            };
            self.commit_batch(&mut g, batch);
        }
    }

    /// Commits a batch of queued appends and answers each of them.
    fn commit_batch(&self, g: &mut WriteGuard<'_>, batch: Vec<PendingAppend>) {
        let mut replies = Vec::with_capacity(batch.len());
        let mut msgs = Vec::with_capacity(batch.len());
        let mut files = Vec::with_capacity(batch.len());
        let mut charges = Vec::with_capacity(batch.len());
        for pa in batch {
            if let Source::Written(path, _) = &pa.prepared.source {
                files.push(path.clone());
            }
            replies.push(pa.reply);
            msgs.push(pa.prepared);
            charges.push(pa.charge);
        }
        match self.commit_new(g, msgs, false, None, &mut charges) {
            Ok(done) if done.len() == replies.len() => {
                IoStats::bump(&self.ctx.stats.append_commits);
                self.ctx
                    .stats
                    .appended
                    .fetch_add(done.len() as u64, Ordering::Relaxed);
                let uid_validity = UidValidity(g.hdr.uid_validity);
                for (reply, (uid, modseq)) in replies.iter().zip(done) {
                    let _ = reply.send(Ok(mailroom_core::Appended {
                        uid_validity,
                        uid: Uid(uid),
                        modseq: ModSeq(modseq),
                    }));
                }
            }
            Ok(_) => {
                g.broken = true;
                for reply in &replies {
                    let _ = reply.send(Err(Error::Backend(
                        "group commit answered the wrong number of messages".into(),
                    )));
                }
            }
            Err(e) => {
                // nothing of the batch is visible; drop what was not renamed
                for f in &files {
                    let _ = fs::remove_file(f);
                }
                for reply in &replies {
                    let _ = reply.send(Err(error_for_another(&e)));
                }
            }
        }
    }

    /// How many appends wait for a group commit (for tests).
    #[cfg(test)]
    pub(crate) fn pending_count(&self) -> usize {
        self.append_queue().pending.len()
    }

    fn append_queue(&self) -> std::sync::MutexGuard<'_, AppendQueue> {
        self.appends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits prepared messages (APPEND: one each with its own modseq;
    /// COPY: all with one modseq). Returns (uid, modseq) per message.
    ///
    /// The owner's quota ledger (if one is kept) takes the change of the
    /// header's usage figures and settles `charges` in one step, while the
    /// write lock is still held.
    pub(crate) fn commit_new(
        &self,
        g: &mut WriteGuard<'_>,
        msgs: Vec<Prepared>,
        one_modseq: bool,
        viewer: Viewer<'_>,
        charges: &mut [Charge],
    ) -> Result<Vec<(u32, u64)>> {
        let before = usage_of(&g.hdr);
        let res = g.commit_new(&self.dir, &self.ctx, msgs, one_modseq, viewer);
        match res {
            Ok(v) => {
                self.usage_changed(before, usage_of(&g.hdr), charges);
                self.notify(g.hdr.highest_modseq);
                Ok(v)
            }
            Err(e) => {
                g.broken = true;
                self.ctx.ledgers.forget(&self.owner);
                Err(self.fail(e))
            }
        }
    }

    /// Tells the owner's quota ledger (if there is one) that a commit
    /// changed this mailbox's usage, settling `charges`.
    fn usage_changed(&self, before: Usage, after: Usage, charges: &mut [Charge]) {
        if let Some(l) = self.ctx.ledgers.existing(&self.owner) {
            l.committed(before, after, charges);
        }
    }

    pub(crate) fn store(
        &self,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let mut g = self.write()?;
        let r = g
            .store(&self.dir, &self.ctx, viewer, uids, op, unchanged_since)
            .map_err(|e| {
                g.broken = true;
                self.fail(e)
            })?;
        if !r.changed.is_empty() {
            self.notify(g.hdr.highest_modseq);
        }
        Ok(r)
    }

    /// Expunges (under an already held write lock).
    pub(crate) fn expunge_locked(
        &self,
        g: &mut WriteGuard<'_>,
        uids: Option<&[Uid]>,
        only_deleted: bool,
    ) -> Result<Vec<Uid>> {
        let before = usage_of(&g.hdr);
        let done = g
            .expunge(&self.dir, &self.ctx, uids, only_deleted)
            .map_err(|e| {
                g.broken = true;
                self.ctx.ledgers.forget(&self.owner);
                self.fail(e)
            })?;
        if !done.is_empty() {
            self.usage_changed(before, usage_of(&g.hdr), &mut []);
            self.notify(g.hdr.highest_modseq);
            let expunged = g.hdr.record_count - g.hdr.exists;
            if expunged >= AUTO_REPACK_EXPUNGED && expunged > g.hdr.exists {
                // the expunge is committed; a failed repack is only logged
                if let Err(e) = g.repack(&self.dir, &self.ctx) {
                    tracing::warn!(mailbox = %self.mref(), error = %e, "automatic repack failed");
                }
            }
        }
        Ok(done)
    }
}

/// The quota figures of a header.
fn usage_of(h: &Header) -> Usage {
    Usage::new(h.quota_bytes, u64::from(h.exists))
}

fn status_of(h: &Header) -> MailboxStatus {
    MailboxStatus {
        messages: h.exists,
        recent: h.recent,
        uid_next: Uid(h.uid_next),
        uid_validity: UidValidity(h.uid_validity),
        unseen: h.unseen,
        deleted: h.deleted,
        highest_modseq: ModSeq(h.highest_modseq),
        size: h.quota_bytes,
        mailbox_id: mailroom_core::MailboxId(h.mailbox_id),
    }
}

/// Reads as much of `buf` as the file has at `off`.
pub(crate) fn read_full_at(f: &File, buf: &mut [u8], off: u64) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Reads a message file whole and checks its size and SHA-1 against the record.
pub(crate) fn read_message(dir: &Path, ctx: &Ctx, r: &Record) -> Result<Bytes> {
    IoStats::bump(&ctx.stats.message_reads);
    let path = msg_path(dir, r.uid);
    let mut f = File::open(&path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::Corruption(format!("{}: message file missing", path.display()))
        } else {
            Error::Io(e)
        }
    })?;
    if r.size > MAX_MESSAGE_SIZE {
        return Err(Error::Corruption(format!(
            "{}: size out of range",
            path.display()
        )));
    }
    let mut buf = Vec::with_capacity(r.size as usize);
    (&mut f).take(r.size + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 != r.size || Sha1::digest(&buf).as_slice() != r.guid {
        return Err(Error::Corruption(format!(
            "{}: content does not match its GUID",
            path.display()
        )));
    }
    Ok(Bytes::from(buf))
}

/// Removes what earlier processes left in `tmp/` (files written for a
/// commit that a crash interrupted: never visible, see FORMAT.md). Files of
/// this process are kept: an append may be writing one right now. The data
/// directory lock guarantees no other live process writes here.
fn sweep_tmp(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir.join(TMP_DIR)) else {
        return;
    };
    let me = std::process::id().to_string();
    for e in rd.flatten() {
        let name = e.file_name();
        let pid = name.to_str().and_then(|n| n.rsplit('.').nth(1));
        if pid != Some(me.as_str()) {
            match fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(file = %e.path().display(), "removed a leftover of an interrupted commit")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "could not remove a leftover temporary file")
                }
            }
        }
    }
}

/// Removes message files a crash left in `msg/` past the committed UIDs
/// (`uid_next` on): a commit renames its files into `msg/` before they are
/// all durable (FORMAT.md, "Commit order"), so such a file may be short.
/// Nothing refers to it (the header was not written) and the next append of
/// that UID would replace it; removed here so that nothing (a reconstruct)
/// ever takes it for a message. A commit's UIDs are consecutive from
/// `uid_next`, so the files are looked for one by one until one is missing:
/// usually a single failed `unlink`.
fn sweep_uncommitted(dir: &Path, uid_next: u32) {
    let mut uid = uid_next;
    while uid < u32::MAX {
        let path = msg_path(dir, uid);
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "removed a message file of an interrupted commit")
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not remove a message file of an interrupted commit");
                return;
            }
        }
        uid += 1;
    }
}

/// Runs `work` while `dir` is fsynced on another thread (when `durable`).
fn sync_dir_alongside(dir: &Path, durable: bool, work: impl FnOnce() -> Result<()>) -> Result<()> {
    sync_alongside(dir, &[], durable, work)
}

/// Runs `work` while `dir` and `files` are fsynced on other threads (when
/// `durable`), and returns once all are done: the first error wins. If no
/// thread can be started, the syncs run first, then `work`.
fn sync_alongside(
    dir: &Path,
    files: &[&File],
    durable: bool,
    work: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if !durable {
        return work();
    }
    let sync_files = || -> std::io::Result<()> {
        for f in files {
            f.sync_data()?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let dir_sync = std::thread::Builder::new()
            .name("crc-dirsync".into())
            .spawn_scoped(scope, || sync_dir(dir, true));
        let file_sync = if files.is_empty() {
            None
        } else {
            Some(
                std::thread::Builder::new()
                    .name("crc-filesync".into())
                    .spawn_scoped(scope, sync_files),
            )
        };
        let joined = |h: std::thread::ScopedJoinHandle<'_, std::io::Result<()>>| -> Result<()> {
            h.join()
                .map_err(|_| Error::Backend("sync thread panicked".into()))?
                .map_err(Error::from)
        };
        // a thread that could not start: its sync runs here
        let dir_sync = match dir_sync {
            Ok(h) => Some(h),
            Err(_) => {
                sync_dir(dir, true)?;
                None
            }
        };
        let file_sync = match file_sync {
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => {
                sync_files()?;
                None
            }
            None => None,
        };
        let worked = work();
        let dir_synced = dir_sync.map_or(Ok(()), joined);
        let files_synced = file_sync.map_or(Ok(()), joined);
        dir_synced?;
        files_synced?;
        worked
    })
}

/// Writes a new file (it must not exist), fsynced when `durable`.
fn write_new_file(path: &Path, data: &[u8], durable: bool) -> std::io::Result<File> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    std::io::Write::write_all(&mut f, data)?;
    if durable {
        f.sync_data()?;
    }
    Ok(f)
}

fn unanswered() -> Error {
    Error::Backend("group commit ended without an answer".into())
}

/// The error a failed group commit gives the other appends of its batch
/// (`Error` is not `Clone`: an I/O error keeps its kind and text).
fn error_for_another(e: &Error) -> Error {
    match e {
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        Error::Corruption(s) => Error::Corruption(s.clone()),
        Error::Busy(s) => Error::Busy(s.clone()),
        Error::Backend(s) => Error::Backend(s.clone()),
        Error::NoSuchMailbox(s) => Error::NoSuchMailbox(s.clone()),
        Error::Cannot(s) => Error::Cannot(s),
        Error::OverQuota => Error::OverQuota,
        other => Error::Backend(other.to_string()),
    }
}

/// Why a load failed.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The index is of an older (known) version: upgrade it.
    OldVersion(u32),
    Other(Error),
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        match e {
            LoadError::OldVersion(v) => {
                Error::Corruption(format!("index still at version {v} after upgrade"))
            }
            LoadError::Other(e) => e,
        }
    }
}

impl From<Error> for LoadError {
    fn from(e: Error) -> LoadError {
        LoadError::Other(e)
    }
}
impl From<std::io::Error> for LoadError {
    fn from(e: std::io::Error) -> LoadError {
        LoadError::Other(e.into())
    }
}

impl Inner {
    /// Opens and maps an index; recounts if a change was interrupted.
    pub(crate) fn load(dir: &Path, ctx: &Ctx) -> std::result::Result<Inner, LoadError> {
        IoStats::bump(&ctx.stats.index_loads);
        let path = dir.join(INDEX_FILE);
        let what = path.display().to_string();
        let index = OpenOptions::new().read(true).write(true).open(&path)?;
        let mut buf = [0u8; HEADER_SIZE];
        let n = read_full_at(&index, &mut buf, 0)?;
        match VersionLayout::detect(&buf[..n]) {
            Some(CURRENT_VERSION) => {}
            Some(v) => return Err(LoadError::OldVersion(v)),
            None => {
                return Err(Error::Corruption(format!(
                    "{what}: header CRC mismatch, bad magic or unknown version"
                ))
                .into());
            }
        }
        let hdr = Header::decode(&buf[..n], &what)?;
        let stamp = FileStamp::of(&path)?;
        let len = index.metadata()?.len() as usize;
        let cap = len.saturating_sub(HEADER_SIZE) / RECORD_SIZE;
        if hdr.record_count as usize > cap {
            return Err(Error::Corruption(format!("{what}: index truncated")).into());
        }
        let map = Map::new(&index, HEADER_SIZE + cap * RECORD_SIZE)?;
        // the last commit's records and header were made durable by one
        // fsync: records that are not the ones the header was written with
        // (a crash during that fsync, or damage since) are a corruption,
        // which a reconstruct repairs from the message files (durable
        // before the records were written)
        if let Some(t) = Tail::of(&buf[..n]) {
            let (start, end) = (t.start as usize, hdr.record_count as usize);
            let bytes = map
                .bytes()
                .get(HEADER_SIZE + start * RECORD_SIZE..HEADER_SIZE + end * RECORD_SIZE);
            if !bytes.is_some_and(|b| t.holds(&hdr, b)) {
                return Err(Error::Corruption(format!(
                    "{what}: the records of the last commit are not those its header was written with"
                ))
                .into());
            }
        }
        let keywords = if hdr.keyword_count > 0 {
            let kpath = dir.join(KEYWORDS_FILE);
            let data = fs::read(&kpath)?;
            let kw = decode_keywords(&data)
                .map_err(|why| Error::Corruption(format!("{}: {why}", kpath.display())))?;
            if kw.len() < hdr.keyword_count as usize {
                return Err(
                    Error::Corruption(format!("{}: keywords missing", kpath.display())).into(),
                );
            }
            kw
        } else {
            Vec::new()
        };
        drop(index);
        let mut inner = Inner {
            path,
            index: OnceLock::new(),
            map,
            hdr_bytes: buf,
            stamp: Some(stamp),
            view: OnceLock::new(),
            view_build: Mutex::new(()),
            cap,
            hdr,
            keywords,
            cache: OnceLock::new(),
            seen: Mutex::new(HashMap::new()),
            broken: false,
            recounted: false,
        };
        if inner.hdr.mailbox_id == [0u8; 16] {
            // An index from before MAILBOXID was kept (FORMAT.md, "Index
            // header"): it gets one now, kept from here on.
            let mut h = inner.hdr;
            h.mailbox_id = mailroom_core::MailboxId::generate(what.as_bytes()).0;
            tracing::info!(index = %what, "MAILBOXID assigned");
            inner.write_header(&h, ctx.durable)?;
        }
        if inner.hdr.is_dirty() || !inner.hdr.has_replication_crc() {
            inner.recounted = true;
            let counts = inner.recount()?;
            let mut h = inner.hdr;
            if h.is_dirty() {
                tracing::warn!(index = %what, "interrupted change found; header counts recomputed");
            } else {
                tracing::info!(index = %what, "state CRC upgraded to the replication state CRC");
            }
            h.set_counts(&counts);
            h.flags &= !HDR_FLAG_DIRTY;
            h.flags |= crate::layout::HDR_FLAG_REPLICATION_CRC;
            inner.write_header(&h, ctx.durable)?;
        }
        Ok(inner)
    }

    /// The committed records.
    fn records(&self) -> &[u8] {
        let n = self.hdr.record_count as usize;
        &self.map.bytes()[HEADER_SIZE..HEADER_SIZE + n * RECORD_SIZE]
    }

    /// Calls `f` for every committed record, checking each CRC.
    pub(crate) fn scan(&self, mut f: impl FnMut(usize, &Record) -> Result<()>) -> Result<()> {
        for (i, b) in self.records().chunks_exact(RECORD_SIZE).enumerate() {
            if !Record::crc_ok(b) {
                return Err(Error::Corruption(format!("index record {i} CRC mismatch")));
            }
            f(i, &Record::decode_unchecked(b))?;
        }
        Ok(())
    }

    /// Recomputes the derived header figures from the records.
    pub(crate) fn recount(&self) -> Result<Counts> {
        let mut c = Counts::default();
        let recent_uid = self.hdr.recent_uid;
        let mut last = 0u32;
        self.scan(|i, r| {
            if r.uid <= last || r.uid >= self.hdr.uid_next {
                return Err(Error::Corruption(format!(
                    "index record {i}: UID out of order"
                )));
            }
            last = r.uid;
            c.add(r, recent_uid, &self.keywords);
            Ok(())
        })?;
        Ok(c)
    }

    /// Whether the index file is still exactly as we last wrote or
    /// verified it: the header in the map equals our copy (so a changed
    /// header, including its CRC, is noticed), and the file's device, inode,
    /// length and mtime are unchanged (so a record changed in place or the
    /// file replaced is noticed too, down to the file system's timestamp
    /// granularity). One `stat` and a 128-byte compare: cheap enough to run
    /// before every operation. Only our own writes change the file (the data
    /// directory is locked against other processes), so a mismatch means
    /// someone else touched it: the caller reloads, re-verifying it all.
    pub(crate) fn unchanged_on_disk(&self) -> bool {
        let b = self.map.bytes();
        if b.len() < HEADER_SIZE || b[..HEADER_SIZE] != self.hdr_bytes {
            return false;
        }
        match (FileStamp::of(&self.path), self.stamp) {
            (Ok(now), Some(then)) => now == then,
            _ => false,
        }
    }

    /// Records the file's identity after one of our own writes.
    fn restamp(&mut self) {
        self.stamp = FileStamp::of(&self.path).ok();
    }

    /// The verified records (see `view`), built on first use: every record's
    /// CRC is checked, and UIDs must ascend below UIDNEXT (binary searches
    /// rely on it).
    pub(crate) fn view(&self) -> Result<&[Record]> {
        if let Some(v) = self.view.get() {
            return Ok(v);
        }
        let _building = self.view_build.lock().map_err(|_| poisoned())?;
        if let Some(v) = self.view.get() {
            return Ok(v);
        }
        let mut v = Vec::with_capacity(self.hdr.record_count as usize);
        let mut last = 0u32;
        for (i, b) in self.records().chunks_exact(RECORD_SIZE).enumerate() {
            if !Record::crc_ok(b) {
                return Err(Error::Corruption(format!(
                    "{}: index record {i} CRC mismatch",
                    self.path.display()
                )));
            }
            let r = Record::decode_unchecked(b);
            if r.uid <= last || r.uid >= self.hdr.uid_next {
                return Err(Error::Corruption(format!(
                    "{}: index record {i}: UID out of order",
                    self.path.display()
                )));
            }
            last = r.uid;
            v.push(r);
        }
        Ok(self.view.get_or_init(|| v))
    }

    /// Finds a live record by UID (binary search in the verified view).
    pub(crate) fn find(&self, uid: u32) -> Result<Option<(usize, Record)>> {
        let v = self.view()?;
        Ok(match v.binary_search_by_key(&uid, |r| r.uid) {
            Ok(i) if !v[i].is_expunged() => Some((i, v[i])),
            _ => None,
        })
    }

    /// The keywords of a record's bits.
    fn keywords_of(&self, bits: u128) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut b = bits;
        while b != 0 {
            let i = b.trailing_zeros() as usize;
            b &= b - 1;
            match self.keywords.get(i) {
                Some(k) => out.push(k.clone()),
                None => {
                    return Err(Error::Corruption(format!(
                        "record uses keyword {i} beyond the keyword table"
                    )));
                }
            }
        }
        Ok(out)
    }

    fn meta(&self, r: &Record, viewer_seen: Option<bool>) -> Result<MessageMeta> {
        self.meta_with(r, viewer_seen, &mut FlagsMemo::default())
    }

    /// A record's metadata as a viewer sees it; `memo` keeps the flag sets
    /// with keywords already built, so the keyword table is decoded once per
    /// distinct set rather than once per record.
    fn meta_with(
        &self,
        r: &Record,
        viewer_seen: Option<bool>,
        memo: &mut FlagsMemo,
    ) -> Result<MessageMeta> {
        let mut bits = r.system_flags & 0x1f;
        if let Some(s) = viewer_seen {
            bits = (bits & !Flags::SEEN) | if s { Flags::SEEN } else { 0 };
        }
        let flags = if r.user_flags == 0 {
            Flags::from_parts(bits, std::iter::empty())
        } else {
            memo.get(bits, r.user_flags, |k| self.keywords_of(k))?
        };
        Ok(MessageMeta {
            uid: Uid(r.uid),
            flags,
            modseq: ModSeq(r.modseq),
            internal_date: InternalDate {
                timestamp: r.internal_date,
                offset_minutes: r.date_offset,
            },
            size: r.size,
            guid: r.guid(),
            save_date: (r.save_date != 0).then_some(r.save_date),
        })
    }

    /// Metadata of live records with modseq > `since` (all with `all`),
    /// and the expunged records with modseq > `since` if `expunged` is
    /// given. The hot path of SELECT: one pass over the verified view, no
    /// allocation per record beyond the result (and keyword sets where set).
    fn metas(
        &self,
        dir: &Path,
        viewer: Viewer<'_>,
        since: u64,
        all: bool,
        mut expunged: Option<&mut Vec<(Uid, ModSeq)>>,
    ) -> Result<Vec<MessageMeta>> {
        let seen = match viewer {
            Some(v) => Some(self.seen_set(dir, v)?),
            None => None,
        };
        let view = self.view()?;
        let mut out = Vec::with_capacity(if all { self.hdr.exists as usize } else { 0 });
        let mut memo = FlagsMemo::default();
        let mut si = 0usize;
        for r in view {
            if r.is_expunged() {
                if let Some(x) = expunged.as_deref_mut()
                    && r.modseq > since
                {
                    x.push((Uid(r.uid), ModSeq(r.modseq)));
                }
                continue;
            }
            if r.modseq <= since && !all {
                continue;
            }
            let vs = seen.as_ref().map(|s| {
                while si < s.len() && s[si] < r.uid {
                    si += 1;
                }
                si < s.len() && s[si] == r.uid
            });
            out.push(self.meta_with(r, vs, &mut memo)?);
        }
        Ok(out)
    }

    /// Metadata of the live messages among `uids` (in the order asked,
    /// missing or expunged UIDs left out). Ascending runs are a merge
    /// against the sorted view (an exponential search from the last hit,
    /// so 1:* costs O(n) and a sparse set O(k log n)).
    fn metas_of(&self, dir: &Path, viewer: Viewer<'_>, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        let seen = match viewer {
            Some(v) => Some(self.seen_set(dir, v)?),
            None => None,
        };
        let view = self.view()?;
        let mut out = Vec::with_capacity(uids.len().min(view.len()));
        let mut memo = FlagsMemo::default();
        let mut at = 0usize;
        let mut last = 0u32;
        for uid in uids {
            let uid = uid.0;
            if uid < last {
                at = 0;
            }
            last = uid;
            at = seek(view, at, uid);
            let Some(r) = view.get(at).filter(|r| r.uid == uid) else {
                continue;
            };
            if r.is_expunged() {
                continue;
            }
            let vs = seen.as_ref().map(|s| s.binary_search(&uid).is_ok());
            out.push(self.meta_with(r, vs, &mut memo)?);
        }
        Ok(out)
    }

    /// The cache file, opened on first use.
    fn cache_file(&self, dir: &Path, ctx: &Ctx) -> Result<&File> {
        if let Some(f) = self.cache.get() {
            return Ok(f);
        }
        IoStats::bump(&ctx.stats.cache_opens);
        let path = dir.join(CACHE_FILE);
        let f = OpenOptions::new().read(true).write(true).open(&path)?;
        let mut head = [0u8; CACHE_HEADER_SIZE];
        let n = read_full_at(&f, &mut head, 0)?;
        if n < CACHE_HEADER_SIZE || head != cache_file_header() {
            return Err(Error::Corruption(format!(
                "{}: bad cache header",
                path.display()
            )));
        }
        Ok(self.cache.get_or_init(|| f))
    }

    /// The verified payload of a record's cache entry.
    pub(crate) fn cache_payload(&self, dir: &Path, ctx: &Ctx, r: &Record) -> Result<Vec<u8>> {
        let f = self.cache_file(dir, ctx)?;
        IoStats::bump(&ctx.stats.cache_reads);
        let bad = |why: &str| {
            Error::Corruption(format!(
                "{}: cache record of UID {}: {why}",
                dir.join(CACHE_FILE).display(),
                r.uid
            ))
        };
        let len = r.cache_len as usize;
        if !(CACHE_FRAME_SIZE..=MAX_CACHE_RECORD).contains(&len)
            || r.cache_offset < CACHE_HEADER_SIZE as u64
            || r.cache_offset + len as u64 > self.hdr.cache_end
        {
            return Err(bad("offset or length out of range"));
        }
        let mut buf = vec![0u8; len];
        if read_full_at(f, &mut buf, r.cache_offset)? != len {
            return Err(bad("truncated"));
        }
        let plen = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let pcrc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let payload = buf.split_off(CACHE_FRAME_SIZE);
        if plen != payload.len() || pcrc != r.cache_crc || crc32fast::hash(&payload) != pcrc {
            return Err(bad("CRC mismatch"));
        }
        Ok(payload)
    }

    /// The seen set of a viewer (loaded once, then kept).
    fn seen_set(&self, dir: &Path, viewer: &str) -> Result<Arc<Vec<u32>>> {
        let mut map = self.seen.lock().map_err(|_| poisoned())?;
        if let Some(s) = map.get(viewer) {
            return Ok(s.clone());
        }
        let path = seen_path(dir, viewer);
        let set = match fs::read(&path) {
            Ok(data) => decode_seen(&data)
                .map_err(|why| Error::Corruption(format!("{}: {why}", path.display())))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let set = Arc::new(set);
        map.insert(viewer.to_owned(), set.clone());
        Ok(set)
    }

    fn set_seen(&self, dir: &Path, viewer: &str, set: Vec<u32>, durable: bool) -> Result<()> {
        write_atomic(&seen_path(dir, viewer), &encode_seen(&set), durable)?;
        self.seen
            .lock()
            .map_err(|_| poisoned())?
            .insert(viewer.to_owned(), Arc::new(set));
        Ok(())
    }

    /// Writes the header (and syncs if `durable`), then takes it as current.
    fn write_header(&mut self, h: &Header, durable: bool) -> Result<()> {
        self.write_header_with(h, None, durable)
    }

    /// [`Inner::write_header`], the header saying that the records of
    /// `tail` are made durable by the same fsync (FORMAT.md, "Commit
    /// order").
    fn write_header_with(&mut self, h: &Header, tail: Option<Tail>, durable: bool) -> Result<()> {
        let b = h.encode_with(tail);
        let index = self.index_file()?;
        index.write_all_at(&b, 0)?;
        if durable {
            index.sync_data()?;
        }
        self.hdr = *h;
        self.hdr_bytes = b;
        // every change to the index ends with a header write: what the file
        // looks like now is our own doing
        self.restamp();
        // and the descriptor goes with it (reopened by the next change), so
        // a mailbox that sessions only read between changes holds none
        self.index = OnceLock::new();
        Ok(())
    }

    /// Makes room for `n` records in the file and the map.
    fn ensure_capacity(&mut self, n: usize) -> Result<()> {
        if n <= self.cap {
            return Ok(());
        }
        let cap = n.max(self.cap * 2).max(64);
        let index = self.index_file()?;
        index.set_len((HEADER_SIZE + cap * RECORD_SIZE) as u64)?;
        self.map = Map::new(index, HEADER_SIZE + cap * RECORD_SIZE)?;
        self.cap = cap;
        Ok(())
    }

    fn write_record(&self, i: usize, r: &Record) -> Result<()> {
        self.index_file()?
            .write_all_at(&r.encode(), (HEADER_SIZE + i * RECORD_SIZE) as u64)?;
        Ok(())
    }

    /// The index file for writing, opened on first use. (A file renamed
    /// over it since the load is caught by the freshness check every lock
    /// holder makes first, which reloads.)
    fn index_file(&self) -> Result<&File> {
        if let Some(f) = self.index.get() {
            return Ok(f);
        }
        let f = OpenOptions::new().read(true).write(true).open(&self.path)?;
        let _ = self.index.set(f);
        self.index
            .get()
            .ok_or_else(|| Error::Backend("index file handle lost".into()))
    }

    /// Bits for keywords, adding new ones to the table (not yet written).
    fn keyword_bits<'a>(
        &mut self,
        keywords: impl Iterator<Item = &'a str>,
        added: &mut bool,
    ) -> Result<u128> {
        let mut bits = 0u128;
        for k in keywords {
            let i = match self.keywords.iter().position(|x| x.eq_ignore_ascii_case(k)) {
                Some(i) => i,
                None => {
                    if self.keywords.len() >= MAX_KEYWORDS {
                        return Err(Error::Cannot("too many distinct keywords in this mailbox"));
                    }
                    self.keywords.push(k.to_owned());
                    *added = true;
                    self.keywords.len() - 1
                }
            };
            bits |= 1u128 << i;
        }
        Ok(bits)
    }

    fn save_keywords(&self, dir: &Path, durable: bool) -> Result<()> {
        write_atomic(
            &dir.join(KEYWORDS_FILE),
            &encode_keywords(&self.keywords),
            durable,
        )?;
        Ok(())
    }

    /// Runs `f`; if it fails, reloads nothing but restores the keyword table
    /// to its committed length so a failed change leaves no trace in memory.
    fn restore_keywords_on_err<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let committed = self.hdr.keyword_count as usize;
        let r = f(self);
        if r.is_err() {
            self.keywords.truncate(committed);
        }
        r
    }

    fn commit_new(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        msgs: Vec<Prepared>,
        one_modseq: bool,
        viewer: Viewer<'_>,
    ) -> Result<Vec<(u32, u64)>> {
        self.restore_keywords_on_err(|this| {
            this.commit_new_inner(dir, ctx, msgs, one_modseq, viewer)
        })
    }

    fn commit_new_inner(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        msgs: Vec<Prepared>,
        one_modseq: bool,
        viewer: Viewer<'_>,
    ) -> Result<Vec<(u32, u64)>> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let durable = ctx.durable;
        let n = msgs.len();
        let first = self.hdr.uid_next;
        if u64::from(first) + n as u64 >= u64::from(u32::MAX) {
            return Err(Error::Cannot("mailbox has run out of UIDs"));
        }
        // keywords first (the table only grows)
        let mut added = false;
        let mut kbits = Vec::with_capacity(n);
        for m in &msgs {
            kbits.push(self.keyword_bits(m.keywords.iter().map(String::as_str), &mut added)?);
        }
        // 1. message files: tmp, fsync, rename, fsync dir
        for (i, m) in msgs.iter().enumerate() {
            let uid = first + i as u32;
            let written = match &m.source {
                Source::Written(path, _) => path.clone(),
                Source::Bytes(b) => {
                    let tmp = tmp_path(dir, &uid.to_string());
                    write_new_file(&tmp, b, durable)?;
                    tmp
                }
                Source::Link(src) => {
                    let tmp = tmp_path(dir, &uid.to_string());
                    if fs::hard_link(src, &tmp).is_err() {
                        write_new_file(&tmp, &fs::read(src)?, durable)?;
                    }
                    tmp
                }
            };
            fs::rename(&written, msg_path(dir, uid))?;
        }
        // 2. cache records (made durable together with `msg/`, below)
        let mut frames = Vec::new();
        let mut cache_pos = Vec::with_capacity(n);
        let base = self.hdr.cache_end;
        for m in &msgs {
            let crc = crc32fast::hash(&m.summary);
            let off = base + frames.len() as u64;
            frames.extend_from_slice(&(m.summary.len() as u32).to_le_bytes());
            frames.extend_from_slice(&crc.to_le_bytes());
            frames.extend_from_slice(&m.summary);
            cache_pos.push((off, (CACHE_FRAME_SIZE + m.summary.len()) as u32, crc));
        }
        {
            let cache = self.cache_file(dir, ctx)?;
            let write_cache = || -> Result<()> {
                cache.write_all_at(&frames, base)?;
                if durable {
                    cache.sync_data()?;
                }
                Ok(())
            };
            // The new names in `msg/`, the message files not yet durable
            // (a lone delivery's) and the cache records do not depend on
            // each other (all only have to be durable before the index
            // records are written): sync them at once, so one journal
            // commit of the file system serves them all.
            let unsynced: Vec<&File> = msgs
                .iter()
                .filter_map(|m| match &m.source {
                    Source::Written(_, f) => f.as_ref(),
                    _ => None,
                })
                .collect();
            sync_alongside(&dir.join(MSG_DIR), &unsynced, durable, write_cache)?;
        }
        if added {
            self.save_keywords(dir, durable)?;
        }
        // 3. index records
        let mut h = self.hdr;
        let start = h.record_count as usize;
        self.ensure_capacity(start + n)?;
        let mut out = Vec::with_capacity(n);
        let mut recs = Vec::with_capacity(n);
        let mut buf = Vec::with_capacity(n * RECORD_SIZE);
        let mut new_seen: Vec<u32> = Vec::new();
        let mut modseq = h.highest_modseq;
        // SAVEDATE (RFC 8514): every message saved by this commit.
        let now = InternalDate::now().timestamp;
        for (i, m) in msgs.iter().enumerate() {
            if i == 0 || !one_modseq {
                modseq += 1;
            }
            let uid = first + i as u32;
            let (off, len, crc) = cache_pos[i];
            let r = Record {
                uid,
                rflags: if m.sent.is_some() {
                    REC_FLAG_HAS_SENT_DATE
                } else {
                    0
                },
                system_flags: m.system_flags & 0x1f,
                date_offset: m.internal_date.offset_minutes,
                internal_date: m.internal_date.timestamp,
                sent_date: m.sent.map_or(0, |s| s.0),
                sent_offset: m.sent.map_or(0, |s| s.1),
                header_size: m.header_size,
                size: m.size,
                modseq,
                user_flags: kbits[i],
                guid: m.guid,
                cache_len: len,
                cache_offset: off,
                cache_crc: crc,
                save_date: now,
            };
            buf.extend_from_slice(&r.encode());
            recs.push(r);
            let mut c = Counts::default();
            c.add(&r, h.recent_uid, &self.keywords);
            add_counts(&mut h, &c);
            if m.viewer_seen {
                new_seen.push(uid);
            }
            out.push((uid, modseq));
        }
        // written now, made durable by the header's fsync below (the tail
        // in the header tells a load whether they all reached the disk)
        let index = self.index_file()?;
        index.write_all_at(&buf, (HEADER_SIZE + start * RECORD_SIZE) as u64)?;
        let tail = Tail {
            start: start as u32,
            crc: Tail::crc_of(&buf),
        };
        // 4. per-user seen of a non-owner copier
        if let (Some(v), false) = (viewer, new_seen.is_empty()) {
            let mut set = (*self.seen_set(dir, v)?).clone();
            set.extend(new_seen);
            set.sort_unstable();
            set.dedup();
            self.set_seen(dir, v, set, durable)?;
        }
        // 5. header last
        h.record_count += n as u32;
        h.uid_next = first + n as u32;
        h.highest_modseq = modseq;
        h.cache_end = base + frames.len() as u64;
        h.keyword_count = self.keywords.len() as u32;
        self.write_header_with(&h, Some(tail), durable)?;
        if let Some(v) = self.view.get_mut() {
            v.extend(recs);
        }
        Ok(out)
    }

    fn store(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        self.restore_keywords_on_err(|this| {
            this.store_inner(dir, ctx, viewer, uids, op, unchanged_since)
        })
    }

    fn store_inner(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let durable = ctx.durable;
        let mut result = StoreResult::default();
        let seen = match viewer {
            Some(v) => Some(self.seen_set(dir, v)?),
            None => None,
        };
        let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        // (index, old record, new record, viewer seen)
        let mut updates: Vec<(usize, Record, Record, Option<bool>)> = Vec::new();
        let mut added = false;
        for uid in sorted {
            let Some((i, r)) = self.find(uid)? else {
                continue;
            };
            if unchanged_since.is_some_and(|u| r.modseq > u.0) {
                result.modified.push(Uid(uid));
                continue;
            }
            let vs = seen.as_ref().map(|s| s.binary_search(&uid).is_ok());
            let mut view = self.meta(&r, vs)?.flags;
            if !view.apply(op) {
                continue;
            }
            let mut bits = view.system_bits();
            let new_vs = vs.map(|_| bits & Flags::SEEN != 0);
            if viewer.is_some() {
                // only the viewer's own \Seen changes; the owner's stays
                bits = (bits & !Flags::SEEN) | (r.system_flags & Flags::SEEN);
            }
            let kbits = self.keyword_bits(view.keywords(), &mut added)?;
            let mut n = r;
            n.system_flags = bits;
            n.user_flags = kbits;
            updates.push((i, r, n, new_vs));
        }
        if updates.is_empty() {
            return Ok(result);
        }
        let modseq = self.hdr.highest_modseq + 1;
        if added {
            self.save_keywords(dir, durable)?;
        }
        // mark the header dirty, write the records, then the clean header
        let mut h = self.hdr;
        h.flags |= HDR_FLAG_DIRTY;
        h.keyword_count = self.keywords.len() as u32;
        self.write_header(&h, durable)?;
        for (i, old, new, _) in &mut updates {
            new.modseq = modseq;
            self.write_record(*i, new)?;
            let mut c = Counts::default();
            c.add(old, h.recent_uid, &self.keywords);
            sub_counts(&mut h, &c);
            let mut c = Counts::default();
            c.add(new, h.recent_uid, &self.keywords);
            add_counts(&mut h, &c);
        }
        if durable {
            self.index_file()?.sync_data()?;
        }
        if let (Some(v), Some(s)) = (viewer, seen.as_ref()) {
            let mut set = (**s).clone();
            let mut changed = false;
            for (_, old, _, vs) in &updates {
                let was = s.binary_search(&old.uid).is_ok();
                if let Some(now) = vs
                    && *now != was
                {
                    changed = true;
                    if *now {
                        set.push(old.uid);
                    } else {
                        set.retain(|u| *u != old.uid);
                    }
                }
            }
            if changed {
                set.sort_unstable();
                set.dedup();
                self.set_seen(dir, v, set, durable)?;
            }
        }
        h.highest_modseq = modseq;
        h.flags &= !HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        if let Some(v) = self.view.get_mut() {
            for (i, _, new, _) in &updates {
                if let Some(slot) = v.get_mut(*i) {
                    *slot = *new;
                }
            }
        }
        for (_, _, new, vs) in &updates {
            result.changed.push(self.meta(new, *vs)?);
        }
        Ok(result)
    }

    /// Marks records expunged. With `only_deleted`, only those with
    /// \Deleted; the UIDs done are returned ascending.
    pub(crate) fn expunge(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        uids: Option<&[Uid]>,
        only_deleted: bool,
    ) -> Result<Vec<Uid>> {
        let durable = ctx.durable;
        let mut doomed: Vec<(usize, Record)> = Vec::new();
        match uids {
            Some(list) => {
                let mut sorted: Vec<u32> = list.iter().map(|u| u.0).collect();
                sorted.sort_unstable();
                sorted.dedup();
                for uid in sorted {
                    if let Some((i, r)) = self.find(uid)?
                        && (!only_deleted || r.system_flags & Flags::DELETED != 0)
                    {
                        doomed.push((i, r));
                    }
                }
            }
            None => {
                for (i, r) in self.view()?.iter().enumerate() {
                    if !r.is_expunged() && (!only_deleted || r.system_flags & Flags::DELETED != 0) {
                        doomed.push((i, *r));
                    }
                }
            }
        }
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        let modseq = self.hdr.highest_modseq + 1;
        let mut h = self.hdr;
        h.flags |= HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        for (i, r) in &doomed {
            let mut c = Counts::default();
            c.add(r, h.recent_uid, &self.keywords);
            sub_counts(&mut h, &c);
            let mut n = *r;
            n.rflags |= REC_FLAG_EXPUNGED;
            n.modseq = modseq;
            self.write_record(*i, &n)?;
        }
        if durable {
            self.index_file()?.sync_data()?;
        }
        h.highest_modseq = modseq;
        h.flags &= !HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        if let Some(v) = self.view.get_mut() {
            for (i, _) in &doomed {
                if let Some(slot) = v.get_mut(*i) {
                    slot.rflags |= REC_FLAG_EXPUNGED;
                    slot.modseq = modseq;
                }
            }
        }
        // the index no longer points at them: remove the files
        for (_, r) in &doomed {
            match fs::remove_file(msg_path(dir, r.uid)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(uid = r.uid, error = %e, "could not remove expunged message file")
                }
            }
        }
        Ok(doomed.into_iter().map(|(_, r)| Uid(r.uid)).collect())
    }

    /// Rewrites the index without expunged records; checks the new file,
    /// then renames it into place.
    pub(crate) fn repack(&mut self, dir: &Path, ctx: &Ctx) -> Result<()> {
        let durable = ctx.durable;
        let mut live: Vec<Record> = Vec::with_capacity(self.hdr.exists as usize);
        let mut horizon = self.hdr.expunge_horizon;
        let mut dropped: Vec<u32> = Vec::new();
        for r in self.view()? {
            if r.is_expunged() {
                horizon = horizon.max(r.modseq);
                dropped.push(r.uid);
            } else {
                live.push(*r);
            }
        }
        // make sure no dropped record's file can come back in a reconstruct
        for uid in &dropped {
            match fs::remove_file(msg_path(dir, *uid)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        sync_dir(&dir.join(MSG_DIR), durable)?;
        // the cache stays as it is (its dead entries go at the next
        // reconstruct): only the index is replaced, by one atomic rename
        let mut h = self.hdr;
        h.record_count = live.len() as u32;
        h.expunge_horizon = horizon;
        let mut index = h.encode().to_vec();
        for r in &live {
            index.extend_from_slice(&r.encode());
        }
        // check what we are about to install
        Header::decode(&index, "repacked index")?;
        for (i, b) in index[HEADER_SIZE..].chunks_exact(RECORD_SIZE).enumerate() {
            Record::decode(b, "repacked index", i)?;
        }
        write_atomic(&dir.join(INDEX_FILE), &index, durable)?;
        let fresh = Inner::load(dir, ctx).map_err(Error::from)?;
        // the records just written were checked above: they are the view
        let _ = fresh.view.set(live);
        tracing::info!(mailbox = %dir.display(), dropped = dropped.len(), "repacked");
        *self = fresh;
        Ok(())
    }

    /// Every committed record, checked (for copy, verify, reconstruct).
    pub(crate) fn all_records(&self) -> Result<Vec<Record>> {
        let mut v = Vec::with_capacity(self.hdr.record_count as usize);
        self.scan(|_, r| {
            v.push(*r);
            Ok(())
        })?;
        Ok(v)
    }

    /// The keyword names of a record.
    pub(crate) fn record_keywords(&self, r: &Record) -> Result<Vec<String>> {
        self.keywords_of(r.user_flags)
    }

    /// A viewer's seen set.
    pub(crate) fn viewer_seen(&self, dir: &Path, viewer: &str) -> Result<Arc<Vec<u32>>> {
        self.seen_set(dir, viewer)
    }
}

fn add_counts(h: &mut Header, c: &Counts) {
    h.exists += c.exists;
    h.unseen += c.unseen;
    h.deleted += c.deleted;
    h.recent += c.recent;
    h.quota_bytes += c.quota_bytes;
    h.state_crc ^= c.state_crc;
}

fn sub_counts(h: &mut Header, c: &Counts) {
    h.exists = h.exists.saturating_sub(c.exists);
    h.unseen = h.unseen.saturating_sub(c.unseen);
    h.deleted = h.deleted.saturating_sub(c.deleted);
    h.recent = h.recent.saturating_sub(c.recent);
    h.quota_bytes = h.quota_bytes.saturating_sub(c.quota_bytes);
    h.state_crc ^= c.state_crc;
}

/// The seen file of a viewer.
pub(crate) fn seen_path(dir: &Path, viewer: &str) -> PathBuf {
    dir.join(SEEN_DIR).join(escape_component(viewer))
}

/// Whether a flag set names \Seen (helper for copy).
pub(crate) fn has_seen(bits: u8) -> bool {
    bits & Flags::SEEN != 0
}

/// The first index at or after `from` whose record has a UID >= `uid`
/// (`v` ascending by UID): an exponential search from `from`, then a binary
/// search in the bracket found.
fn seek(v: &[Record], from: usize, uid: u32) -> usize {
    let (mut lo, mut hi, mut step) = (from, from, 1usize);
    // invariant: every record before `lo` has a UID < `uid`
    while hi < v.len() && v[hi].uid < uid {
        lo = hi + 1;
        hi = from.saturating_add(step);
        step = step.saturating_mul(2);
    }
    let hi = hi.min(v.len());
    lo + v[lo..hi].partition_point(|r| r.uid < uid)
}

/// Flag sets with keywords built so far in one pass (bounded: past
/// `FlagsMemo::MAX` distinct sets, the rest are built each time).
#[derive(Debug, Default)]
struct FlagsMemo {
    sets: HashMap<(u8, u128), Flags>,
}

impl FlagsMemo {
    const MAX: usize = 256;

    fn get(
        &mut self,
        bits: u8,
        keywords: u128,
        names: impl FnOnce(u128) -> Result<Vec<String>>,
    ) -> Result<Flags> {
        if let Some(f) = self.sets.get(&(bits, keywords)) {
            return Ok(f.clone());
        }
        let f = Flags::from_parts(bits, names(keywords)?);
        if self.sets.len() < Self::MAX {
            self.sets.insert((bits, keywords), f.clone());
        }
        Ok(f)
    }
}
