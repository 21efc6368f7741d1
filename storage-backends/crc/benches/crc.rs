//! Benchmarks of the CRC store, printed as a table:
//!
//! - APPEND of 10,000 small messages, durability on;
//! - SELECT + `FETCH 1:* (FLAGS UID)` of a 100,000-message mailbox (a cold
//!   open of the mailbox, a snapshot, then `fetch_meta` of every UID), and
//!   snapshot and `fetch_meta` alone on an open mailbox;
//! - `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` of 10,000 messages (summaries
//!   from the cache);
//! - reconstruct of 10,000 messages.
//!
//! The messages, the fill and the SELECT and ENVELOPE work come from
//! `mailroom_testkit::store_bench`, shared with the PostgreSQL store's
//! bench so the two tables compare.
//!
//! `cargo bench -p mailroom-store-crc` runs the full sizes; run any other way
//! (for example by `cargo test --all-targets`) it runs tiny sizes as a smoke
//! test. `MAILROOM_CRC_BENCH_SCALE=0.1` scales the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Instant;

use mailroom_core::{MailboxName, Storage, Uid};
use mailroom_store_crc::{CrcOptions, CrcStore};
use mailroom_testkit::store_bench::{
    Row, Sizes, USER, fetch_summaries, fill, inbox, print, select_fetch_flags, timed,
};

fn store(dir: &Path, durability: bool) -> CrcStore {
    CrcStore::open(
        dir,
        CrcOptions {
            durability,
            ..CrcOptions::default()
        },
    )
    .unwrap()
}

fn main() {
    let sizes = Sizes::from_env("MAILROOM_CRC_BENCH_SCALE");
    let count = |n: f64| sizes.count(n);
    let (n_append, n_select, n_summ, n_recon) = (
        count(10_000.0),
        count(100_000.0),
        count(10_000.0),
        count(10_000.0),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = tempfile::Builder::new()
        .prefix("crc-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut rows = Vec::new();

    // APPEND, durability on
    let d = base.path().join("append");
    let (best, median) = timed(1, || {
        rt.block_on(async {
            let s = store(&d, true);
            s.ensure_account(USER).await.unwrap();
            let t = Instant::now();
            fill(&s, n_append).await;
            t.elapsed()
        })
    });
    rows.push(Row {
        what: "APPEND small messages, durability on".into(),
        n: n_append,
        best,
        median,
    });

    // SELECT + FETCH 1:* (FLAGS UID)
    let d = base.path().join("select");
    rt.block_on(async {
        let s = store(&d, false);
        s.ensure_account(USER).await.unwrap();
        fill(&s, n_select).await;
    });
    let (best, median) = timed(7, || {
        rt.block_on(async {
            let s = store(&d, false); // cold: nothing loaded
            select_fetch_flags(&s, n_select).await
        })
    });
    rows.push(Row {
        what: "SELECT + FETCH 1:* (FLAGS UID), cold open".into(),
        n: n_select,
        best,
        median,
    });
    let (best, median) = rt.block_on(async {
        let s = store(&d, false);
        let m = s.open(&inbox(), USER).await.unwrap();
        let mut v = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let snap = m.snapshot().await.unwrap();
            v.push(t.elapsed());
            assert_eq!(snap.messages.len() as u64, n_select);
        }
        v.sort();
        (v[0], v[3])
    });
    rows.push(Row {
        what: "snapshot, mailbox open".into(),
        n: n_select,
        best,
        median,
    });
    let (best, median) = rt.block_on(async {
        let s = store(&d, false);
        let m = s.open(&inbox(), USER).await.unwrap();
        let uids: Vec<Uid> = (1..=n_select as u32).map(Uid).collect();
        let mut v = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let metas = m.fetch_meta(&uids).await.unwrap();
            v.push(t.elapsed());
            assert_eq!(metas.len() as u64, n_select);
        }
        v.sort();
        (v[0], v[3])
    });
    rows.push(Row {
        what: "fetch_meta(1:*) (FLAGS UID), mailbox open".into(),
        n: n_select,
        best,
        median,
    });

    // FETCH 1:* (ENVELOPE BODYSTRUCTURE)
    let d = base.path().join("summaries");
    rt.block_on(async {
        let s = store(&d, false);
        s.ensure_account(USER).await.unwrap();
        fill(&s, n_summ).await;
    });
    let (best, median) = timed(5, || {
        rt.block_on(async {
            let s = store(&d, false);
            let el = fetch_summaries(&s, n_summ).await;
            assert_eq!(s.io_counters().message_reads, 0);
            el
        })
    });
    rows.push(Row {
        what: "FETCH 1:* (ENVELOPE BODYSTRUCTURE), cold".into(),
        n: n_summ,
        best,
        median,
    });

    // reconstruct
    let d = base.path().join("reconstruct");
    rt.block_on(async {
        let s = store(&d, false);
        s.ensure_account(USER).await.unwrap();
        fill(&s, n_recon).await;
    });
    let (best, median) = timed(3, || {
        rt.block_on(async {
            let s = store(&d, true);
            let t = Instant::now();
            let r = s
                .reconstruct(USER, Some(&MailboxName::inbox()))
                .await
                .unwrap();
            let el = t.elapsed();
            assert_eq!(u64::from(r[0].1.messages), n_recon);
            el
        })
    });
    rows.push(Row {
        what: "reconstruct, durability on".into(),
        n: n_recon,
        best,
        median,
    });

    print(&rows, sizes, "mailroom-store-crc");
}
