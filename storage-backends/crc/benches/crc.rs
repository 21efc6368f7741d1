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
//! `cargo bench -p mailroom-store-crc` runs the full sizes; run any other way
//! (for example by `cargo test --all-targets`) it runs tiny sizes as a smoke
//! test. `MAILROOM_CRC_BENCH_SCALE=0.1` scales the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_core::{Flag, Flags, MailboxName, MailboxRef, NewMessage, Storage, Uid};
use mailroom_store_crc::{CrcOptions, CrcStore};

fn message(n: u64) -> bytes::Bytes {
    format!(
        "From: Sender {n} <s{n}@example.org>\r\nTo: Rcpt <rcpt@example.com>\r\n\
         Subject: benchmark message {n}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{n}@bench.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello, this is message {n}.\r\nIt has a small body of a few lines.\r\n\r\n-- \r\nBench\r\n"
    )
    .into()
}

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

const USER: &str = "bench@example.com";

fn inbox() -> MailboxRef {
    MailboxRef::new(USER, MailboxName::inbox())
}

async fn fill(s: &CrcStore, n: u64) {
    for i in 0..n {
        let flags: Flags = match i % 4 {
            0 => [Flag::Seen].into_iter().collect(),
            1 => [Flag::Seen, Flag::Flagged].into_iter().collect(),
            2 => [Flag::Keyword("$Work".into())].into_iter().collect(),
            _ => Flags::default(),
        };
        s.append(
            &inbox(),
            NewMessage {
                flags,
                internal_date: None,
                content: message(i),
            },
        )
        .await
        .unwrap();
    }
}

struct Row {
    what: String,
    n: u64,
    best: Duration,
    median: Duration,
}

fn timed(runs: usize, mut f: impl FnMut() -> Duration) -> (Duration, Duration) {
    let mut v: Vec<Duration> = (0..runs).map(|_| f()).collect();
    v.sort();
    (v[0], v[v.len() / 2])
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale: f64 = std::env::var("MAILROOM_CRC_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1.0 } else { 0.002 });
    let count = |n: f64| ((n * scale) as u64).max(10);
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
            let t = Instant::now();
            let m = s.open(&inbox(), USER).await.unwrap();
            let snap = m.snapshot().await.unwrap();
            let uids: Vec<Uid> = snap.messages.iter().map(|m| m.uid).collect();
            let metas = m.fetch_meta(&uids).await.unwrap();
            let el = t.elapsed();
            assert_eq!(snap.messages.len() as u64, n_select);
            assert_eq!(metas.len() as u64, n_select);
            el
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
    let uids: Arc<Vec<Uid>> = Arc::new((1..=n_summ as u32).map(Uid).collect());
    let (best, median) = timed(5, || {
        rt.block_on(async {
            let s = store(&d, false);
            let t = Instant::now();
            let m = s.open(&inbox(), USER).await.unwrap();
            let sums = m.summaries(&uids).await.unwrap();
            let el = t.elapsed();
            assert_eq!(sums.len() as u64, n_summ);
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

    println!();
    println!("| workload | messages | best | median | per message (median) |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.2} µs |",
            r.what,
            r.n,
            r.best.as_secs_f64() * 1e3,
            r.median.as_secs_f64() * 1e3,
            r.median.as_secs_f64() * 1e6 / r.n as f64
        );
    }
    if !full {
        println!("(smoke sizes; run `cargo bench -p mailroom-store-crc` for the real figures)");
    }
}
