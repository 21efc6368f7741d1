//! `mailroom-bench lmtp`: LMTP delivery throughput, mailroomd next to
//! Dovecot, same machine, same run.
//!
//! Each target gets the same stream of messages (default 2,000 of about
//! 4 KiB, each with its own Message-ID) for one recipient, once over one
//! connection and once over 8 (`--connections`), then over 8 connections
//! for 8 recipients, connection `i` delivering to user `i` (`--recipients`):
//! deliveries into one mailbox are ordered by the store, deliveries into
//! different mailboxes need not be. A connection says `LHLO`
//! once, then for each message pipelines `MAIL FROM`, `RCPT TO` and `DATA`
//! (both servers advertise PIPELINING, and Postfix's LMTP client does the
//! same), sends the message, and waits for the final `250` before the next
//! one: one message in flight per connection, so the figure is what a
//! durable delivery costs. Each run is made twice (`--pipeline` picks one):
//! `lockstep` as just said (two round trips a message: `354`, then `250`),
//! and `pipelined`, where the next transaction's `MAIL`, `RCPT` and `DATA`
//! follow the message's final dot in the same write (RFC 2920 lets a client
//! send them without waiting for the `250`; only the message itself waits
//! for `354`), so one round trip a message. The clock runs from the moment
//! every connection is ready to the last reply. The targets of issue 7
//! (1,000 msgs/s on one connection, 4,000 on 8 connections to 8
//! recipients) are printed next to mailroomd's rows.
//!
//! - mailroomd: the release binary next to this one, CRC store,
//!   `durability = true` and `journal = true` (its defaults: each message
//!   is durable in the store-wide delivery journal, one group-committed
//!   fdatasync shared by all mailboxes, before the `250`; FORMAT.md,
//!   "Delivery journal"), LMTP on loopback TCP.
//! - Dovecot (Debian `dovecot-lmtpd`): Maildir, once with `mail_fsync =
//!   optimized` (Dovecot's default) and once with `mail_fsync = always`.
//!
//! After each target the tool checks that the mailbox holds exactly the
//! messages sent (mailroomd: `quota show`; Dovecot: `doveadm mailbox
//! status`), so no row counts a message that was not stored.
//!
//! Last, in the same run and on the same file system, the tool replays the
//! CRC store's durable commit of one message with no server at all (the
//! `fsync floor`): a 4 KiB file created under `tmp/` and renamed into
//! `msg/`, then at once the fdatasync of that file, the fsync of `msg/` and
//! the append and fdatasync of a ~600-byte cache record, then a 128-byte
//! index record and the 128-byte header written and made durable by one
//! fdatasync: two fsync rounds one after the other, as the store does them
//! for a lone delivery (FORMAT.md, "Commit order"). Once on one thread,
//! once on 8 threads each in its own directory (8 mailboxes). What that
//! sequence alone sustains is the ceiling of a durable delivery on this
//! disk; the rows above say how close mailroomd comes to it. Two more
//! floors put it in context: the order before December 2026 (the message
//! file fdatasynced before the rename, then `msg/` and the cache, then the
//! index records, then the header: four rounds), and one round (everything
//! written, then every fsync at once): no order that writes the index
//! before its message is durable can do that without a load checking every
//! message file of the last commit, so it is the bound of this disk, not
//! of the format. The last floor is the delivery journal's commit as the
//! store makes it (FORMAT.md, "Zero-filled ahead", "Spare files"): the
//! message's bytes written into an empty spare file made ahead and renamed
//! into `msg/`, the cache and index records written without fsync, then a
//! record written into the zeros of a segment zero-filled ahead (one file
//! shared by all threads: the file does not grow) and fdatasynced. The
//! spare files and the zeros are made before the clock starts, as the
//! store's filler thread makes them off the commit's path.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Mailroomd, PASSWORD, USER};

/// Messages delivered before the measured runs (mailbox creation, caches).
const WARMUP: usize = 20;

/// How a connection sends its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waits for the `250` of a message before the next `MAIL`.
    Lockstep,
    /// Sends the next `MAIL`, `RCPT` and `DATA` right behind the final dot.
    Pipelined,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Lockstep => "lockstep",
            Mode::Pipelined => "pipelined",
        }
    }
}

/// `--pipeline`: which modes are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Pipeline {
    /// Lockstep only.
    Off,
    /// Pipelined only.
    On,
    /// Both.
    Both,
}

/// `mailroom-bench lmtp` options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Messages per measured row.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Bytes per message.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    size: usize,
    /// LMTP connections of each row.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
    connections: Vec<usize>,
    /// Recipients per message of each row.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
    recipients: Vec<usize>,
    /// Lockstep, pipelined or both.
    #[arg(long, value_enum, default_value_t = Pipeline::Both)]
    pipeline: Pipeline,
    #[command(flatten)]
    only: crate::cli::Only,
}

impl Options {
    /// The modes measured.
    fn modes(&self) -> Vec<Mode> {
        match self.pipeline {
            Pipeline::Off => vec![Mode::Lockstep],
            Pipeline::On => vec![Mode::Pipelined],
            Pipeline::Both => vec![Mode::Lockstep, Mode::Pipelined],
        }
    }

    /// The (connections, recipients) of each measured run: every pair with
    /// no more recipients than connections.
    fn runs(&self) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        for &r in &self.recipients {
            for &c in &self.connections {
                if r <= c {
                    runs.push((c, r));
                }
            }
        }
        runs
    }

    fn max_recipients(&self) -> usize {
        self.recipients.iter().copied().max().unwrap_or(1)
    }
}

/// The `i`th bench recipient: the bench user, then `bench1@example.com`, ...
fn recipient(i: usize) -> String {
    if i == 0 {
        USER.to_owned()
    } else {
        format!("bench{i}@example.com")
    }
}

/// Checks what clap cannot: every connection gets a message, some row runs.
fn check(o: Options) -> Result<Options> {
    if o.messages == 0 || o.connections.iter().any(|&c| c == 0 || c > o.messages) {
        bail!("need at least one message per connection");
    }
    if o.recipients.contains(&0) || o.runs().is_empty() {
        bail!("need at least one recipient, and no more recipients than connections in some run");
    }
    Ok(o)
}

/// One message of about `size` bytes, CRLF line ends, already dot-stuffed
/// (no line starts with a dot) and ending with CRLF.
fn message(n: usize, conn: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <bench@example.org>\r\nTo: {USER}\r\nSubject: lmtp bench {conn}.{n}\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <lmtp.{conn}.{n}.{}@bench>\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// A blocking LMTP client.
struct Lmtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lmtp {
    fn connect(port: u16) -> Result<Lmtp> {
        let s = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connect to {port}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut c = Lmtp {
            reader: BufReader::with_capacity(1 << 16, s.try_clone()?),
            writer: s,
        };
        c.expect(220, "greeting")?;
        c.writer.write_all(b"LHLO bench.example.org\r\n")?;
        c.expect(250, "LHLO")?;
        Ok(c)
    }

    /// Reads one (possibly multi-line) reply; returns its code and last line.
    fn reply(&mut self) -> Result<(u16, String)> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed");
            }
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .with_context(|| format!("bad reply {line:?}"))?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, line.trim_end().to_owned()));
            }
        }
    }

    fn expect(&mut self, code: u16, what: &str) -> Result<()> {
        let (got, line) = self.reply()?;
        if got != code {
            bail!("{what}: expected {code}, got {line:?}");
        }
        Ok(())
    }

    /// One transaction: MAIL, RCPT and DATA pipelined, then the message.
    fn deliver(&mut self, rcpt: &str, message: &[u8]) -> Result<()> {
        self.begin(rcpt, Vec::new())?;
        self.writer.write_all(message)?;
        self.writer.write_all(b".\r\n")?;
        self.expect(250, "delivery")
    }

    /// Sends `before` (the end of the previous message, if any) and the
    /// next transaction's MAIL, RCPT and DATA in one write; reads the
    /// previous message's `250` (when `before` holds one) and the three
    /// replies up to `354`.
    fn begin(&mut self, rcpt: &str, mut before: Vec<u8>) -> Result<()> {
        let ends_message = !before.is_empty();
        before.extend_from_slice(
            format!("MAIL FROM:<bench@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes(),
        );
        self.writer.write_all(&before)?;
        if ends_message {
            self.expect(250, "delivery")?;
        }
        self.expect(250, "MAIL")?;
        self.expect(250, "RCPT")?;
        self.expect(354, "DATA")
    }

    /// Every message of `messages`, each followed in the same write by the
    /// next transaction's commands; returns each message's time from its
    /// first byte to its `250`.
    fn deliver_pipelined(&mut self, rcpt: &str, messages: &[Vec<u8>]) -> Result<Vec<Duration>> {
        let mut latencies = Vec::with_capacity(messages.len());
        if messages.is_empty() {
            return Ok(latencies);
        }
        self.begin(rcpt, Vec::new())?;
        for (i, m) in messages.iter().enumerate() {
            let t = Instant::now();
            let mut out = Vec::with_capacity(m.len() + 128);
            out.extend_from_slice(m);
            out.extend_from_slice(b".\r\n");
            if i + 1 < messages.len() {
                self.begin(rcpt, out)?;
            } else {
                self.writer.write_all(&out)?;
                self.expect(250, "delivery")?;
            }
            latencies.push(t.elapsed());
        }
        Ok(latencies)
    }

    fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n");
        let _ = self.reply();
    }
}

/// The figures of one run.
struct Run {
    seconds: f64,
    latencies: Vec<Duration>,
}

/// `messages` deliveries over `connections` connections at once,
/// connection `c` delivering to recipient `c % recipients`.
fn run(
    port: u16,
    messages: usize,
    (connections, recipients): (usize, usize),
    size: usize,
    tag: usize,
    mode: Mode,
) -> Result<Run> {
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut threads = Vec::new();
    for c in 0..connections {
        let count = messages / connections + usize::from(c < messages % connections);
        let barrier = barrier.clone();
        let rcpt = recipient(c % recipients);
        threads.push(std::thread::spawn(move || -> Result<Vec<Duration>> {
            let prepared: Vec<Vec<u8>> = (0..count)
                .map(|n| message(n, tag * 1000 + c, size))
                .collect();
            let client = Lmtp::connect(port);
            barrier.wait();
            let mut client = client?;
            let mut latencies = Vec::with_capacity(count);
            match mode {
                Mode::Lockstep => {
                    for m in &prepared {
                        let t = Instant::now();
                        client.deliver(&rcpt, m)?;
                        latencies.push(t.elapsed());
                    }
                }
                Mode::Pipelined => latencies = client.deliver_pipelined(&rcpt, &prepared)?,
            }
            client.quit();
            Ok(latencies)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(messages);
    for t in threads {
        let result = t
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        latencies.extend(result?);
    }
    Ok(Run {
        seconds: start.elapsed().as_secs_f64(),
        latencies,
    })
}

struct Row {
    server: &'static str,
    setup: String,
    mode: Mode,
    connections: usize,
    recipients: usize,
    messages: usize,
    run: Run,
}

/// Warm-up, then one run per (connections, recipients); returns the
/// messages sent.
fn measure(
    server: &'static str,
    setup: &str,
    port: u16,
    o: &Options,
    rows: &mut Vec<Row>,
) -> Result<usize> {
    eprintln!("[{server}, {setup}] warm-up ...");
    let max = o.max_recipients();
    let warmup = WARMUP.max(max);
    run(port, warmup, (max, max), o.size, 0, Mode::Lockstep)?;
    let mut sent = warmup;
    let mut tag = 0;
    for (connections, recipients) in o.runs() {
        for mode in o.modes() {
            tag += 1;
            eprintln!(
                "[{server}, {setup}] {} messages over {connections} connection(s) to {recipients} recipient(s), {} ...",
                o.messages,
                mode.name()
            );
            let r = run(
                port,
                o.messages,
                (connections, recipients),
                o.size,
                tag,
                mode,
            )?;
            eprintln!(
                "[{server}, {setup}]   {:.0} msgs/s",
                o.messages as f64 / r.seconds
            );
            sent += o.messages;
            rows.push(Row {
                server,
                setup: setup.to_owned(),
                mode,
                connections,
                recipients,
                messages: o.messages,
                run: r,
            });
        }
    }
    Ok(sent)
}

/// Adds the bench recipients after the first (which `Mailroomd::launch` adds).
fn mailroomd_users(m: &Mailroomd, count: usize) -> Result<()> {
    for i in 1..count {
        crate::add_user(&m.bin, &m.config, &recipient(i))?;
    }
    Ok(())
}

/// mailroomd's count of a user's messages (`quota show` through the admin
/// socket of the running server).
fn mailroomd_count(m: &Mailroomd, user: &str) -> Result<u64> {
    let out = Command::new(&m.bin)
        .arg("--config")
        .arg(&m.config)
        .args(["quota", "show", user])
        .output()?;
    if !out.status.success() {
        bail!(
            "mailroomd quota show failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("messages_used "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no messages_used in {text:?}"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// One mailbox directory of the fsync floor: `tmp/`, `msg/`, a cache and an
/// index file.
struct FloorMailbox {
    dir: std::path::PathBuf,
    msg_dir: std::fs::File,
    cache: std::fs::File,
    index: std::fs::File,
    cache_end: u64,
    records: u64,
    /// The store-wide journal the `Journal` order appends to (shared by the
    /// threads) and its end.
    journal: Arc<std::sync::Mutex<(std::fs::File, u64)>>,
}

/// The delivery journal segment's header (FORMAT.md, "Delivery journal").
const SEGMENT_HEADER: u64 = 24;
/// A journal record's bytes besides the message (frame, mailbox, index
/// record, cache frame: about what the store writes for a 4 KiB message).
const JOURNAL_RECORD_EXTRA: usize = 800;
/// What the store keeps zero-filled past the last record.
const FILL_AHEAD: u64 = 4 << 20;

/// The floor's journal segment as the store's filler leaves it: the header,
/// then `zeros` bytes of zeros, durable.
fn floor_segment(path: &std::path::Path, zeros: u64) -> Result<std::fs::File> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut header = [0u8; SEGMENT_HEADER as usize];
    header[..8].copy_from_slice(b"MRJRNL01");
    f.write_all_at(&header, 0)?;
    let end = SEGMENT_HEADER + zeros;
    let chunk = vec![0u8; 256 << 10];
    let mut at = SEGMENT_HEADER;
    while at < end {
        let n = (end - at).min(chunk.len() as u64);
        f.write_all_at(&chunk[..n as usize], at)?;
        at += n;
    }
    f.sync_data()?;
    Ok(f)
}

impl FloorMailbox {
    fn new(
        dir: std::path::PathBuf,
        journal: Arc<std::sync::Mutex<(std::fs::File, u64)>>,
    ) -> Result<FloorMailbox> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::create_dir_all(dir.join("msg"))?;
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(name))
        };
        let (cache, index) = (open("cache")?, open("index")?);
        index.set_len(128 + 128 * 4096)?;
        Ok(FloorMailbox {
            msg_dir: std::fs::File::open(dir.join("msg"))?,
            dir,
            cache,
            index,
            cache_end: 16,
            records: 0,
            journal,
        })
    }

    /// The spare file of the `n`th journaled commit.
    fn spare(&self, n: usize) -> std::path::PathBuf {
        self.dir.join("spare").join(n.to_string())
    }

    /// The empty spare files of `count` journaled commits, made ahead as
    /// the store's filler makes them (created, not fsynced).
    fn make_spares(&self, count: usize) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("spare"))?;
        for n in 0..count {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.spare(n))?;
        }
        Ok(())
    }

    /// The delivery journal's commit of one message, syscall for syscall:
    /// the message into a spare file (its length checked) renamed into
    /// `msg/`, the cache record, index record and header written without
    /// fsync, then the record written at the journal's end, inside its
    /// zeros, and the journal fdatasynced (each thread its own fdatasync;
    /// the store's group commit shares one among all the commits waiting).
    fn commit_journaled(&mut self, n: usize, message: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let spare = self.spare(n);
        let f = std::fs::OpenOptions::new().write(true).open(&spare)?;
        f.write_all_at(message, 0)?;
        if f.metadata()?.len() != message.len() as u64 {
            bail!("spare file {} not empty", spare.display());
        }
        drop(f);
        std::fs::rename(&spare, self.dir.join("msg").join((n + 1).to_string()))?;
        let record = [0x5au8; 600];
        self.cache.write_all_at(&record, self.cache_end)?;
        self.index
            .write_all_at(&[0xa5u8; 128], 128 + 128 * self.records)?;
        self.index.write_all_at(&[0x11u8; 128], 0)?;
        self.cache_end += record.len() as u64;
        self.records += 1;
        let file = {
            let mut j = self
                .journal
                .lock()
                .map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
            let at = j.1;
            let mut rec = Vec::with_capacity(message.len() + JOURNAL_RECORD_EXTRA);
            rec.extend_from_slice(&[0x33u8; JOURNAL_RECORD_EXTRA - 600]);
            rec.extend_from_slice(&record);
            rec.extend_from_slice(message);
            j.0.write_all_at(&rec, at)?;
            j.1 += rec.len() as u64;
            j.0.try_clone()?
        };
        file.sync_data()?;
        Ok(())
    }

    /// A durable commit of one message in `order`, syscall for syscall.
    fn commit(&mut self, n: usize, message: &[u8], order: Order) -> Result<()> {
        use std::os::unix::fs::FileExt;
        if order == Order::Journal {
            return self.commit_journaled(n, message);
        }
        let tmp = self.dir.join("tmp").join(format!("new.{n}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(message)?;
        if order == Order::FileFirst {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, self.dir.join("msg").join((n + 1).to_string()))?;
        let record = [0x5au8; 600];
        let (msg_dir, cache, at) = (&self.msg_dir, &self.cache, self.cache_end);
        let file = (order != Order::FileFirst).then_some(&f);
        if order == Order::OneRound {
            self.cache.write_all_at(&record, at)?;
            self.index
                .write_all_at(&[0xa5u8; 128], 128 + 128 * self.records)?;
            self.index.write_all_at(&[0x11u8; 128], 0)?;
        }
        let index = (order == Order::OneRound).then_some(&self.index);
        std::thread::scope(|scope| -> Result<()> {
            let dir_sync = scope.spawn(|| msg_dir.sync_all());
            let file_sync = file.map(|f| scope.spawn(|| f.sync_data()));
            let index_sync = index.map(|f| scope.spawn(|| f.sync_data()));
            if index.is_none() {
                cache.write_all_at(&record, at)?;
            }
            cache.sync_data()?;
            if let Some(h) = index_sync {
                h.join()
                    .map_err(|_| anyhow::anyhow!("sync thread panicked"))??;
            }
            dir_sync
                .join()
                .map_err(|_| anyhow::anyhow!("sync thread panicked"))??;
            if let Some(h) = file_sync {
                h.join()
                    .map_err(|_| anyhow::anyhow!("sync thread panicked"))??;
            }
            Ok(())
        })?;
        drop(f);
        self.cache_end += record.len() as u64;
        self.records += 1;
        if order == Order::OneRound {
            return Ok(());
        }
        self.index
            .write_all_at(&[0xa5u8; 128], 128 + 128 * (self.records - 1))?;
        if order == Order::FileFirst {
            self.index.sync_data()?;
        }
        self.index.write_all_at(&[0x11u8; 128], 0)?;
        self.index.sync_data()?;
        Ok(())
    }
}

/// A commit sequence the fsync floor replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The store's: rename, then the message file, `msg/` and the cache
    /// synced at once; then the index records and the header, one
    /// fdatasync.
    Current,
    /// The store's before December 2026: the message file synced before
    /// the rename; `msg/` and the cache; the index records; the header.
    FileFirst,
    /// Everything written, then every fsync at once.
    OneRound,
    /// The delivery journal's (see [`FloorMailbox::commit_journaled`]).
    Journal,
}

impl Order {
    fn rounds(self) -> usize {
        match self {
            Order::Current => 2,
            Order::FileFirst => 4,
            Order::OneRound => 1,
            Order::Journal => 1,
        }
    }
}

/// Messages per second a commit sequence alone sustains with `threads`
/// mailboxes committing at once, `messages` in all.
fn fsync_floor(
    root: &std::path::Path,
    threads: usize,
    messages: usize,
    order: Order,
) -> Result<f64> {
    let message = message(0, 0, 4096);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    std::fs::create_dir_all(root)?;
    // zeros for every record and the store's margin: no record grows it
    let zeros = if order == Order::Journal {
        (messages * (message.len() + JOURNAL_RECORD_EXTRA)) as u64 + FILL_AHEAD
    } else {
        0
    };
    let journal = floor_segment(&root.join(format!("journal-{threads}")), zeros)?;
    let journal = Arc::new(std::sync::Mutex::new((journal, SEGMENT_HEADER)));
    for t in 0..threads {
        let mut mailbox =
            FloorMailbox::new(root.join(format!("floor-{threads}-{t}")), journal.clone())?;
        let (barrier, message) = (barrier.clone(), message.clone());
        let count = messages / threads;
        if order == Order::Journal {
            mailbox.make_spares(count)?;
        }
        handles.push(std::thread::spawn(move || -> Result<()> {
            barrier.wait();
            for n in 0..count {
                mailbox.commit(n, &message, order)?;
            }
            Ok(())
        }));
    }
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a floor thread panicked"))??;
    }
    Ok((messages / threads * threads) as f64 / start.elapsed().as_secs_f64())
}

pub(crate) fn main(o: Options) -> Result<()> {
    let o = check(o)?;
    let tmp = tempfile::Builder::new()
        .prefix("mailroom-bench-lmtp")
        .tempdir()?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let users: Vec<String> = (0..o.max_recipients()).map(recipient).collect();
    let mut rows = Vec::new();

    if o.only.mailroomd() {
        let dir = tmp.path().join("mailroomd");
        std::fs::create_dir_all(&dir)?;
        let m = Mailroomd::launch(&dir, "lmtp")?;
        mailroomd_users(&m, users.len())?;
        let sent = measure(
            "mailroomd",
            "CRC store, durability on",
            m.port,
            &o,
            &mut rows,
        )?;
        let mut stored = 0;
        for user in &users {
            stored += mailroomd_count(&m, user)?;
        }
        if stored != sent as u64 {
            bail!("mailroomd stored {stored} messages, {sent} were sent");
        }
    }
    if o.only.dovecot() {
        for fsync in ["optimized", "always"] {
            let options = mailroom_e2e::DovecotOptions {
                lmtp: true,
                mail_fsync: Some(fsync.to_owned()),
                extra_users: users[1..].to_vec(),
            };
            let d = mailroom_e2e::Dovecot::start_with(USER, PASSWORD, &options);
            let port = d.lmtp_port().context("dovecot LMTP port")?;
            let setup = format!("Maildir, mail_fsync = {fsync}");
            let sent = measure("dovecot", &setup, port, &o, &mut rows)?;
            let stored: u64 = users.iter().map(|u| d.message_count(u, "INBOX")).sum();
            if stored != sent as u64 {
                bail!(
                    "dovecot stored {stored} messages, {sent} were sent; log:\n{}",
                    d.log()
                );
            }
        }
    }

    println!(
        "| server | storage, fsync | mode | connections | recipients | messages | seconds | msgs/s | target msgs/s | p50 ms | p99 ms |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &mut rows {
        r.run.latencies.sort();
        let target = match target((r.connections, r.recipients)) {
            Some(t) if r.server == "mailroomd" => t.to_string(),
            _ => String::new(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {target} | {:.2} | {:.2} |",
            r.server,
            r.setup,
            r.mode.name(),
            r.connections,
            r.recipients,
            r.messages,
            r.run.seconds,
            r.messages as f64 / r.run.seconds,
            percentile(&r.run.latencies, 0.50),
            percentile(&r.run.latencies, 0.99),
        );
    }
    let rate = |server: &str, setup_has: &str, run: (usize, usize), mode: Mode| {
        rows.iter()
            .find(|r| {
                r.server == server
                    && r.setup.contains(setup_has)
                    && (r.connections, r.recipients) == run
                    && r.mode == mode
            })
            .map(|r| r.messages as f64 / r.run.seconds)
    };
    println!();
    for run in o.runs() {
        for mode in o.modes() {
            if let Some(m) = rate("mailroomd", "", run, mode) {
                let mut line = format!(
                    "{} connection(s), {} recipient(s), {}: mailroomd {m:.0} msgs/s",
                    run.0,
                    run.1,
                    mode.name()
                );
                if let Some(t) = target(run) {
                    line.push_str(&format!(" = {:.2}x its target of {t}", m / t as f64));
                }
                for fsync in ["optimized", "always"] {
                    if let Some(d) = rate("dovecot", fsync, run, mode) {
                        line.push_str(&format!("; {:.2}x dovecot (mail_fsync = {fsync})", m / d));
                    }
                }
                println!("{line}");
            }
        }
    }
    // what the fsyncs alone cost, in the same run, on the same file system
    let floor_messages = o.messages.min(1000);
    let floor_dir = tmp.path().join("fsync-floor");
    println!(
        "\nfsync floors: a 4 KiB message's durable commit replayed with no server, \
         {floor_messages} messages, same run, same file system"
    );
    println!(
        "\n| commit sequence | fsync rounds | 1 thread msgs/s | ms a message | 8 threads, 8 directories msgs/s |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (what, order) in [
        (
            "the CRC store's (message file, msg/ and cache at once; then index records and header)",
            Order::Current,
        ),
        (
            "before December 2026 (message file; msg/ and cache; index records; header)",
            Order::FileFirst,
        ),
        (
            "everything at once (the disk's bound, not a safe order)",
            Order::OneRound,
        ),
        (
            "delivery journal (message into a spare file, renamed; mailbox files unsynced; record into the zero-filled segment + fdatasync, one file for all)",
            Order::Journal,
        ),
    ] {
        let one = fsync_floor(&floor_dir, 1, floor_messages, order)?;
        let eight = fsync_floor(&floor_dir, 8, floor_messages, order)?;
        let _ = std::fs::remove_dir_all(&floor_dir);
        println!(
            "| {what} | {} | {one:.0} | {:.2} | {eight:.0} |",
            order.rounds(),
            1000.0 / one
        );
    }
    println!(
        "\n{} messages of ~{} bytes per row, one message in flight per connection; \
         wall clock on this machine ({} cores), same run; latency = MAIL (lockstep) or the \
         message's first byte (pipelined) to its final 250",
        o.messages,
        o.size,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    Ok(())
}

/// Issue 7's delivery targets, msgs/s.
fn target(run: (usize, usize)) -> Option<u32> {
    match run {
        (1, 1) => Some(1000),
        (8, 8) => Some(4000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_near_the_size_and_need_no_stuffing() {
        let m = message(3, 7, 4096);
        assert!(m.len() >= 4096 && m.len() < 4096 + 100, "{}", m.len());
        assert!(m.ends_with(b"\r\n"));
        assert!(!m.split(|&b| b == b'\n').any(|l| l.starts_with(b".")));
        assert!(String::from_utf8_lossy(&m).contains("Message-ID: <lmtp.7.3."));
    }

    fn parse_args(args: impl Iterator<Item = String>) -> Result<Options> {
        let args: Vec<String> = args.collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check(crate::cli::parse(&args)?)
    }

    #[test]
    fn arguments() {
        let o = parse_args(
            ["--messages", "10", "--connections", "1,2,4"]
                .into_iter()
                .map(String::from),
        )
        .unwrap();
        assert_eq!((o.messages, &o.connections), (10, &vec![1, 2, 4]));
        assert_eq!(
            o.runs(),
            vec![(1, 1), (2, 1), (4, 1)],
            "8 recipients need 8 connections"
        );
        let o = parse_args(std::iter::empty()).unwrap();
        assert_eq!(o.runs(), vec![(1, 1), (8, 1), (8, 8)]);
        assert_eq!(recipient(0), USER);
        assert_eq!(recipient(3), "bench3@example.com");
        assert!(
            parse_args(
                ["--connections", "20", "--messages", "10"]
                    .into_iter()
                    .map(String::from)
            )
            .is_err()
        );
        assert!(parse_args(["--bogus"].into_iter().map(String::from)).is_err());
        let o = parse_args(["--pipeline", "on"].into_iter().map(String::from)).unwrap();
        assert_eq!(o.modes(), vec![Mode::Pipelined]);
        assert_eq!(
            parse_args(std::iter::empty()).unwrap().modes(),
            vec![Mode::Lockstep, Mode::Pipelined]
        );
        assert!(parse_args(["--pipeline", "x"].into_iter().map(String::from)).is_err());
    }
}
