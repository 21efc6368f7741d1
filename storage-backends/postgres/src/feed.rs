//! The cross-frontend change feed: local watches, woken by this process's
//! own commits at once and by every frontend's commits through
//! `LISTEN mailroom`.
//!
//! A notification's payload is `<account id> <mailbox id> <modseq>`, the
//! new HIGHESTMODSEQ of the mailbox, or 0 when the mailbox was deleted;
//! or `ns <user>` after a change of that user's namespace (a mailbox
//! created, deleted or renamed, a special use, a subscription), which
//! wakes the user's namespace watches ([`Storage::watch_namespace`]).
//! A third kind, `cp <xid>`, is sent by every transaction that moves an
//! account's change position (`store::TOUCH`), with the transaction's id:
//! it moves replication's change watch
//! ([`Replication::watch_changes`](mailroom_core::Replication::watch_changes))
//! to just past it, and wakes it even when that is not forward: transaction
//! ids are given in one order and committed in another, so a transaction
//! that took its id before the last one heard of can commit after it, and
//! the replication round its account needs must still run.
//! A frontend of an older build ignores the second and third kinds (they
//! do not parse as three numbers).
//! A mailbox watch is only ever moved forward: a late or repeated
//! notification (this process hears its own) does not wake anyone. When
//! the listener's connection is lost, it reconnects with a growing pause
//! (at most 2 s) and then reads the HIGHESTMODSEQ of every watched mailbox
//! afresh, so a change whose notification was lost with the connection
//! still wakes its watches, and wakes every namespace watch (whoever
//! watches lists again) and the change watch (replication compares from
//! its own position).
//!
//! [`Storage::watch_namespace`]: mailroom_core::Storage::watch_namespace

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use mailroom_core::replication::{ChangeNotifier, ChangePosition, ChangeWatch};
use mailroom_core::storage::MailboxNotifier;
use mailroom_core::{MailboxWatch, ModSeq, NamespaceWatch, NamespaceWatches};
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel every change is announced on.
pub(crate) const CHANNEL: &str = "mailroom";

/// The prefix of a namespace change's payload.
pub(crate) const NAMESPACE_PREFIX: &str = "ns ";

/// The prefix of a change position's payload.
pub(crate) const POSITION_PREFIX: &str = "cp ";

/// The watched mailboxes and namespaces of this process.
#[derive(Debug)]
pub(crate) struct Feed {
    mailboxes: Mutex<HashMap<i64, (MailboxNotifier, MailboxWatch)>>,
    namespaces: NamespaceWatches,
    /// Replication's change watch: the position just past the newest
    /// transaction heard of.
    changes: ChangeNotifier,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            mailboxes: Mutex::default(),
            namespaces: NamespaceWatches::default(),
            changes: ChangeWatch::channel(ChangePosition(0)).0,
        }
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (MailboxNotifier, MailboxWatch)>> {
        self.mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A watch on mailbox `id`, whose HIGHESTMODSEQ is `now`.
    pub(crate) fn watch(&self, id: i64, now: ModSeq) -> MailboxWatch {
        let mut map = self.lock();
        let (notifier, watch) = map.entry(id).or_insert_with(|| {
            let (n, w) = MailboxWatch::channel(now);
            (n, w)
        });
        if now > watch.current() {
            notifier.notify(now);
        }
        notifier.subscribe()
    }

    /// Mailbox `id` is at `modseq` now: wakes its watches if that is news.
    pub(crate) fn publish(&self, id: i64, modseq: ModSeq) {
        let map = self.lock();
        if let Some((notifier, watch)) = map.get(&id)
            && modseq > watch.current()
        {
            notifier.notify(modseq);
        }
    }

    /// Mailbox `id` is gone: its watches end.
    pub(crate) fn remove(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// The mailboxes watched here (every mailbox this process opened; an
    /// entry is a few dozen bytes and goes when the mailbox is deleted).
    fn watched(&self) -> Vec<i64> {
        self.lock().keys().copied().collect()
    }

    /// A watch on `user`'s namespace.
    pub(crate) fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        self.namespaces.watch(user.to_owned())
    }

    /// `user`'s namespace changed (a commit of this process, or a
    /// notification).
    pub(crate) fn namespace_changed(&self, user: &str) {
        self.namespaces.bump(user);
    }

    /// Moves the change watch to the transaction position in the answer
    /// to the listener's first batch, and wakes it: a transaction that
    /// committed while the listener was away may have an id below the
    /// position already heard.
    fn moved_to(&self, messages: &[tokio_postgres::SimpleQueryMessage]) {
        for m in messages {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = m
                && let Some(Ok(next)) = row.get(0).map(str::parse::<u64>)
            {
                self.heard(ChangePosition(next));
            }
        }
    }

    /// Wakes the change watch, at `next` if that is forward. Every commit
    /// wakes, also one below the position: ids are given in one order and
    /// committed in another, and the round that ran while this one was
    /// open must run again to find its account.
    fn heard(&self, next: ChangePosition) {
        let current = self.changes.subscribe().current();
        self.changes.notify(next.max(current));
    }

    /// A watch on every change to the database (replication's).
    pub(crate) fn watch_changes(&self) -> ChangeWatch {
        self.changes.subscribe()
    }

    /// Handles one notification payload.
    fn handle(&self, payload: &str) {
        if let Some(xid) = payload.strip_prefix(POSITION_PREFIX) {
            if let Ok(xid) = xid.parse::<u64>() {
                self.heard(ChangePosition(xid.saturating_add(1)));
            }
            return;
        }
        if let Some(user) = payload.strip_prefix(NAMESPACE_PREFIX) {
            self.namespace_changed(user);
            return;
        }
        let mut parts = payload.split(' ');
        let (Some(_account), Some(id), Some(modseq)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let (Ok(id), Ok(modseq)) = (id.parse::<i64>(), modseq.parse::<u64>()) else {
            return;
        };
        if modseq == 0 {
            self.remove(id);
        } else {
            self.publish(id, ModSeq(modseq));
        }
    }
}

/// Runs the listener until the store is dropped; `ready` is told once the
/// first `LISTEN` is in place.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    feed: Weak<Feed>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut pause = Duration::from_millis(50);
    let mut ready = Some(ready);
    loop {
        if feed.strong_count() == 0 {
            return;
        }
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut stream =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(msg) = stream.next().await {
                        match msg {
                            Ok(AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "change feed connection lost");
                                return;
                            }
                        }
                    }
                });
                // With the LISTEN, in one batch, where the transactions
                // stand: replication's change watch moves past every one
                // begun so far (which accounts they changed is not known
                // here; replication compares from its own position).
                let listened = client
                    .simple_query(&format!(
                        "LISTEN {CHANNEL}; SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
                    ))
                    .await;
                if let Err(e) = listened {
                    tracing::warn!(error = %e, "LISTEN failed");
                    driver.abort();
                } else {
                    if let (Ok(messages), Some(f)) = (&listened, feed.upgrade()) {
                        f.moved_to(messages);
                    }
                    pause = Duration::from_millis(50);
                    // Whatever changed before this LISTEN (while the
                    // listener was away, or before it first connected)
                    // is found by reading the watched mailboxes afresh.
                    recheck(&client, &feed).await;
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    loop {
                        let msg = tokio::select! {
                            m = rx.recv() => m,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {
                                if feed.strong_count() == 0 {
                                    driver.abort();
                                    return;
                                }
                                continue;
                            }
                        };
                        let Some(payload) = msg else { break };
                        let Some(f) = feed.upgrade() else {
                            driver.abort();
                            return;
                        };
                        f.handle(&payload);
                    }
                    driver.abort();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "change feed cannot connect");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// After a reconnect: every watched mailbox's HIGHESTMODSEQ, read afresh.
async fn recheck(client: &tokio_postgres::Client, feed: &Weak<Feed>) {
    let Some(f) = feed.upgrade() else { return };
    // Which namespaces changed meanwhile is not kept anywhere: every
    // watcher lists again.
    f.namespaces.bump_all();
    let ids = f.watched();
    if ids.is_empty() {
        return;
    }
    match client
        .query(
            "SELECT i, m.highest_modseq FROM unnest($1::bigint[]) i \
             LEFT JOIN mailboxes m ON m.id = i",
            &[&ids],
        )
        .await
    {
        Ok(rows) => {
            for row in rows {
                let id: i64 = row.get(0);
                match row.get::<_, Option<i64>>(1) {
                    Some(m) => f.publish(id, ModSeq(m as u64)),
                    None => f.remove(id),
                }
            }
            tracing::debug!(
                mailboxes = ids.len(),
                "change feed (re)connected and rechecked"
            );
        }
        Err(e) => tracing::warn!(error = %e, "change feed recheck failed"),
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    /// A transaction that took its id before another commits after it: its
    /// notification is below the position already heard, and still wakes
    /// replication (which would otherwise find its account only at the
    /// next change or full comparison).
    #[test]
    fn a_position_heard_late_still_wakes_the_change_watch() {
        let feed = Feed::default();
        let mut watch = feed.watch_changes();
        feed.handle("cp 731");
        assert_eq!(
            watch.changed().now_or_never(),
            Some(Some(ChangePosition(732)))
        );
        feed.handle("cp 730");
        assert_eq!(
            watch.changed().now_or_never(),
            Some(Some(ChangePosition(732))),
            "woken, the position kept"
        );
        assert_eq!(watch.changed().now_or_never(), None, "once");
    }
}
