//! Replication on one loaded mailbox: its records as replication sees them
//! (from the index alone, no message file opened), and applying a batch
//! from a primary with the primary's UIDs and modseqs, in the store's
//! commit order (FORMAT.md, "Replication").

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;

use mailroom_core::replication::{
    Applied, ApplyBatch, MailboxHead, RecordsSince, ReplicaMessage, ReplicaRecord, StateCrc,
};
use mailroom_core::{Error, ModSeq, Result, Uid, UidValidity};

use super::{
    CACHE_FRAME_SIZE, Counts, HDR_FLAG_DIRTY, HEADER_SIZE, INDEX_FILE, Inner, MSG_DIR, Prepared,
    REC_FLAG_EXPUNGED, REC_FLAG_HAS_SENT_DATE, RECORD_SIZE, Record, Source, add_counts, msg_path,
    sub_counts, sync_dir_alongside, tmp_path, write_new_file,
};
use crate::ctx::Ctx;
use crate::fsutil::write_atomic;
use crate::index::Header;

/// What a batch does to one UID.
enum Change {
    /// Rewrite the record at this index of the index file (a live or an
    /// expunged record with this UID).
    InPlace(usize, Record),
    /// A UID above every record's: appended after the last record.
    Tail(Record),
    /// A UID between existing records: the index is rewritten.
    Insert(Record),
}

impl Inner {
    /// Gives the mailbox another MAILBOXID (a replica's mailbox made before
    /// replication carried the primary's): the header is rewritten.
    pub(crate) fn set_mailbox_id(
        &mut self,
        id: mailroom_core::MailboxId,
        durable: bool,
    ) -> Result<()> {
        if self.hdr.mailbox_id == id.0 {
            return Ok(());
        }
        let mut h = self.hdr;
        h.mailbox_id = id.0;
        self.write_header(&h, durable)
    }

    /// The figures replication compares.
    pub(crate) fn replica_head(&self) -> MailboxHead {
        MailboxHead {
            uid_validity: UidValidity(self.hdr.uid_validity),
            uid_next: Uid(self.hdr.uid_next),
            highest_modseq: ModSeq(self.hdr.highest_modseq),
            messages: self.hdr.exists,
            state_crc: StateCrc(self.hdr.state_crc),
        }
    }

    /// Every viewer with a seen file, with their seen set (a viewer whose
    /// file name is not an escaped name is left out), sorted.
    fn viewers(&self, dir: &Path) -> Result<Vec<(String, std::sync::Arc<Vec<u32>>)>> {
        let mut out = Vec::new();
        for name in self.viewer_names(dir)? {
            let set = self.seen_set(dir, &name)?;
            out.push((name, set));
        }
        Ok(out)
    }

    fn replica_record_of(
        &self,
        r: &Record,
        viewers: &[(String, std::sync::Arc<Vec<u32>>)],
    ) -> ReplicaRecord {
        let seen_by = viewers
            .iter()
            .filter(|(_, set)| set.binary_search(&r.uid).is_ok())
            .map(|(v, _)| v.clone())
            .collect();
        r.replica_record(&self.keywords, seen_by)
    }

    /// Live records with a modseq above `since` and a UID above `after`.
    pub(crate) fn records_since(
        &self,
        dir: &Path,
        since: u64,
        after: u32,
        limit: usize,
    ) -> Result<RecordsSince> {
        let viewers = self.viewers(dir)?;
        let view = self.view()?;
        let start = view.partition_point(|r| r.uid <= after);
        let mut records = Vec::new();
        let mut more = false;
        for r in &view[start..] {
            if r.is_expunged() || r.modseq <= since {
                continue;
            }
            if records.len() >= limit.max(1) {
                more = true;
                break;
            }
            records.push(self.replica_record_of(r, &viewers));
        }
        let expunged = if more {
            Vec::new()
        } else {
            view.iter()
                .filter(|r| r.is_expunged() && r.modseq > since)
                .map(|r| (Uid(r.uid), ModSeq(r.modseq)))
                .collect()
        };
        Ok(RecordsSince {
            head: self.replica_head(),
            records,
            more,
            expunged,
            expunged_complete: since >= self.hdr.expunge_horizon,
        })
    }

    /// The live records among `uids`, ascending.
    pub(crate) fn replica_records(&self, dir: &Path, uids: &[Uid]) -> Result<Vec<ReplicaRecord>> {
        let viewers = self.viewers(dir)?;
        let mut uids: Vec<u32> = uids.iter().map(|u| u.0).collect();
        uids.sort_unstable();
        uids.dedup();
        let mut out = Vec::new();
        for uid in uids {
            if let Some((_, r)) = self.find(uid)? {
                out.push(self.replica_record_of(&r, &viewers));
            }
        }
        Ok(out)
    }

    /// Every live record's UID and state CRC.
    pub(crate) fn digests(&self) -> Result<Vec<(Uid, u32)>> {
        Ok(self
            .view()?
            .iter()
            .filter(|r| !r.is_expunged())
            .map(|r| (Uid(r.uid), r.state_crc(&self.keywords)))
            .collect())
    }

    /// Drops the index records that fail their CRC (or break the UID
    /// order), keeping the header's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ
    /// and recounting the rest, so a replica can go on and its primary
    /// resend the dropped messages (see `Replication::salvage`). The index
    /// is written anew and renamed into place, as a repack does. Returns
    /// the number of records dropped (0: the index is left alone).
    pub(crate) fn salvage(&mut self, dir: &Path, ctx: &Ctx) -> Result<u32> {
        if self.view().is_ok() {
            return Ok(0);
        }
        let mut records: Vec<Record> = Vec::with_capacity(self.hdr.record_count as usize);
        let mut dropped = 0u32;
        let mut last = 0u32;
        for (i, b) in self.records().chunks_exact(RECORD_SIZE).enumerate() {
            let r = Record::decode_unchecked(b);
            if !Record::crc_ok(b) || r.uid <= last || r.uid >= self.hdr.uid_next {
                tracing::warn!(index = %dir.display(), record = i, "salvage: damaged index record dropped");
                dropped += 1;
                continue;
            }
            last = r.uid;
            records.push(r);
        }
        let mut h = self.hdr;
        let mut counts = Counts::default();
        for r in &records {
            counts.add(r, h.recent_uid, &self.keywords);
        }
        h.set_counts(&counts);
        h.record_count = records.len() as u32;
        h.flags &= !HDR_FLAG_DIRTY;
        let mut index = h.encode().to_vec();
        for r in &records {
            index.extend_from_slice(&r.encode());
        }
        Header::decode(&index, "salvaged index")?;
        write_atomic(&dir.join(INDEX_FILE), &index, ctx.durable)?;
        let fresh = Inner::load(dir, ctx).map_err(Error::from)?;
        let _ = fresh.view.set(records);
        *self = fresh;
        Ok(dropped)
    }

    /// Applies a batch from a primary (see `Replication::apply_messages`).
    /// Nothing is applied if a message fails its GUID or size check. The
    /// commit order is that of an append: message files and cache records
    /// durable first, then the keyword table, the seen files, the records
    /// (under a dirty header, or a whole new index renamed into place when
    /// a UID falls between existing records), the header last.
    pub(crate) fn apply_batch(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        batch: ApplyBatch,
    ) -> Result<Applied> {
        batch.check()?;
        self.restore_keywords_on_err(|this| this.apply_inner(dir, ctx, batch))
    }

    fn apply_inner(&mut self, dir: &Path, ctx: &Ctx, batch: ApplyBatch) -> Result<Applied> {
        let durable = ctx.durable;
        let mut messages = batch.messages;
        messages.sort_by_key(|m| m.record.uid);
        messages.dedup_by_key(|m| m.record.uid);
        let last_uid = self.view()?.last().map_or(0, |r| r.uid);
        let mut missing = Vec::new();
        let mut added = false;
        // (change, new bytes, seen_by)
        let mut planned: Vec<(Change, Option<Prepared>, Vec<String>)> = Vec::new();
        for ReplicaMessage { record, content } in messages {
            let found = {
                let v = self.view()?;
                v.binary_search_by_key(&record.uid.0, |r| r.uid)
                    .ok()
                    .map(|i| (i, v[i]))
            };
            let same = found.filter(|(_, r)| !r.is_expunged() && r.guid() == record.guid);
            let prepared = match content {
                Some(c) => Some(Prepared::new(c, &record.flags, Some(record.internal_date))),
                None if same.is_some() => None,
                None => {
                    missing.push(record.uid);
                    continue;
                }
            };
            let kbits = self.keyword_bits(record.flags.keywords(), &mut added)?;
            let mut r = match (&prepared, same) {
                (Some(p), _) => Record {
                    uid: record.uid.0,
                    rflags: if p.sent.is_some() {
                        REC_FLAG_HAS_SENT_DATE
                    } else {
                        0
                    },
                    sent_date: p.sent.map_or(0, |s| s.0),
                    sent_offset: p.sent.map_or(0, |s| s.1),
                    header_size: p.header_size,
                    size: p.size,
                    guid: p.guid,
                    save_date: record
                        .save_date
                        .unwrap_or_else(|| mailroom_core::InternalDate::now().timestamp),
                    ..Record::default()
                },
                (None, Some((_, old))) => old,
                (None, None) => continue,
            };
            r.system_flags = record.flags.system_bits() & 0x1f;
            r.user_flags = kbits;
            r.modseq = record.modseq.0;
            r.internal_date = record.internal_date.timestamp;
            r.date_offset = record.internal_date.offset_minutes;
            let change = match found {
                Some((i, _)) => Change::InPlace(i, r),
                None if record.uid.0 > last_uid => Change::Tail(r),
                None => Change::Insert(r),
            };
            planned.push((change, prepared, record.seen_by));
        }
        // 1. message files (a repaired message's file is replaced): all
        // written, then made durable together (see `sync_files`), then
        // renamed into place
        let mut written: Vec<(std::path::PathBuf, u32)> = Vec::new();
        for (change, p, _) in &planned {
            let (Some(p), r) = (p, change.record()) else {
                continue;
            };
            if let Source::Bytes(b) = &p.source {
                let tmp = tmp_path(dir, &format!("r{}", r.uid));
                write_new_file(&tmp, b, false)?;
                written.push((tmp, r.uid));
            }
        }
        if durable {
            sync_files(&written)?;
        }
        for (tmp, uid) in &written {
            fs::rename(tmp, msg_path(dir, *uid))?;
        }
        // 2. cache records, durable together with `msg/`
        let base = self.hdr.cache_end;
        let mut frames = Vec::new();
        for (change, p, _) in &mut planned {
            let Some(p) = p else { continue };
            let crc = crc32fast::hash(&p.summary);
            let r = change.record_mut();
            r.cache_offset = base + frames.len() as u64;
            r.cache_len = (CACHE_FRAME_SIZE + p.summary.len()) as u32;
            r.cache_crc = crc;
            frames.extend_from_slice(&(p.summary.len() as u32).to_le_bytes());
            frames.extend_from_slice(&crc.to_le_bytes());
            frames.extend_from_slice(&p.summary);
        }
        {
            let cache = self.cache_file(dir, ctx)?;
            let write_cache = || -> Result<()> {
                if !frames.is_empty() {
                    cache.write_all_at(&frames, base)?;
                    if durable {
                        cache.sync_data()?;
                    }
                }
                Ok(())
            };
            sync_dir_alongside(&dir.join(MSG_DIR), durable, write_cache)?;
        }
        if added {
            self.save_keywords(dir, durable)?;
        }
        // 3. other viewers' \Seen
        let mut seen_changes: Vec<(u32, Vec<String>)> = planned
            .iter()
            .map(|(c, _, by)| (c.record().uid, by.clone()))
            .collect();
        seen_changes.extend(batch.expunged.iter().map(|(u, _)| (u.0, Vec::new())));
        self.apply_seen(dir, &seen_changes, durable)?;
        // 4. records and header
        let mut h = self.hdr;
        h.cache_end = base + frames.len() as u64;
        h.keyword_count = self.keywords.len() as u32;
        let mut top_uid = 0u32;
        let mut top_modseq = 0u64;
        for (c, _, _) in &planned {
            top_uid = top_uid.max(c.record().uid);
            top_modseq = top_modseq.max(c.record().modseq);
        }
        let mut expunges: Vec<(usize, Record)> = Vec::new();
        for (uid, modseq) in &batch.expunged {
            if let Some((i, r)) = self.find(uid.0)? {
                let mut n = r;
                n.rflags |= REC_FLAG_EXPUNGED;
                n.modseq = modseq.0;
                top_modseq = top_modseq.max(modseq.0);
                expunges.push((i, n));
            }
        }
        h.uid_next = h
            .uid_next
            .max(top_uid.saturating_add(1))
            .max(batch.uid_next.map_or(0, |u| u.0));
        let wanted = batch.highest_modseq.map_or(h.highest_modseq, |m| m.0);
        h.highest_modseq = if wanted >= self.hdr.highest_modseq {
            wanted.max(top_modseq)
        } else {
            // lower than ours: never below a record's modseq
            let kept = self.view()?.iter().map(|r| r.modseq).max().unwrap_or(0);
            wanted.max(top_modseq).max(kept)
        };
        if planned
            .iter()
            .any(|(c, _, _)| matches!(c, Change::Insert(_)))
        {
            self.rewrite_with(dir, ctx, h, &planned, &expunges)?;
        } else {
            self.write_in_place(h, &planned, &expunges, durable)?;
        }
        for (_, r) in &expunges {
            match fs::remove_file(msg_path(dir, r.uid)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(uid = r.uid, error = %e, "could not remove expunged message file")
                }
            }
        }
        Ok(Applied {
            head: self.replica_head(),
            missing,
        })
    }

    /// Sets, for each UID, which viewers other than the owner have `\Seen`.
    fn apply_seen(&self, dir: &Path, changes: &[(u32, Vec<String>)], durable: bool) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut viewers: Vec<String> = self.viewers(dir)?.into_iter().map(|(v, _)| v).collect();
        for (_, by) in changes {
            viewers.extend(by.iter().cloned());
        }
        viewers.sort_unstable();
        viewers.dedup();
        for v in viewers {
            let old = self.seen_set(dir, &v)?;
            let mut set = (*old).clone();
            for (uid, by) in changes {
                let want = by.contains(&v);
                match (set.binary_search(uid), want) {
                    (Ok(i), false) => {
                        set.remove(i);
                    }
                    (Err(i), true) => set.insert(i, *uid),
                    _ => {}
                }
            }
            if set != *old {
                self.set_seen(dir, &v, set, durable)?;
            }
        }
        Ok(())
    }

    /// The common case: records rewritten where they are and new ones
    /// after the last, under a dirty header (as a STORE does).
    fn write_in_place(
        &mut self,
        mut h: Header,
        planned: &[(Change, Option<Prepared>, Vec<String>)],
        expunges: &[(usize, Record)],
        durable: bool,
    ) -> Result<()> {
        let mut tail: Vec<Record> = Vec::new();
        let mut dirty = h;
        dirty.flags |= HDR_FLAG_DIRTY;
        dirty.cache_end = self.hdr.cache_end;
        dirty.uid_next = self.hdr.uid_next;
        dirty.highest_modseq = self.hdr.highest_modseq;
        self.write_header(&dirty, durable)?;
        let mut in_place: Vec<(usize, Record)> = Vec::new();
        for (change, _, _) in planned {
            match change {
                Change::InPlace(i, r) => in_place.push((*i, *r)),
                Change::Tail(r) => tail.push(*r),
                Change::Insert(_) => {}
            }
        }
        in_place.extend(expunges.iter().copied());
        for (i, new) in &in_place {
            let old = self.view()?.get(*i).copied().unwrap_or_default();
            self.write_record(*i, new)?;
            let mut c = Counts::default();
            c.add(&old, h.recent_uid, &self.keywords);
            sub_counts(&mut h, &c);
            let mut c = Counts::default();
            c.add(new, h.recent_uid, &self.keywords);
            add_counts(&mut h, &c);
        }
        let start = self.hdr.record_count as usize;
        if !tail.is_empty() {
            self.ensure_capacity(start + tail.len())?;
            let mut buf = Vec::with_capacity(tail.len() * RECORD_SIZE);
            for r in &tail {
                buf.extend_from_slice(&r.encode());
                let mut c = Counts::default();
                c.add(r, h.recent_uid, &self.keywords);
                add_counts(&mut h, &c);
            }
            self.index_file()?
                .write_all_at(&buf, (HEADER_SIZE + start * RECORD_SIZE) as u64)?;
        }
        if durable {
            self.index_file()?.sync_data()?;
        }
        h.record_count = (start + tail.len()) as u32;
        h.flags &= !HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        if let Some(v) = self.view.get_mut() {
            for (i, r) in &in_place {
                if let Some(slot) = v.get_mut(*i) {
                    *slot = *r;
                }
            }
            v.extend(tail);
        }
        Ok(())
    }

    /// A UID between existing records: the whole index is written anew,
    /// checked, and renamed into place (as a repack does).
    fn rewrite_with(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        mut h: Header,
        planned: &[(Change, Option<Prepared>, Vec<String>)],
        expunges: &[(usize, Record)],
    ) -> Result<()> {
        let mut records: Vec<Record> = self.view()?.to_vec();
        for (i, r) in expunges {
            records[*i] = *r;
        }
        for (change, _, _) in planned {
            match change {
                Change::InPlace(i, r) => records[*i] = *r,
                Change::Tail(r) | Change::Insert(r) => records.push(*r),
            }
        }
        records.sort_by_key(|r| r.uid);
        let mut counts = Counts::default();
        for r in &records {
            counts.add(r, h.recent_uid, &self.keywords);
        }
        let wanted = h.highest_modseq;
        h.set_counts(&counts);
        h.highest_modseq = h.highest_modseq.max(wanted);
        h.record_count = records.len() as u32;
        h.flags &= !HDR_FLAG_DIRTY;
        let mut index = h.encode().to_vec();
        for r in &records {
            index.extend_from_slice(&r.encode());
        }
        Header::decode(&index, "replicated index")?;
        write_atomic(&dir.join(INDEX_FILE), &index, ctx.durable)?;
        let fresh = Inner::load(dir, ctx).map_err(Error::from)?;
        let _ = fresh.view.set(records);
        *self = fresh;
        Ok(())
    }
}

impl Change {
    fn record(&self) -> &Record {
        match self {
            Change::InPlace(_, r) | Change::Tail(r) | Change::Insert(r) => r,
        }
    }

    fn record_mut(&mut self) -> &mut Record {
        match self {
            Change::InPlace(_, r) | Change::Tail(r) | Change::Insert(r) => r,
        }
    }
}

/// Most threads [`sync_files`] uses.
const SYNC_THREADS: usize = 16;

/// Fsyncs the files of a batch from several threads at once: the file
/// system then commits them in a few journal transactions rather than one
/// per file (a batch of 1,000 replicated messages took 1,000 sequential
/// fsyncs before). Each file is opened, synced and closed by its thread,
/// so a batch never holds more than [`SYNC_THREADS`] descriptors.
fn sync_files(files: &[(std::path::PathBuf, u32)]) -> std::io::Result<()> {
    let sync = |part: &[(std::path::PathBuf, u32)]| -> std::io::Result<()> {
        for (path, _) in part {
            fs::File::open(path)?.sync_data()?;
        }
        Ok(())
    };
    if files.len() <= 1 {
        return sync(files);
    }
    let per_thread = files.len().div_ceil(SYNC_THREADS.min(files.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|part| scope.spawn(move || sync(part)))
            .collect();
        let mut result = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sync_files_syncs_every_file_and_reports_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<(std::path::PathBuf, u32)> = (0..40)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                fs::write(&p, format!("file {i}")).unwrap();
                (p, i)
            })
            .collect();
        sync_files(&files).unwrap();
        sync_files(&files[..1]).unwrap();
        sync_files(&[]).unwrap();
        let mut with_missing = files.clone();
        with_missing.insert(17, (dir.path().join("gone"), 99));
        assert!(
            sync_files(&with_missing).is_err(),
            "a file that cannot be synced fails the batch"
        );
    }
}
