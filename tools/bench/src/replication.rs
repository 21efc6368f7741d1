//! `mailroom-bench replication`: what replication costs, next to Dovecot's
//! `doveadm backup` (dsync) on the same messages in the same run.
//!
//! - **Initial sync**: a primary CRC store holding one account with
//!   `--messages` (100,000) messages of about 600 bytes is replicated to an
//!   empty CRC store (durability on, as mailroomd runs it) by
//!   `mailroom-sync` over loopback TCP; messages/s and MB/s of message
//!   bytes. Dovecot: `doveadm backup` from one private Dovecot's Maildir
//!   (indexed beforehand, untimed) into a second private Dovecot's mail
//!   home, `mail_fsync = optimized` (Dovecot's default).
//! - **Catch-up**: `--catchup` (1,000) new messages and as many flag
//!   changes (`\Flagged` on the oldest) on the primary, then one more
//!   round; the same on Dovecot's side (files into `new/`, `doveadm flags
//!   add`, both untimed) and one more `doveadm backup`.
//! - **Lag** (mailroom only): 8 LMTP connections, each delivering to its
//!   own user one message at a time for `--lag-seconds` (10), into the
//!   primary (mailroom-lmtp, the standard pipeline) while a rolling
//!   `Primary` streams to the replica. A message's lag is the time from its
//!   LMTP `250` to the replica's INBOX of that user holding it (seen by a
//!   task woken by the replica store's change watch).
//!
//! - **Compare after a restart** (mailroom only): the list of changed
//!   accounts lives in memory, so a restarted primary compares every
//!   account once. `--accounts` (1,000) unchanged accounts of 5 mailboxes
//!   each (made with `ensure_account` and replicated, untimed) are compared
//!   by a fresh connection's `sync_all`: the time per account is what not
//!   persisting that list costs.
//!
//! Measured once (release build, `--messages 10000 --accounts 300`, a
//! 2-core machine at load average 10-25 from other builds; dsync ran at a
//! quarter of its 320 msg/s measured on a quieter machine): initial sync
//! 384 msg/s against dsync's 79 (4.8x; the target is 10x), catch-up of 1,000
//! new messages and 1,000 flag changes 0.80 s against 16.6 s, lag median
//! 6.1 s and p99 13.8 s while LMTP delivered 1,414 msg/s (replication, at
//! about 3.3 ms of CPU per message across both ends, fell behind: the lag
//! target of 1 s is not met), 0.98 ms per account for the compare after a
//! restart.
//!
//! Then (release, `--messages 10000 --catchup 1000 --lag-seconds 5
//! --accounts 10 --no-dovecot`, load average 18-20, one run each) the
//! primary read every message through a fresh load of its mailbox (index
//! mapped, every record verified: O(mailbox size) per message). With the
//! mailbox kept loaded, a page of bytes read per call and RECORDS frames
//! pipelined: initial sync 366 -> 108 us of CPU per message (both ends),
//! lag median 3.35 s -> 0.21 s and p99 6.2 s -> 0.61 s while LMTP
//! delivered 2,168 and 1,581 msg/s.
//!
//! `--primary postgres` makes the primary a PostgreSQL store (a private,
//! durable cluster started for the run; the replica stays a CRC store, as
//! the off-site copy of a PostgreSQL deployment would be): the same work,
//! with the primary's reads and the LMTP deliveries going through the
//! database. Its CPU column counts this process only, not PostgreSQL's.
//!
//! The primary is filled through `Replication::apply_messages` in batches
//! of 1,000 (the same records and files an append makes, written faster),
//! and Dovecot's Maildir by writing its files; neither is timed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use mailroom_core::delivery::Pipeline;
use mailroom_core::replication::{ApplyBatch, NamespaceOp, ReplicaMessage, ReplicaRecord};
use mailroom_core::{
    Flag, Flags, InternalDate, MailboxName, MailboxRef, MessageGuid, ModSeq, NewMessage,
    Replication, Storage, StoreOp, Uid, UidValidity,
};
use mailroom_lmtp::{LmtpConfig, LmtpServer};
use mailroom_store_crc::{CrcOptions, CrcStore};
use mailroom_sync::{Primary, PrimaryConfig, Replica, ReplicaConfig, Secret};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::{PASSWORD, USER, small_message};

/// The users the lag measurement delivers to, one per LMTP connection.
const LAG_USERS: [&str; 8] = [
    "lag0@example.com",
    "lag1@example.com",
    "lag2@example.com",
    "lag3@example.com",
    "lag4@example.com",
    "lag5@example.com",
    "lag6@example.com",
    "lag7@example.com",
];

/// `mailroom-bench replication` options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Messages in the account synced at first.
    #[arg(long, default_value_t = 100_000, value_parser = crate::cli::at_least_one)]
    messages: usize,
    /// Messages changed for the catch-up (at most --messages).
    #[arg(long, default_value_t = 1_000, value_parser = crate::cli::at_least_one)]
    catchup: usize,
    /// Seconds of LMTP load in the lag measurement.
    #[arg(long, default_value_t = 10, value_parser = |s: &str| crate::cli::at_least_one(s).map(|n| n as u64))]
    lag_seconds: u64,
    /// Accounts in the many-accounts sync.
    #[arg(long, default_value_t = 1_000, value_parser = crate::cli::at_least_one)]
    accounts: usize,
    /// Leave out Dovecot's doveadm backup.
    #[arg(long = "no-dovecot", action = clap::ArgAction::SetFalse)]
    dovecot: bool,
    /// The primary's store: `crc`, or `postgres` (a private durable
    /// cluster on this machine; the replica stays a CRC store, as an
    /// off-site copy of a PostgreSQL deployment would be).
    #[arg(long, default_value = "crc", value_parser = ["crc", "postgres"])]
    primary: String,
}

/// The primary's store, as replication, storage and quota see it, and the
/// PostgreSQL cluster it lives in when it is one.
struct PrimaryStore {
    store: Arc<dyn Replication>,
    quota: Arc<dyn mailroom_core::Quota>,
    _cluster: Option<mailroom_testkit::postgres::PgCluster>,
}

impl PrimaryStore {
    async fn open(kind: &str, dir: &Path) -> Result<PrimaryStore> {
        if kind == "postgres" {
            let cluster =
                tokio::task::spawn_blocking(mailroom_testkit::postgres::PgCluster::start_durable)
                    .await?;
            let url = cluster.create_database("replication");
            let store = Arc::new(
                mailroom_store_postgres::PgStore::connect(&mailroom_store_postgres::PgOptions {
                    url,
                    pool_size: 16,
                    migrate: true,
                    view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
                })
                .await?,
            );
            return Ok(PrimaryStore {
                store: store.clone(),
                quota: store,
                _cluster: Some(cluster),
            });
        }
        let store = open_store(dir)?;
        Ok(PrimaryStore {
            store: store.clone(),
            quota: store,
            _cluster: None,
        })
    }
}

/// One side's figures for a transfer.
struct Transfer {
    elapsed: Duration,
    messages: usize,
    bytes: u64,
    /// CPU time (user + system) of this process, both ends, if measured.
    cpu: Option<Duration>,
}

impl Transfer {
    fn cells(&self) -> [String; 3] {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        [
            format!("{:.2} s", secs),
            format!("{:.0} msg/s", self.messages as f64 / secs),
            format!("{:.1} MB/s", self.bytes as f64 / secs / 1e6),
        ]
    }

    /// CPU per message, primary and replica together.
    fn cpu_cell(&self) -> String {
        self.cpu.map_or_else(
            || "-".to_owned(),
            |c| {
                format!(
                    "{:.0} us CPU/msg",
                    c.as_secs_f64() * 1e6 / self.messages.max(1) as f64
                )
            },
        )
    }
}

/// User + system CPU time of this process so far (`/proc/self/stat`
/// fields 14 and 15, in USER_HZ = 100 ticks per second), zero if unread.
fn process_cpu() -> Duration {
    stat_cpu(11)
}

/// The same for the children this process waited for (fields 16 and 17):
/// `doveadm backup` runs dsync in its own process.
fn children_cpu() -> Duration {
    stat_cpu(13)
}

fn stat_cpu(user_field: usize) -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| {
            let rest = text.get(text.rfind(')')? + 2..)?.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(
                f.get(user_field)?.parse::<u64>().ok()?
                    + f.get(user_field + 1)?.parse::<u64>().ok()?,
            )
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

struct Lag {
    delivered: usize,
    seconds: f64,
    /// CPU time of this process (LMTP delivery and both replication ends)
    /// from the first delivery until the replica held the last one.
    cpu: Duration,
    median: Duration,
    p99: Duration,
    max: Duration,
}

pub(crate) fn main(o: Options) -> Result<()> {
    if o.catchup > o.messages {
        bail!("--catchup must not exceed --messages (the flag changes go to the oldest messages)");
    }
    let tmp = tempfile::Builder::new()
        .prefix("mailroom-bench-replication")
        .tempdir()?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (initial, catchup, lag, restart) = rt.block_on(mailroom(&o, tmp.path()))?;
    // The stores' directories are large: gone before Dovecot's copies come.
    for side in ["primary", "replica"] {
        let dir = tmp.path().join(side);
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
    }
    let dsync = if o.dovecot { Some(dovecot(&o)?) } else { None };

    let mb = |t: &Transfer| t.bytes as f64 / 1e6;
    println!();
    println!(
        "| work | mailroom-sync ({}) | dsync (`doveadm backup`, Maildir) |",
        if o.primary == "postgres" {
            "PostgreSQL store to CRC store; CPU of this process, PostgreSQL's not counted"
        } else {
            "CRC store to CRC store"
        }
    );
    println!("|---|---|---|");
    let dash = || "-".to_owned();
    let row = |work: String, ours: &Transfer, theirs: Option<&Transfer>| {
        let a = ours.cells();
        let b = theirs.map(Transfer::cells);
        println!(
            "| {work} | {} ({}, {}, {}) | {} |",
            a[0],
            a[1],
            a[2],
            ours.cpu_cell(),
            b.map_or_else(dash, |b| format!(
                "{} ({}, {}, {})",
                b[0],
                b[1],
                b[2],
                theirs.map_or_else(dash, Transfer::cpu_cell)
            ))
        );
    };
    row(
        format!(
            "initial sync, {} msgs, {:.1} MB of message bytes",
            o.messages,
            mb(&initial)
        ),
        &initial,
        dsync.as_ref().map(|d| &d.0),
    );
    row(
        format!(
            "catch-up: {} new msgs + {} flag changes",
            o.catchup, o.catchup
        ),
        &catchup,
        dsync.as_ref().map(|d| &d.1),
    );
    if let Some((d, _)) = &dsync {
        let ours = o.messages as f64 / initial.elapsed.as_secs_f64().max(1e-9);
        let theirs = o.messages as f64 / d.elapsed.as_secs_f64().max(1e-9);
        println!(
            "| initial sync rate, mailroom-sync / dsync | {:.1}x | |",
            ours / theirs
        );
    }
    println!(
        "| lag under 8 LMTP connections, {} deliveries in {:.1} s ({:.0}/s): median / p99 / max | {:.1} / {:.1} / {:.1} ms ({:.0} us CPU per message, delivery and replication) | - |",
        lag.delivered,
        lag.seconds,
        lag.delivered as f64 / lag.seconds.max(1e-9),
        lag.median.as_secs_f64() * 1e3,
        lag.p99.as_secs_f64() * 1e3,
        lag.max.as_secs_f64() * 1e3,
        lag.cpu.as_secs_f64() * 1e6 / lag.delivered.max(1) as f64
    );
    println!(
        "| compare after a restart, {} unchanged accounts of 5 mailboxes (+ the {}-message one) | {:.2} s ({:.2} ms per account) | - |",
        o.accounts,
        o.messages + o.catchup,
        restart.as_secs_f64(),
        restart.as_secs_f64() * 1e3 / (o.accounts + 1 + LAG_USERS.len()) as f64
    );
    Ok(())
}

fn secret() -> Result<Secret> {
    Secret::new(*b"mailroom-bench replication secret").context("secret")
}

fn inbox(user: &str) -> MailboxRef {
    MailboxRef::new(user, MailboxName::inbox())
}

fn open_store(dir: &Path) -> Result<Arc<CrcStore>> {
    Ok(Arc::new(CrcStore::open(dir, CrcOptions::default())?))
}

/// Fills `USER`'s INBOX of the primary with `count` messages, untimed.
async fn fill(store: &dyn Replication, count: usize) -> Result<u64> {
    store
        .apply_namespace(
            USER,
            NamespaceOp::Create {
                name: MailboxName::inbox(),
                uid_validity: UidValidity(1),
                special_use: None,
                mailbox_id: None,
            },
        )
        .await?;
    let mut bytes = 0u64;
    let mut next = 0usize;
    while next < count {
        let end = (next + 1000).min(count);
        let messages: Vec<ReplicaMessage> = (next..end)
            .map(|i| {
                let content = Bytes::from(small_message(i));
                bytes += content.len() as u64;
                ReplicaMessage {
                    record: ReplicaRecord {
                        uid: Uid(i as u32 + 1),
                        modseq: ModSeq(i as u64 + 1),
                        flags: Flags::default(),
                        internal_date: InternalDate {
                            timestamp: 1_770_000_000 + i as i64,
                            offset_minutes: 0,
                        },
                        size: content.len() as u64,
                        guid: MessageGuid::of(&content),
                        seen_by: Vec::new(),
                        save_date: None,
                    },
                    content: Some(content),
                }
            })
            .collect();
        store
            .apply_messages(
                &inbox(USER),
                UidValidity(1),
                ApplyBatch {
                    messages,
                    expunged: Vec::new(),
                    uid_next: Some(Uid(end as u32 + 1)),
                    highest_modseq: Some(ModSeq(end as u64)),
                },
            )
            .await?;
        next = end;
    }
    Ok(bytes)
}

/// A replica serving every connection on a loopback port.
async fn serve_replica(store: Arc<CrcStore>) -> Result<std::net::SocketAddr> {
    let replica = Replica::new(store, ReplicaConfig::new(secret()?));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let replica = replica.clone();
            tokio::spawn(async move {
                let _ = replica.serve_connection(socket).await;
            });
        }
    });
    Ok(addr)
}

async fn mailroom(o: &Options, dir: &Path) -> Result<(Transfer, Transfer, Lag, Duration)> {
    let primary_store = PrimaryStore::open(&o.primary, &dir.join("primary")).await?;
    let pstore = Arc::clone(&primary_store.store);
    let rstore = open_store(&dir.join("replica"))?;
    eprintln!("filling the primary with {} messages", o.messages);
    let bytes = fill(&*pstore, o.messages).await?;
    let addr = serve_replica(Arc::clone(&rstore)).await?;
    let primary = Primary::new(Arc::clone(&pstore), PrimaryConfig::new(secret()?));
    let mut conn = primary.connect(TcpStream::connect(addr).await?).await?;

    eprintln!("initial sync");
    let cpu = process_cpu();
    let t = Instant::now();
    conn.sync_all().await?;
    let initial = Transfer {
        elapsed: t.elapsed(),
        messages: o.messages,
        bytes,
        cpu: Some(process_cpu().saturating_sub(cpu)),
    };
    let replica_count = rstore.status(&inbox(USER), USER).await?.messages;
    if replica_count as usize != o.messages {
        bail!(
            "the replica holds {replica_count} messages, not {}",
            o.messages
        );
    }

    eprintln!("catch-up");
    let mut new_bytes = 0u64;
    for i in o.messages..o.messages + o.catchup {
        let content = Bytes::from(small_message(i));
        new_bytes += content.len() as u64;
        pstore
            .append(
                &inbox(USER),
                NewMessage {
                    flags: Flags::default(),
                    internal_date: None,
                    content,
                },
            )
            .await?;
    }
    let uids: Vec<Uid> = (1..=o.catchup as u32).map(Uid).collect();
    pstore
        .open(&inbox(USER), USER)
        .await?
        .store(
            &uids,
            &StoreOp::Add([Flag::Flagged].into_iter().collect()),
            None,
        )
        .await?;
    let cpu = process_cpu();
    let t = Instant::now();
    conn.sync_all().await?;
    let catchup = Transfer {
        elapsed: t.elapsed(),
        messages: o.catchup,
        bytes: new_bytes,
        cpu: Some(process_cpu().saturating_sub(cpu)),
    };
    let p = pstore.status(&inbox(USER), USER).await?;
    let r = rstore.status(&inbox(USER), USER).await?;
    if (p.messages, p.highest_modseq) != (r.messages, r.highest_modseq) {
        bail!("after the catch-up the replica differs: {p:?} / {r:?}");
    }
    drop(conn);

    eprintln!("lag under LMTP load, {} s", o.lag_seconds);
    let lag = lag(
        o,
        (Arc::clone(&pstore), Arc::clone(&primary_store.quota)),
        rstore,
        primary.clone(),
        addr,
    )
    .await?;

    eprintln!("{} accounts, then a compare as after a restart", o.accounts);
    for i in 0..o.accounts {
        pstore
            .ensure_account(&format!("idle{i}@example.com"))
            .await?;
    }
    let mut conn = primary.connect(TcpStream::connect(addr).await?).await?;
    conn.sync_all().await?;
    drop(conn);
    let mut conn = primary.connect(TcpStream::connect(addr).await?).await?;
    let t = Instant::now();
    let verdicts = conn.sync_all().await?;
    let restart = t.elapsed();
    if verdicts
        .values()
        .flatten()
        .any(|(_, v)| *v != mailroom_sync::Verdict::InStep)
    {
        bail!("the compare after a restart found differences");
    }
    Ok((initial, catchup, lag, restart))
}

/// Rolling replication while 8 LMTP connections deliver.
async fn lag(
    o: &Options,
    (pstore, quota): (Arc<dyn Replication>, Arc<dyn mailroom_core::Quota>),
    rstore: Arc<CrcStore>,
    primary: Primary,
    replica: std::net::SocketAddr,
) -> Result<Lag> {
    for u in LAG_USERS {
        pstore.ensure_account(u).await?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let rolling = {
        let primary = primary.clone();
        tokio::spawn(async move {
            primary
                .run(move || TcpStream::connect(replica), async {
                    let _ = stop_rx.await;
                })
                .await;
        })
    };
    // Catch the replica up with the new accounts before timing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while primary.status().await?.pending_accounts > 0 || !primary.status().await?.connected {
        if Instant::now() > deadline {
            bail!("the replica did not catch up with the lag accounts");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // When each user's n-th message reached the replica.
    let seen: Arc<std::sync::Mutex<Vec<Vec<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![Vec::new(); LAG_USERS.len()]));
    let (watch_stop_tx, mut watch_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let seen = Arc::clone(&seen);
        let rstore = Arc::clone(&rstore);
        tokio::spawn(async move {
            let mut watch = rstore.watch_changes();
            loop {
                for (i, u) in LAG_USERS.iter().enumerate() {
                    if let Ok(s) = rstore.status(&inbox(u), u).await {
                        let now = Instant::now();
                        if let Ok(mut seen) = seen.lock() {
                            while seen[i].len() < s.messages as usize {
                                seen[i].push(now);
                            }
                        }
                    }
                }
                tokio::select! {
                    _ = &mut watch_stop_rx => return,
                    c = watch.changed() => if c.is_none() { return },
                }
            }
        })
    };

    let mut config = LmtpConfig::default();
    config.hostname = "bench.example".into();
    let lmtp = LmtpServer::new(
        Arc::new(Pipeline::standard(pstore.clone(), quota)),
        Arc::new(mailroom_testkit::StaticAuthenticator::new(&LAG_USERS)),
        config,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let lmtp_addr = listener.local_addr()?;
    let (lmtp_stop_tx, lmtp_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let _ = lmtp
            .serve_tcp(listener, async {
                let _ = lmtp_stop_rx.await;
            })
            .await;
    });

    let cpu = process_cpu();
    let start = Instant::now();
    let until = start + Duration::from_secs(o.lag_seconds);
    let mut clients = Vec::new();
    for (i, user) in LAG_USERS.iter().enumerate() {
        clients.push(tokio::spawn(deliver_until(lmtp_addr, user, i, until)));
    }
    let mut acks = Vec::new();
    for c in clients {
        acks.push(c.await??);
    }
    let seconds = start.elapsed().as_secs_f64();
    let delivered: usize = acks.iter().map(Vec::len).sum();
    // Wait for the replica to hold every acknowledged message.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = seen
            .lock()
            .map(|s| s.iter().zip(&acks).all(|(s, a)| s.len() >= a.len()))
            .unwrap_or(false);
        if done {
            break;
        }
        if Instant::now() > deadline {
            bail!("the replica did not receive every delivery within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = process_cpu().saturating_sub(cpu);
    let _ = watch_stop_tx.send(());
    let _ = lmtp_stop_tx.send(());
    let _ = stop_tx.send(());
    let _ = watcher.await;
    let _ = serving.await;
    let _ = rolling.await;

    let mut lags: Vec<Duration> = Vec::with_capacity(delivered);
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    for (user_seen, user_acks) in seen.iter().zip(&acks) {
        for (k, ack) in user_acks.iter().enumerate() {
            lags.push(user_seen[k].saturating_duration_since(*ack));
        }
    }
    lags.sort_unstable();
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    if lags.is_empty() {
        bail!("nothing was delivered");
    }
    Ok(Lag {
        delivered,
        seconds,
        cpu,
        median: at(0.5),
        p99: at(0.99),
        max: *lags.last().unwrap_or(&Duration::ZERO),
    })
}

/// One LMTP connection delivering to `user` until `until`; the time of
/// each `250`, in order.
async fn deliver_until(
    addr: std::net::SocketAddr,
    user: &'static str,
    seed: usize,
    until: Instant,
) -> Result<Vec<Instant>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    async fn reply(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    ) -> Result<String> {
        loop {
            let line = lines.next_line().await?.context("LMTP server closed")?;
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(line);
            }
        }
    }
    let expect = |line: String, code: &str| -> Result<()> {
        if line.starts_with(code) {
            Ok(())
        } else {
            bail!("LMTP: expected {code}, got {line:?}")
        }
    };
    expect(reply(&mut lines).await?, "220")?;
    w.write_all(b"LHLO bench.example\r\n").await?;
    expect(reply(&mut lines).await?, "250")?;
    let mut acks = Vec::new();
    let mut n = 0usize;
    while Instant::now() < until {
        let body = small_message(1_000_000 * (seed + 1) + n);
        let mut data =
            format!("MAIL FROM:<sender@example.org>\r\nRCPT TO:<{user}>\r\nDATA\r\n").into_bytes();
        w.write_all(&data).await?;
        expect(reply(&mut lines).await?, "250")?;
        expect(reply(&mut lines).await?, "250")?;
        expect(reply(&mut lines).await?, "354")?;
        data.clear();
        data.extend_from_slice(&body);
        data.extend_from_slice(b"\r\n.\r\n");
        w.write_all(&data).await?;
        expect(reply(&mut lines).await?, "250")?;
        acks.push(Instant::now());
        n += 1;
    }
    w.write_all(b"QUIT\r\n").await?;
    Ok(acks)
}

/// Dovecot's side: initial `doveadm backup` and the catch-up, timed.
fn dovecot(o: &Options) -> Result<(Transfer, Transfer)> {
    let a = mailroom_e2e::Dovecot::start(USER, PASSWORD);
    let b = mailroom_e2e::Dovecot::start(USER, PASSWORD);
    let source = a.home(USER).join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(source.join(sub))?;
    }
    eprintln!("dovecot: writing {} Maildir files", o.messages);
    let mut bytes = 0u64;
    for i in 0..o.messages {
        let m = small_message(i);
        bytes += m.len() as u64;
        std::fs::write(
            source.join("cur").join(format!(
                "{}.M{i}P1.bench,S={}:2,",
                1_770_000_000 + i,
                m.len()
            )),
            m,
        )?;
    }
    let dest_home = b.home(USER);
    std::fs::create_dir_all(&dest_home)?;
    chown(&a.home(USER))?;
    chown(&dest_home)?;
    eprintln!("dovecot: indexing the source (untimed)");
    doveadm(a.config(), &["force-resync", "-u", USER, "INBOX"])?;
    if a.message_count(USER, "INBOX") as usize != o.messages {
        bail!("the Dovecot source does not hold {} messages", o.messages);
    }
    let dest = format!("maildir:{}", dest_home.join("Maildir").display());
    eprintln!("dovecot: doveadm backup (initial)");
    let cpu = children_cpu();
    let t = Instant::now();
    doveadm(a.config(), &["backup", "-u", USER, &dest])?;
    let initial = Transfer {
        elapsed: t.elapsed(),
        messages: o.messages,
        bytes,
        cpu: Some(children_cpu().saturating_sub(cpu)),
    };
    if b.message_count(USER, "INBOX") as usize != o.messages {
        bail!("dsync's copy does not hold {} messages", o.messages);
    }

    let mut new_bytes = 0u64;
    for i in o.messages..o.messages + o.catchup {
        let m = small_message(i);
        new_bytes += m.len() as u64;
        std::fs::write(
            source
                .join("new")
                .join(format!("{}.M{i}P1.bench,S={}", 1_770_000_000 + i, m.len())),
            m,
        )?;
    }
    chown(&a.home(USER))?;
    // Dovecot takes in the new files and the flags here, untimed.
    doveadm(
        a.config(),
        &[
            "flags",
            "add",
            "-u",
            USER,
            "\\Flagged",
            "mailbox",
            "INBOX",
            "uid",
            &format!("1:{}", o.catchup),
        ],
    )?;
    eprintln!("dovecot: doveadm backup (catch-up)");
    let cpu = children_cpu();
    let t = Instant::now();
    doveadm(a.config(), &["backup", "-u", USER, &dest])?;
    let catchup = Transfer {
        elapsed: t.elapsed(),
        messages: o.catchup,
        bytes: new_bytes,
        cpu: Some(children_cpu().saturating_sub(cpu)),
    };
    if b.message_count(USER, "INBOX") as usize != o.messages + o.catchup {
        bail!("dsync's copy missed the catch-up");
    }
    Ok((initial, catchup))
}

fn doveadm(config: &Path, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(config)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "doveadm {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn chown(path: &Path) -> Result<()> {
    let st = std::process::Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(path)
        .status()?;
    if !st.success() {
        bail!("chown of {} failed", path.display());
    }
    Ok(())
}
