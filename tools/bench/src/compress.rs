//! `mailroom-bench compress`: `FETCH 1:* (BODY.PEEK[])` of `--messages`
//! messages (10,000 by default, the `mixed_message` kind: half plain, half
//! multipart with an attachment) over a connection with COMPRESS=DEFLATE
//! (RFC 4978), against mailroomd and Dovecot (its `imap_zlib` plugin) in
//! the same run: the bytes the socket carried (compressed), the bytes of
//! the responses once inflated, and the wall-clock time (median over
//! `--rounds`, each on a fresh connection after one untimed warm-up round;
//! login, COMPRESS and EXAMINE not timed). The same FETCH without
//! COMPRESS is measured too, for reference.
//!
//! ```sh
//! target/release/mailroom-bench compress --messages 10000 --rounds 5
//! ```

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::imap::Client;
use super::{Dovecot, Mailroomd, PASSWORD, Target, USER, fmt, median, mixed_message};

/// What one target did.
#[derive(Default)]
struct Figures {
    compressed_time: Option<Duration>,
    compressed_wire: u64,
    inflated: u64,
    plain_time: Option<Duration>,
    plain_wire: u64,
}

/// Dovecot offers COMPRESS=DEFLATE only with its zlib plugin.
const DOVECOT_ZLIB: &str = "protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n";

/// `mailroom-bench compress` options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Messages fetched.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    #[command(flatten)]
    rounds: crate::cli::Rounds,
}

/// Runs the benchmark.
pub(crate) fn main(o: Options) -> Result<()> {
    let Options {
        messages,
        rounds: crate::cli::Rounds { rounds },
    } = o;
    let tmp = super::scratch_dir("mailroom-bench")?;
    let dir = tmp.path().join("mailroomd");
    std::fs::create_dir_all(&dir)?;
    let m = Mailroomd::start(&dir)?;
    let ours = measure(&m, messages, rounds)?;
    drop(m);
    let d = Dovecot(mailroom_e2e::Dovecot::start_with_config(
        USER,
        PASSWORD,
        &mailroom_e2e::DovecotOptions::default(),
        DOVECOT_ZLIB,
    ));
    let theirs = measure(&d, messages, rounds)?;
    drop(d);

    println!("| work | mailroomd | dovecot |");
    println!("|---|---|---|");
    let kib = |b: u64| format!("{:.0} KiB", b as f64 / 1024.0);
    println!(
        "| FETCH 1:* (BODY.PEEK[]) of {messages} msgs with COMPRESS=DEFLATE, warm median | {} | {} |",
        fmt(ours.compressed_time),
        fmt(theirs.compressed_time)
    );
    println!(
        "| bytes on the wire with COMPRESS=DEFLATE | {} | {} |",
        kib(ours.compressed_wire),
        kib(theirs.compressed_wire)
    );
    println!(
        "| bytes of the responses, inflated | {} | {} |",
        kib(ours.inflated),
        kib(theirs.inflated)
    );
    println!(
        "| the same FETCH without COMPRESS, warm median | {} | {} |",
        fmt(ours.plain_time),
        fmt(theirs.plain_time)
    );
    println!(
        "| bytes on the wire without COMPRESS | {} | {} |",
        kib(ours.plain_wire),
        kib(theirs.plain_wire)
    );
    println!(
        "\nwall-clock times on this machine ({} cores), same run",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    Ok(())
}

fn measure(target: &dyn Target, messages: usize, rounds: usize) -> Result<Figures> {
    eprintln!(
        "[{}] populating Compress ({messages} messages) ...",
        target.name()
    );
    target.populate("Compress", messages, mixed_message)?;
    let mut f = Figures::default();
    for compressed in [true, false] {
        let mut runs = Vec::new();
        for r in 0..=rounds {
            let mut c = Client::login(target.port(), USER, PASSWORD)?;
            if compressed {
                c.compress()?;
            }
            c.run("EXAMINE Compress")?;
            let before = c.wire_bytes();
            let t = Instant::now();
            let inflated = c.run("FETCH 1:* (BODY.PEEK[])")?;
            let d = t.elapsed();
            let wire = c.wire_bytes() - before;
            c.run("LOGOUT").ok();
            if r == 0 {
                continue;
            }
            runs.push(d);
            if compressed {
                f.compressed_wire = wire;
                f.inflated = inflated;
            } else {
                f.plain_wire = wire;
            }
        }
        let t = Some(median(runs));
        if compressed {
            f.compressed_time = t;
        } else {
            f.plain_time = t;
        }
    }
    if f.compressed_wire == 0 || f.compressed_wire >= f.plain_wire {
        bail!(
            "{}: COMPRESS carried {} bytes against {} without",
            target.name(),
            f.compressed_wire,
            f.plain_wire
        );
    }
    Ok(f)
}
