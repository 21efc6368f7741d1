//! `mailroom-bench accounts`: what mailroomd's memory follows. Memory must
//! follow the work (open connections, selected mailboxes), never the
//! number of accounts seen since the start.
//!
//! 1. `--accounts` accounts (100,000 by default) each LOGIN, SELECT INBOX
//!    and LOGOUT once (first login: the store creates the account), from
//!    `--clients` connections at a time;
//! 2. `--held` of them (10,000), each with a `--messages`-message INBOX (20),
//!    held at once: LOGIN + SELECT + IDLE, one connection per account;
//! 3. `--held` connections at once on one account whose INBOX holds
//!    `--shared-messages` messages (1,000), all in IDLE;
//! 4. all out.
//!
//! USS (Private_Clean + Private_Dirty of `/proc/PID/smaps_rollup`) of the
//! server is read after a warm-up (20 accounts in and out), after each
//! phase once the store's grace period for idle mailboxes has passed, while
//! the connections are held, and once more 20 s after the end (tokio's idle
//! blocking threads leave after 10 s, and jemalloc returns freed pages over
//! 10 s). Printed: USS before, held per account
//! no session uses, per open selected connection (own account, and sharing
//! one INBOX), and after everybody has gone.
//!
//! The users are written through `mailroomd::users::UserDb` with one shared
//! argon2id hash at the smallest parameters (8 KiB, one pass), so the bench
//! measures the server, not 100,000 hashes at 19 MiB each (the hashing
//! memory is measured in mailroomd's crate docs). mailroomd runs the
//! release binary next to this one, CRC store with `durability = false`
//! (account creation would otherwise be a few hundred thousand fsyncs; no
//! figure here depends on it), `open_mailbox_grace_secs = 2`. Connections
//! come from many loopback addresses (127.0.x.y) so the per-IP connection
//! limit is not what is measured.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufStream};
use tokio::net::{TcpSocket, TcpStream};

use crate::imap::Client;

/// The password every bench account has.
pub(crate) const PASSWORD: &str = "bench-pw";
/// Connections per source address (the server's per-IP limit is 50).
const PER_SOURCE_IP: usize = 40;

/// `mailroom-bench accounts` options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Accounts mailroomd sees.
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Accounts with a connection held open (at most --accounts).
    #[arg(long, default_value_t = 10_000)]
    held: usize,
    /// Messages in each account.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Messages in the shared mailbox.
    #[arg(long, default_value_t = 1_000)]
    shared_messages: usize,
    /// Client threads.
    #[arg(long, default_value_t = 8, value_parser = crate::cli::at_least_one)]
    clients: usize,
}

/// The `i`th bench account.
pub(crate) fn account(i: usize) -> String {
    format!("u{i}@example.com")
}

/// A mailroomd for these benches: the release binary next to this one.
pub(crate) struct Server {
    child: Child,
    pub(crate) imap: u16,
    pub(crate) lmtp: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Writes `users` accounts (`u0@example.com`, ...; plus `extra`) with
    /// one cheap shared hash and starts mailroomd with IMAP and LMTP.
    pub(crate) fn start(users: usize, extra: &[&str], max_connections: usize) -> Result<Server> {
        let bin = crate::sibling_binary("mailroomd")?;
        let dir = tempfile::Builder::new()
            .prefix("mailroom-bench")
            .tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        write_users(&data.join("users.toml"), users, extra)?;
        let config = dir.path().join("mailroomd.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\nlog_level = \"warn\"\n\n[store]\nbackend = \"crc\"\ndurability = false\nopen_mailbox_grace_secs = 2\n\n\
                 [imap]\nlisten = \"127.0.0.1:0\"\n\n[lmtp]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nallow_plaintext = true\n\n\
                 [limits]\ncommands_per_second = 0\nmax_connections = {max_connections}\nidle_timeout_secs = 3600\n",
                data.display()
            ),
        )?;
        let mut child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let (mut imap, mut lmtp) = (0u16, 0u16);
        loop {
            let line = lines
                .next()
                .context("mailroomd exited before it was ready")??;
            let port = |l: &str| l.rsplit(':').next().and_then(|p| p.parse().ok());
            if let Some(a) = line.strip_prefix("mailroomd: imap listening on ") {
                imap = port(a).unwrap_or(0);
            } else if let Some(a) = line.strip_prefix("mailroomd: lmtp listening on ") {
                lmtp = port(a).unwrap_or(0);
            } else if line == "mailroomd: ready" {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        if imap == 0 || lmtp == 0 {
            bail!("mailroomd did not print its IMAP and LMTP ports");
        }
        Ok(Server {
            child,
            imap,
            lmtp,
            _dir: dir,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The users file: `n` numbered accounts and `extra`, one argon2id hash at
/// the smallest parameters shared by all, through mailroomd's own writer.
fn write_users(path: &Path, n: usize, extra: &[&str]) -> Result<()> {
    use argon2::password_hash::PasswordHasher as _;
    let params = argon2::Params::new(8, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = hasher
        .hash_password(PASSWORD.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    // no SCRAM verifier: the bench logs in with LOGIN
    let stored = || mailroomd::users::StoredPassword {
        phc: phc.clone(),
        scram: None,
    };
    let mut db = mailroomd::users::UserDb::default();
    for i in 0..n {
        db.add(&account(i), stored(), Vec::new())?;
    }
    for name in extra {
        db.add(name, stored(), Vec::new())?;
    }
    db.save(path)?;
    Ok(())
}

/// USS of `pid` in KiB: Private_Clean + Private_Dirty of smaps_rollup.
pub(crate) fn uss_kib(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum())
}

/// Raises this process's open-file limit (10,000 connections need it).
pub(crate) fn raise_open_files() -> Result<u64> {
    let (_, now) = mailroomd::rlimit::raise_open_files()?;
    Ok(now)
}

/// An IMAP connection driven asynchronously (thousands held at once).
pub(crate) struct Conn {
    io: BufStream<TcpStream>,
    tag: u32,
}

impl Conn {
    /// Connects from the `n`th loopback source address and reads the greeting.
    pub(crate) async fn connect(port: u16, n: usize) -> Result<Conn> {
        let ip_index = n / PER_SOURCE_IP;
        let source =
            std::net::Ipv4Addr::new(127, 1, (ip_index / 250) as u8, (ip_index % 250 + 1) as u8);
        let socket = TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        let stream = socket
            .connect((std::net::Ipv4Addr::LOCALHOST, port).into())
            .await
            .with_context(|| format!("connect from {source}"))?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            io: BufStream::new(stream),
            tag: 0,
        };
        let greeting = c.line().await?;
        if !greeting.starts_with("* OK") {
            bail!("greeting {greeting:?}");
        }
        Ok(c)
    }

    pub(crate) async fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.io.read_line(&mut line).await? == 0 {
            bail!("connection closed");
        }
        Ok(line)
    }

    /// Runs a command; returns its untagged lines. Fails unless OK.
    pub(crate) async fn run(&mut self, command: &str) -> Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.io
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.io.flush().await?;
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await?;
            if let Some(rest) = line.strip_prefix(&tag) {
                if rest.starts_with(" OK") {
                    return Ok(untagged);
                }
                bail!("{command}: {line}");
            }
            untagged.push(line);
        }
    }

    /// LOGIN, SELECT INBOX, IDLE (until the continuation).
    pub(crate) async fn login_select_idle(port: u16, n: usize, user: &str) -> Result<Conn> {
        let mut c = Conn::connect(port, n).await?;
        c.run(&format!("LOGIN \"{user}\" \"{PASSWORD}\"")).await?;
        c.run("SELECT INBOX").await?;
        c.io.write_all(b"i IDLE\r\n").await?;
        c.io.flush().await?;
        let line = c.line().await?;
        if !line.starts_with('+') {
            bail!("IDLE: {line:?}");
        }
        Ok(c)
    }
}

/// `clients` threads doing `work(i)` for every `i` in `0..n`.
fn parallel(n: usize, clients: usize, work: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return Ok(());
                        }
                        work(i)?;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        }
        Ok(())
    })
}

/// Fills INBOX of `user` with `n` messages (32 APPENDs in flight).
fn fill(port: u16, user: &str, n: usize) -> Result<()> {
    let c = Client::login(port, user, PASSWORD)?;
    crate::append_pipelined(c, "INBOX", 0..n, crate::small_message)
}

fn login_select_logout(port: u16, user: &str) -> Result<()> {
    let mut c = Client::login(port, user, PASSWORD)?;
    c.run("SELECT INBOX")?;
    c.run("LOGOUT")?;
    Ok(())
}

/// Waits past the store's grace period (2 s) and its evictor's tick.
fn settle() {
    std::thread::sleep(Duration::from_millis(3500));
}

/// Opens `n` connections in IDLE, `user(i)` for the `i`th.
async fn hold(port: u16, n: usize, user: impl Fn(usize) -> String) -> Result<Vec<Conn>> {
    let mut held = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    let mut i = 0;
    while held.len() < n {
        while i < n && pending.len() < 64 {
            let u = user(i);
            let idx = i;
            pending.spawn(async move { Conn::login_select_idle(port, idx, &u).await });
            i += 1;
        }
        match pending.join_next().await {
            Some(r) => held.push(r??),
            None => break,
        }
    }
    Ok(held)
}

fn kib(k: f64) -> String {
    if k.abs() >= 10.0 * 1024.0 {
        format!("{:.1} MiB", k / 1024.0)
    } else {
        format!("{k:.1} KiB")
    }
}

/// Entry point of `mailroom-bench accounts`.
pub(crate) fn main(o: Options) -> Result<()> {
    if o.held > o.accounts {
        bail!("--held must not exceed --accounts");
    }
    let limit = raise_open_files()?;
    if (limit as usize) < o.held + 100 {
        bail!(
            "open-file limit {limit} is too low for {} connections",
            o.held
        );
    }
    const SHARED: &str = "shared@example.com";
    eprintln!("[accounts] writing {} users ...", o.accounts);
    let server = Server::start(o.accounts, &[SHARED], o.held + 100)?;
    let (pid, port) = (server.pid(), server.imap);
    let at_launch = uss_kib(pid)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    for i in 0..20 {
        login_select_logout(port, &account(i))?;
    }
    settle();
    let before = uss_kib(pid)?;

    eprintln!(
        "[accounts] {} accounts LOGIN + SELECT + LOGOUT ...",
        o.accounts
    );
    let t = Instant::now();
    parallel(o.accounts, o.clients, |i| {
        login_select_logout(port, &account(i))
    })?;
    let pass = t.elapsed();
    let right_after = uss_kib(pid)?;
    settle();
    let after_accounts = uss_kib(pid)?;

    eprintln!(
        "[accounts] filling {} INBOXes with {} messages, and {SHARED} with {} ...",
        o.held, o.messages, o.shared_messages
    );
    parallel(o.held, o.clients, |i| fill(port, &account(i), o.messages))?;
    fill(port, SHARED, o.shared_messages)?;
    settle();
    let before_held = uss_kib(pid)?;

    eprintln!(
        "[accounts] holding {} connections, one account each ...",
        o.held
    );
    let held = rt.block_on(hold(port, o.held, account))?;
    std::thread::sleep(Duration::from_secs(1));
    let held_own = uss_kib(pid)?;
    drop(held);
    settle();
    let before_shared = uss_kib(pid)?;

    eprintln!("[accounts] holding {} connections on {SHARED} ...", o.held);
    let held = rt.block_on(hold(port, o.held, |_| SHARED.to_owned()))?;
    std::thread::sleep(Duration::from_secs(1));
    let held_shared = uss_kib(pid)?;
    drop(held);
    settle();
    let after = uss_kib(pid)?;
    // tokio's idle blocking threads leave after 10 s, and jemalloc gives
    // freed pages back to the kernel over 10 s (its dirty-page decay)
    std::thread::sleep(Duration::from_secs(20));
    let after_quiet = uss_kib(pid)?;

    let per = |a: u64, b: u64, n: usize| (a as f64 - b as f64) / n.max(1) as f64;
    println!();
    println!(
        "mailroomd, CRC store: USS (Private_Clean + Private_Dirty, /proc/PID/smaps_rollup); \"settled\" = 3.5 s after the last client left (grace period 2 s)"
    );
    println!();
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    println!("| USS at launch | {} | |", kib(at_launch as f64));
    println!(
        "| USS before (20 accounts in and out, settled) | {} | |",
        kib(before as f64)
    );
    println!(
        "| {} accounts LOGIN + SELECT + LOGOUT | {:.1} s ({:.0}/s, {} clients) | |",
        o.accounts,
        pass.as_secs_f64(),
        o.accounts as f64 / pass.as_secs_f64(),
        o.clients
    );
    println!(
        "| held per account no session uses, right after the last LOGOUT | {} | |",
        kib(per(right_after, before, o.accounts))
    );
    println!(
        "| held per account no session uses, settled | {} | <= 8 KiB |",
        kib(per(after_accounts, before, o.accounts))
    );
    println!(
        "| per open connection, own account, {}-message INBOX, IDLE ({} held) | {} | <= 32 KiB |",
        o.messages,
        o.held,
        kib(per(held_own, before_held, o.held))
    );
    println!(
        "| per open connection sharing one {}-message INBOX, IDLE ({} held) | {} | <= 32 KiB |",
        o.shared_messages,
        o.held,
        kib(per(held_shared, before_shared, o.held))
    );
    println!(
        "| USS after all logged out (settled) | {} ({} from before) | |",
        kib(after as f64),
        kib(after as f64 - before as f64)
    );
    println!(
        "| USS after all logged out, 20 s later | {} ({} from before) | within 32 MiB |",
        kib(after_quiet as f64),
        kib(after_quiet as f64 - before as f64)
    );
    Ok(())
}
