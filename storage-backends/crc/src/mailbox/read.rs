//! The read paths: STATUS, snapshots, changes since a modseq, metadata,
//! cache summaries and message contents.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{
    Changes, Error, Flags, InternalDate, MailboxSnapshot, MailboxStatus, MessageMeta,
    MessageSummary, ModSeq, Result, Uid, UidValidity, mime::SortFields,
};
use sha1::{Digest, Sha1};

use crate::ctx::{Ctx, IoStats};
use crate::index::{Header, Record, Tail};
use crate::layout::{
    CACHE_FRAME_SIZE, CACHE_HEADER_SIZE, CURRENT_VERSION, HEADER_SIZE, MAX_CACHE_RECORD,
    RECORD_SIZE, VersionLayout,
};

use super::{
    CACHE_FILE, INDEX_FILE, Inner, MAX_MESSAGE_SIZE, Shared, Viewer, cache_file_header, msg_path,
    poisoned,
};

/// The longest last-commit tail a STATUS from the header alone checks (a
/// longer one, from a big COPY, is checked by loading the mailbox).
pub(super) const MAX_STATUS_TAIL: usize = 1024;

pub(super) fn status_of(h: &Header) -> MailboxStatus {
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

/// How many bytes of the cache file one read of
/// [`Inner::for_each_cache_payload`] takes at most (unless one record is
/// larger).
pub(crate) const CACHE_WINDOW: usize = 1 << 20;

fn cache_bad(dir: &Path, r: &Record, why: &str) -> Error {
    Error::Corruption(format!(
        "{}: cache record of UID {}: {why}",
        dir.join(CACHE_FILE).display(),
        r.uid
    ))
}

/// The payload of a record's cache frame (`r.cache_len` bytes read from
/// its offset), after checking its length and CRC.
fn check_cache_frame<'b>(dir: &Path, r: &Record, frame: &'b [u8]) -> Result<&'b [u8]> {
    let (head, payload) = frame
        .split_at_checked(CACHE_FRAME_SIZE)
        .ok_or_else(|| cache_bad(dir, r, "truncated"))?;
    let plen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let pcrc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if plen != payload.len() || pcrc != r.cache_crc || crc32fast::hash(payload) != pcrc {
        return Err(cache_bad(dir, r, "CRC mismatch"));
    }
    Ok(payload)
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

/// The first index at or after `from` whose record has a UID >= `uid`
/// (`v` ascending by UID): an exponential search from `from`, then a binary
/// search in the bracket found.
pub(super) fn seek(v: &[Record], from: usize, uid: u32) -> usize {
    seek_by(v, from, uid, |r| r.uid)
}

/// [`seek`] in any slice ascending by a `u32` key (`key_of`): the first
/// index at or after `from` whose key is >= `key`.
pub(super) fn seek_by<T>(v: &[T], from: usize, key: u32, key_of: impl Fn(&T) -> u32) -> usize {
    let (mut lo, mut hi, mut step) = (from, from, 1usize);
    // invariant: every item before `lo` has a key < `key`
    while hi < v.len() && key_of(&v[hi]) < key {
        lo = hi + 1;
        hi = from.saturating_add(step);
        step = step.saturating_mul(2);
    }
    let hi = hi.min(v.len());
    lo + v[lo..hi].partition_point(|x| key_of(x) < key)
}

/// Flag sets with keywords built so far in one pass (bounded: past
/// `FlagsMemo::MAX` distinct sets, the rest are built each time).
#[derive(Debug, Default)]
pub(super) struct FlagsMemo {
    sets: HashMap<(u8, u128), Flags>,
}

impl FlagsMemo {
    pub(super) const MAX: usize = 256;

    pub(super) fn get(
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

impl Shared {
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

    pub(super) fn not_found_or(&self, e: std::io::Error) -> Error {
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
        let recs = self.records_of(&g, uids)?;
        let mut out = Vec::with_capacity(recs.len());
        g.for_each_cache_payload(&self.dir, &self.ctx, &recs, |r, payload| {
            let s = mailroom_core::mime::codec::decode(payload)
                .map_err(|why| self.bad_cache_record(r, why))?;
            out.push((Uid(r.uid), Arc::new(s)));
            Ok(())
        })
        .map_err(|e| self.fail(e))?;
        Ok(out)
    }

    /// What SORT and THREAD read of the given UIDs, decoded straight from
    /// the cache records (no summary is built; see
    /// `mailroom_core::mime::codec::decode_sort_fields`).
    pub(crate) fn sort_fields(&self, uids: &[Uid]) -> Result<Vec<(Uid, SortFields)>> {
        let g = self.read()?;
        let recs = self.records_of(&g, uids)?;
        let mut out = Vec::with_capacity(recs.len());
        g.for_each_cache_payload(&self.dir, &self.ctx, &recs, |r, payload| {
            let f = mailroom_core::mime::codec::decode_sort_fields(payload)
                .map_err(|why| self.bad_cache_record(r, why))?;
            out.push((Uid(r.uid), f));
            Ok(())
        })
        .map_err(|e| self.fail(e))?;
        Ok(out)
    }

    /// The records of the given UIDs that are present, in the same order.
    fn records_of(&self, g: &Inner, uids: &[Uid]) -> Result<Vec<Record>> {
        let mut recs = Vec::with_capacity(uids.len());
        for uid in uids {
            if let Some((_, r)) = g.find(uid.0).map_err(|e| self.fail(e))? {
                recs.push(r);
            }
        }
        Ok(recs)
    }

    pub(super) fn bad_cache_record(&self, r: &Record, why: &str) -> Error {
        Error::Corruption(format!(
            "{}: cache record of UID {}: {why}",
            self.dir.display(),
            r.uid
        ))
    }

    pub(crate) fn content(&self, uid: Uid) -> Result<Bytes> {
        let g = self.read()?;
        let (_, r) = g
            .find(uid.0)
            .map_err(|e| self.fail(e))?
            .ok_or(Error::NoSuchMessage(uid))?;
        read_message(&self.dir, &self.ctx, &r).map_err(|e| self.fail(e))
    }
}

impl Inner {
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
    pub(super) fn keywords_of(&self, bits: u128) -> Result<Vec<String>> {
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

    pub(super) fn meta(&self, r: &Record, viewer_seen: Option<bool>) -> Result<MessageMeta> {
        self.meta_with(r, viewer_seen, &mut FlagsMemo::default())
    }

    /// A record's metadata as a viewer sees it; `memo` keeps the flag sets
    /// with keywords already built, so the keyword table is decoded once per
    /// distinct set rather than once per record.
    pub(super) fn meta_with(
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
    pub(super) fn metas(
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
    pub(super) fn metas_of(
        &self,
        dir: &Path,
        viewer: Viewer<'_>,
        uids: &[Uid],
    ) -> Result<Vec<MessageMeta>> {
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
    pub(super) fn cache_file(&self, dir: &Path, ctx: &Ctx) -> Result<&File> {
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
        let len = self.cache_len(dir, r)?;
        let mut buf = vec![0u8; len];
        if read_full_at(f, &mut buf, r.cache_offset)? != len {
            return Err(cache_bad(dir, r, "truncated"));
        }
        check_cache_frame(dir, r, &buf)?;
        Ok(buf.split_off(CACHE_FRAME_SIZE))
    }

    /// The length of a record's cache frame, checked against the cache
    /// file's committed end.
    fn cache_len(&self, dir: &Path, r: &Record) -> Result<usize> {
        let len = r.cache_len as usize;
        if !(CACHE_FRAME_SIZE..=MAX_CACHE_RECORD).contains(&len)
            || r.cache_offset < CACHE_HEADER_SIZE as u64
            || r.cache_offset + len as u64 > self.hdr.cache_end
        {
            return Err(cache_bad(dir, r, "offset or length out of range"));
        }
        Ok(len)
    }

    /// Calls `each` with every record of `recs` and its cache payload
    /// (checked as [`Inner::cache_payload`] checks it), in order. Records
    /// whose frames follow each other in the cache file within
    /// [`CACHE_WINDOW`] bytes (those of neighbouring UIDs, as appends
    /// write them) are read with one read into a buffer reused for the
    /// next run; nothing else of the file is read, so memory is bounded
    /// by the window (or one record, if larger) whatever the order.
    pub(crate) fn for_each_cache_payload(
        &self,
        dir: &Path,
        ctx: &Ctx,
        recs: &[Record],
        mut each: impl FnMut(&Record, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut buf = Vec::new();
        let mut i = 0;
        while i < recs.len() {
            let start = recs[i].cache_offset;
            let mut end = start + self.cache_len(dir, &recs[i])? as u64;
            let mut j = i + 1;
            while let Some(r) = recs.get(j) {
                let r_end = r.cache_offset + self.cache_len(dir, r)? as u64;
                if r.cache_offset < end || r_end - start > CACHE_WINDOW as u64 {
                    break;
                }
                end = r_end;
                j += 1;
            }
            let f = self.cache_file(dir, ctx)?;
            IoStats::bump(&ctx.stats.cache_reads);
            let want = usize::try_from(end - start).unwrap_or(usize::MAX);
            buf.clear();
            buf.resize(want, 0);
            let got = read_full_at(f, &mut buf, start)?;
            for r in &recs[i..j] {
                let at = usize::try_from(r.cache_offset - start).unwrap_or(usize::MAX);
                let frame = at
                    .checked_add(r.cache_len as usize)
                    .filter(|&e| e <= got)
                    .map(|e| &buf[at..e])
                    .ok_or_else(|| cache_bad(dir, r, "truncated"))?;
                each(r, check_cache_frame(dir, r, frame)?)?;
            }
            i = j;
        }
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
}
