//! Byte layouts of the index file, as field tables per format version.
//!
//! Every on-disk integer is little-endian. The tables here are the single
//! source of truth: the encoders use the constants, FORMAT.md documents the
//! same tables (a test parses FORMAT.md and compares), and the upgrade path
//! reads older versions through their own tables.

/// One fixed-size field of a header or record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Name as FORMAT.md writes it.
    pub name: &'static str,
    /// Byte offset from the start of the header or record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

impl Field {
    const fn new(name: &'static str, offset: usize, size: usize) -> Field {
        Field { name, offset, size }
    }

    /// The field's bytes in `buf`.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.offset..self.offset + self.size]
    }

    /// Reads the field as a little-endian unsigned integer (fields of 1, 2, 4 or 8 bytes).
    pub fn read_uint(&self, buf: &[u8]) -> u64 {
        let mut v = [0u8; 8];
        let n = self.size.min(8);
        v[..n].copy_from_slice(&buf[self.offset..self.offset + n]);
        u64::from_le_bytes(v)
    }

    /// Writes `bytes` (whose length must equal the field size) into `buf`.
    pub fn put(&self, buf: &mut [u8], bytes: &[u8]) {
        buf[self.offset..self.offset + self.size].copy_from_slice(bytes);
    }

    /// Writes a little-endian unsigned integer, truncated to the field size.
    pub fn put_uint(&self, buf: &mut [u8], v: u64) {
        let b = v.to_le_bytes();
        let n = self.size.min(8);
        buf[self.offset..self.offset + n].copy_from_slice(&b[..n]);
    }
}

/// The magic at the start of every index file.
pub const INDEX_MAGIC: &[u8; 8] = b"MRCRCIDX";
/// The magic at the start of every cache file.
pub const CACHE_MAGIC: &[u8; 8] = b"MRCRCCAC";
/// The magic of the keyword table file.
pub const KEYWORDS_MAGIC: &[u8; 8] = b"MRCRCKWD";
/// The magic of a per-user seen file.
pub const SEEN_MAGIC: &[u8; 8] = b"MRCRCSEN";

/// The index format version this code writes.
pub const CURRENT_VERSION: u32 = 1;

/// Header flag: a multi-record change (store, expunge) is in progress; the
/// derived counts must be recomputed from the records before use.
pub const HDR_FLAG_DIRTY: u32 = 1;
/// Header flag: `state_crc` is the replication state CRC (the XOR of the
/// live records' `ReplicaRecord::state_crc`). An index without it was
/// written before replication and is recounted once when loaded.
pub const HDR_FLAG_REPLICATION_CRC: u32 = 2;
/// Header flag: the records from `tail_start` to `record_count` were made
/// durable by the same fsync as this header (the last commit of new
/// messages); `tail_crc` is their CRC. A load whose tail does not hold
/// finds the mailbox corrupt (FORMAT.md, "Commit order").
pub const HDR_FLAG_TAIL: u32 = 4;

/// Record flag: the message is expunged (kept for QRESYNC until a repack).
pub const REC_FLAG_EXPUNGED: u8 = 1;
/// Record flag: the record carries a sent date.
pub const REC_FLAG_HAS_SENT_DATE: u8 = 2;

/// Number of keyword bits in a record.
pub const MAX_KEYWORDS: usize = 128;

/// Version 1 index header fields.
pub mod hdr {
    use super::Field;
    /// `MRCRCIDX`.
    pub const MAGIC: Field = Field::new("magic", 0, 8);
    /// Format version.
    pub const VERSION: Field = Field::new("version", 8, 4);
    /// Size of this header in bytes (128).
    pub const HEADER_SIZE: Field = Field::new("header_size", 12, 4);
    /// Size of one record in bytes (128).
    pub const RECORD_SIZE: Field = Field::new("record_size", 16, 4);
    /// Header flags (bit 0: dirty).
    pub const FLAGS: Field = Field::new("flags", 20, 4);
    /// UIDVALIDITY.
    pub const UID_VALIDITY: Field = Field::new("uid_validity", 24, 4);
    /// UIDNEXT.
    pub const UID_NEXT: Field = Field::new("uid_next", 28, 4);
    /// Number of records (live and expunged) after the header.
    pub const RECORD_COUNT: Field = Field::new("record_count", 32, 4);
    /// Live messages.
    pub const EXISTS: Field = Field::new("exists", 36, 4);
    /// Live messages without the owner's \Seen.
    pub const UNSEEN: Field = Field::new("unseen", 40, 4);
    /// Live messages with \Deleted.
    pub const DELETED: Field = Field::new("deleted", 44, 4);
    /// Live messages with UID >= recent_uid.
    pub const RECENT: Field = Field::new("recent", 48, 4);
    /// Lowest UID not yet claimed as \Recent.
    pub const RECENT_UID: Field = Field::new("recent_uid", 52, 4);
    /// HIGHESTMODSEQ.
    pub const HIGHEST_MODSEQ: Field = Field::new("highest_modseq", 56, 8);
    /// Sum of live message sizes.
    pub const QUOTA_BYTES: Field = Field::new("quota_bytes", 64, 8);
    /// Expunges with modseq <= this were dropped by a repack.
    pub const EXPUNGE_HORIZON: Field = Field::new("expunge_horizon", 72, 8);
    /// Committed length of the cache file.
    pub const CACHE_END: Field = Field::new("cache_end", 80, 8);
    /// XOR of the live records' state CRCs.
    pub const STATE_CRC: Field = Field::new("state_crc", 88, 4);
    /// Number of entries of the keyword table the records may use.
    pub const KEYWORD_COUNT: Field = Field::new("keyword_count", 92, 4);
    /// With flag bit 2: the `record_count` before the last commit.
    pub const TAIL_START: Field = Field::new("tail_start", 96, 4);
    /// With flag bit 2: CRC-32 of the records `tail_start..record_count`.
    pub const TAIL_CRC: Field = Field::new("tail_crc", 100, 4);
    /// MAILBOXID (RFC 8474), 16 bytes; all zero: not assigned yet.
    pub const MAILBOX_ID: Field = Field::new("mailbox_id", 104, 16);
    /// Zero.
    pub const RESERVED: Field = Field::new("reserved", 120, 4);
    /// CRC32 of bytes 0..124.
    pub const CRC: Field = Field::new("header_crc", 124, 4);
}

/// Version 1 index record fields.
pub mod rec {
    use super::Field;
    /// UID.
    pub const UID: Field = Field::new("uid", 0, 4);
    /// Record flags (bit 0 expunged, bit 1 has sent date).
    pub const RFLAGS: Field = Field::new("record_flags", 4, 1);
    /// System flags (\Seen 1, \Answered 2, \Flagged 4, \Deleted 8, \Draft 16).
    pub const SYSTEM_FLAGS: Field = Field::new("system_flags", 5, 1);
    /// INTERNALDATE zone, minutes east of UTC (i16).
    pub const DATE_OFFSET: Field = Field::new("internal_date_offset", 6, 2);
    /// INTERNALDATE, seconds since the epoch (i64).
    pub const INTERNAL_DATE: Field = Field::new("internal_date", 8, 8);
    /// Date: header, seconds since the epoch (i64).
    pub const SENT_DATE: Field = Field::new("sent_date", 16, 8);
    /// Date: header zone (i16).
    pub const SENT_OFFSET: Field = Field::new("sent_date_offset", 24, 2);
    /// Zero.
    pub const RESERVED1: Field = Field::new("reserved1", 26, 2);
    /// Length of the header block.
    pub const HEADER_SIZE: Field = Field::new("header_size", 28, 4);
    /// RFC822.SIZE.
    pub const SIZE: Field = Field::new("size", 32, 8);
    /// MODSEQ of the last change (of the expunge for expunged records).
    pub const MODSEQ: Field = Field::new("modseq", 40, 8);
    /// 128 keyword bits; bit i is entry i of the keyword table.
    pub const USER_FLAGS: Field = Field::new("user_flags", 48, 16);
    /// SHA-1 of the message bytes.
    pub const GUID: Field = Field::new("guid", 64, 20);
    /// Length of the cache record (frame included).
    pub const CACHE_LEN: Field = Field::new("cache_len", 84, 4);
    /// Offset of the cache record in the cache file.
    pub const CACHE_OFFSET: Field = Field::new("cache_offset", 88, 8);
    /// CRC32 of the cache record's payload.
    pub const CACHE_CRC: Field = Field::new("cache_crc", 96, 4);
    /// SAVEDATE (RFC 8514), seconds since the epoch; 0: not known.
    pub const SAVE_DATE: Field = Field::new("save_date", 100, 8);
    /// Zero.
    pub const RESERVED2: Field = Field::new("reserved2", 108, 16);
    /// CRC32 of bytes 0..124.
    pub const CRC: Field = Field::new("record_crc", 124, 4);
}

/// Size of the version 1 header.
pub const HEADER_SIZE: usize = 128;
/// Size of a version 1 record.
pub const RECORD_SIZE: usize = 128;
/// Size of the cache file header (magic, version, reserved).
pub const CACHE_HEADER_SIZE: usize = 16;
/// Size of a cache record's frame (length and CRC before the payload).
pub const CACHE_FRAME_SIZE: usize = 8;
/// The largest cache record accepted, a bound against corrupt lengths.
pub const MAX_CACHE_RECORD: usize = 16 * 1024 * 1024;

/// The version 1 header table, in offset order.
pub const HEADER_V1: &[Field] = &[
    hdr::MAGIC,
    hdr::VERSION,
    hdr::HEADER_SIZE,
    hdr::RECORD_SIZE,
    hdr::FLAGS,
    hdr::UID_VALIDITY,
    hdr::UID_NEXT,
    hdr::RECORD_COUNT,
    hdr::EXISTS,
    hdr::UNSEEN,
    hdr::DELETED,
    hdr::RECENT,
    hdr::RECENT_UID,
    hdr::HIGHEST_MODSEQ,
    hdr::QUOTA_BYTES,
    hdr::EXPUNGE_HORIZON,
    hdr::CACHE_END,
    hdr::STATE_CRC,
    hdr::KEYWORD_COUNT,
    hdr::TAIL_START,
    hdr::TAIL_CRC,
    hdr::MAILBOX_ID,
    hdr::RESERVED,
    hdr::CRC,
];

/// The version 1 record table, in offset order.
pub const RECORD_V1: &[Field] = &[
    rec::UID,
    rec::RFLAGS,
    rec::SYSTEM_FLAGS,
    rec::DATE_OFFSET,
    rec::INTERNAL_DATE,
    rec::SENT_DATE,
    rec::SENT_OFFSET,
    rec::RESERVED1,
    rec::HEADER_SIZE,
    rec::SIZE,
    rec::MODSEQ,
    rec::USER_FLAGS,
    rec::GUID,
    rec::CACHE_LEN,
    rec::CACHE_OFFSET,
    rec::CACHE_CRC,
    rec::SAVE_DATE,
    rec::RESERVED2,
    rec::CRC,
];

/// Version 0 (the first, pre-release layout: no cache, no keywords, 64-byte
/// header and records). Only read, to upgrade.
pub mod v0 {
    use super::Field;
    /// Size of the version 0 header.
    pub const HEADER_SIZE: usize = 64;
    /// Size of a version 0 record.
    pub const RECORD_SIZE: usize = 64;
    /// Version 0 header.
    pub const HEADER: &[Field] = &[
        Field::new("magic", 0, 8),
        Field::new("version", 8, 4),
        Field::new("uid_validity", 12, 4),
        Field::new("uid_next", 16, 4),
        Field::new("record_count", 20, 4),
        Field::new("highest_modseq", 24, 8),
        Field::new("reserved", 32, 28),
        Field::new("header_crc", 60, 4),
    ];
    /// Version 0 record.
    pub const RECORD: &[Field] = &[
        Field::new("uid", 0, 4),
        Field::new("record_flags", 4, 1),
        Field::new("system_flags", 5, 1),
        Field::new("reserved1", 6, 2),
        Field::new("internal_date", 8, 8),
        Field::new("size", 16, 8),
        Field::new("modseq", 24, 8),
        Field::new("guid", 32, 20),
        Field::new("reserved2", 52, 8),
        Field::new("record_crc", 60, 4),
    ];
}

/// A version's layout, as the generic upgrade reads it.
#[derive(Debug, Clone, Copy)]
pub struct VersionLayout {
    /// The version number.
    pub version: u32,
    /// Header size.
    pub header_size: usize,
    /// Record size.
    pub record_size: usize,
    /// Header fields.
    pub header: &'static [Field],
    /// Record fields.
    pub record: &'static [Field],
}

impl VersionLayout {
    /// A header field by name.
    pub fn header_field(&self, name: &str) -> Option<Field> {
        self.header.iter().copied().find(|f| f.name == name)
    }

    /// Whether `b` (one header or record of this version) passes the CRC in
    /// its last field, which covers every byte before it.
    pub fn crc_holds(fields: &[Field], b: &[u8]) -> bool {
        let Some(crc) = fields.last() else {
            return false;
        };
        crc.size == 4
            && crc.offset + 4 == b.len()
            && crc32fast::hash(&b[..crc.offset]) as u64 == crc.read_uint(b)
    }

    /// The version of an index header, if one known version's magic,
    /// version field and CRC all hold (so a flipped version byte is a
    /// corruption, never mistaken for an older format).
    pub fn detect(b: &[u8]) -> Option<u32> {
        VERSIONS.iter().rev().find_map(|l| {
            let h = b.get(..l.header_size)?;
            let ok = &h[..8] == INDEX_MAGIC
                && l.header_field("version").map(|f| f.read_uint(h)) == Some(u64::from(l.version))
                && VersionLayout::crc_holds(l.header, h);
            ok.then_some(l.version)
        })
    }

    /// A record field by name.
    pub fn record_field(&self, name: &str) -> Option<Field> {
        self.record.iter().copied().find(|f| f.name == name)
    }
}

/// Every known version's layout, oldest first.
pub const VERSIONS: &[VersionLayout] = &[
    VersionLayout {
        version: 0,
        header_size: v0::HEADER_SIZE,
        record_size: v0::RECORD_SIZE,
        header: v0::HEADER,
        record: v0::RECORD,
    },
    VersionLayout {
        version: 1,
        header_size: HEADER_SIZE,
        record_size: RECORD_SIZE,
        header: HEADER_V1,
        record: RECORD_V1,
    },
];

/// The layout of a version, if known.
pub fn layout_of(version: u32) -> Option<&'static VersionLayout> {
    VERSIONS.iter().find(|v| v.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contiguous(fields: &[Field], size: usize) {
        let mut at = 0;
        for f in fields {
            assert_eq!(f.offset, at, "field {} not contiguous", f.name);
            at += f.size;
        }
        assert_eq!(at, size);
        // the CRC is the last four bytes
        let last = fields.last().unwrap();
        assert!(last.name.ends_with("crc") && last.size == 4);
    }

    #[test]
    fn tables_are_contiguous() {
        for v in VERSIONS {
            contiguous(v.header, v.header_size);
            contiguous(v.record, v.record_size);
            assert_eq!(v.header[0].name, "magic");
        }
    }

    #[test]
    fn uint_roundtrip() {
        let mut buf = [0u8; 16];
        let f = Field::new("x", 2, 4);
        f.put_uint(&mut buf, 0xdead_beef);
        assert_eq!(f.read_uint(&buf), 0xdead_beef);
        assert_eq!(buf[2], 0xef);
    }
}
