//! Events a store or delivery pipeline publishes (for archive journaling,
//! billing and metrics).

use crate::mailbox::MailboxRef;
use crate::types::Uid;

/// Something that happened to a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message was appended or delivered.
    MessageAppended {
        /// Where.
        mailbox: MailboxRef,
        /// Its UID.
        uid: Uid,
        /// Its size in bytes.
        size: u64,
    },
    /// Messages were expunged.
    MessagesExpunged {
        /// Where.
        mailbox: MailboxRef,
        /// Which.
        uids: Vec<Uid>,
    },
}

/// Receives events. Implementations must not block.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Called after the change is durable.
    fn publish(&self, event: &Event);
}
