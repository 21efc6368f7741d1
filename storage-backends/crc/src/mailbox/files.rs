//! The layout of a mailbox directory and its small files: file names,
//! temporary and message file paths, an empty mailbox, the keyword table
//! and seen files (FORMAT.md).

use std::fs::{self};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mailroom_core::Result;

use crate::fsutil::{sync_dir, write_atomic};
use crate::index::Header;
use crate::layout::{
    CACHE_HEADER_SIZE, CACHE_MAGIC, CURRENT_VERSION, KEYWORDS_MAGIC, MAX_KEYWORDS, SEEN_MAGIC,
};

use super::{CACHE_FILE, INDEX_FILE, MSG_DIR, SEEN_DIR, TMP_DIR};

pub(super) static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

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
pub(super) enum SmallFile {
    Keywords,
    Seen,
}

impl SmallFile {
    pub(super) fn magic(self) -> &'static [u8; 8] {
        match self {
            SmallFile::Keywords => KEYWORDS_MAGIC,
            SmallFile::Seen => SEEN_MAGIC,
        }
    }

    /// The errors for a bad header, an unknown version and a CRC mismatch.
    pub(super) fn errors(self) -> [&'static str; 3] {
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

    pub(super) fn encode(self, count: usize, body: &[u8]) -> Vec<u8> {
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
    pub(super) fn decode(self, b: &[u8]) -> std::result::Result<(usize, &[u8]), &'static str> {
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
