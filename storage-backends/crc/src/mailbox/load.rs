//! Loading a mailbox: opening and checking its index, the freshness
//! check against the file on disk, and the sweeps of what an interrupted
//! commit left behind.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

use mailroom_core::{Error, Result};

use crate::ctx::{Ctx, IoStats};
use crate::index::{Counts, Header, Record, Tail};
use crate::layout::{CURRENT_VERSION, HDR_FLAG_DIRTY, HEADER_SIZE, RECORD_SIZE, VersionLayout};
use crate::map::Map;

use super::{
    INDEX_FILE, Inner, KEYWORDS_FILE, Shared, Slot, TMP_DIR, decode_keywords, msg_path,
    read_full_at,
};

/// What identifies the index file's contents on disk: a change of any of
/// these that we did not make ourselves means the file changed behind us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    pub(super) fn of(path: &Path) -> std::io::Result<FileStamp> {
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

/// Removes what earlier processes left in `tmp/` (files written for a
/// commit that a crash interrupted: never visible, see FORMAT.md). Files of
/// this process are kept: an append may be writing one right now. The data
/// directory lock guarantees no other live process writes here.
pub(super) fn sweep_tmp(dir: &Path) {
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
pub(super) fn sweep_uncommitted(dir: &Path, uid_next: u32) {
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

impl Shared {
    /// Loads the mailbox if needed (upgrading an older format first).
    pub(super) fn load_into(&self, slot: &mut Slot) -> Result<()> {
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
            sort_keys: Mutex::default(),
            viewers: Mutex::new(None),
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
    pub(super) fn records(&self) -> &[u8] {
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
    pub(super) fn restamp(&mut self) {
        self.stamp = FileStamp::of(&self.path).ok();
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
