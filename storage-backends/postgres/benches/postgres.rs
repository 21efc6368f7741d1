//! Benchmarks of the PostgreSQL store, printed as a table. The first three
//! rows are the CRC store's `benches/crc.rs` work on the same messages,
//! both from `mailroom_testkit::store_bench`, so the two tables compare:
//!
//! - APPEND of 10,000 small messages (one transaction each, `fsync=on`);
//! - STORE of a flag on 1,000 of them, one command (one transaction) each,
//!   and of a keyword on all of them in one command;
//! - SELECT + `FETCH 1:* (FLAGS UID)` of a 100,000-message mailbox (open,
//!   snapshot, `fetch_meta` of every UID);
//! - `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` of 10,000 messages (summaries
//!   from their column, no body read);
//! - APPEND and FETCH BODY[] of bodies from 256 KiB to 16 MiB, on both
//!   sides of the 1 MiB line between inline `bytea` and 1 MiB chunks.
//!
//! The server is a private cluster (`mailroom_testkit::postgres`, fsync
//! on) on this machine, reached over loopback TCP. `cargo bench -p
//! mailroom-store-postgres` runs the full sizes; run any other way (for
//! example by `cargo test --all-targets`) it runs tiny sizes as a smoke
//! test. `MAILROOM_PG_BENCH_SCALE=0.1` scales the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use mailroom_core::{Flag, Flags, NewMessage, Storage, StoreOp, Uid};
use mailroom_store_postgres::{PgOptions, PgStore};
use mailroom_testkit::postgres::PgCluster;
use mailroom_testkit::store_bench::{
    Row, Sizes, USER, fetch_summaries, fill, inbox, print, select_fetch_flags,
};

fn big(n: usize, tag: u64) -> bytes::Bytes {
    let mut v = format!("Subject: big {tag}\r\n\r\n").into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/-=\r\n";
    while v.len() < n {
        v.extend_from_slice(line);
    }
    v.truncate(n);
    v.into()
}

async fn store(cluster: &PgCluster, name: &str) -> PgStore {
    let url = cluster.create_database(name);
    let s = PgStore::connect(&PgOptions {
        url,
        pool_size: 4,
        migrate: true,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await
    .unwrap();
    s.ensure_account(USER).await.unwrap();
    s
}

fn main() {
    let sizes = Sizes::from_env("MAILROOM_PG_BENCH_SCALE");
    let full = sizes.full;
    let count = |n: f64| sizes.count(n);
    let (n_append, n_select, n_summ) = (count(10_000.0), count(100_000.0), count(10_000.0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = PgCluster::start_durable();
    let mut rows = Vec::new();

    rt.block_on(async {
        // APPEND
        let s = store(&cluster, "append").await;
        let t = Instant::now();
        fill(&s, n_append).await;
        let el = t.elapsed();
        rows.push(Row {
            what: "APPEND small messages, fsync on".into(),
            n: n_append,
            best: el,
            median: el,
        });

        // STORE: one message per command (a transaction each), then one
        // command for every message; the mailbox filled above
        let m = s.open(&inbox(), USER).await.unwrap();
        let n_store = n_append.min(1_000);
        let t = Instant::now();
        for u in 1..=n_store as u32 {
            m.store(
                &[Uid(u)],
                &StoreOp::Add([Flag::Flagged].into_iter().collect()),
                None,
            )
            .await
            .unwrap();
        }
        let el = t.elapsed();
        rows.push(Row {
            what: "STORE +FLAGS, one message per command".into(),
            n: n_store,
            best: el,
            median: el,
        });
        let all: Vec<Uid> = (1..=n_append as u32).map(Uid).collect();
        let mut v = Vec::new();
        for round in 0..5 {
            let flag = Flag::Keyword(format!("$Round{round}"));
            let t = Instant::now();
            m.store(&all, &StoreOp::Add([flag].into_iter().collect()), None)
                .await
                .unwrap();
            v.push(t.elapsed());
        }
        v.sort();
        rows.push(Row {
            what: "STORE 1:* +FLAGS, one command".into(),
            n: n_append,
            best: v[0],
            median: v[v.len() / 2],
        });

        // SELECT + FETCH 1:* (FLAGS UID)
        let s = store(&cluster, "select").await;
        fill(&s, n_select).await;
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(select_fetch_flags(&s, n_select).await);
        }
        v.sort();
        rows.push(Row {
            what: "SELECT + FETCH 1:* (FLAGS UID)".into(),
            n: n_select,
            best: v[0],
            median: v[v.len() / 2],
        });

        // FETCH 1:* (ENVELOPE BODYSTRUCTURE)
        let s = store(&cluster, "summaries").await;
        fill(&s, n_summ).await;
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(fetch_summaries(&s, n_summ).await);
        }
        v.sort();
        rows.push(Row {
            what: "FETCH 1:* (ENVELOPE BODYSTRUCTURE)".into(),
            n: n_summ,
            best: v[0],
            median: v[v.len() / 2],
        });

        // bodies across the inline/chunked line
        let s = store(&cluster, "bodies").await;
        let reps = if full { 5 } else { 1 };
        for (size, label) in [
            (256 << 10, "256 KiB, inline"),
            (1 << 20, "1 MiB, inline"),
            ((1 << 20) + 1, "1 MiB + 1, 2 chunks"),
            (4 << 20, "4 MiB, 4 chunks"),
            (16 << 20, "16 MiB, 16 chunks"),
        ] {
            let mut w = Vec::new();
            let mut r = Vec::new();
            for i in 0..reps {
                let content = big(size, i as u64 + size as u64);
                let t = Instant::now();
                let a = s
                    .append(
                        &inbox(),
                        NewMessage {
                            flags: Flags::default(),
                            internal_date: None,
                            content,
                        },
                    )
                    .await
                    .unwrap();
                w.push(t.elapsed());
                let m = s.open(&inbox(), USER).await.unwrap();
                let t = Instant::now();
                let got = m.content(a.uid).await.unwrap();
                r.push(t.elapsed());
                assert_eq!(got.len(), size);
            }
            w.sort();
            r.sort();
            rows.push(Row {
                what: format!("APPEND body {label}"),
                n: 1,
                best: w[0],
                median: w[w.len() / 2],
            });
            rows.push(Row {
                what: format!("FETCH BODY[] {label} (GUID checked)"),
                n: 1,
                best: r[0],
                median: r[r.len() / 2],
            });
        }
    });

    print(&rows, sizes, "mailroom-store-postgres");
    drop(rt);
    drop(cluster);
}
