//! State shared by every mailbox of one store: options, I/O counters and
//! the reconstruct queue.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mailroom_core::{Error, MailboxRef};

/// Counters of file accesses, to make lazy opening observable (tests,
/// metrics). Every counter only grows.
#[derive(Debug, Default)]
pub(crate) struct IoStats {
    pub(crate) header_reads: AtomicU64,
    pub(crate) index_loads: AtomicU64,
    pub(crate) cache_opens: AtomicU64,
    pub(crate) cache_reads: AtomicU64,
    pub(crate) message_reads: AtomicU64,
    pub(crate) append_commits: AtomicU64,
    pub(crate) appended: AtomicU64,
    pub(crate) account_lookups: AtomicU64,
}

/// A copy of the I/O counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoCounters {
    /// Index headers read on their own (STATUS of an unloaded mailbox).
    pub header_reads: u64,
    /// Index files opened and mapped.
    pub index_loads: u64,
    /// Cache files opened.
    pub cache_opens: u64,
    /// Cache records read.
    pub cache_reads: u64,
    /// Message files read.
    pub message_reads: u64,
    /// Group commits of APPENDs (and deliveries): each made one batch
    /// durable with one fsync of the index, cache, header and `msg/`.
    pub append_commits: u64,
    /// Messages those group commits appended (`appended / append_commits`
    /// is the mean batch size).
    pub appended: u64,
    /// Look-ups of an account file on disk (an account not loaded yet,
    /// found or not; a user already known to have no account costs none).
    pub account_lookups: u64,
}

impl IoStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> IoCounters {
        IoCounters {
            header_reads: self.header_reads.load(Ordering::Relaxed),
            index_loads: self.index_loads.load(Ordering::Relaxed),
            cache_opens: self.cache_opens.load(Ordering::Relaxed),
            cache_reads: self.cache_reads.load(Ordering::Relaxed),
            message_reads: self.message_reads.load(Ordering::Relaxed),
            append_commits: self.append_commits.load(Ordering::Relaxed),
            appended: self.appended.load(Ordering::Relaxed),
            account_lookups: self.account_lookups.load(Ordering::Relaxed),
        }
    }
}

/// Store-wide context.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// Whether commits fsync.
    pub(crate) durable: bool,
    pub(crate) stats: IoStats,
    /// Mailboxes found corrupt, waiting for `reconstruct`.
    pub(crate) queue: Mutex<BTreeSet<MailboxRef>>,
    /// Quota ledgers of the accounts with charged writes.
    pub(crate) ledgers: crate::quota::Ledgers,
    /// Quota limits read from the users' `quota` files (see
    /// [`crate::quota::LimitsCache`]).
    pub(crate) limits: crate::quota::LimitsCache,
    /// Which accounts changed when (replication).
    pub(crate) feed: mailroom_core::replication::ChangeFeed,
    /// The delivery journal, when appends go through it.
    pub(crate) journal: Option<std::sync::Arc<crate::journal::Journal>>,
}

impl Ctx {
    /// Logs a detected corruption, queues the mailbox for reconstruct and
    /// returns the error to answer with.
    pub(crate) fn corruption(&self, mailbox: &MailboxRef, detail: String) -> Error {
        tracing::error!(mailbox = %mailbox, %detail, "corruption detected; mailbox queued for reconstruct");
        if let Ok(mut q) = self.queue.lock() {
            q.insert(mailbox.clone());
        }
        Error::Corruption(format!("{mailbox}: {detail}"))
    }

    /// Passes an error through, queueing the mailbox if it is a corruption.
    pub(crate) fn check(&self, mailbox: &MailboxRef, e: Error) -> Error {
        match e {
            Error::Corruption(detail) => self.corruption(mailbox, detail),
            other => other,
        }
    }
}
