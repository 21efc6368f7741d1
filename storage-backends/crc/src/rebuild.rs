//! Reconstruct and upgrade: rebuilding a mailbox's index, cache and keyword
//! table from its message files, keeping what the old records (of any known
//! format version, read through that version's field table) still vouch for.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::Path;

use mailroom_core::{Error, InternalDate, MessageGuid, MessageSummary, Result};

use crate::ctx::Ctx;
use crate::fsutil::{sync_dir, write_atomic};
use crate::index::{Counts, Header, Record};
use crate::layout::{
    CACHE_FRAME_SIZE, CURRENT_VERSION, REC_FLAG_EXPUNGED, REC_FLAG_HAS_SENT_DATE, VersionLayout,
    layout_of,
};
use crate::mailbox::{
    CACHE_FILE, INDEX_FILE, KEYWORDS_FILE, MAX_MESSAGE_SIZE, MSG_DIR, QUARANTINE_DIR, SEEN_DIR,
    Shared, Slot, TMP_DIR, cache_file_header, create_layout, decode_keywords, decode_seen,
    encode_keywords, msg_path,
};

/// What a reconstruct (or an upgrade or import) did to one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconstructReport {
    /// Live messages in the rebuilt mailbox.
    pub messages: u32,
    /// Messages whose UID, flags and dates came from an old record whose CRC held.
    pub kept: u32,
    /// Messages found as files without a usable record (flags reset).
    pub recovered: u32,
    /// Message files whose content did not match their record's GUID, moved
    /// to `quarantine/` and not served.
    pub quarantined: u32,
    /// Records whose message file was missing (the message is reported expunged).
    pub lost: u32,
    /// Files or records that could not be read and were skipped.
    pub skipped: u32,
    /// Sum of the live messages' sizes: the mailbox's quota usage, recomputed.
    pub quota_bytes: u64,
}

/// The header figures an old index still vouches for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HintHeader {
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) recent_uid: Option<u32>,
    pub(crate) expunge_horizon: u64,
    /// MAILBOXID of the old header, if it had one.
    pub(crate) mailbox_id: Option<[u8; 16]>,
}

/// What an old record (or a Maildir file name) says about one message.
#[derive(Debug, Clone, Default)]
pub(crate) struct HintRecord {
    pub(crate) expunged: bool,
    pub(crate) system_flags: u8,
    pub(crate) keywords: Vec<String>,
    pub(crate) internal_date: Option<InternalDate>,
    pub(crate) modseq: Option<u64>,
    pub(crate) guid: Option<[u8; 20]>,
    /// SAVEDATE, if the old record had one.
    pub(crate) save_date: Option<i64>,
}

/// Everything known before looking at the message files.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    pub(crate) header: Option<HintHeader>,
    pub(crate) records: BTreeMap<u32, HintRecord>,
    pub(crate) skipped: u32,
}

/// Reads whatever an index file of any known version still vouches for.
pub(crate) fn read_hints(dir: &Path) -> Hints {
    let mut hints = Hints::default();
    let path = dir.join(INDEX_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "index unreadable; rebuilding from message files");
            }
            return hints;
        }
    };
    // the header says which version, if its CRC holds; otherwise the
    // version whose record table fits the most records (a flipped version
    // byte must not make us read the records with the wrong table)
    let version = VersionLayout::detect(&data).unwrap_or_else(|| {
        let v = crate::layout::VERSIONS
            .iter()
            .rev()
            .max_by_key(|l| {
                data.get(l.header_size..)
                    .unwrap_or(&[])
                    .chunks_exact(l.record_size)
                    .filter(|r| VersionLayout::crc_holds(l.record, r))
                    .count()
            })
            .map_or(CURRENT_VERSION, |l| l.version);
        tracing::warn!(file = %path.display(), version = v, "index header unusable; version guessed from its records");
        v
    });
    let Some(layout) = layout_of(version) else {
        return hints;
    };
    let keywords = if version >= 1 {
        match fs::read(dir.join(KEYWORDS_FILE)) {
            Ok(d) => decode_keywords(&d).unwrap_or_else(|why| {
                tracing::warn!(dir = %dir.display(), why, "keyword table unusable; keywords dropped");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let record_limit = read_hint_header(layout, &data, &path, &mut hints);
    read_hint_records(layout, &data, record_limit, &keywords, &path, &mut hints);
    hints
}

fn read_hint_header(
    layout: &VersionLayout,
    data: &[u8],
    path: &Path,
    hints: &mut Hints,
) -> Option<usize> {
    if data.len() < layout.header_size {
        tracing::warn!(file = %path.display(), "index header truncated");
        return None;
    }
    let b = &data[..layout.header_size];
    if !VersionLayout::crc_holds(layout.header, b) {
        tracing::warn!(file = %path.display(), "index header CRC mismatch; UIDVALIDITY will change");
        return None;
    }
    let get = |name: &str| layout.header_field(name).map(|f| f.read_uint(b));
    hints.header = Some(HintHeader {
        uid_validity: get("uid_validity").unwrap_or(0) as u32,
        uid_next: get("uid_next").unwrap_or(1) as u32,
        highest_modseq: get("highest_modseq").unwrap_or(1),
        recent_uid: get("recent_uid").map(|v| v as u32),
        expunge_horizon: get("expunge_horizon").unwrap_or(0),
        mailbox_id: layout
            .header_field("mailbox_id")
            .map(|f| {
                let mut a = [0u8; 16];
                a.copy_from_slice(f.get(b));
                a
            })
            .filter(|a| *a != [0u8; 16]),
    });
    get("record_count").map(|n| n as usize)
}

fn read_hint_records(
    layout: &VersionLayout,
    data: &[u8],
    limit: Option<usize>,
    keywords: &[String],
    path: &Path,
    hints: &mut Hints,
) {
    let body = data.get(layout.header_size..).unwrap_or(&[]);
    let f = |name: &str| layout.record_field(name);
    for (i, b) in body.chunks_exact(layout.record_size).enumerate() {
        if limit.is_some_and(|n| i >= n) {
            break;
        }
        if !VersionLayout::crc_holds(layout.record, b) {
            if b.iter().any(|&x| x != 0) {
                tracing::warn!(file = %path.display(), record = i, "record CRC mismatch; its flags are lost");
                hints.skipped += 1;
            }
            continue;
        }
        let get = |name: &str| f(name).map(|fl| fl.read_uint(b));
        let uid = get("uid").unwrap_or(0) as u32;
        if uid == 0 {
            continue;
        }
        let rflags = get("record_flags").unwrap_or(0) as u8;
        let mut kw = Vec::new();
        if let Some(uf) = f("user_flags") {
            let mut a = [0u8; 16];
            a.copy_from_slice(uf.get(b));
            let mut bits = u128::from_le_bytes(a);
            while bits != 0 {
                let k = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(name) = keywords.get(k) {
                    kw.push(name.clone());
                }
            }
        }
        let guid = f("guid").map(|g| {
            let mut a = [0u8; 20];
            a.copy_from_slice(g.get(b));
            a
        });
        let hint = HintRecord {
            expunged: rflags & REC_FLAG_EXPUNGED != 0,
            system_flags: get("system_flags").unwrap_or(0) as u8 & 0x1f,
            keywords: kw,
            internal_date: get("internal_date").map(|t| InternalDate {
                timestamp: t as i64,
                offset_minutes: get("internal_date_offset").map_or(0, |o| o as u16 as i16),
            }),
            modseq: get("modseq"),
            guid,
            save_date: get("save_date").map(|t| t as i64).filter(|t| *t != 0),
        };
        hints.records.insert(uid, hint);
    }
}

/// Reads a message file, bounded; `None` (reported) if unreadable.
fn read_file(path: &Path) -> Option<(Vec<u8>, Option<i64>)> {
    let f = fs::File::open(path).ok()?;
    let mtime = f
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let mut buf = Vec::new();
    match f.take(MAX_MESSAGE_SIZE + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 <= MAX_MESSAGE_SIZE => Some((buf, mtime)),
        Ok(_) => {
            tracing::warn!(file = %path.display(), "message file too large; skipped");
            None
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "message file unreadable; skipped");
            None
        }
    }
}

fn quarantine(dir: &Path, uid: u32) {
    let q = dir.join(QUARANTINE_DIR);
    let _ = fs::create_dir_all(&q);
    let to = q.join(format!("{uid}.{}", std::process::id()));
    if let Err(e) = fs::rename(msg_path(dir, uid), &to) {
        tracing::warn!(uid, error = %e, "could not quarantine message file");
        let _ = fs::remove_file(msg_path(dir, uid));
    }
}

/// Rebuilds the mailbox in `dir` from its message files and `hints`.
/// `new_uid_validity` is used when no trustworthy header survives.
pub(crate) fn rebuild(
    dir: &Path,
    hints: Hints,
    new_uid_validity: u32,
    durable: bool,
) -> Result<ReconstructReport> {
    create_layout(dir)?;
    let mut report = ReconstructReport {
        skipped: hints.skipped,
        ..ReconstructReport::default()
    };
    // leftovers of interrupted writes
    if let Ok(rd) = fs::read_dir(dir.join(TMP_DIR)) {
        for e in rd.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    let mut files: BTreeSet<u32> = BTreeSet::new();
    for e in fs::read_dir(dir.join(MSG_DIR))?.flatten() {
        let name = e.file_name();
        match name
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|u| *u > 0)
        {
            Some(uid) if name.to_str() == Some(&uid.to_string()) => {
                files.insert(uid);
            }
            _ => {
                tracing::warn!(file = %e.path().display(), "unexpected file in message directory; ignored");
                report.skipped += 1;
            }
        }
    }
    let hh = hints.header;
    let mut max_modseq = hh.map_or(1, |h| h.highest_modseq);
    for r in hints.records.values() {
        if let Some(m) = r.modseq {
            max_modseq = max_modseq.max(m);
        }
    }
    let new_modseq = max_modseq + 1;
    let uids: BTreeSet<u32> = files
        .iter()
        .copied()
        .chain(hints.records.keys().copied())
        .collect();

    let mut keywords: Vec<String> = Vec::new();
    let mut cache = cache_file_header().to_vec();
    let mut records: Vec<Record> = Vec::with_capacity(uids.len());
    for uid in uids {
        let hint = hints.records.get(&uid);
        if hint.is_some_and(|h| h.expunged) {
            if files.contains(&uid) {
                let _ = fs::remove_file(msg_path(dir, uid));
            }
            let h = hint.cloned().unwrap_or_default();
            records.push(Record {
                uid,
                rflags: REC_FLAG_EXPUNGED,
                modseq: h.modseq.unwrap_or(new_modseq),
                guid: h.guid.unwrap_or_default(),
                ..Record::default()
            });
            continue;
        }
        let lost = |report: &mut ReconstructReport, records: &mut Vec<Record>| {
            report.lost += 1;
            records.push(Record {
                uid,
                rflags: REC_FLAG_EXPUNGED,
                modseq: new_modseq,
                ..Record::default()
            });
        };
        if hint.is_none() && hh.is_some_and(|h| uid >= h.uid_next) {
            // past the UIDs a header that still holds vouches for: the file
            // of a commit a crash interrupted, never acknowledged and
            // possibly short (FORMAT.md, "Commit order"): set aside, not
            // taken for a message
            tracing::warn!(dir = %dir.display(), uid, "message file past UIDNEXT (an interrupted commit); quarantined");
            report.skipped += 1;
            quarantine(dir, uid);
            continue;
        }
        if !files.contains(&uid) {
            tracing::warn!(dir = %dir.display(), uid, "message file missing; reported as expunged");
            lost(&mut report, &mut records);
            continue;
        }
        let Some((bytes, mtime)) = read_file(&msg_path(dir, uid)) else {
            report.skipped += 1;
            quarantine(dir, uid);
            lost(&mut report, &mut records);
            continue;
        };
        let guid = MessageGuid::of(&bytes).0;
        let (system_flags, kws, date, modseq, saved) = match hint {
            Some(h) if h.guid.is_none() || h.guid == Some(guid) => {
                report.kept += 1;
                (
                    h.system_flags,
                    h.keywords.clone(),
                    h.internal_date,
                    h.modseq.filter(|_| h.guid.is_some()).unwrap_or(new_modseq),
                    h.save_date,
                )
            }
            Some(_) => {
                tracing::error!(dir = %dir.display(), uid, "message file does not match its GUID; quarantined");
                report.quarantined += 1;
                quarantine(dir, uid);
                lost(&mut report, &mut records);
                continue;
            }
            None => {
                report.recovered += 1;
                (0, Vec::new(), None, new_modseq, None)
            }
        };
        let mut user_flags = 0u128;
        for k in kws {
            let i = match keywords.iter().position(|x| x.eq_ignore_ascii_case(&k)) {
                Some(i) => i,
                None if keywords.len() < crate::layout::MAX_KEYWORDS => {
                    keywords.push(k);
                    keywords.len() - 1
                }
                None => continue,
            };
            user_flags |= 1u128 << i;
        }
        let summary = MessageSummary::parse(&bytes);
        let payload = mailroom_core::mime::codec::encode(&summary);
        let crc = crc32fast::hash(&payload);
        let off = cache.len() as u64;
        cache.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        cache.extend_from_slice(&crc.to_le_bytes());
        cache.extend_from_slice(&payload);
        let date = date.unwrap_or(InternalDate {
            timestamp: mtime.unwrap_or(0),
            offset_minutes: 0,
        });
        records.push(Record {
            uid,
            rflags: if summary.sent_date.is_some() {
                REC_FLAG_HAS_SENT_DATE
            } else {
                0
            },
            system_flags: system_flags & 0x1f,
            date_offset: date.offset_minutes,
            internal_date: date.timestamp,
            sent_date: summary.sent_date.map_or(0, |s| s.0),
            sent_offset: summary.sent_date.map_or(0, |s| s.1),
            header_size: u32::try_from(summary.header.len()).unwrap_or(u32::MAX),
            size: bytes.len() as u64,
            modseq,
            user_flags,
            guid,
            cache_len: (CACHE_FRAME_SIZE + payload.len()) as u32,
            cache_offset: off,
            cache_crc: crc,
            // The old record's SAVEDATE, else the file's mtime (the file
            // was written when the message was saved).
            save_date: saved.or(mtime).unwrap_or(0),
        });
    }
    let max_uid = records.last().map_or(0, |r| r.uid);
    let mut h = Header::new(hh.map_or(new_uid_validity, |h| h.uid_validity).max(1));
    if let Some(id) = hh.and_then(|h| h.mailbox_id) {
        h.mailbox_id = id;
    }
    h.uid_next = hh.map_or(1, |h| h.uid_next).max(max_uid + 1);
    h.recent_uid = hh
        .and_then(|h| h.recent_uid)
        .unwrap_or(h.uid_next)
        .min(h.uid_next);
    h.expunge_horizon = hh.map_or(0, |h| h.expunge_horizon);
    // A reconstruct that changed nothing (every record kept as it was)
    // keeps HIGHESTMODSEQ: clients' caches stay valid, and a replication
    // peer does not take the mailbox for one changed on its own.
    h.highest_modseq = if records.iter().any(|r| r.modseq == new_modseq) {
        new_modseq
    } else {
        max_modseq
    };
    h.record_count = records.len() as u32;
    h.cache_end = cache.len() as u64;
    h.keyword_count = keywords.len() as u32;
    let mut counts = Counts::default();
    for r in &records {
        counts.add(r, h.recent_uid, &keywords);
    }
    h.set_counts(&counts);
    let mut index = h.encode().to_vec();
    for r in &records {
        index.extend_from_slice(&r.encode());
    }
    // per-user seen files: keep those that still check
    if let Ok(rd) = fs::read_dir(dir.join(SEEN_DIR)) {
        for e in rd.flatten() {
            let ok = fs::read(e.path())
                .ok()
                .is_some_and(|d| decode_seen(&d).is_ok());
            if !ok {
                tracing::warn!(file = %e.path().display(), "seen file corrupt; removed");
                let _ = fs::remove_file(e.path());
            }
        }
    }
    write_atomic(
        &dir.join(KEYWORDS_FILE),
        &encode_keywords(&keywords),
        durable,
    )?;
    write_atomic(&dir.join(CACHE_FILE), &cache, durable)?;
    write_atomic(&dir.join(INDEX_FILE), &index, durable)?;
    sync_dir(dir, durable)?;
    report.messages = counts.exists;
    report.quota_bytes = counts.quota_bytes;
    tracing::info!(dir = %dir.display(), ?report, "mailbox rebuilt");
    Ok(report)
}

/// Reconstructs a mailbox under its write lock; the next access reloads it.
pub(crate) fn reconstruct_locked(
    shared: &Shared,
    slot: &mut Slot,
    new_uid_validity: u32,
) -> Result<ReconstructReport> {
    if slot.deleted {
        return Err(Error::NoSuchMailbox(shared.mref().to_string()));
    }
    Shared::unload(slot);
    let hints = read_hints(&shared.dir);
    let report = rebuild(&shared.dir, hints, new_uid_validity, shared.ctx.durable)?;
    if let Ok(mut q) = shared.ctx.queue.lock() {
        q.remove(&shared.mref());
    }
    Ok(report)
}

/// Converts an index of an older version in place (called on first open,
/// under the mailbox's write lock). Old records are read through their
/// version's field table; the cache is rebuilt from the message files.
pub(crate) fn upgrade(shared: &Shared, from: u32) -> Result<()> {
    let hints = read_hints(&shared.dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32);
    let fallback = hints.header.map_or(now, |h| h.uid_validity);
    tracing::info!(dir = %shared.dir.display(), from, to = CURRENT_VERSION, "upgrading mailbox format");
    let report = rebuild(&shared.dir, hints, fallback, shared.ctx.durable)?;
    tracing::info!(dir = %shared.dir.display(), ?report, "mailbox upgraded");
    Ok(())
}

/// Builds a mailbox from message files already placed in `dir/msg/`
/// (Maildir import) with the flags and dates the import found.
pub(crate) fn build_imported(
    dir: &Path,
    header: HintHeader,
    records: BTreeMap<u32, HintRecord>,
    skipped: u32,
    ctx: &Ctx,
) -> Result<ReconstructReport> {
    let hints = Hints {
        header: Some(header),
        records,
        skipped,
    };
    rebuild(dir, hints, header.uid_validity, ctx.durable)
}
