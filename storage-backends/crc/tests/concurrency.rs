//! The concurrency test: 8 sessions append, store flags and expunge on one
//! mailbox while 8 others take snapshots, fetch and watch. Afterwards the
//! index is consistent, and every snapshot a reader saw equals the state
//! replayed from the writers' acknowledged changes at that snapshot's
//! HIGHESTMODSEQ — so every view was a real state, never a half-change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Rng, inbox, open};
use mailroom_core::{
    Error, Flag, Flags, MailboxSnapshot, ModSeq, NewMessage, Storage, StoreOp, Uid,
};

/// (uid, modseq, flags) of every acknowledged change; `None` flags = expunged.
type Events = Arc<Mutex<Vec<(u32, u64, Option<Flags>)>>>;

const WRITERS: u64 = 8;
const READERS: u64 = 8;

fn ops() -> u64 {
    std::env::var("MAILROOM_CRC_CONCURRENCY_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_sessions_on_one_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), false));
    store.ensure_account("alice").await.unwrap();
    let ib = inbox("alice");
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let snapshots: Arc<Mutex<Vec<MailboxSnapshot>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, ib, events) = (store.clone(), ib.clone(), events.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(100 + w);
            let m = store.open(&ib, "alice").await.unwrap();
            for i in 0..ops() {
                match rng.below(10) {
                    0..=4 => {
                        let flags: Flags = if rng.below(2) == 0 {
                            [Flag::Seen].into_iter().collect()
                        } else {
                            Flags::default()
                        };
                        let a = store
                            .append(
                                &ib,
                                NewMessage {
                                    flags: flags.clone(),
                                    internal_date: None,
                                    content: common::message(w * 10_000 + i).into(),
                                },
                            )
                            .await
                            .unwrap();
                        events
                            .lock()
                            .unwrap()
                            .push((a.uid.0, a.modseq.0, Some(flags)));
                    }
                    5..=7 => {
                        let snap = m.snapshot().await.unwrap();
                        if snap.messages.is_empty() {
                            continue;
                        }
                        let pick =
                            snap.messages[rng.below(snap.messages.len() as u64) as usize].uid;
                        let flag = match rng.below(4) {
                            0 => Flag::Deleted,
                            1 => Flag::Flagged,
                            2 => Flag::parse("$Work").unwrap(),
                            _ => Flag::Answered,
                        };
                        let f: Flags = [flag].into_iter().collect();
                        let op = if rng.below(3) == 0 {
                            StoreOp::Remove(f)
                        } else {
                            StoreOp::Add(f)
                        };
                        let r = m.store(&[pick], &op, None).await.unwrap();
                        let mut ev = events.lock().unwrap();
                        for c in r.changed {
                            ev.push((c.uid.0, c.modseq.0, Some(c.flags)));
                        }
                    }
                    _ => {
                        m.expunge(None).await.unwrap();
                    }
                }
            }
        }));
    }
    for r in 0..READERS {
        let (store, ib, snapshots) = (store.clone(), ib.clone(), snapshots.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(200 + r);
            let m = store.open(&ib, "alice").await.unwrap();
            let mut watch = m.watch();
            let mut last = 0u64;
            for _ in 0..ops() {
                match rng.below(3) {
                    0 => {
                        // IDLE: wait for a change (or give up after a while:
                        // the writers may be done)
                        if let Ok(Some(ms)) =
                            tokio::time::timeout(Duration::from_millis(200), watch.changed()).await
                        {
                            assert!(ms.0 >= last, "watch went backwards");
                            last = ms.0;
                        }
                    }
                    1 => {
                        let snap = m.snapshot().await.unwrap();
                        assert!(snap.messages.windows(2).all(|w| w[0].uid < w[1].uid));
                        assert!(
                            snap.messages
                                .iter()
                                .all(|x| x.uid.0 < snap.uid_next.0
                                    && x.modseq <= snap.highest_modseq)
                        );
                        snapshots.lock().unwrap().push(snap);
                    }
                    _ => {
                        let snap = m.snapshot().await.unwrap();
                        let uids: Vec<Uid> = snap.messages.iter().map(|x| x.uid).collect();
                        for (u, s) in m.summaries(&uids).await.unwrap() {
                            assert!(s.header.starts_with(b"From: Sender"), "bad summary for {u}");
                        }
                        if let Some(u) = uids.last() {
                            match m.content(*u).await {
                                Ok(b) => assert!(b.starts_with(b"From: Sender")),
                                Err(Error::NoSuchMessage(_)) => {}
                                Err(e) => panic!("content failed: {e}"),
                            }
                        }
                        let metas = m.fetch_meta(&uids).await.unwrap();
                        assert!(metas.len() <= uids.len());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // the index is consistent
    let m = store.open(&ib, "alice").await.unwrap();
    let live = store.verify(&ib).await.unwrap();
    let fin = m.snapshot().await.unwrap();
    assert_eq!(live as usize, fin.messages.len());
    // expunges with their modseqs
    let ch = m.changes_since(ModSeq(0)).await.unwrap();
    let mut ev = events.lock().unwrap().clone();
    for (u, ms) in &ch.expunged {
        ev.push((u.0, ms.0, None));
    }
    ev.sort_by_key(|e| e.1);
    // replay: the state at each modseq
    let replay_at = |upto: u64| {
        let mut st: BTreeMap<u32, (u64, Flags)> = BTreeMap::new();
        for (u, ms, f) in ev.iter().take_while(|e| e.1 <= upto) {
            match f {
                Some(f) => {
                    st.insert(*u, (*ms, f.clone()));
                }
                None => {
                    st.remove(u);
                }
            }
        }
        st
    };
    let as_state = |s: &MailboxSnapshot| -> BTreeMap<u32, (u64, Flags)> {
        s.messages
            .iter()
            .map(|x| (x.uid.0, (x.modseq.0, x.flags.clone())))
            .collect()
    };
    assert_eq!(
        as_state(&fin),
        replay_at(fin.highest_modseq.0),
        "final state differs from the replayed log"
    );
    let snaps = snapshots.lock().unwrap().clone();
    assert!(!snaps.is_empty());
    for s in snaps.iter() {
        assert_eq!(
            as_state(s),
            replay_at(s.highest_modseq.0),
            "a reader saw a state that never existed (modseq {})",
            s.highest_modseq
        );
    }
    let st = store.status(&ib, "alice").await.unwrap();
    assert_eq!(st.messages as usize, fin.messages.len());
    assert_eq!(st.highest_modseq, fin.highest_modseq);
    eprintln!(
        "{} snapshots checked against the replayed log; {} live messages",
        snaps.len(),
        live
    );
}

/// Regression: `watch()` took the notifier lock and then the mailbox lock,
/// while a writer holding the mailbox lock takes the notifier lock to publish
/// its change. Sessions starting IDLE while others append could deadlock (it
/// hung a CI run). Watches and appends race here; every thread must finish.
#[test]
fn watching_while_appending_never_deadlocks() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(open(dir.path(), false));
    rt.block_on(store.ensure_account("alice")).unwrap();
    let ib = inbox("alice");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for t in 0..6u64 {
        let (store, ib, done_tx) = (store.clone(), ib.clone(), done_tx.clone());
        let handle = rt.handle().clone();
        threads.push(std::thread::spawn(move || {
            let m = handle.block_on(store.open(&ib, "alice")).unwrap();
            for i in 0..300u64 {
                if t % 2 == 0 {
                    // a new IDLE: a fresh watch each time
                    drop(m.watch());
                } else {
                    handle
                        .block_on(
                            store.append(&ib, common::new_message(t * 1000 + i, Flags::default())),
                        )
                        .unwrap();
                }
            }
            done_tx.send(()).unwrap();
        }));
    }
    drop(done_tx);
    for _ in 0..threads.len() {
        done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a thread is stuck: watch() and append() deadlocked");
    }
    for t in threads {
        t.join().unwrap();
    }
}
