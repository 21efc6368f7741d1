//! OBJECTID (RFC 8474): server-assigned ids for mailboxes and messages.
//!
//! - MAILBOXID is the store's [`MailboxId`] (kept for the mailbox's life,
//!   across RENAME; a mailbox made again gets a new one), sent in the
//!   `[MAILBOXID (id)]` code of CREATE's OK and of SELECT/EXAMINE, and as
//!   the MAILBOXID STATUS item (also through LIST-STATUS).
//! - EMAILID is the message's GUID (the SHA-1 of its bytes) in hex: it is
//!   the same for a message in every mailbox it was copied or moved to, as
//!   §5.1 asks; two separate APPENDs of the very same bytes share it too,
//!   which the RFC allows (the id names the immutable message).
//! - THREADID is NIL for every message: the stores keep no thread ids
//!   (§5.2 lets a server answer NIL), and `SEARCH THREADID` matches none.
//! - Every id is an `objectid` (§7): 1 to 255 of letters, digits, `_`, `-`.

use mailroom_core::{MailboxId, MessageMeta};

/// The most octets of an `objectid`.
pub const MAX_OBJECTID: usize = 255;

/// Whether `b` may appear in an `objectid`.
pub(crate) fn is_objectid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The EMAILID of a message.
pub(crate) fn email_id(meta: &MessageMeta) -> String {
    meta.guid.to_string()
}

/// The MAILBOXID as sent.
pub(crate) fn mailbox_id(id: &MailboxId) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::MessageGuid;

    #[test]
    fn ids_are_objectids() {
        let id = mailbox_id(&MailboxId::generate(b"x"));
        assert!(id.bytes().all(is_objectid_char) && id.len() <= MAX_OBJECTID);
        let g = MessageGuid::of(b"abc").to_string();
        assert!(g.bytes().all(is_objectid_char) && g.len() == 40);
        assert!(!is_objectid_char(b'.') && !is_objectid_char(b' '));
    }
}
