//! Automatic repair: a running server reconstructs the mailboxes the CRC
//! store found corrupt, so no operator is needed.
//!
//! The store queues a mailbox the moment a CRC or GUID check fails
//! ([`CrcStore::reconstruct_queue`]); it has no notification, so
//! [`auto_reconstruct`] looks at the queue every [`QUEUE_POLL`] (a mutex and
//! a copy of a usually empty set) and reconstructs what it finds, one
//! mailbox at a time, as [`CrcStore::reconstruct_queued`] does. A mailbox
//! whose reconstruct fails (a disk error, say) is retried after the
//! configured interval rather than in a tight loop, and does not hold up
//! the others.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mailroom_core::MailboxRef;
use mailroom_store_crc::CrcStore;

/// How often the corruption queue is looked at.
pub const QUEUE_POLL: Duration = Duration::from_secs(1);

/// Reconstructs queued mailboxes until `stop` completes. `retry` is how long
/// a mailbox whose reconstruct failed waits before the next attempt.
pub async fn auto_reconstruct(
    store: CrcStore,
    retry: Duration,
    stop: impl Future<Output = ()> + Send,
) {
    // When each failed mailbox was last tried; `None`: it no longer exists
    // (deleted after it was queued), so there is nothing to retry.
    let mut failed: HashMap<MailboxRef, Option<Instant>> = HashMap::new();
    let mut tick = tokio::time::interval(QUEUE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let queue = store.reconstruct_queue();
        failed.retain(|m, _| queue.contains(m));
        for mailbox in queue {
            match failed.get(&mailbox) {
                Some(None) => continue,
                Some(Some(at)) if at.elapsed() < retry => continue,
                _ => {}
            }
            tracing::warn!(mailbox = %mailbox, "reconstructing a mailbox found corrupt");
            match store.reconstruct(&mailbox.owner, Some(&mailbox.name)).await {
                Ok(reports) => {
                    failed.remove(&mailbox);
                    for (_, report) in reports {
                        tracing::warn!(mailbox = %mailbox, ?report, "mailbox reconstructed");
                    }
                }
                Err(
                    e @ (mailroom_core::Error::NoSuchMailbox(_) | mailroom_core::Error::NoSuchUser),
                ) => {
                    tracing::info!(mailbox = %mailbox, "not reconstructing a mailbox that is gone: {e}");
                    failed.insert(mailbox, None);
                }
                Err(e) => {
                    tracing::error!(
                        mailbox = %mailbox,
                        "automatic reconstruct failed (retrying in {}s): {e}",
                        retry.as_secs()
                    );
                    failed.insert(mailbox, Some(Instant::now()));
                }
            }
        }
    }
}
