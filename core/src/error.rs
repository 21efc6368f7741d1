//! The error type shared by every core trait.

use crate::acl::Right;
use crate::types::Uid;

/// A sequence set, flag, mailbox name or other value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    reason: &'static str,
}

impl ParseError {
    /// A parse error with a fixed, client-safe reason.
    pub fn new(reason: &'static str) -> ParseError {
        ParseError { reason }
    }

    /// The reason, safe to show to a client.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Everything a [`Storage`](crate::Storage), [`Quota`](crate::Quota),
/// [`Authenticator`](crate::Authenticator) or [`Delivery`](crate::Delivery)
/// can fail with.
///
/// The first group of variants says the peer asked for something that cannot
/// be done (protocols answer `NO` with a response code); the second says the
/// server itself failed (`NO [SERVERBUG]`, a 4xx, `-ERR [SYS/TEMP]`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The mailbox does not exist (IMAP `[NONEXISTENT]`).
    #[error("no such mailbox: {0}")]
    NoSuchMailbox(String),
    /// A mailbox of that name exists already (IMAP `[ALREADYEXISTS]`).
    #[error("mailbox already exists: {0}")]
    MailboxExists(String),
    /// The mailbox name is not acceptable (empty component, bad character, too long).
    #[error("invalid mailbox name: {0}")]
    InvalidMailboxName(&'static str),
    /// The operation is not allowed on this mailbox (INBOX delete, `\Noselect`).
    #[error("{0}")]
    Cannot(&'static str),
    /// The mailbox has inferior names and is not deleted while they exist
    /// (IMAP `[HASCHILDREN]`, RFC 9051 §6.3.5).
    #[error("mailbox has children; delete them first: {0}")]
    HasChildren(String),
    /// The message is not (or no longer) in the mailbox.
    #[error("no such message: UID {0}")]
    NoSuchMessage(Uid),
    /// The principal lacks an ACL right for this operation (IMAP `[NOPERM]`).
    #[error("permission denied: right '{}' required", .0.letter())]
    PermissionDenied(Right),
    /// The mailbox was selected read-only.
    #[error("mailbox is read-only")]
    ReadOnly,
    /// Accepting this would exceed a quota (IMAP `[OVERQUOTA]`, LMTP 452 4.2.2).
    #[error("quota exceeded")]
    OverQuota,
    /// The message is larger than the configured limit.
    #[error("message too large (limit {limit} bytes)")]
    TooBig {
        /// The limit in bytes.
        limit: u64,
    },
    /// Credentials were wrong or the account is disabled. Deliberately vague.
    #[error("authentication failed")]
    AuthFailed,
    /// The user does not exist (LMTP 550 5.1.1).
    #[error("no such user")]
    NoSuchUser,
    /// A value from the peer was malformed.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),

    /// Stored data failed its integrity check; it was not served and the
    /// mailbox is queued for reconstruct (IMAP `[CORRUPTION]`).
    #[error("stored data is corrupt: {0}")]
    Corruption(String),
    /// A lock or resource is busy; retrying later may succeed (LMTP 451 4.3.0).
    #[error("temporarily unavailable: {0}")]
    Busy(String),
    /// The service cannot do client work right now, as a whole rather than
    /// for this one mailbox or message: a replica that has not been
    /// promoted, a database that is down. Retrying later may succeed; the
    /// reason is for the log, not for the client. Protocols answer it with
    /// IMAP `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`, LMTP `451 4.3.0`.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The backend does not implement this operation.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// An I/O error in the backend.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other backend failure.
    #[error("backend failure: {0}")]
    Backend(String),
}

impl Error {
    /// Whether the operation may succeed if retried later unchanged
    /// (over quota, busy, I/O): LMTP answers these with a 4xx.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::OverQuota
                | Error::Busy(_)
                | Error::Unavailable(_)
                | Error::Io(_)
                | Error::Backend(_)
                | Error::Corruption(_)
        )
    }

    /// Whether this is the server's fault rather than the peer's.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            Error::Corruption(_)
                | Error::Busy(_)
                | Error::Unavailable(_)
                | Error::Unsupported(_)
                | Error::Io(_)
                | Error::Backend(_)
        )
    }
}

/// `Result` with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
