//! Property test of replication as a whole: random sequences of changes on
//! a primary (appends, flag changes, expunges, creates, deletes, renames
//! including swaps and INBOX, subscriptions, ACLs, quota), with replication
//! passes at random points and random damage done to the replica behind the
//! primary's back; after a final pass the replica shows exactly what the
//! primary shows, and a second pass finds nothing to do. And changes on
//! both ends apart, merged without losing a delivery. Each runs on memory
//! stores (many cases) and with a PostgreSQL store at either end (fewer
//! cases: each makes a database).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use mailroom_core::replication::{ApplyBatch, ReplicaMessage};
use mailroom_core::{
    Flag, Flags, MailboxName, Quota, QuotaLimits, Replication, Rights, StoreOp, Uid,
};
use mailroom_store_memory::MemoryStore;
use mailroom_sync::{Primary, Replica, ReplicaConfig};
use proptest::prelude::*;

const USER: &str = "erin";
const NAMES: [&str; 5] = ["INBOX", "A", "B", "A/C", "Sent"];

#[derive(Debug, Clone)]
enum Op {
    Append(usize, usize),
    Flag(usize, u32, u8),
    Expunge(usize),
    Create(usize),
    Delete(usize),
    Rename(usize, usize),
    Subscribe(usize, bool),
    Acl(usize, bool),
    Quota(Option<u64>),
    Sync,
    Damage(usize, u32, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NAMES.len();
    prop_oneof![
        8 => (n.clone(), 1usize..3000).prop_map(|(m, s)| Op::Append(m, s)),
        4 => (n.clone(), 1u32..12, any::<u8>()).prop_map(|(m, u, f)| Op::Flag(m, u, f)),
        2 => n.clone().prop_map(Op::Expunge),
        2 => n.clone().prop_map(Op::Create),
        1 => n.clone().prop_map(Op::Delete),
        2 => (n.clone(), n.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (n.clone(), any::<bool>()).prop_map(|(m, s)| Op::Subscribe(m, s)),
        1 => (n.clone(), any::<bool>()).prop_map(|(m, s)| Op::Acl(m, s)),
        1 => proptest::option::of(1u64..1_000_000).prop_map(Op::Quota),
        3 => Just(Op::Sync),
        2 => (n, 1u32..6, any::<u8>()).prop_map(|(m, u, f)| Op::Damage(m, u, f)),
    ]
}

fn flags(bits: u8) -> Flags {
    let mut f = Flags::from_parts(bits & 0x1f, []);
    if bits & 0x20 != 0 {
        f.insert(Flag::Keyword("$Label1".into()));
    }
    if bits & 0x40 != 0 {
        f.insert(Flag::Keyword("Work".into()));
    }
    f
}

async fn apply<P, R>(p: &P, r: &R, op: &Op, counter: &mut usize) -> bool
where
    P: Replication + Quota + ?Sized,
    R: Replication + ?Sized,
{
    let name = |i: usize| MailboxName::new(NAMES[i]).unwrap();
    let mb = |i: usize| mailbox(USER, NAMES[i]);
    match op {
        Op::Append(m, size) => {
            *counter += 1;
            let _ = p.append(&mb(*m), message(*counter, *size)).await;
        }
        Op::Flag(m, uid, bits) => {
            if let Ok(b) = p.open(&mb(*m), USER).await {
                let _ = b
                    .store(&[Uid(*uid)], &StoreOp::Replace(flags(*bits)), None)
                    .await;
            }
        }
        Op::Expunge(m) => {
            if let Ok(b) = p.open(&mb(*m), USER).await {
                let _ = b.expunge(None).await;
            }
        }
        Op::Create(m) => {
            let _ = p.create(&mb(*m), None).await;
        }
        Op::Delete(m) => {
            let _ = p.delete(&mb(*m)).await;
        }
        Op::Rename(a, b) => {
            let _ = p.rename(&mb(*a), &name(*b)).await;
        }
        Op::Subscribe(m, on) => {
            let _ = p.set_subscribed(USER, &name(*m), *on).await;
        }
        Op::Acl(m, on) => {
            let rights = on.then(|| Rights::parse("lrs")).flatten();
            let _ = p.set_acl(&mb(*m), "frank", rights).await;
        }
        Op::Quota(limit) => {
            let _ = p
                .set_limits(
                    USER,
                    QuotaLimits {
                        storage_bytes: *limit,
                        messages: None,
                    },
                )
                .await;
        }
        Op::Sync => return true,
        Op::Damage(m, uid, bits) => {
            // A flag change on the replica that keeps the record's modseq.
            if let Ok(status) = r.status(&mb(*m), USER).await {
                let uv = status.uid_validity;
                if let Ok(records) = r.records(&mb(*m), uv, &[Uid(*uid)]).await
                    && let Some(mut rec) = records.into_iter().next()
                {
                    rec.flags = flags(*bits ^ 0x04);
                    let _ = r
                        .apply_messages(
                            &mb(*m),
                            uv,
                            ApplyBatch {
                                messages: vec![ReplicaMessage {
                                    record: rec,
                                    content: None,
                                }],
                                ..ApplyBatch::default()
                            },
                        )
                        .await;
                }
            }
        }
    }
    false
}

/// Applies `ops` to the primary `p` (replicating at each `Sync`), then
/// checks the replica `r` shows exactly what `p` does after a last pass.
async fn converges<P, R>(p: Arc<P>, r: Arc<R>, ops: &[Op])
where
    P: Replication + Quota + 'static,
    R: Replication + 'static,
{
    p.ensure_account(USER).await.unwrap();
    let replica = Replica::new(Arc::clone(&r) as _, ReplicaConfig::new(secret()));
    let primary = Primary::new(Arc::clone(&p) as _, primary_config());
    let (a, b) = tokio::io::duplex(1 << 16);
    let served = tokio::spawn(async move { replica.serve_connection(b).await });
    let mut conn = primary.connect(a).await.unwrap();
    let mut counter = 0;
    for op in ops {
        if apply(&*p, &*r, op, &mut counter).await {
            conn.sync_all().await.unwrap();
        }
    }
    conn.sync_all().await.unwrap();
    assert_eq!(
        picture(&*p, USER).await,
        picture(&*r, USER).await,
        "{ops:?}"
    );
    assert_in_step(&mut conn, USER).await;
    drop(conn);
    served.await.unwrap().unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replica_converges_to_the_primary(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(converges(Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()), &ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_memory_replica_converges_to_a_postgres_primary(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(async {
            let (_, p) = pg_store().await;
            converges(p, Arc::new(MemoryStore::new()), &ops).await;
        });
    }

    #[test]
    fn a_postgres_replica_converges_to_a_memory_primary(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(async {
            let (_, r) = pg_store().await;
            converges(Arc::new(MemoryStore::new()), r, &ops).await;
        });
    }
}

#[derive(Debug, Clone)]
enum SideOp {
    Append(bool, usize),
    Flag(bool, u32, u8),
    Expunge(bool, u32),
}

fn side_op() -> impl Strategy<Value = SideOp> {
    prop_oneof![
        3 => (any::<bool>(), 1usize..2000).prop_map(|(s, n)| SideOp::Append(s, n)),
        3 => (any::<bool>(), 1u32..12, any::<u8>()).prop_map(|(s, u, f)| SideOp::Flag(s, u, f)),
        2 => (any::<bool>(), 1u32..12).prop_map(|(s, u)| SideOp::Expunge(s, u)),
    ]
}

/// One change to the INBOX of `store` (numbered `n`).
async fn run_side<S: Replication + ?Sized>(store: &S, op: &SideOp, n: usize) {
    let b = store.open(&inbox(USER), USER).await.unwrap();
    match op {
        SideOp::Append(_, size) => {
            store.append(&inbox(USER), message(n, *size)).await.unwrap();
        }
        SideOp::Flag(_, uid, bits) => {
            let _ = b
                .store(&[Uid(*uid)], &StoreOp::Replace(flags(bits & !0x08)), None)
                .await;
        }
        SideOp::Expunge(_, uid) => {
            let _ = b
                .store(
                    &[Uid(*uid)],
                    &StoreOp::Add([Flag::Deleted].into_iter().collect()),
                    None,
                )
                .await;
            let _ = b.expunge(Some(&[Uid(*uid)])).await;
        }
    }
}

/// Both ends written apart after a common sync: one pass merges them into
/// identical mailboxes; every message either end delivered after the split
/// and still held is on both; a second pass finds nothing.
async fn merges<P, R>(p: Arc<P>, r: Arc<R>, before: &[SideOp], apart: &[SideOp])
where
    P: Replication + 'static,
    R: Replication + 'static,
{
    p.ensure_account(USER).await.unwrap();
    let replica = Replica::new(Arc::clone(&r) as _, ReplicaConfig::new(secret()));
    let primary = Primary::new(Arc::clone(&p) as _, primary_config());
    let mut counter = 0;
    for op in before {
        counter += 1;
        run_side(&*p, op, counter).await;
    }
    let (a, b) = tokio::io::duplex(1 << 16);
    let served = tokio::spawn({
        let replica = replica.clone();
        async move { replica.serve_connection(b).await }
    });
    let mut conn = primary.connect(a).await.unwrap();
    conn.sync_all().await.unwrap();
    drop(conn);
    served.await.unwrap().unwrap();
    let split_uid_next = p.status(&inbox(USER), USER).await.unwrap().uid_next;

    for op in apart {
        let on_primary = match op {
            SideOp::Append(s, _) | SideOp::Flag(s, ..) | SideOp::Expunge(s, _) => *s,
        };
        counter += 1;
        if on_primary {
            run_side(&*p, op, counter).await;
        } else {
            run_side(&*r, op, counter).await;
        }
    }
    // Messages delivered after the split and still held on either end.
    let mut delivered = std::collections::BTreeSet::new();
    for snap in [
        p.open(&inbox(USER), USER)
            .await
            .unwrap()
            .snapshot()
            .await
            .unwrap(),
        r.open(&inbox(USER), USER)
            .await
            .unwrap()
            .snapshot()
            .await
            .unwrap(),
    ] {
        delivered.extend(
            snap.messages
                .iter()
                .filter(|m| m.uid >= split_uid_next)
                .map(|m| m.guid),
        );
    }

    let (a, b) = tokio::io::duplex(1 << 16);
    let served = tokio::spawn(async move { replica.serve_connection(b).await });
    let mut conn = primary.connect(a).await.unwrap();
    conn.sync_all().await.unwrap();
    let after_p = picture(&*p, USER).await;
    assert_eq!(after_p, picture(&*r, USER).await, "{apart:?}");
    let held: std::collections::BTreeSet<_> = p
        .open(&inbox(USER), USER)
        .await
        .unwrap()
        .snapshot()
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.guid)
        .collect();
    assert!(delivered.is_subset(&held), "lost a delivery: {apart:?}");
    assert_in_step(&mut conn, USER).await;
    drop(conn);
    served.await.unwrap().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn split_brain_merge_loses_nothing(
        before in proptest::collection::vec(side_op(), 0..8),
        apart in proptest::collection::vec(side_op(), 1..24),
    ) {
        runtime().block_on(merges(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryStore::new()),
            &before,
            &apart,
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn split_brain_merge_with_postgres_at_either_end_loses_nothing(
        before in proptest::collection::vec(side_op(), 0..8),
        apart in proptest::collection::vec(side_op(), 1..24),
        postgres_primary in any::<bool>(),
    ) {
        runtime().block_on(async {
            let (_, pg) = pg_store().await;
            let memory = Arc::new(MemoryStore::new());
            if postgres_primary {
                merges(pg, memory, &before, &apart).await;
            } else {
                merges(memory, pg, &before, &apart).await;
            }
        });
    }
}
