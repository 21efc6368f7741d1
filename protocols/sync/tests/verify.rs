//! `verify`: the replica reads every message back against its GUID; a
//! message whose stored bytes were damaged (as a flipped byte in a message
//! file would be) is found and its bytes are sent again, and nothing else
//! is. The memory store cannot damage its own bytes, so the replica's store
//! here is the memory store behind a wrapper that serves damage for chosen
//! messages until replication rewrites them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use mailroom_core::replication::{
    AccountState, Applied, ApplyBatch, ChangePosition, ChangeWatch, ChangedAccounts, MailboxHead,
    NamespaceOp, RecordsSince, ReplicaRecord, SyncPoint,
};
use mailroom_core::{Error, MailboxRef, ModSeq, Replication, Result, Storage, Uid, UidValidity};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::{Primary, Replica, ReplicaConfig, Verdict};

/// The memory store, with message files that can be damaged.
#[derive(Debug)]
struct Damaged {
    inner: MemoryStore,
    damaged: Mutex<HashSet<(MailboxRef, Uid)>>,
}

#[async_trait]
impl mailroom_core::storage::Delegate for Damaged {
    fn inner(&self) -> &dyn Storage {
        &self.inner
    }
}

#[async_trait]
impl Replication for Damaged {
    async fn accounts(&self) -> Result<Vec<String>> {
        self.inner.accounts().await
    }
    fn watch_changes(&self) -> ChangeWatch {
        self.inner.watch_changes()
    }
    async fn changed_accounts(&self, since: ChangePosition) -> Result<ChangedAccounts> {
        self.inner.changed_accounts(since).await
    }
    async fn account_state(&self, user: &str) -> Result<Option<AccountState>> {
        self.inner.account_state(user).await
    }
    async fn records_since(
        &self,
        m: &MailboxRef,
        uv: UidValidity,
        since: ModSeq,
        after: Uid,
        limit: usize,
    ) -> Result<RecordsSince> {
        self.inner.records_since(m, uv, since, after, limit).await
    }
    async fn records(
        &self,
        m: &MailboxRef,
        uv: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<ReplicaRecord>> {
        self.inner.records(m, uv, uids).await
    }
    async fn record_digests(
        &self,
        m: &MailboxRef,
        uv: UidValidity,
    ) -> Result<(MailboxHead, Vec<(Uid, u32)>)> {
        self.inner.record_digests(m, uv).await
    }
    async fn message_content(&self, m: &MailboxRef, uv: UidValidity, uid: Uid) -> Result<Bytes> {
        if self.damaged.lock().unwrap().contains(&(m.clone(), uid)) {
            return Err(Error::Corruption(format!("{m} UID {uid}: GUID mismatch")));
        }
        self.inner.message_content(m, uv, uid).await
    }
    async fn apply_namespace(&self, user: &str, op: NamespaceOp) -> Result<()> {
        self.inner.apply_namespace(user, op).await
    }
    async fn apply_messages(
        &self,
        m: &MailboxRef,
        uv: UidValidity,
        batch: ApplyBatch,
    ) -> Result<Applied> {
        let rewritten: Vec<Uid> = batch
            .messages
            .iter()
            .filter(|x| x.content.is_some())
            .map(|x| x.record.uid)
            .collect();
        let applied = self.inner.apply_messages(m, uv, batch).await?;
        let mut damaged = self.damaged.lock().unwrap();
        for uid in rewritten {
            damaged.remove(&(m.clone(), uid));
        }
        Ok(applied)
    }
    async fn sync_point(&self, m: &MailboxRef, uv: UidValidity) -> Result<Option<SyncPoint>> {
        self.inner.sync_point(m, uv).await
    }
    async fn set_sync_point(&self, m: &MailboxRef, uv: UidValidity, p: SyncPoint) -> Result<()> {
        self.inner.set_sync_point(m, uv, p).await
    }
}

const USER: &str = "heidi@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_damaged_message_bytes_and_repairs_only_them() {
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(Damaged {
        inner: MemoryStore::new(),
        damaged: Mutex::new(HashSet::new()),
    });
    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 30, 2000).await;
    p.create(&mailbox(USER, "Lists"), None).await.unwrap();
    append_n(&*p, &mailbox(USER, "Lists"), 100, 5, 2000).await;

    let replica = Replica::new(Arc::clone(&r) as _, ReplicaConfig::new(secret()));
    let primary = Primary::new(Arc::clone(&p) as _, primary_config());
    let (a, b) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move { replica.serve_connection(b).await });
    let mut conn = primary.connect(a).await.unwrap();
    conn.sync_all().await.unwrap();

    // Everything in step: verify says ok for every mailbox.
    let verdicts = conn.verify_account(USER).await.unwrap();
    assert!(
        verdicts.iter().all(|(_, v)| *v == Verdict::InStep),
        "{verdicts:?}"
    );

    // A flipped byte in two of the replica's message files.
    r.damaged
        .lock()
        .unwrap()
        .extend([(inbox(USER), Uid(7)), (inbox(USER), Uid(21))]);
    // Heads still agree (the index is fine), so an ordinary pass sees nothing.
    let quick = conn.sync_account(USER).await.unwrap();
    assert!(
        quick.iter().all(|(_, v)| *v == Verdict::InStep),
        "{quick:?}"
    );
    let before = primary.stats();
    let verdicts = conn.verify_account(USER).await.unwrap();
    let of = |name: &str| verdicts.iter().find(|(n, _)| n.as_str() == name).unwrap().1;
    assert_eq!(of("INBOX"), Verdict::Repaired);
    assert_eq!(of("Lists"), Verdict::InStep);
    assert_eq!(of("Sent"), Verdict::InStep);
    let after = primary.stats();
    assert_eq!(
        after.messages_sent - before.messages_sent,
        2,
        "only the damaged bytes"
    );
    assert_eq!(after.repaired - before.repaired, 1);
    assert!(r.damaged.lock().unwrap().is_empty(), "both rewritten");
    let uv = r.status(&inbox(USER), USER).await.unwrap().uid_validity;
    for uid in [7, 21] {
        r.message_content(&inbox(USER), uv, Uid(uid)).await.unwrap();
    }
    assert_eq!(picture(&*p, USER).await, picture(&r.inner, USER).await);
    let verdicts = conn.verify_account(USER).await.unwrap();
    assert!(
        verdicts.iter().all(|(_, v)| *v == Verdict::InStep),
        "{verdicts:?}"
    );
}
