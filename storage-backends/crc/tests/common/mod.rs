//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::Path;

use mailroom_core::{Flags, MailboxName, MailboxRef, NewMessage};
use mailroom_store_crc::{CrcOptions, CrcStore};

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Opens a store with the given durability.
pub fn open(dir: &Path, durability: bool) -> CrcStore {
    CrcStore::open(
        dir,
        CrcOptions {
            durability,
            ..CrcOptions::default()
        },
    )
    .unwrap()
}

pub fn inbox(user: &str) -> MailboxRef {
    MailboxRef::new(user, MailboxName::inbox())
}

/// A distinct small message.
pub fn message(n: u64) -> Vec<u8> {
    format!(
        "From: Sender {n} <s{n}@example.org>\r\nTo: rcpt@example.com\r\nSubject: message {n}\r\n\
         Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{n}@example.org>\r\n\r\n\
         Body of message {n}.\r\n{}\r\n",
        "x".repeat((n % 37) as usize)
    )
    .into_bytes()
}

pub fn new_message(n: u64, flags: Flags) -> NewMessage {
    NewMessage {
        flags,
        internal_date: None,
        content: message(n).into(),
    }
}
