//! `MessageGuid`: the SHA-1 of a message's bytes.

use std::fmt;

use sha1::{Digest, Sha1};

/// The SHA-1 of a message's exact bytes: its identity across mailboxes,
/// replicas and reconstructs.
///
/// ```
/// use mailroom_core::MessageGuid;
/// let g = MessageGuid::of(b"abc");
/// assert_eq!(g.to_string(), "a9993e364706816aba3e25717850c26c9cd0d89d");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageGuid(pub [u8; 20]);

impl MessageGuid {
    /// Hashes the bytes.
    pub fn of(bytes: &[u8]) -> MessageGuid {
        let digest = Sha1::digest(bytes);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest);
        MessageGuid(out)
    }

    /// Parses 40 hex digits.
    pub fn from_hex(s: &str) -> Option<MessageGuid> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(MessageGuid(out))
    }
}

impl fmt::Display for MessageGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MessageGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageGuid({self})")
    }
}
