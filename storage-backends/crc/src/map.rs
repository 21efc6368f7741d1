//! Read-only memory maps of index files.
//!
//! This is the crate's only `unsafe` code.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// A read-only shared map of a file prefix.
#[derive(Debug)]
pub(crate) struct Map {
    map: Option<memmap2::Mmap>,
}

impl Map {
    /// Maps the first `len` bytes of `file` (an empty map for `len == 0`).
    pub(crate) fn new(file: &File, len: usize) -> io::Result<Map> {
        if len == 0 {
            return Ok(Map { map: None });
        }
        // SAFETY: `memmap2::Mmap` is unsafe because the file may change or
        // shrink under the map. The files mapped here are index files of one
        // data directory, which one process at a time owns (the data-directory
        // lock taken by `CrcStore::open`). Inside that process, an index file
        // is only ever written with `pwrite` by a holder of the mailbox's write
        // lock, while readers of the map hold its read lock, so no reader sees
        // a write in progress; and index files are never truncated in place:
        // repack and reconstruct write a new file and rename it over the old
        // one, so an old map keeps its own (unlinked) inode. `len` never
        // exceeds the file's length when the map is made (the caller extends
        // the file first), so no access past the end can fault. A person who
        // truncates a live index file by hand can still crash the process
        // (SIGBUS), as with any mmap-based store; FORMAT.md says so.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        Ok(Map { map: Some(map) })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }
}
