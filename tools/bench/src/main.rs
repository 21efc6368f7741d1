//! # mailroom-bench
//!
//! Runs the same work against `mailroomd` and Dovecot on this machine, in
//! the same run, and prints a table of the figures side by side. Two
//! benchmarks:
//!
//! - `mailroom-bench [imap]` (the default), IMAP work, below;
//! - `mailroom-bench lmtp`: LMTP delivery, messages per second over one
//!   connection and over 8, fsync on (see the `lmtp` module);
//! - `mailroom-bench accounts`: mailroomd's memory against the accounts it
//!   has seen and the connections it holds (see the `accounts` module);
//! - `mailroom-bench connections`: 10,000 IDLE connections, push latency of
//!   a delivery and CPU while idle, next to Dovecot at 1,000 (see the
//!   `connections` module);
//! - `mailroom-bench stress`: many clients on shared mailboxes, every
//!   response checked against a model of the mailbox (see the `stress`
//!   module);
//! - `mailroom-bench sort`: only the SORT and THREAD rows of the IMAP
//!   benchmark (see the `sort` module);
//! - `mailroom-bench compress`: `FETCH 1:* (BODY.PEEK[])` of 10,000
//!   messages with COMPRESS=DEFLATE, bytes on the wire and time, next to
//!   Dovecot's `imap_zlib` (see the `compress` module);
//! - `mailroom-bench replication`: initial sync of a 100,000-message account
//!   and a catch-up by `mailroom-sync` between two CRC stores, next to
//!   Dovecot's `doveadm backup`, and replication lag under 8 LMTP
//!   connections (see the `replication` module).
//!
//! The IMAP benchmark:
//!
//! - SELECT + `UID FETCH 1:* (FLAGS UID)` on a 100,000-message mailbox;
//! - `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` on 10,000 messages;
//! - APPEND of 10,000 small messages, one at a time, durability on;
//! - APPEND of 200 small messages the way Python's imaplib sends them
//!   (Nagle on, synchronizing literal, literal and CRLF in two writes);
//! - reconstruct of 10,000 messages (`mailroomd reconstruct` against
//!   `doveadm force-resync`);
//! - `UID SORT` by ARRIVAL, DATE, SUBJECT and FROM and `UID THREAD
//!   REFERENCES` of a 100,000-message mailbox of threads (see the `sort`
//!   module).
//!
//! mailroomd is measured on each of `--stores` (default `crc,postgres`),
//! a column each next to Dovecot's: the CRC store with durability on, and
//! PostgreSQL (issue 11) in a private cluster with `fsync=on` started by
//! the tool (`mailroom_testkit::postgres`: `initdb` into a temporary
//! folder, a free loopback port, stopped at the end; never a system
//! service). The PostgreSQL column has the APPEND, SELECT + FETCH FLAGS
//! and ENVELOPE rows (and imaplib's APPEND); it has no reconstruct, and
//! its SORT and THREAD rows are left out. Its mailboxes are filled over 8
//! connections at once (each APPEND is a transaction of its own, and
//! PostgreSQL groups concurrent commits); the APPEND row is one
//! connection, one message at a time, as for the others.
//!
//! ```sh
//! cargo build --release -p mailroomd -p mailroom-bench
//! target/release/mailroom-bench            # full sizes
//! target/release/mailroom-bench --large 20000 --small 2000   # quicker
//! target/release/mailroom-bench --stores crc   # without PostgreSQL
//! ```
//!
//! Dovecot comes from Debian (`dovecot-imapd`); the tool writes its config
//! into a temporary folder, runs it on loopback as `nobody`, and stops it.
//! Timings are wall-clock medians over `--rounds` runs on a warm server,
//! each on a fresh connection (login not timed).
//!
//! ```sh
//! target/release/mailroom-bench lmtp                     # 2000 messages of 4 KiB per row
//! target/release/mailroom-bench lmtp --messages 500 --connections 1,8,32
//! ```
//!
//! Dependencies: `anyhow` (a binary), `tempfile` (scratch directories) and
//! the end-to-end harness `mailroom-e2e` for its Dovecot launcher, so the
//! reference server is configured the same way in tests and benchmarks;
//! `mailroomd` (its library) to write 100,000 users through its own users
//! file code and to raise the open-file limit; `argon2` for the one cheap
//! hash those users share; `tokio` to hold 10,000 connections at once
//! without a thread each; `rand` (already the workspace's, for its
//! property tests) for the stress clients' seeded choices; for the
//! replication benchmark, which runs the
//! stores, the replication pair and an LMTP server in-process (mailroomd
//! has no replication wiring of its own yet), `mailroom-core`,
//! `mailroom-store-crc`, `mailroom-sync`, `mailroom-lmtp`, `bytes`, and
//! `mailroom-testkit` for its fixed-list authenticator; `flate2` for the
//! client side of COMPRESS=DEFLATE; `clap` (the workspace's, mailroomd's
//! admin commands use it) for the command line, so every subcommand has its
//! `--help` and the same error on a bad flag (see the `cli` module).

mod accounts;
mod cli;
mod compress;
mod connections;
mod imap;
mod lmtp;
mod replication;
mod sort;
mod stress;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use imap::Client;

const USER: &str = "bench@example.com";
const PASSWORD: &str = "benchpw";

/// The IMAP benchmark's options (`mailroom-bench [imap]`).
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Messages in the big mailbox (SELECT + FETCH FLAGS, SORT, THREAD).
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Messages in the small mailbox (ENVELOPE BODYSTRUCTURE, reconstruct).
    #[arg(long, default_value_t = 10_000)]
    small: usize,
    /// Messages APPENDed one at a time.
    #[arg(long, default_value_t = 10_000)]
    append: usize,
    /// Timed rounds per row (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = cli::at_least_one)]
    rounds: usize,
    /// The stores mailroomd is measured on, a column each (PostgreSQL: a
    /// private cluster, fsync on; no reconstruct, SORT or THREAD rows).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [StoreKind::Crc, StoreKind::Postgres])]
    stores: Vec<StoreKind>,
    #[command(flatten)]
    only: cli::Only,
}

/// A store mailroomd runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StoreKind {
    /// The CRC on-disk store, durability on.
    Crc,
    /// Memory, lost at exit.
    Memory,
    /// PostgreSQL: a database in a private cluster, fsync on.
    Postgres,
}

impl StoreKind {
    /// The backend's name in mailroomd's `[store]` table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Crc => "crc",
            StoreKind::Memory => "memory",
            StoreKind::Postgres => "postgres",
        }
    }
}

/// A `[store]` table for mailroomd's config, and the backend it names.
#[derive(Debug, Clone)]
pub(crate) struct StoreTable {
    kind: StoreKind,
    toml: String,
}

/// Makes [`StoreTable`]s; the PostgreSQL cluster (see
/// `mailroom_testkit::postgres`: initdb in a temporary folder, a free
/// loopback port, `fsync=on`, stopped at the end) starts on first use.
#[derive(Debug, Default)]
pub(crate) struct Stores {
    cluster: std::sync::OnceLock<mailroom_testkit::postgres::PgCluster>,
}

impl Stores {
    /// A store of `kind`; for PostgreSQL a new empty database named after
    /// `name`, which every mailroomd given this table shares.
    pub(crate) fn table(&self, kind: StoreKind, name: &str) -> StoreTable {
        let toml = match kind {
            StoreKind::Postgres => {
                let url = self
                    .cluster
                    .get_or_init(mailroom_testkit::postgres::PgCluster::start_durable)
                    .create_database(name);
                format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
            }
            k => format!("[store]\nbackend = \"{}\"\n", k.name()),
        };
        StoreTable { kind, toml }
    }
}

/// A small plain message of about 600 bytes.
fn small_message(i: usize) -> Vec<u8> {
    format!(
        "From: Sender {i} <sender{i}@example.org>\r\nTo: {USER}\r\nSubject: bench message {i}\r\n\
         Date: Mon, 2 Mar 2026 10:{:02}:{:02} +0000\r\nMessage-ID: <bench{i}@example.org>\r\n\r\n{}",
        (i / 60) % 60,
        i % 60,
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(8)
    )
    .into_bytes()
}

/// A message of the kind FETCH ENVELOPE BODYSTRUCTURE works hard on: every
/// other one multipart with an attachment.
fn mixed_message(i: usize) -> Vec<u8> {
    if i.is_multiple_of(2) {
        return small_message(i);
    }
    format!(
        "From: \"Multi {i}\" <multi{i}@example.net>\r\nTo: a@example.com, \"B\" <b@example.com>\r\nCc: c@example.com\r\n\
         Subject: =?utf-8?q?multipart_{i}?=\r\nDate: Tue, 3 Mar 2026 11:00:00 +0100\r\nMessage-ID: <multi{i}@example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\npreamble\r\n--b{i}\r\n\
         Content-Type: multipart/alternative; boundary=\"c{i}\"\r\n\r\n--c{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         text {i}\r\n--c{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html {i}</p>\r\n--c{i}--\r\n--b{i}\r\n\
         Content-Type: application/pdf; name=\"f{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"f{i}.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n--b{i}--\r\n"
    )
    .into_bytes()
}

trait Target {
    fn name(&self) -> &'static str;
    fn port(&self) -> u16;
    fn reconstruct(&self, mailbox: &str) -> Result<Duration>;
    /// Whether the reconstruct, SORT and THREAD rows are measured.
    fn every_row(&self) -> bool {
        true
    }
    /// Connections the default [`Target::populate`] fills a mailbox over.
    fn fill_connections(&self) -> usize {
        1
    }
    /// Fills a new mailbox; by default with pipelined APPENDs over IMAP.
    fn populate(
        &self,
        mailbox: &str,
        count: usize,
        make: fn(usize) -> Vec<u8>,
    ) -> Result<Duration> {
        populate_parallel(self.port(), mailbox, count, make, self.fill_connections())
    }
}

struct Mailroomd {
    child: Child,
    bin: PathBuf,
    config: PathBuf,
    port: u16,
    store: StoreKind,
}

impl Mailroomd {
    fn start(dir: &Path) -> Result<Mailroomd> {
        Mailroomd::launch(dir, "imap")
    }

    /// Starts mailroomd on the CRC store (durability on: its default) with
    /// one listener, `[proto]` on a free loopback port, and the bench user.
    /// The per-connection command rate limit is off, as Dovecot has none:
    /// the pipelined fills and the APPEND row would otherwise measure the
    /// limit (500 commands/s by default), not the server.
    fn launch(dir: &Path, proto: &str) -> Result<Mailroomd> {
        let store = Stores::default().table(StoreKind::Crc, "bench");
        Mailroomd::launch_with(dir, proto, &store, sibling_binary("mailroomd")?, &[USER])
    }

    /// Like [`Mailroomd::launch`], with the store, the binary and the users
    /// (all with [`PASSWORD`]) given.
    fn launch_with(
        dir: &Path,
        proto: &str,
        store: &StoreTable,
        bin: PathBuf,
        users: &[&str],
    ) -> Result<Mailroomd> {
        let config = dir.join("mailroomd.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\nlog_level = \"warn\"\n[{proto}]\nlisten = \"127.0.0.1:0\"\n[auth]\nallow_plaintext = true\n[limits]\ncommands_per_second = 0\n{}",
                dir.join("data").display(),
                store.toml
            ),
        )?;
        for user in users {
            add_user(&bin, &config, user)?;
        }
        let mut child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let wanted = format!("mailroomd: {proto} listening on ");
        let port = loop {
            let line = lines
                .next()
                .context("mailroomd exited before listening")??;
            if let Some(addr) = line.strip_prefix(&wanted) {
                break addr.rsplit(':').next().unwrap_or("0").parse()?;
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Mailroomd {
            child,
            bin,
            config,
            port,
            store: store.kind,
        })
    }
}

impl Target for Mailroomd {
    fn name(&self) -> &'static str {
        match self.store {
            StoreKind::Crc => "mailroomd crc",
            StoreKind::Memory => "mailroomd memory",
            StoreKind::Postgres => "mailroomd postgres",
        }
    }
    fn every_row(&self) -> bool {
        self.store != StoreKind::Postgres
    }
    /// PostgreSQL over 8 connections (see [`populate_parallel`]).
    fn fill_connections(&self) -> usize {
        if self.store == StoreKind::Postgres {
            8
        } else {
            1
        }
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn reconstruct(&self, mailbox: &str) -> Result<Duration> {
        let t = Instant::now();
        let st = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .args(["reconstruct", &format!("{USER}/{mailbox}")])
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("mailroomd reconstruct failed");
        }
        Ok(t.elapsed())
    }
}

impl Drop for Mailroomd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Dovecot(mailroom_e2e::Dovecot);

impl Target for Dovecot {
    fn name(&self) -> &'static str {
        "dovecot"
    }
    fn port(&self) -> u16 {
        self.0.port()
    }
    fn reconstruct(&self, mailbox: &str) -> Result<Duration> {
        let t = Instant::now();
        let st = Command::new("doveadm")
            .arg("-c")
            .arg(self.0.config())
            .args(["force-resync", "-u", USER, mailbox])
            .status()?;
        if !st.success() {
            bail!("doveadm force-resync failed");
        }
        Ok(t.elapsed())
    }

    /// Writes the messages straight into the Maildir, the way a large
    /// Dovecot mailbox comes to exist (APPENDing 100,000 messages into one
    /// Maildir folder over IMAP slows down past ~30,000 and takes most of an
    /// hour here). Dovecot indexes them on the first SELECT, which `measure`
    /// does untimed before the timed rounds.
    fn populate(
        &self,
        mailbox: &str,
        count: usize,
        make: fn(usize) -> Vec<u8>,
    ) -> Result<Duration> {
        let t = Instant::now();
        let folder = self
            .0
            .home(USER)
            .join("Maildir")
            .join(format!(".{mailbox}"));
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(folder.join(sub))?;
        }
        for i in 0..count {
            std::fs::write(
                folder
                    .join("cur")
                    .join(format!("{}.M{i}P1.bench:2,", 1_700_000_000 + i)),
                make(i),
            )?;
        }
        let st = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(self.0.home(USER))
            .status()?;
        if !st.success() {
            bail!("chown of the Dovecot Maildir failed");
        }
        Ok(t.elapsed())
    }
}

/// A temporary directory for one benchmark run (removed when dropped),
/// readable by everyone: Dovecot's processes run as other users.
fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    Ok(tmp)
}

fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("exe dir")?.join(name);
    if !p.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p {name}`",
            p.display()
        );
    }
    Ok(p)
}

/// Fills a mailbox quickly with pipelined APPENDs (32 in flight per
/// connection) over `connections` connections at once, each
/// appending every `connections`th message, so a store that commits each
/// APPEND in its own transaction (PostgreSQL) gets commits to group; the
/// messages' UIDs then follow their numbers only roughly.
fn populate_parallel(
    port: u16,
    mailbox: &str,
    count: usize,
    make: fn(usize) -> Vec<u8>,
    connections: usize,
) -> Result<Duration> {
    let mut c = Client::login(port, USER, PASSWORD)?;
    c.run(&format!("CREATE \"{mailbox}\""))?;
    let t = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..connections)
            .map(|k| {
                s.spawn(move || {
                    append_pipelined(
                        Client::login(port, USER, PASSWORD)?,
                        mailbox,
                        (k..count).step_by(connections),
                        make,
                    )
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("an APPEND thread panicked"))?
        })
    })?;
    c.run("LOGOUT").ok();
    Ok(t.elapsed())
}

/// Adds `user` with [`PASSWORD`] to the mailroomd of `config`.
fn add_user(bin: &Path, config: &Path, user: &str) -> Result<()> {
    let mut add = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["user", "add", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    add.stdin
        .take()
        .context("stdin")?
        .write_all(format!("{PASSWORD}\n").as_bytes())?;
    if !add.wait()?.success() {
        bail!("mailroomd user add {user} failed");
    }
    Ok(())
}

/// APPENDs `make(i)` for each `i` to `mailbox` over the logged-in
/// connection `c`, 32 in flight, then logs out.
fn append_pipelined(
    mut c: Client,
    mailbox: &str,
    numbers: impl Iterator<Item = usize>,
    make: fn(usize) -> Vec<u8>,
) -> Result<()> {
    let mut pending = std::collections::VecDeque::new();
    for i in numbers {
        pending.push_back(c.send_append(mailbox, &make(i))?);
        if pending.len() >= 32 {
            let tag = pending.pop_front().context("tag")?;
            c.read_until(&tag)?;
        }
    }
    while let Some(tag) = pending.pop_front() {
        c.read_until(&tag)?;
    }
    c.run("LOGOUT").ok();
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Row {
    work: String,
    figures: Vec<Option<Duration>>,
}

fn measure(target: &dyn Target, o: &Options, rows: &mut [Row], col: usize) -> Result<()> {
    let port = target.port();
    eprintln!(
        "[{}] populating Big ({} messages) ...",
        target.name(),
        o.large
    );
    let p = target.populate("Big", o.large, small_message)?;
    eprintln!("[{}]   {:.1}s", target.name(), p.as_secs_f64());
    eprintln!(
        "[{}] populating Small ({} messages) ...",
        target.name(),
        o.small
    );
    target.populate("Small", o.small, mixed_message)?;

    // 1. SELECT + UID FETCH 1:* (FLAGS UID), fresh connection each round;
    //    the first round is reported apart (Dovecot indexes the Maildir in it).
    let mut runs = Vec::new();
    for r in 0..=o.rounds {
        let mut c = Client::login(port, USER, PASSWORD)?;
        let t = Instant::now();
        c.run("SELECT Big")?;
        c.run("UID FETCH 1:* (FLAGS UID)")?;
        let d = t.elapsed();
        c.run("LOGOUT").ok();
        if r == 0 {
            rows[0].figures[col] = Some(d);
        } else {
            runs.push(d);
        }
    }
    rows[1].figures[col] = Some(median(runs));

    // 2. FETCH 1:* (ENVELOPE BODYSTRUCTURE) on Small; one untimed round
    //    first, so Dovecot's cache holds the structures as mailroomd's does.
    let mut runs = Vec::new();
    for r in 0..=o.rounds {
        let mut c = Client::login(port, USER, PASSWORD)?;
        c.run("EXAMINE Small")?;
        let t = Instant::now();
        c.run("FETCH 1:* (ENVELOPE BODYSTRUCTURE)")?;
        if r > 0 {
            runs.push(t.elapsed());
        }
        c.run("LOGOUT").ok();
    }
    rows[2].figures[col] = Some(median(runs));

    // 3. APPEND, one at a time, waiting for each OK (the server commits each durably)
    let mut c = Client::login(port, USER, PASSWORD)?;
    c.run("CREATE AppendTest")?;
    let t = Instant::now();
    for i in 0..o.append {
        c.append("AppendTest", &small_message(i))?;
    }
    rows[3].figures[col] = Some(t.elapsed());
    c.run("LOGOUT").ok();

    // 4. reconstruct of Small
    if target.every_row() {
        rows[4].figures[col] = Some(target.reconstruct("Small")?);
    }

    // 5. APPEND as Python's imaplib (and offlineimap) sends it
    let mut c = Client::connect_with(port, false)?;
    c.run(&format!("LOGIN \"{USER}\" \"{PASSWORD}\""))?;
    c.run("CREATE ImaplibTest")?;
    let t = Instant::now();
    for i in 0..IMAPLIB_APPENDS {
        c.append_like_imaplib("ImaplibTest", &small_message(i))?;
    }
    rows[5].figures[col] = Some(t.elapsed());
    c.run("LOGOUT").ok();

    // 6.. SORT, THREAD and header SEARCH
    if target.every_row() {
        sort::measure(target, o.large, o.rounds, rows, 6, col)?;
    }
    Ok(())
}

/// Messages in the imaplib-style APPEND row (kept small: a server that
/// delays its ACKs takes ~40 ms for each).
const IMAPLIB_APPENDS: usize = 200;

fn fmt(d: Option<Duration>) -> String {
    match d {
        Some(d) if d.as_secs_f64() >= 1.0 => format!("{:.2} s", d.as_secs_f64()),
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
        None => "-".into(),
    }
}

fn main() -> Result<()> {
    let cli = <cli::Cli as clap::Parser>::parse();
    match cli.command {
        None => imap_main(cli.imap),
        Some(cli::Bench::Imap(o)) => imap_main(o),
        Some(cli::Bench::Lmtp(o)) => lmtp::main(o),
        Some(cli::Bench::Accounts(o)) => accounts::main(o),
        Some(cli::Bench::Connections(o)) => connections::main(o),
        Some(cli::Bench::Stress(o)) => stress::main(o),
        Some(cli::Bench::Compress(o)) => compress::main(o),
        Some(cli::Bench::Sort(o)) => sort::main(o),
        Some(cli::Bench::Replication(o)) => replication::main(o),
    }
}

fn imap_main(o: Options) -> Result<()> {
    let tmp = scratch_dir("mailroom-bench")?;
    let mut rows: Vec<Row> = [
        format!("first SELECT + UID FETCH 1:* (FLAGS UID) after filling, {} msgs (dovecot builds its index here)", o.large),
        format!(
            "SELECT + UID FETCH 1:* (FLAGS UID), {} msgs, warm median",
            o.large
        ),
        format!("FETCH 1:* (ENVELOPE BODYSTRUCTURE), {} msgs", o.small),
        format!("APPEND {} small msgs, one at a time", o.append),
        format!("reconstruct {} msgs", o.small),
        format!(
            "APPEND {IMAPLIB_APPENDS} small msgs like Python's imaplib (Nagle on, literal and CRLF in two writes)"
        ),
    ]
    .into_iter()
    .chain(sort::rows(o.large))
    .map(|work| Row {
        work,
        figures: Vec::new(),
    })
    .collect();

    let mut columns: Vec<&str> = Vec::new();
    let stores = Stores::default();
    if o.only.mailroomd() {
        for &kind in &o.stores {
            let dir = tmp.path().join(format!("mailroomd-{}", kind.name()));
            std::fs::create_dir_all(&dir)?;
            let table = stores.table(kind, "bench");
            let m = Mailroomd::launch_with(
                &dir,
                "imap",
                &table,
                sibling_binary("mailroomd")?,
                &[USER],
            )?;
            columns.push(m.name());
            rows.iter_mut().for_each(|r| r.figures.push(None));
            measure(&m, &o, &mut rows, columns.len() - 1)?;
        }
    }
    let dovecot = o.only.dovecot().then_some(columns.len());
    if let Some(col) = dovecot {
        let d = Dovecot(mailroom_e2e::Dovecot::start(USER, PASSWORD));
        columns.push(d.name());
        rows.iter_mut().for_each(|r| r.figures.push(None));
        measure(&d, &o, &mut rows, col)?;
    }

    // a ratio column per mailroomd column: dovecot's time over its time
    let ours = dovecot.unwrap_or(columns.len());
    print!("| work |");
    for c in &columns {
        print!(" {c} |");
    }
    if dovecot.is_some() {
        for c in &columns[..ours] {
            print!(" dovecot / {c} |");
        }
    }
    println!();
    println!(
        "|---|{}",
        "---|".repeat(columns.len() + dovecot.map_or(0, |_| ours))
    );
    for r in &rows {
        print!("| {} |", r.work);
        for f in &r.figures {
            print!(" {} |", fmt(*f));
        }
        if let Some(d) = dovecot {
            for f in &r.figures[..ours] {
                let ratio = match (*f, r.figures[d]) {
                    (Some(a), Some(b)) if a.as_secs_f64() > 0.0 => {
                        format!("{:.2}x", b.as_secs_f64() / a.as_secs_f64())
                    }
                    _ => "-".into(),
                };
                print!(" {ratio} |");
            }
        }
        println!();
    }
    println!(
        "\nwall-clock times on this machine ({} cores), same run; ratio > 1 means mailroomd is faster",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    Ok(())
}
