//! The workloads the store benchmarks share (`cargo bench -p
//! mailroom-store-crc` and `-p mailroom-store-postgres`), so their tables
//! measure the same work on the same messages: the bench user's INBOX
//! filled with [`message`]s carrying [`flags`], SELECT + `FETCH 1:* (FLAGS
//! UID)` as [`select_fetch_flags`], `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` as
//! [`fetch_summaries`], the sizes ([`Sizes`]) and the printed table
//! ([`Row`], [`print`]). Each bench keeps what only its store has (the CRC
//! store's cold opens and reconstruct, PostgreSQL's large bodies).

use std::time::{Duration, Instant};

use bytes::Bytes;
use mailroom_core::{Flag, Flags, MailboxName, MailboxRef, NewMessage, Storage, Uid};

/// The account every store bench works in.
pub const USER: &str = "bench@example.com";

/// The bench user's INBOX.
pub fn inbox() -> MailboxRef {
    MailboxRef::new(USER, MailboxName::inbox())
}

/// The `n`th small message (about 400 bytes, one text part).
pub fn message(n: u64) -> Bytes {
    format!(
        "From: Sender {n} <s{n}@example.org>\r\nTo: Rcpt <rcpt@example.com>\r\n\
         Subject: benchmark message {n}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{n}@bench.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello, this is message {n}.\r\nIt has a small body of a few lines.\r\n\r\n-- \r\nBench\r\n"
    )
    .into()
}

/// The flags of the `n`th message: `\Seen`, `\Seen \Flagged`, `$Work`,
/// none, in turn.
pub fn flags(n: u64) -> Flags {
    match n % 4 {
        0 => [Flag::Seen].into_iter().collect(),
        1 => [Flag::Seen, Flag::Flagged].into_iter().collect(),
        2 => [Flag::Keyword("$Work".into())].into_iter().collect(),
        _ => Flags::default(),
    }
}

/// APPENDs messages `0..n` to the bench INBOX one at a time (the account
/// must exist); panics on a failed append.
pub async fn fill(s: &dyn Storage, n: u64) {
    for i in 0..n {
        let message = NewMessage {
            flags: flags(i),
            internal_date: None,
            content: message(i),
        };
        if let Err(e) = s.append(&inbox(), message).await {
            panic!("append of bench message {i}: {e}");
        }
    }
}

/// SELECT + `FETCH 1:* (FLAGS UID)`: opens the INBOX, takes its snapshot
/// and the metadata of every UID in it; panics unless there are `n`.
pub async fn select_fetch_flags(s: &dyn Storage, n: u64) -> Duration {
    let t = Instant::now();
    let (snapshot, metas) = match async {
        let m = s.open(&inbox(), USER).await?;
        let snap = m.snapshot().await?;
        let uids: Vec<Uid> = snap.messages.iter().map(|m| m.uid).collect();
        let metas = m.fetch_meta(&uids).await?;
        Ok::<_, mailroom_core::Error>((snap.messages.len(), metas.len()))
    }
    .await
    {
        Ok(counts) => counts,
        Err(e) => panic!("SELECT + FETCH FLAGS: {e}"),
    };
    let elapsed = t.elapsed();
    assert_eq!((snapshot as u64, metas as u64), (n, n), "messages seen");
    elapsed
}

/// `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` of UIDs `1..=n`: opens the INBOX
/// and reads their summaries; panics unless all `n` come.
pub async fn fetch_summaries(s: &dyn Storage, n: u64) -> Duration {
    let uids: Vec<Uid> = (1..=n as u32).map(Uid).collect();
    let t = Instant::now();
    let got = match async {
        let m = s.open(&inbox(), USER).await?;
        m.summaries(&uids).await
    }
    .await
    {
        Ok(sums) => sums.len(),
        Err(e) => panic!("FETCH ENVELOPE BODYSTRUCTURE: {e}"),
    };
    let elapsed = t.elapsed();
    assert_eq!(got as u64, n, "summaries read");
    elapsed
}

/// The sizes of a run: full with `--bench` (what `cargo bench` passes),
/// tiny otherwise (a smoke test under `cargo test --all-targets`), scaled by
/// the environment variable the bench names.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Whether `cargo bench` runs it.
    pub full: bool,
    scale: f64,
}

impl Sizes {
    /// The sizes from the command line and `scale_var` (e.g.
    /// `MAILROOM_CRC_BENCH_SCALE=0.1`).
    pub fn from_env(scale_var: &str) -> Sizes {
        let full = std::env::args().any(|a| a == "--bench");
        let scale = std::env::var(scale_var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { 1.0 } else { 0.002 });
        Sizes { full, scale }
    }

    /// `n` messages scaled, at least 10.
    pub fn count(&self, n: f64) -> u64 {
        ((n * self.scale) as u64).max(10)
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The work.
    pub what: String,
    /// Messages it handled.
    pub n: u64,
    /// The fastest run.
    pub best: Duration,
    /// The median run.
    pub median: Duration,
}

/// Runs `f` `runs` times and returns (fastest, median).
pub fn timed(runs: usize, mut f: impl FnMut() -> Duration) -> (Duration, Duration) {
    let mut v: Vec<Duration> = (0..runs.max(1)).map(|_| f()).collect();
    v.sort();
    (v[0], v[v.len() / 2])
}

/// Prints the rows as a Markdown table; `package` names the crate for the
/// note under a smoke run.
pub fn print(rows: &[Row], sizes: Sizes, package: &str) {
    println!();
    println!("| workload | messages | best | median | per message (median) |");
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.2} µs |",
            r.what,
            r.n,
            r.best.as_secs_f64() * 1e3,
            r.median.as_secs_f64() * 1e3,
            r.median.as_secs_f64() * 1e6 / r.n as f64
        );
    }
    if !sizes.full {
        println!("(smoke sizes; run `cargo bench -p {package}` for the real figures)");
    }
}
