//! The delivery journal: a store-wide write-ahead log of appended messages
//! with group commit (FORMAT.md, "Delivery journal").
//!
//! With the journal on, an APPEND or an LMTP delivery writes its message
//! file, cache entry, index records and header without fsync, appends one
//! record per message here (everything needed to redo the append), and
//! waits for one `fdatasync` of the journal that it shares with every
//! delivery to any mailbox that appended meanwhile. Only then is the
//! message visible and acknowledged. A checkpoint (by size, by age, and
//! when the store is dropped) makes everything written before it durable
//! with `syncfs` on the data directory's file system, then starts a new
//! segment and deletes the old ones. At open, the records of segments that
//! were not checkpointed are replayed idempotently ([`replay`]) before any
//! mailbox is loaded.
//!
//! A file system's journal commit is the dominant cost of a durable
//! delivery on this store; the per-mailbox path needs two serial rounds of
//! fsyncs on several files, the journal one `fdatasync` of one file for
//! all mailboxes at once.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use mailroom_core::{Error, Result};
use sha1::{Digest, Sha1};

use crate::fsutil::sync_dir;
use crate::index::{Header, Record};
use crate::layout::{
    CACHE_FRAME_SIZE, CURRENT_VERSION, HDR_FLAG_DIRTY, HEADER_SIZE, MAX_CACHE_RECORD, MAX_KEYWORDS,
    RECORD_SIZE, VersionLayout,
};
use crate::mailbox::{
    CACHE_FILE, INDEX_FILE, KEYWORDS_FILE, decode_keywords, encode_keywords, msg_path, tmp_path,
};

/// The journal's directory in the data directory.
pub(crate) const JOURNAL_DIR: &str = "journal";
/// The empty files made ahead for journaled message files, in the
/// journal's directory (see [`Filler::write_spare`]).
pub(crate) const SPARE_DIR: &str = "spare";
/// How many spare files are kept ready.
const SPARES: usize = 128;
/// A segment file's magic.
const SEGMENT_MAGIC: &[u8; 8] = b"MRJRNL01";
/// A segment's header: magic (8), version 1 (u32), reserved zero (u32),
/// segment number (u64).
const SEGMENT_HEADER: usize = 24;
/// A record's frame before its body: body length (u32), CRC32 of the body (u32).
const FRAME: usize = 8;
/// The body kind of an appended message.
const KIND_APPEND: u8 = 1;
/// The longest message that goes through the journal; a longer one is
/// committed the per-mailbox durable way.
pub(crate) const MAX_JOURNAL_MESSAGE: u64 = 64 << 20;
/// How far past the last record the current segment is kept zero-filled
/// (see [`Filler::fill`]): an append inside that space does not change
/// the file's size, so its `fdatasync` writes the data and flushes the
/// disk's cache without a commit of the file system's own journal.
const FILL_AHEAD: u64 = 4 << 20;
/// The zeros written at a time, without the state lock (see
/// [`Filler::fill`]).
const FILL_CHUNK: usize = 256 << 10;
/// The longest mailbox path a record holds.
const MAX_PATH: usize = 4096;
/// The longest record body: a bound checked before anything is allocated.
const MAX_BODY: usize = 1
    + 2
    + MAX_PATH
    + 4
    + 16
    + RECORD_SIZE
    + 1
    + MAX_KEYWORDS * 256
    + 4
    + MAX_CACHE_RECORD
    + 4
    + MAX_JOURNAL_MESSAGE as usize;

/// When a checkpoint is due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A segment longer than this is checkpointed.
    pub(crate) segment_bytes: u64,
    /// A segment's first record older than this is checkpointed.
    pub(crate) max_age: Duration,
}

/// The store-wide journal.
#[derive(Debug)]
pub(crate) struct Journal {
    root: PathBuf,
    dir: PathBuf,
    limits: Limits,
    state: Arc<Mutex<State>>,
    /// Signalled when `synced` moves (waiters) and when a checkpoint may be
    /// due or the journal is dropped (the checkpointer).
    cond: Condvar,
    /// Serializes checkpoints.
    checkpointing: Mutex<()>,
    /// Wakes the checkpointer (a segment grew past its limit, or the
    /// journal is dropped); it holds no reference to the journal while it
    /// waits, so dropping the store drops the journal at once.
    wake: Arc<(Mutex<bool>, Condvar)>,
    /// What the filler thread works on (never the journal itself: the
    /// journal's drop stops and joins that thread, then checkpoints).
    filler: Arc<Filler>,
    filler_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The filler's share of the journal: it keeps the current segment
/// zero-filled ahead of its records and spare files ready.
#[derive(Debug)]
struct Filler {
    state: Arc<Mutex<State>>,
    limits: Limits,
    dir: PathBuf,
    /// Wakes the filler thread (the zero-filled space ahead of the writer
    /// runs short, or the spare files do).
    signal: Signal,
    /// Empty files ready to take a message's bytes (`journal/spare/<n>`),
    /// and the number the next one takes.
    spares: Mutex<(Vec<PathBuf>, u64)>,
    /// Signalled (with the state lock) when a write of zeros made without
    /// the state lock ends (see [`State::zeroing`]).
    zeroed: Condvar,
    /// Serializes [`Filler::fill`].
    filling: Mutex<()>,
    /// The next segment, made ahead (see [`Filler::prepare_next`]); the
    /// checkpoint takes it, holding this lock until the switch.
    next: Mutex<Option<Ready>>,
    /// Called with the offset of each write of zeros into the current
    /// segment, just before it (tests pause the filler there).
    #[cfg(test)]
    hook: TestHook,
}

/// A segment made ahead of its turn: created, its header and its name
/// durable, zero-filled up to `prepared` and that durable.
#[derive(Debug)]
struct Ready {
    segment: u64,
    file: File,
    prepared: u64,
}

/// What [`Filler::hook`] calls.
#[cfg(test)]
type HookFn = Box<dyn FnMut(u64) + Send>;

#[cfg(test)]
#[derive(Default)]
struct TestHook(Mutex<Option<HookFn>>);

#[cfg(test)]
impl std::fmt::Debug for TestHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestHook")
    }
}

#[cfg(test)]
impl TestHook {
    fn call(&self, at: u64) {
        if let Some(h) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            h(at);
        }
    }
}

/// A wake-up that is not lost when it comes while its thread is busy.
#[derive(Debug, Default)]
struct Signal {
    state: Mutex<Kick>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct Kick {
    kicked: bool,
    stop: bool,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, Kick> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn kick(&self, stop: bool) {
        let mut k = self.lock();
        k.kicked = true;
        k.stop |= stop;
        self.cond.notify_all();
    }

    fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Waits for a kick; false once stopped.
    fn wait(&self) -> bool {
        let mut k = self.lock();
        while !k.kicked && !k.stop {
            k = self
                .cond
                .wait(k)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        k.kicked = false;
        !k.stop
    }
}

#[derive(Debug)]
struct State {
    file: Arc<File>,
    segment: u64,
    len: u64,
    /// The end of the zeros written (and made durable) ahead of the
    /// records in the current segment: appends below it do not grow the
    /// file.
    prepared: u64,
    /// Sequence number of the last batch written, and of the last one
    /// known durable.
    written: u64,
    synced: u64,
    /// A thread is running the group's `fdatasync` (or a checkpoint the
    /// old segment's last one).
    syncing: bool,
    /// The failure of the last `fdatasync`, for the batches it covered.
    failed: Option<(u64, ErrorKind, String)>,
    /// When the current segment got its first record.
    since: Option<Instant>,
    /// The segment and the offset from which the filler is writing zeros
    /// without this lock (see [`Filler::fill`]): an append that would
    /// reach that offset waits until the write ends (the filler fell
    /// behind the records; never otherwise).
    zeroing: Option<(u64, u64)>,
    /// How many times a failed append cut the segment back: the filler
    /// does not count zeros it wrote past a cut as written.
    cuts: u64,
    /// Appends that waited for the filler's write (see `zeroing`).
    filler_waits: u64,
    /// Checkpoints that had to create the next segment themselves (the
    /// filler had not made it ahead).
    made_at_checkpoint: u64,
}

/// What identifies a mailbox in a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MailboxKey<'a> {
    /// The mailbox directory, relative to the data directory.
    pub(crate) path: &'a str,
    pub(crate) uid_validity: u32,
    pub(crate) mailbox_id: [u8; 16],
}

/// Appends one APPEND record (frame and body) to `out`.
pub(crate) fn encode_append(
    out: &mut Vec<u8>,
    key: MailboxKey<'_>,
    record: &[u8; RECORD_SIZE],
    keywords: &[String],
    cache_frame: &[u8],
    message: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME]);
    out.push(KIND_APPEND);
    out.extend_from_slice(&(key.path.len() as u16).to_le_bytes());
    out.extend_from_slice(key.path.as_bytes());
    out.extend_from_slice(&key.uid_validity.to_le_bytes());
    out.extend_from_slice(&key.mailbox_id);
    out.extend_from_slice(record);
    out.push(keywords.len() as u8);
    for k in keywords {
        out.push(k.len() as u8);
        out.extend_from_slice(k.as_bytes());
    }
    out.extend_from_slice(&(cache_frame.len() as u32).to_le_bytes());
    out.extend_from_slice(cache_frame);
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    out.extend_from_slice(message);
    let body_len = (out.len() - start - FRAME) as u32;
    let crc = crc32fast::hash(&out[start + FRAME..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Whether a message of this size, with these keywords and this mailbox
/// path, fits a record.
pub(crate) fn fits(path: &str, size: u64, summary_len: usize, keywords: &[String]) -> bool {
    size <= MAX_JOURNAL_MESSAGE
        && path.len() <= MAX_PATH
        && CACHE_FRAME_SIZE + summary_len <= MAX_CACHE_RECORD
        && keywords.len() <= MAX_KEYWORDS
        && keywords.iter().all(|k| k.len() < 256)
}

/// A decoded APPEND record.
#[derive(Debug)]
struct Append<'a> {
    path: &'a str,
    uid_validity: u32,
    mailbox_id: [u8; 16],
    record: Record,
    keywords: Vec<&'a str>,
    cache_frame: &'a [u8],
    message: &'a [u8],
}

fn decode_append(b: &[u8]) -> std::result::Result<Append<'_>, &'static str> {
    let mut at = 0usize;
    let mut take = |n: usize| -> std::result::Result<&[u8], &'static str> {
        let s = b.get(at..at + n).ok_or("record body truncated")?;
        at += n;
        Ok(s)
    };
    if take(1)?[0] != KIND_APPEND {
        return Err("unknown record kind");
    }
    let plen = u16::from_le_bytes(take(2)?.try_into().map_err(|_| "bad length")?) as usize;
    let path = std::str::from_utf8(take(plen)?).map_err(|_| "mailbox path not UTF-8")?;
    let uid_validity = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad length")?);
    let mailbox_id: [u8; 16] = take(16)?.try_into().map_err(|_| "bad length")?;
    let rec = take(RECORD_SIZE)?;
    if !Record::crc_ok(rec) {
        return Err("index record CRC mismatch");
    }
    let record = Record::decode_unchecked(rec);
    let nk = take(1)?[0] as usize;
    let mut keywords = Vec::with_capacity(nk);
    for _ in 0..nk {
        let n = take(1)?[0] as usize;
        keywords.push(std::str::from_utf8(take(n)?).map_err(|_| "keyword not UTF-8")?);
    }
    let clen = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad length")?) as usize;
    let cache_frame = take(clen)?;
    let mlen = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad length")?) as usize;
    let message = take(mlen)?;
    if at != b.len() {
        return Err("trailing bytes in record body");
    }
    if message.len() as u64 != record.size || Sha1::digest(message).as_slice() != record.guid {
        return Err("message does not match its record");
    }
    if cache_frame.len() != record.cache_len as usize {
        return Err("cache entry does not match its record");
    }
    Ok(Append {
        path,
        uid_validity,
        mailbox_id,
        record,
        keywords,
        cache_frame,
        message,
    })
}

fn segment_name(n: u64) -> String {
    format!("{n:016x}.jnl")
}

/// The segment files in `dir`, ascending.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".jnl"))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
        else {
            continue;
        };
        out.push((n, e.path()));
    }
    out.sort();
    Ok(out)
}

fn segment_header(n: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[16..24].copy_from_slice(&n.to_le_bytes());
    h
}

/// Creates segment `n` (its header written and durable, its name too); a
/// file of that name already there is an error, never overwritten.
fn create_segment(dir: &Path, n: u64) -> Result<File> {
    let path = dir.join(segment_name(n));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let made = f
        .write_all_at(&segment_header(n), 0)
        .and_then(|()| f.sync_data())
        .and_then(|()| sync_dir(dir, true));
    if let Err(e) = made {
        let _ = fs::remove_file(&path);
        return Err(e.into());
    }
    Ok(f)
}

/// Writes zeros over `from..to` of `f`, [`FILL_CHUNK`] bytes at a time.
fn write_zeros(f: &File, from: u64, to: u64) -> std::io::Result<()> {
    static ZEROS: [u8; FILL_CHUNK] = [0; FILL_CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(FILL_CHUNK as u64);
        f.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// Flushes every file of the data directory's file system.
fn syncfs(root: &Path) -> Result<()> {
    let d = File::open(root)?;
    rustix::fs::syncfs(&d).map_err(|e| Error::Io(e.into()))
}

/// Replays what earlier processes left in the journal (see [`replay`]),
/// makes the result durable and deletes the segments; returns the number
/// the next segment takes.
pub(crate) fn recover(root: &Path) -> Result<u64> {
    let dir = root.join(JOURNAL_DIR);
    // spare files an earlier process made and did not use (empty, or
    // written by a commit that never renamed it: never acknowledged)
    match fs::remove_dir_all(dir.join(SPARE_DIR)) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let old = segments(&dir)?;
    let next = old.last().map_or(1, |(n, _)| n + 1);
    if !old.is_empty() {
        let report = replay(root, &old)?;
        tracing::info!(
            segments = old.len(),
            records = report.records,
            redone = report.redone,
            mailboxes = report.mailboxes,
            "delivery journal replayed"
        );
        syncfs(root)?;
        for (_, p) in &old {
            fs::remove_file(p)?;
        }
        sync_dir(&dir, true)?;
    }
    Ok(next)
}

impl Journal {
    /// Opens the journal of the data directory `root`: replays what earlier
    /// processes left (see [`replay`]), makes it durable, deletes it and
    /// starts a new segment.
    pub(crate) fn open(root: &Path, limits: Limits) -> Result<Arc<Journal>> {
        let dir = root.join(JOURNAL_DIR);
        fs::create_dir_all(&dir)?;
        let next = recover(root)?;
        let file = create_segment(&dir, next)?;
        let state = Arc::new(Mutex::new(State {
            file: Arc::new(file),
            segment: next,
            len: SEGMENT_HEADER as u64,
            prepared: SEGMENT_HEADER as u64,
            written: 0,
            synced: 0,
            syncing: false,
            failed: None,
            since: None,
            zeroing: None,
            cuts: 0,
            filler_waits: 0,
            made_at_checkpoint: 0,
        }));
        let filler = Arc::new(Filler {
            state: state.clone(),
            limits,
            dir: dir.clone(),
            signal: Signal::default(),
            spares: Mutex::new((Vec::new(), 0)),
            zeroed: Condvar::new(),
            filling: Mutex::new(()),
            next: Mutex::new(None),
            #[cfg(test)]
            hook: TestHook::default(),
        });
        let filler_thread = Mutex::new(spawn_filler(filler.clone()));
        // the first segment zero-filled, the next one and spare files
        // made, before the first delivery if it leaves the time
        filler.signal.kick(false);
        let j = Arc::new(Journal {
            root: root.to_path_buf(),
            dir,
            limits,
            state,
            cond: Condvar::new(),
            checkpointing: Mutex::new(()),
            wake: Arc::new((Mutex::new(false), Condvar::new())),
            filler,
            filler_thread,
        });
        spawn_checkpointer(&j);
        Ok(j)
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes a batch of records (not yet durable); returns its sequence
    /// number for [`Journal::wait`].
    pub(crate) fn append(&self, batch: &[u8]) -> Result<u64> {
        let mut st = self.lock();
        let mut waited = false;
        while st.zeroing.is_some_and(|(segment, from)| {
            segment == st.segment && st.len + batch.len() as u64 > from
        }) {
            // the filler fell behind the records and is writing zeros
            // where this batch goes: after that write, not under it
            if !waited {
                waited = true;
                st.filler_waits += 1;
            }
            st = self
                .filler
                .zeroed
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let at = st.len;
        if let Err(e) = st.file.write_all_at(batch, at) {
            // a part may have been written: cut it off, the next batch
            // goes in its place (and zeros the filler wrote past it are
            // gone too)
            let _ = st.file.set_len(at);
            st.prepared = st.prepared.min(at);
            st.cuts += 1;
            return Err(e.into());
        }
        st.len += batch.len() as u64;
        if st.prepared < fill_target(&self.limits, &st) && st.len + FILL_AHEAD / 2 > st.prepared {
            self.filler.signal.kick(false);
        }
        st.written += 1;
        if st.since.is_none() {
            st.since = Some(Instant::now());
        }
        let seq = st.written;
        if st.len >= self.limits.segment_bytes {
            self.wake_checkpointer(false);
        }
        Ok(seq)
    }

    /// Waits until batch `seq` is durable: one thread runs the
    /// `fdatasync` for every batch written so far while the others wait,
    /// then the next one for those written meanwhile (group commit).
    pub(crate) fn wait(&self, seq: u64) -> Result<()> {
        let mut st = self.lock();
        loop {
            if let Some((upto, kind, msg)) = &st.failed
                && seq <= *upto
                && seq > st.synced
            {
                return Err(Error::Io(std::io::Error::new(*kind, msg.clone())));
            }
            if st.synced >= seq {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                let target = st.written;
                let file = st.file.clone();
                drop(st);
                let r = file.sync_data();
                st = self.lock();
                st.syncing = false;
                match r {
                    Ok(()) => st.synced = st.synced.max(target),
                    Err(e) => st.failed = Some((target, e.kind(), e.to_string())),
                }
                self.cond.notify_all();
                continue;
            }
            st = self
                .cond
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// See [`Filler::write_spare`].
    pub(crate) fn write_spare(&self, data: &[u8]) -> Option<PathBuf> {
        self.filler.write_spare(data)
    }

    /// Whether a checkpoint is due.
    fn due(&self) -> bool {
        let st = self.lock();
        st.len >= self.limits.segment_bytes
            || st.since.is_some_and(|t| t.elapsed() >= self.limits.max_age)
    }

    /// Makes everything journaled so far durable in the mailboxes
    /// themselves, then drops the journal written so far: a new segment
    /// takes the records from here on, `syncfs` flushes every file the
    /// older records' commits wrote (they all wrote before appending their
    /// record), and the older segments are deleted.
    ///
    /// Nothing slow happens under the state lock: the new segment is the
    /// one the filler made ahead (else it is made here, before the lock is
    /// taken), and the old segment's last `fdatasync` runs after the
    /// switch, the checkpoint standing in for the group's syncer.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.lock().since.is_none() {
            return Ok(());
        }
        let (upto, old, target) = {
            // held until the switch: the filler makes no segment meanwhile
            let mut ready = self.filler.next();
            // (only a checkpoint changes the segment, and this is the one)
            let next = self.lock().segment + 1;
            let (made, made_here) = match ready.take() {
                Some(r) if r.segment == next => (r, false),
                stale => {
                    if let Some(r) = stale {
                        tracing::warn!(
                            segment = r.segment,
                            expected = next,
                            "delivery journal: a segment made ahead for another turn; left"
                        );
                    }
                    let file = create_segment(&self.dir, next)?;
                    let made = Ready {
                        segment: next,
                        file,
                        prepared: SEGMENT_HEADER as u64,
                    };
                    (made, true)
                }
            };
            let mut st = self.lock();
            // the checkpoint runs the old segment's last `fdatasync` as
            // the group's syncer: no other thread counts the old
            // segment's batches durable on the strength of a sync of the
            // new file
            while st.syncing {
                st = self
                    .cond
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            st.syncing = true;
            let target = st.written;
            let old = std::mem::replace(&mut st.file, Arc::new(made.file));
            st.segment = next;
            st.len = SEGMENT_HEADER as u64;
            st.prepared = made.prepared;
            st.since = None;
            st.made_at_checkpoint += u64::from(made_here);
            (next, old, target)
        };
        // the new segment zero-filled further, the one after it made
        self.filler.signal.kick(false);
        let synced = old.sync_data();
        let (filler_waits, made_here) = {
            let mut st = self.lock();
            st.syncing = false;
            match &synced {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => st.failed = Some((target, e.kind(), e.to_string())),
            }
            self.cond.notify_all();
            (st.filler_waits, st.made_at_checkpoint)
        };
        synced?;
        syncfs(&self.root)?;
        for (n, p) in segments(&self.dir)? {
            if n < upto {
                fs::remove_file(p)?;
            }
        }
        sync_dir(&self.dir, true)?;
        tracing::debug!(
            segment = upto,
            filler_waits,
            made_at_checkpoint = made_here,
            "delivery journal checkpointed"
        );
        Ok(())
    }
}

impl Journal {
    fn wake_checkpointer(&self, stop: bool) {
        let (m, c) = &*self.wake;
        if let Ok(mut s) = m.lock() {
            *s |= stop;
        }
        c.notify_all();
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.wake_checkpointer(true);
        self.filler.signal.kick(true);
        let thread = self
            .filler_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        // a clean shutdown leaves no journal to replay: the checkpoint
        // makes the mailboxes durable, and the new segment it started is
        // empty (nothing can append any more)
        match self.checkpoint() {
            Ok(()) => {
                let seg = self.lock().segment;
                let _ = fs::remove_file(self.dir.join(segment_name(seg)));
                if let Some(r) = self.filler.next().take() {
                    let _ = fs::remove_file(self.dir.join(segment_name(r.segment)));
                }
                let _ = fs::remove_dir_all(self.dir.join(SPARE_DIR));
                let _ = sync_dir(&self.dir, true);
            }
            Err(e) => {
                tracing::warn!(error = %e, "delivery journal: final checkpoint failed; it is replayed at the next start");
            }
        }
    }
}

/// Where the zero-filled space of the current segment should end.
fn fill_target(limits: &Limits, st: &State) -> u64 {
    (st.len + FILL_AHEAD).min(limits.segment_bytes)
}

impl Filler {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the current segment zero-filled [`FILL_AHEAD`] bytes past its
    /// last record (up to the segment's checkpoint size), and those zeros
    /// durable: a record then overwrites allocated, written blocks, and
    /// the `fdatasync` of a commit needs no commit of the file system's
    /// journal (on ext4, for one, an append that grows the file does, and
    /// that commit carries every other file's metadata with it). A zero
    /// frame ends a segment's records at replay. Only speed depends on
    /// this: a record past the zeros grows the file and is just as durable.
    ///
    /// The zeros are written a chunk at a time **without** the state lock,
    /// so a commit never waits behind them: under the lock the filler only
    /// claims the chunk, which starts at or past both the zeros written so
    /// far and the records' end ([`State::zeroing`]); appends below it go
    /// on, and one that would reach it (the filler fell behind) waits for
    /// that one write. The `fdatasync` of the zeros is also made unlocked,
    /// and the new mark is published under the lock after it.
    fn fill(&self) -> Result<()> {
        let _one = self
            .filling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (segment, file, cuts, target, mut end) = {
            let st = self.lock();
            let target = fill_target(&self.limits, &st);
            if st.prepared >= target {
                return Ok(());
            }
            (st.segment, st.file.clone(), st.cuts, target, st.prepared)
        };
        loop {
            let at = {
                let mut st = self.lock();
                if st.segment != segment || st.cuts != cuts {
                    return Ok(());
                }
                let at = end.max(st.len);
                if at >= target {
                    break;
                }
                st.zeroing = Some((segment, at));
                at
            };
            let to = target.min(at + FILL_CHUNK as u64);
            #[cfg(test)]
            self.hook.call(at);
            let written = write_zeros(&file, at, to);
            self.lock().zeroing = None;
            self.zeroed.notify_all();
            written?;
            end = to;
        }
        file.sync_data()?;
        let mut st = self.lock();
        if st.segment == segment && st.cuts == cuts {
            st.prepared = st.prepared.max(end);
        }
        Ok(())
    }

    fn next(&self) -> MutexGuard<'_, Option<Ready>> {
        self.next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the segment after the current one ahead of its checkpoint:
    /// created with its header and name durable ([`create_segment`]), then
    /// zero-filled [`FILL_AHEAD`] bytes past the header and that made
    /// durable, so the checkpoint only switches files. An empty segment
    /// (header and zeros) left by a crash replays as no records.
    fn prepare_next(&self) -> Result<()> {
        let mut ready = self.next();
        if ready.is_some() {
            return Ok(());
        }
        let segment = self.lock().segment + 1;
        let file = create_segment(&self.dir, segment)?;
        let end = (SEGMENT_HEADER as u64 + FILL_AHEAD).min(self.limits.segment_bytes);
        let zeroed = write_zeros(&file, SEGMENT_HEADER as u64, end).and_then(|()| file.sync_data());
        let prepared = match zeroed {
            Ok(()) => end.max(SEGMENT_HEADER as u64),
            Err(e) => {
                // the segment is sound (header durable): records grow it
                tracing::debug!(error = %e, "delivery journal: could not zero-fill the next segment");
                SEGMENT_HEADER as u64
            }
        };
        *ready = Some(Ready {
            segment,
            file,
            prepared,
        });
        Ok(())
    }

    fn spares(&self) -> MutexGuard<'_, (Vec<PathBuf>, u64)> {
        self.spares
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes a journaled message's bytes into one of the empty files made
    /// ahead (`journal/spare/<n>`) and returns its path, for the commit to
    /// rename into `msg/`; `None` when none is ready or writing fails (the
    /// commit then creates its own file under `tmp/`). Creating a file
    /// (allocating an inode) is the slowest step of a journaled commit on
    /// ext4 under load, and it needs no lock: the filler does it ahead.
    pub(crate) fn write_spare(&self, data: &[u8]) -> Option<PathBuf> {
        let path = {
            let mut sp = self.spares();
            let p = sp.0.pop();
            if sp.0.len() < SPARES / 2 {
                self.signal.kick(false);
            }
            p?
        };
        let written = OpenOptions::new().write(true).open(&path).and_then(|f| {
            f.write_all_at(data, 0)?;
            // made empty by the filler: anything else is not ours to use
            if f.metadata()?.len() != data.len() as u64 {
                return Err(std::io::Error::other("spare file not empty"));
            }
            Ok(())
        });
        match written {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::debug!(file = %path.display(), error = %e, "delivery journal: spare file not usable");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Makes up to `most` empty spare files, until [`SPARES`] are ready;
    /// returns whether more are wanted.
    fn make_spares(&self, most: usize) -> Result<bool> {
        let dir = self.dir.join(SPARE_DIR);
        for _ in 0..most {
            let n = {
                let mut sp = self.spares();
                if sp.0.len() >= SPARES {
                    return Ok(false);
                }
                sp.1 += 1;
                sp.1
            };
            let path = dir.join(n.to_string());
            let made = OpenOptions::new().write(true).create_new(true).open(&path);
            match made {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    fs::create_dir_all(&dir)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            self.spares().0.push(path);
        }
        Ok(self.spares().0.len() < SPARES)
    }
}

/// Checkpoints the journal when one is due, until it is dropped.
fn spawn_checkpointer(j: &Arc<Journal>) {
    let weak: Weak<Journal> = Arc::downgrade(j);
    let wake = j.wake.clone();
    let tick = (j.limits.max_age / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let spawned = std::thread::Builder::new()
        .name("crc-journal".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            loop {
                {
                    let (m, c) = &*wake;
                    let stop = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *stop {
                        return;
                    }
                    let (stop, _) = c
                        .wait_timeout(stop, tick)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *stop {
                        return;
                    }
                }
                let Some(j) = weak.upgrade() else {
                    return;
                };
                if j.due()
                    && let Err(e) = j.checkpoint()
                {
                    tracing::warn!(error = %e, "delivery journal checkpoint failed; retried");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the delivery journal's checkpointer; checkpoints happen at shutdown only");
    }
}

/// Keeps the current segment zero-filled ahead of its records (see
/// [`Filler::fill`]), the next segment made ahead ([`Filler::prepare_next`])
/// and spare files ready when kicked, until stopped.
fn spawn_filler(f: Arc<Filler>) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("crc-journal-fill".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            while f.signal.wait() {
                // the zeros first: a few spare files at a time between
                loop {
                    if let Err(e) = f.fill() {
                        tracing::debug!(error = %e, "delivery journal: could not zero-fill ahead; records grow the segment");
                    }
                    if let Err(e) = f.prepare_next() {
                        tracing::debug!(error = %e, "delivery journal: could not make the next segment ahead; the checkpoint makes it");
                    }
                    match f.make_spares(8) {
                        Ok(true) if !f.signal.stopped() => {}
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "delivery journal: could not make spare files; commits make their own");
                            break;
                        }
                    }
                }
            }
        });
    match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "could not start the delivery journal's filler; records grow the segment");
            None
        }
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayReport {
    /// Intact records read.
    pub(crate) records: u64,
    /// Records whose index record, cache entry or message file had to be
    /// written again.
    pub(crate) redone: u64,
    /// Mailboxes touched.
    pub(crate) mailboxes: u64,
}

/// One mailbox being replayed: its index as found, and what changes.
struct Replaying {
    dir: PathBuf,
    hdr: Header,
    /// The record slots `0..record_count` (`None`: torn or never written),
    /// then the ones appended by the replay.
    slots: Vec<Option<Record>>,
    changed: Vec<usize>,
    keywords: Vec<String>,
    keywords_changed: bool,
    cache: File,
    max_modseq: u64,
    cache_end: u64,
    uid_next: u32,
}

impl Replaying {
    fn open(dir: PathBuf) -> std::result::Result<Option<Replaying>, String> {
        let ipath = dir.join(INDEX_FILE);
        let index = match fs::read(&ipath) {
            Ok(b) => b,
            // the mailbox was deleted since
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if VersionLayout::detect(&index) != Some(CURRENT_VERSION) {
            return Err("index not at the current version".into());
        }
        let hdr =
            Header::decode(&index, &ipath.display().to_string()).map_err(|e| e.to_string())?;
        let mut slots = Vec::with_capacity(hdr.record_count as usize);
        for i in 0..hdr.record_count as usize {
            let b = index.get(HEADER_SIZE + i * RECORD_SIZE..HEADER_SIZE + (i + 1) * RECORD_SIZE);
            slots.push(
                b.filter(|b| Record::crc_ok(b))
                    .map(Record::decode_unchecked),
            );
        }
        let keywords = match fs::read(dir.join(KEYWORDS_FILE)) {
            Ok(b) => decode_keywords(&b).map_err(str::to_owned)?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.to_string()),
        };
        let cache = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(CACHE_FILE))
            .map_err(|e| e.to_string())?;
        Ok(Some(Replaying {
            dir,
            max_modseq: hdr.highest_modseq,
            cache_end: hdr.cache_end,
            uid_next: hdr.uid_next,
            hdr,
            slots,
            changed: Vec::new(),
            keywords,
            keywords_changed: false,
            cache,
        }))
    }

    /// Redoes one append if the mailbox does not have it durably; returns
    /// whether anything was written.
    fn apply(&mut self, a: &Append<'_>) -> std::result::Result<bool, String> {
        let uid = a.record.uid;
        let mut rec = a.record;
        // the keyword bits as this mailbox's table has the names
        let mut bits = 0u128;
        for k in &a.keywords {
            let i = match self.keywords.iter().position(|x| x.eq_ignore_ascii_case(k)) {
                Some(i) => i,
                None => {
                    if self.keywords.len() >= MAX_KEYWORDS {
                        return Err("too many keywords".into());
                    }
                    self.keywords.push((*k).to_owned());
                    self.keywords_changed = true;
                    self.keywords.len() - 1
                }
            };
            bits |= 1u128 << i;
        }
        rec.user_flags = bits;
        // (from the end: replayed UIDs are the newest)
        let found = self
            .slots
            .iter()
            .rposition(|s| s.is_some_and(|r| r.uid <= uid))
            .filter(|&i| self.slots[i].is_some_and(|r| r.uid == uid));
        let mut wrote = false;
        let live = match found {
            // durable already, live or expunged: only its files are checked
            Some(i) => self.slots[i].is_some_and(|r| !r.is_expunged()),
            None if uid < self.hdr.uid_next => {
                // between the records that hold: a torn slot there is this
                // one's; none means it was expunged and repacked away
                let before = self
                    .slots
                    .iter()
                    .rposition(|s| s.is_some_and(|r| r.uid < uid))
                    .map_or(0, |i| i + 1);
                let after = self.slots[before..]
                    .iter()
                    .position(|s| s.is_some())
                    .map_or(self.slots.len(), |i| before + i);
                match (before..after).find(|&i| self.slots[i].is_none()) {
                    Some(i) => {
                        self.slots[i] = Some(rec);
                        self.changed.push(i);
                        wrote = true;
                        true
                    }
                    None => false,
                }
            }
            None => {
                if self
                    .slots
                    .last()
                    .is_some_and(|s| s.is_some_and(|r| r.uid >= uid))
                {
                    return Err(format!("UID {uid} out of order"));
                }
                self.slots.push(Some(rec));
                self.changed.push(self.slots.len() - 1);
                self.uid_next = self.uid_next.max(uid + 1);
                wrote = true;
                true
            }
        };
        self.max_modseq = self.max_modseq.max(rec.modseq);
        self.cache_end = self
            .cache_end
            .max(rec.cache_offset + u64::from(rec.cache_len));
        if !live {
            return Ok(wrote);
        }
        // the cache entry, where the record says it is
        let mut have = vec![0u8; a.cache_frame.len()];
        let n = crate::mailbox::read_full_at(&self.cache, &mut have, rec.cache_offset)
            .map_err(|e| e.to_string())?;
        if n != have.len() || have != a.cache_frame {
            self.cache
                .write_all_at(a.cache_frame, rec.cache_offset)
                .map_err(|e| e.to_string())?;
            wrote = true;
        }
        // the message file, whole and with the right bytes
        let path = msg_path(&self.dir, uid);
        let intact = fs::metadata(&path).is_ok_and(|m| m.len() == rec.size)
            && fs::read(&path).is_ok_and(|b| b == a.message);
        if !intact {
            let tmp = tmp_path(&self.dir, &format!("replay-{uid}"));
            fs::write(&tmp, a.message).map_err(|e| e.to_string())?;
            fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
            wrote = true;
        }
        Ok(wrote)
    }

    /// Writes the changed records and a header that covers them (dirty, so
    /// the next load recounts the figures).
    fn finish(self) -> std::result::Result<(), String> {
        if self.keywords_changed {
            crate::fsutil::write_atomic(
                &self.dir.join(KEYWORDS_FILE),
                &encode_keywords(&self.keywords),
                false,
            )
            .map_err(|e| e.to_string())?;
        }
        let grew = self.slots.len() as u32 != self.hdr.record_count
            || self.uid_next != self.hdr.uid_next
            || self.max_modseq != self.hdr.highest_modseq
            || self.cache_end != self.hdr.cache_end
            || self.keywords.len() as u32 != self.hdr.keyword_count;
        if self.changed.is_empty() && !grew {
            return Ok(());
        }
        let index = OpenOptions::new()
            .write(true)
            .open(self.dir.join(INDEX_FILE))
            .map_err(|e| e.to_string())?;
        for &i in &self.changed {
            if let Some(r) = &self.slots[i] {
                index
                    .write_all_at(&r.encode(), (HEADER_SIZE + i * RECORD_SIZE) as u64)
                    .map_err(|e| e.to_string())?;
            }
        }
        let mut h = self.hdr;
        h.record_count = self.slots.len() as u32;
        h.uid_next = self.uid_next;
        h.highest_modseq = self.max_modseq;
        h.cache_end = self.cache_end;
        h.keyword_count = self.keywords.len() as u32;
        h.flags |= HDR_FLAG_DIRTY;
        index
            .write_all_at(&h.encode(), 0)
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Replays segments (ascending): every intact record is redone where the
/// mailbox lacks it (see FORMAT.md, "Delivery journal", for the rules),
/// stopping at the first damaged record (a torn tail: never acknowledged,
/// discarded and logged). Idempotent: a second replay of the same segments
/// writes nothing. The caller makes the result durable.
pub(crate) fn replay(root: &Path, segs: &[(u64, PathBuf)]) -> Result<ReplayReport> {
    let mut report = ReplayReport::default();
    let mut open: HashMap<String, Option<Replaying>> = HashMap::new();
    let mut broken: Vec<String> = Vec::new();
    'segments: for (n, path) in segs {
        let f = File::open(path)?;
        let len = f.metadata()?.len();
        let mut head = [0u8; SEGMENT_HEADER];
        if crate::mailbox::read_full_at(&f, &mut head, 0)? != SEGMENT_HEADER
            || head != segment_header(*n)
        {
            tracing::warn!(segment = %path.display(), "delivery journal segment with a bad header: ignored");
            continue;
        }
        let mut at = SEGMENT_HEADER as u64;
        while at < len {
            let mut frame = [0u8; FRAME];
            let got = crate::mailbox::read_full_at(&f, &mut frame, at)?;
            if got == FRAME && frame == [0u8; FRAME] {
                // the zeros written ahead of the records: this segment's
                // records end here (the next segment's records are
                // acknowledged only once this one is durable, so nothing
                // acknowledged is after them)
                tracing::debug!(segment = %path.display(), offset = at, "delivery journal: end of the segment's records");
                continue 'segments;
            }
            let body_len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let torn = |why: &str| {
                tracing::warn!(
                    segment = %path.display(),
                    offset = at,
                    discarded = len - at,
                    why,
                    "delivery journal: damaged tail discarded (never acknowledged)"
                );
            };
            if got != FRAME
                || body_len == 0
                || body_len > MAX_BODY
                || at + (FRAME + body_len) as u64 > len
            {
                torn("record frame out of bounds");
                break 'segments;
            }
            let mut body = vec![0u8; body_len];
            crate::mailbox::read_full_at(&f, &mut body, at + FRAME as u64)?;
            if crc32fast::hash(&body) != crc {
                torn("record CRC mismatch");
                break 'segments;
            }
            at += (FRAME + body_len) as u64;
            let a = match decode_append(&body) {
                Ok(a) => a,
                Err(why) => {
                    tracing::warn!(segment = %path.display(), why, "delivery journal: record not understood; skipped");
                    continue;
                }
            };
            report.records += 1;
            if broken.iter().any(|b| b == a.path) {
                continue;
            }
            let slot = match open.get_mut(a.path) {
                Some(s) => s,
                None => {
                    let dir = root.join(a.path);
                    let r = match Replaying::open(dir) {
                        Ok(r) => r,
                        Err(why) => {
                            tracing::error!(
                                mailbox = a.path,
                                why,
                                "delivery journal: mailbox not replayable; left to reconstruct"
                            );
                            broken.push(a.path.to_owned());
                            continue;
                        }
                    };
                    open.entry(a.path.to_owned()).or_insert(r)
                }
            };
            let Some(mb) = slot.as_mut() else {
                continue; // deleted since
            };
            if mb.hdr.uid_validity != a.uid_validity || mb.hdr.mailbox_id != a.mailbox_id {
                continue; // another mailbox now
            }
            match mb.apply(&a) {
                Ok(true) => report.redone += 1,
                Ok(false) => {}
                Err(why) => {
                    tracing::error!(
                        mailbox = a.path,
                        why,
                        "delivery journal: replay failed; left to reconstruct"
                    );
                    broken.push(a.path.to_owned());
                    open.remove(a.path);
                }
            }
        }
    }
    for (path, mb) in open {
        let Some(mb) = mb else { continue };
        report.mailboxes += 1;
        if let Err(why) = mb.finish() {
            tracing::error!(
                mailbox = path,
                why,
                "delivery journal: replay failed; left to reconstruct"
            );
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::mpsc;

    /// A journal in a new temporary data directory (returned first: it
    /// is dropped after the journal).
    fn open() -> (tempfile::TempDir, Arc<Journal>) {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            segment_bytes: 64 << 20,
            max_age: Duration::from_secs(3600),
        };
        let j = Journal::open(dir.path(), limits).unwrap();
        (dir, j)
    }

    /// Pauses the filler at its next write of zeros into the current
    /// segment: returns the offset it is about to write at, and the sender
    /// that lets it go on (dropping it does too).
    fn pause_filler(j: &Journal) -> (mpsc::Receiver<u64>, mpsc::Sender<()>) {
        let (at_tx, at_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let mut first = true;
        *j.filler.hook.0.lock().unwrap() = Some(Box::new(move |at| {
            if std::mem::take(&mut first) {
                let _ = at_tx.send(at);
                let _ = go_rx.recv();
            }
        }));
        (at_rx, go_tx)
    }

    /// The current segment's bytes.
    fn segment_bytes(j: &Journal) -> Vec<u8> {
        let seg = j.lock().segment;
        fs::read(j.dir.join(segment_name(seg))).unwrap()
    }

    /// While the filler is in the middle of writing zeros ahead of the
    /// records, the state lock is free, and a whole commit (append and
    /// its `fdatasync`) goes through without waiting for the filler; the
    /// zeros land past the records.
    #[test]
    fn a_commit_does_not_wait_behind_the_fillers_zeros() {
        let (_dir, j) = open();
        // the first segment zero-filled ahead (done by the filler thread,
        // or here if it has not started: one at a time either way)
        j.filler.fill().unwrap();
        let prepared = j.lock().prepared;
        assert_eq!(prepared, SEGMENT_HEADER as u64 + FILL_AHEAD);
        let (at_rx, go) = pause_filler(&j);
        // past half the zeros: the filler is kicked to write more
        let big = vec![0xABu8; (FILL_AHEAD / 2) as usize + 4096];
        let first = j.append(&big).unwrap();
        let at = at_rx.recv().unwrap();
        assert_eq!(at, prepared, "the filler writes past the zeros it wrote");
        assert!(
            j.state.try_lock().is_ok(),
            "the filler holds the journal's lock while it writes zeros"
        );
        // a commit: its record written and made durable (the first one's
        // too), the filler still in the middle of its write
        let small = vec![0xCDu8; 300];
        j.wait(j.append(&small).unwrap()).unwrap();
        assert!(j.lock().synced > first);
        assert_eq!(j.lock().filler_waits, 0);
        drop(go);
        // the filler's pass ends (one at a time), then what it left
        j.filler.fill().unwrap();
        let st_len = j.lock().len;
        assert!(j.lock().prepared >= st_len + FILL_AHEAD / 2);
        let b = segment_bytes(&j);
        let h = SEGMENT_HEADER;
        assert_eq!(&b[h..h + big.len()], &big[..]);
        assert_eq!(&b[h + big.len()..h + big.len() + small.len()], &small[..]);
        assert!(b[st_len as usize..].iter().all(|&x| x == 0));
        assert!(b.len() as u64 >= at + FILL_CHUNK as u64);
    }

    /// When the records outrun the zeros (the filler fell behind), the
    /// filler's chunk starts at the records' end, and an append that
    /// reaches it waits for that write: the zeros never land on a record.
    #[test]
    fn an_append_reaching_the_fillers_chunk_waits_for_it() {
        let (_dir, j) = open();
        j.filler.fill().unwrap();
        let (at_rx, go) = pause_filler(&j);
        // past every zero written
        let big = vec![0xABu8; FILL_AHEAD as usize + 4096];
        j.wait(j.append(&big).unwrap()).unwrap();
        let end = j.lock().len;
        assert_eq!(at_rx.recv().unwrap(), end);
        let small = vec![0xCDu8; 300];
        let appender = {
            let (j, small) = (j.clone(), small.clone());
            std::thread::spawn(move || j.wait(j.append(&small).unwrap()).unwrap())
        };
        // (the appender waits for the filler's write, however long it takes
        // to get there)
        while j.lock().filler_waits == 0 {
            std::thread::yield_now();
        }
        assert_eq!(j.lock().len, end, "appended under the filler's write");
        drop(go);
        appender.join().unwrap();
        assert_eq!(j.lock().filler_waits, 1);
        j.filler.fill().unwrap();
        let b = segment_bytes(&j);
        assert_eq!(&b[end as usize..end as usize + small.len()], &small[..]);
    }

    /// The checkpoint switches to the segment the filler made ahead
    /// (zero-filled already) and makes none under the lock; the old
    /// segment's batches are durable and it is deleted.
    #[test]
    fn a_checkpoint_takes_the_segment_made_ahead() {
        let (_dir, j) = open();
        j.filler.prepare_next().unwrap();
        let first = j.lock().segment;
        let seq = j.append(&[0xEFu8; 100]).unwrap();
        j.checkpoint().unwrap();
        j.wait(seq).unwrap();
        let st = j.lock();
        assert_eq!(st.segment, first + 1);
        assert_eq!(st.made_at_checkpoint, 0);
        assert!(st.prepared >= SEGMENT_HEADER as u64 + FILL_AHEAD);
        assert!(st.synced >= seq);
        drop(st);
        assert!(!j.dir.join(segment_name(first)).exists());
        let b = segment_bytes(&j);
        assert_eq!(b[..SEGMENT_HEADER], segment_header(first + 1));
        // with none made ahead (the filler stopped), the checkpoint makes
        // it itself
        j.filler.signal.kick(true);
        if let Some(t) = j.filler_thread.lock().unwrap().take() {
            t.join().unwrap();
        }
        let _ = j.filler.next().take();
        let _ = fs::remove_file(j.dir.join(segment_name(first + 2)));
        j.append(&[0xEFu8; 100]).unwrap();
        j.checkpoint().unwrap();
        assert_eq!(j.lock().segment, first + 2);
        assert_eq!(j.lock().made_at_checkpoint, 1);
    }
}
