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

/// A mailbox's MAILBOXID (RFC 8474): 16 bytes a store gives a mailbox when
/// it is created and keeps for its life (RENAME keeps it); a mailbox
/// created again under the same name gets a new one. All zero means "not
/// assigned" in stores that persist it. Written as 32 lower-case hex
/// digits, which fits RFC 8474's `objectid` (1 to 255 of letters, digits,
/// `_` and `-`).
///
/// ```
/// use mailroom_core::MailboxId;
/// let a = MailboxId::generate(b"alice/INBOX");
/// let b = MailboxId::generate(b"alice/INBOX");
/// assert_ne!(a, b);
/// assert_eq!(a.to_string().len(), 32);
/// assert!(!a.is_unassigned());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MailboxId(pub [u8; 16]);

impl MailboxId {
    /// A new id: the first 16 bytes of the SHA-1 of `seed` (something that
    /// names the mailbox, such as its path), the time in nanoseconds, the
    /// process id and a process-wide counter, so that no two calls give
    /// the same id.
    pub fn generate(seed: &[u8]) -> MailboxId {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut h = Sha1::new();
        h.update(seed);
        h.update(nanos.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let digest = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        if out == [0u8; 16] {
            out[0] = 1;
        }
        MailboxId(out)
    }

    /// Whether this is the all-zero "not assigned" value.
    pub fn is_unassigned(&self) -> bool {
        self.0 == [0u8; 16]
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({self})")
    }
}
