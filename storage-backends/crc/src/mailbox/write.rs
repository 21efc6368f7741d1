//! Writing the index: the header (with its commit tail), records,
//! capacity, the keyword table, and the counts a change adds or removes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;

use mailroom_core::{Error, Result, Uid};

use crate::fsutil::write_atomic;
use crate::index::{Counts, Header, Record, Tail};
use crate::layout::{HEADER_SIZE, MAX_KEYWORDS, RECORD_SIZE};
use crate::map::Map;
use crate::quota::Usage;

use super::{Inner, KEYWORDS_FILE, MSG_DIR, Shared, encode_keywords, msg_path};
use crate::ctx::Ctx;

/// The quota figures of a header.
pub(super) fn usage_of(h: &Header) -> Usage {
    Usage::new(h.quota_bytes, u64::from(h.exists))
}

pub(super) fn add_counts(h: &mut Header, c: &Counts) {
    h.exists += c.exists;
    h.unseen += c.unseen;
    h.deleted += c.deleted;
    h.recent += c.recent;
    h.quota_bytes += c.quota_bytes;
    h.state_crc ^= c.state_crc;
}

pub(super) fn sub_counts(h: &mut Header, c: &Counts) {
    h.exists = h.exists.saturating_sub(c.exists);
    h.unseen = h.unseen.saturating_sub(c.unseen);
    h.deleted = h.deleted.saturating_sub(c.deleted);
    h.recent = h.recent.saturating_sub(c.recent);
    h.quota_bytes = h.quota_bytes.saturating_sub(c.quota_bytes);
    h.state_crc ^= c.state_crc;
}

impl Shared {
    pub(crate) fn claim_recent(&self) -> Result<Uid> {
        let mut g = self.write()?;
        let from = g.hdr.recent_uid;
        let mut h = g.hdr;
        h.recent_uid = h.uid_next;
        h.recent = 0;
        g.write_header(&h, false)?;
        Ok(Uid(from))
    }
}

impl Inner {
    /// Writes the header (and syncs if `durable`), then takes it as current.
    pub(super) fn write_header(&mut self, h: &Header, durable: bool) -> Result<()> {
        self.write_header_with(h, None, durable)
    }

    /// [`Inner::write_header`], the header saying that the records of
    /// `tail` are made durable by the same fsync (FORMAT.md, "Commit
    /// order").
    pub(super) fn write_header_with(
        &mut self,
        h: &Header,
        tail: Option<Tail>,
        durable: bool,
    ) -> Result<()> {
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
    pub(super) fn ensure_capacity(&mut self, n: usize) -> Result<()> {
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

    pub(super) fn write_record(&self, i: usize, r: &Record) -> Result<()> {
        self.index_file()?
            .write_all_at(&r.encode(), (HEADER_SIZE + i * RECORD_SIZE) as u64)?;
        Ok(())
    }

    /// The index file for writing, opened on first use. (A file renamed
    /// over it since the load is caught by the freshness check every lock
    /// holder makes first, which reloads.)
    pub(super) fn index_file(&self) -> Result<&File> {
        if let Some(f) = self.index.get() {
            return Ok(f);
        }
        let f = OpenOptions::new().read(true).write(true).open(&self.path)?;
        let _ = self.index.set(f);
        self.index
            .get()
            .ok_or_else(|| Error::Backend("index file handle lost".into()))
    }

    /// Makes a commit's files durable the per-mailbox way (when the
    /// delivery journal could not be written): the message files of
    /// `uids`, `msg/`, the cache and the index.
    pub(super) fn sync_files(
        &self,
        dir: &Path,
        ctx: &Ctx,
        uids: impl Iterator<Item = u32>,
    ) -> Result<()> {
        for uid in uids {
            File::open(msg_path(dir, uid))?.sync_data()?;
        }
        crate::fsutil::sync_dir(&dir.join(MSG_DIR), true)?;
        self.cache_file(dir, ctx)?.sync_data()?;
        self.index_file()?.sync_data()?;
        Ok(())
    }

    /// Bits for keywords, adding new ones to the table (not yet written).
    pub(super) fn keyword_bits<'a>(
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

    pub(super) fn save_keywords(&self, dir: &Path, durable: bool) -> Result<()> {
        write_atomic(
            &dir.join(KEYWORDS_FILE),
            &encode_keywords(&self.keywords),
            durable,
        )?;
        Ok(())
    }

    /// Runs `f`; if it fails, reloads nothing but restores the keyword table
    /// to its committed length so a failed change leaves no trace in memory.
    pub(super) fn restore_keywords_on_err<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let committed = self.hdr.keyword_count as usize;
        let r = f(self);
        if r.is_err() {
            self.keywords.truncate(committed);
        }
        r
    }
}
