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
//!
//! On an unpromoted replica nothing is reconstructed: `hold` says so, and
//! the queued mailbox is left (logged once) for the primary's verify to
//! repair. A reconstruct there would reset flags or drop the damaged
//! message under new modseqs, which the next round would take for a split
//! brain and merge back into the primary. Readers get the corruption error
//! until then, as on any node. Once `hold` turns false (the replica was
//! promoted) what is still queued is reconstructed as before.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mailroom_core::MailboxRef;
use mailroom_store_crc::CrcStore;

/// How often the corruption queue is looked at.
pub const QUEUE_POLL: Duration = Duration::from_secs(1);

/// Reconstructs queued mailboxes until `stop` completes. `retry` is how long
/// a mailbox whose reconstruct failed waits before the next attempt.
/// While `hold` returns true (an unpromoted replica) queued mailboxes are
/// left for the primary to repair, each logged once.
pub async fn auto_reconstruct(
    store: CrcStore,
    retry: Duration,
    hold: impl Fn() -> bool + Send,
    stop: impl Future<Output = ()> + Send,
) {
    // When each failed mailbox was last tried; `None`: it no longer exists
    // (deleted after it was queued), so there is nothing to retry.
    let mut failed: HashMap<MailboxRef, Option<Instant>> = HashMap::new();
    // Mailboxes left to the primary (logged once each while queued).
    let mut held: HashSet<MailboxRef> = HashSet::new();
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
        held.retain(|m| queue.contains(m));
        if hold() {
            for mailbox in queue {
                if !held.contains(&mailbox) {
                    tracing::warn!(
                        mailbox = %mailbox,
                        "mailbox found corrupt on a replica: not reconstructing it, the primary's verify repairs it"
                    );
                    held.insert(mailbox);
                }
            }
            continue;
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;
    use mailroom_core::replication::Replication as _;
    use mailroom_core::{Flag, MailboxName, ModSeq, NewMessage, Storage as _, Uid};
    use mailroom_store_crc::CrcOptions;

    use super::*;

    /// Runs [`auto_reconstruct`] for `secs` seconds.
    async fn run_for(store: &CrcStore, hold: &Arc<AtomicBool>, secs: f64) {
        let hold = hold.clone();
        auto_reconstruct(
            store.clone(),
            Duration::from_secs(60),
            move || hold.load(Ordering::Acquire),
            tokio::time::sleep(Duration::from_secs_f64(secs)),
        )
        .await;
    }

    /// A replica's damaged message is left for the primary: no reconstruct
    /// (no new modseq, flags kept, still queued) while held; a promoted
    /// node reconstructs it as before.
    #[tokio::test]
    async fn a_replica_leaves_a_damaged_mailbox_to_the_primary() {
        let dir = tempfile::tempdir().unwrap();
        let store = CrcStore::open(
            dir.path(),
            CrcOptions {
                durability: false,
                ..CrcOptions::default()
            },
        )
        .unwrap();
        let inbox = MailboxRef::new("alice", MailboxName::inbox());
        store.ensure_account("alice").await.unwrap();
        for i in 0..3 {
            store
                .append(
                    &inbox,
                    NewMessage {
                        flags: [Flag::Flagged].into_iter().collect(),
                        internal_date: None,
                        content: Bytes::from(format!("Subject: {i}\r\n\r\nbody {i}\r\n")),
                    },
                )
                .await
                .unwrap();
        }
        let uv = store.status(&inbox, "alice").await.unwrap().uid_validity;
        let records = |store: CrcStore| {
            let inbox = inbox.clone();
            async move {
                let r = store
                    .records_since(&inbox, uv, ModSeq(0), Uid(0), usize::MAX)
                    .await
                    .unwrap();
                r.records
                    .iter()
                    .map(|r| (r.uid, r.flags.clone(), r.modseq))
                    .collect::<Vec<_>>()
            }
        };
        let before = records(store.clone()).await;
        let file = store
            .mailbox_dir(&inbox)
            .await
            .unwrap()
            .join("msg")
            .join("2");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[3] ^= 0x01;
        std::fs::write(&file, &bytes).unwrap();
        assert!(matches!(
            store.message_content(&inbox, uv, Uid(2)).await,
            Err(mailroom_core::Error::Corruption(_))
        ));
        assert_eq!(store.reconstruct_queue(), vec![inbox.clone()]);

        let hold = Arc::new(AtomicBool::new(true));
        run_for(&store, &hold, 2.5).await;
        assert_eq!(
            store.reconstruct_queue(),
            vec![inbox.clone()],
            "still queued"
        );
        assert_eq!(
            records(store.clone()).await,
            before,
            "no new modseq, flags kept"
        );
        assert!(matches!(
            store.message_content(&inbox, uv, Uid(2)).await,
            Err(mailroom_core::Error::Corruption(_))
        ));

        // Promoted: reconstructed as before.
        hold.store(false, Ordering::Release);
        run_for(&store, &hold, 2.5).await;
        assert!(store.reconstruct_queue().is_empty());
        assert_ne!(records(store.clone()).await, before);
    }
}
