//! New messages: APPEND with group commit, MULTIAPPEND and the commit
//! that COPY, MOVE and replication share (FORMAT.md, "Commit order").

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use bytes::Bytes;
use mailroom_core::{
    Error, Flags, InternalDate, MessageGuid, MessageSummary, ModSeq, Result, Uid, UidValidity,
};

use crate::ctx::{Ctx, IoStats};
use crate::fsutil::sync_dir;
use crate::index::{Counts, Record, Tail};
use crate::layout::{CACHE_FRAME_SIZE, HEADER_SIZE, REC_FLAG_HAS_SENT_DATE, RECORD_SIZE};
use crate::quota::{Charge, Usage};

use crate::journal;

use super::{Inner, MSG_DIR, Shared, Viewer, WriteGuard, add_counts, msg_path, tmp_path, usage_of};

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
    pub(super) fn discard(self) {
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

/// The APPENDs of one mailbox waiting for a group commit.
#[derive(Debug, Default)]
pub(super) struct AppendQueue {
    pending: Vec<PendingAppend>,
    /// A thread is committing the queue (it steps down, under this
    /// queue's mutex, only when it finds the queue empty).
    leader: bool,
}

/// One APPEND waiting for a group commit.
#[derive(Debug)]
pub(super) struct PendingAppend {
    prepared: Prepared,
    /// Its quota charge, settled by the commit that makes it visible.
    charge: Charge,
    reply: std::sync::mpsc::Sender<Result<mailroom_core::Appended>>,
}

/// The most APPENDs one group commit takes.
pub(super) const MAX_GROUP_COMMIT: usize = 256;

/// Runs `work` while `dir` is fsynced on another thread (when `durable`).
pub(super) fn sync_dir_alongside(
    dir: &Path,
    durable: bool,
    work: impl FnOnce() -> Result<()>,
) -> Result<()> {
    sync_alongside(dir, &[], durable, work)
}

/// Runs `work` while `dir` and `files` are fsynced on other threads (when
/// `durable`), and returns once all are done: the first error wins. If no
/// thread can be started, the syncs run first, then `work`.
pub(super) fn sync_alongside(
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
pub(super) fn write_new_file(path: &Path, data: &[u8], durable: bool) -> std::io::Result<File> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    std::io::Write::write_all(&mut f, data)?;
    if durable {
        f.sync_data()?;
    }
    Ok(f)
}

pub(super) fn unanswered() -> Error {
    Error::Backend("group commit ended without an answer".into())
}

/// The error a failed group commit gives the other appends of its batch
/// (`Error` is not `Clone`: an I/O error keeps its kind and text).
pub(super) fn error_for_another(e: &Error) -> Error {
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

impl Shared {
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
        // journaled: the commit writes the file (no fsync to overlap)
        let journaled = self
            .journal_path()
            .is_some_and(|path| journal::fits(path, p.size, p.summary.len(), &p.keywords));
        if let (Source::Bytes(b), false) = (&p.source, journaled) {
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
    pub(super) fn lead_group_commits(&self) {
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
    pub(super) fn commit_batch(&self, g: &mut WriteGuard<'_>, batch: Vec<PendingAppend>) {
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
        let journaled = self.journal_path().is_some_and(|path| {
            msgs.iter().all(|m| {
                matches!(m.source, Source::Bytes(_))
                    && journal::fits(path, m.size, m.summary.len(), &m.keywords)
            })
        });
        let committed = if journaled {
            self.commit_journaled(g, msgs, &mut charges)
        } else {
            self.commit_new(g, msgs, false, None, &mut charges)
        };
        match committed {
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

    pub(super) fn append_queue(&self) -> std::sync::MutexGuard<'_, AppendQueue> {
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
        let res = g.commit_new(&self.dir, &self.ctx, msgs, one_modseq, viewer, None);
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
    pub(super) fn usage_changed(&self, before: Usage, after: Usage, charges: &mut [Charge]) {
        if let Some(l) = self.ctx.ledgers.existing(&self.owner) {
            l.committed(before, after, charges);
        }
    }

    /// This mailbox's directory as the delivery journal names it, if the
    /// store keeps one (and commits are durable).
    pub(super) fn journal_path(&self) -> Option<&str> {
        let j = self.ctx.journal.as_ref()?;
        if !self.ctx.durable {
            return None;
        }
        self.dir.strip_prefix(j.root()).ok()?.to_str()
    }

    /// [`Shared::commit_new`] through the delivery journal (FORMAT.md,
    /// "Delivery journal"): the files are written without fsync, one
    /// journal record per message is appended, and the commit waits for
    /// the journal's group `fdatasync` while it still holds the write lock,
    /// so no one sees the messages (nor does the quota ledger count them,
    /// nor a watcher hear of them) before they are durable. If the journal
    /// cannot be written, the mailbox's own files are made durable instead.
    pub(super) fn commit_journaled(
        &self,
        g: &mut WriteGuard<'_>,
        msgs: Vec<Prepared>,
        charges: &mut [Charge],
    ) -> Result<Vec<(u32, u64)>> {
        let (Some(j), Some(path)) = (self.ctx.journal.clone(), self.journal_path()) else {
            return self.commit_new(g, msgs, false, None, charges);
        };
        let before = usage_of(&g.hdr);
        let mut batch = Vec::new();
        let res = g
            .commit_new(&self.dir, &self.ctx, msgs, false, None, Some((path, &mut batch)))
            .and_then(|done| {
                match j.append(&batch).and_then(|seq| j.wait(seq)) {
                    Ok(()) => Ok(done),
                    Err(e) => {
                        tracing::warn!(mailbox = %self.mref(), error = %e, "delivery journal not written; making the mailbox's files durable instead");
                        g.sync_files(&self.dir, &self.ctx, done.iter().map(|d| d.0))?;
                        Ok(done)
                    }
                }
            });
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
}

impl Inner {
    pub(super) fn commit_new(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        msgs: Vec<Prepared>,
        one_modseq: bool,
        viewer: Viewer<'_>,
        journal: Option<(&str, &mut Vec<u8>)>,
    ) -> Result<Vec<(u32, u64)>> {
        self.restore_keywords_on_err(|this| {
            this.commit_new_inner(dir, ctx, msgs, one_modseq, viewer, journal)
        })
    }

    pub(super) fn commit_new_inner(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        msgs: Vec<Prepared>,
        one_modseq: bool,
        viewer: Viewer<'_>,
        journal: Option<(&str, &mut Vec<u8>)>,
    ) -> Result<Vec<(u32, u64)>> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        // journaled: nothing here is fsynced but a new keyword table (the
        // journal record makes the rest durable)
        let durable = ctx.durable && journal.is_none();
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
                    // journaled: into a file made ahead, if one is ready
                    if let Some(spare) = journal
                        .as_ref()
                        .and(ctx.journal.as_ref())
                        .and_then(|j| j.write_spare(b))
                    {
                        match fs::rename(&spare, msg_path(dir, uid)) {
                            Ok(()) => continue,
                            Err(e) => {
                                tracing::debug!(error = %e, "spare file not renamed into msg/; writing the message under tmp/");
                                let _ = fs::remove_file(&spare);
                            }
                        }
                    }
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
            self.save_keywords(dir, ctx.durable)?;
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
        if let Some((path, out)) = journal {
            for (i, (m, r)) in msgs.iter().zip(&recs).enumerate() {
                let Source::Bytes(b) = &m.source else {
                    return Err(Error::Backend(
                        "journaled commit of a message without its bytes".into(),
                    ));
                };
                let (off, len, _) = cache_pos[i];
                let at = (off - base) as usize;
                let key = journal::MailboxKey {
                    path,
                    uid_validity: h.uid_validity,
                    mailbox_id: h.mailbox_id,
                };
                journal::encode_append(
                    out,
                    key,
                    &r.encode(),
                    &m.keywords,
                    &frames[at..at + len as usize],
                    b,
                );
            }
        }
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
}
