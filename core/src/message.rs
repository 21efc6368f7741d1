//! Messages as the store holds them: metadata records, new messages, dates.

use bytes::Bytes;

use crate::flags::Flags;
use crate::guid::MessageGuid;
use crate::types::{ModSeq, Uid, UidValidity};

/// A point in time with the UTC offset it was given in (IMAP INTERNALDATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InternalDate {
    /// Seconds since the Unix epoch, UTC.
    pub timestamp: i64,
    /// The zone the date is shown in, in minutes east of UTC.
    pub offset_minutes: i16,
}

impl InternalDate {
    /// The current time, shown in UTC.
    pub fn now() -> InternalDate {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        InternalDate {
            timestamp,
            offset_minutes: 0,
        }
    }

    /// The calendar day (days since the epoch) in the date's own zone, as
    /// SEARCH BEFORE/ON/SINCE compare it (RFC 3501 §6.4.4 ignores time and zone).
    pub fn local_day(&self) -> i64 {
        (self.timestamp + i64::from(self.offset_minutes) * 60).div_euclid(86_400)
    }
}

/// The per-message record of a mailbox: everything but the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID.
    pub uid: Uid,
    /// Flags as the viewer sees them (per-user `\Seen` on shared mailboxes).
    pub flags: Flags,
    /// The modseq of the last change to this message.
    pub modseq: ModSeq,
    /// INTERNALDATE.
    pub internal_date: InternalDate,
    /// RFC822.SIZE: the exact number of bytes of the message.
    pub size: u64,
    /// SHA-1 of the bytes.
    pub guid: MessageGuid,
    /// SAVEDATE (RFC 8514): when the message was saved in this mailbox
    /// (APPEND, delivery, COPY or MOVE into it), Unix seconds; `None` for a
    /// message stored before the store kept it.
    pub save_date: Option<i64>,
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Initial flags.
    pub flags: Flags,
    /// INTERNALDATE; `None` means now.
    pub internal_date: Option<InternalDate>,
    /// The message bytes, as the client sent them.
    pub content: Bytes,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// UIDVALIDITY of the mailbox appended to (for APPENDUID).
    pub uid_validity: UidValidity,
    /// The UID the message took.
    pub uid: Uid,
    /// Its modseq.
    pub modseq: ModSeq,
}

/// The result of a COPY or MOVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    /// UIDVALIDITY of the destination (for COPYUID).
    pub uid_validity: UidValidity,
    /// (source UID, destination UID), in source UID order.
    pub mapping: Vec<(Uid, Uid)>,
}

/// The result of a STORE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreResult {
    /// Records whose flags changed, with their new modseq.
    pub changed: Vec<MessageMeta>,
    /// UIDs left alone because their modseq exceeded UNCHANGEDSINCE (RFC 7162 `[MODIFIED]`).
    pub modified: Vec<Uid>,
}

/// A mailbox's full state at SELECT time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSnapshot {
    /// UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// UIDNEXT.
    pub uid_next: Uid,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// Every message, in ascending UID order.
    pub messages: Vec<MessageMeta>,
    /// MAILBOXID (RFC 8474).
    pub mailbox_id: crate::MailboxId,
}

/// What changed in a mailbox after a given modseq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// HIGHESTMODSEQ now.
    pub highest_modseq: ModSeq,
    /// New messages and messages whose flags changed, in ascending UID order.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged after the modseq, with the modseq of their expunge, ascending UID.
    pub expunged: Vec<(Uid, ModSeq)>,
    /// False if expunges that old are no longer remembered (after a repack):
    /// a QRESYNC client must then be sent every UID it might still hold.
    pub expunged_complete: bool,
}

/// A message's content: the bytes, shared (an mmap or a buffer) without copying.
pub type MessageContent = Bytes;
