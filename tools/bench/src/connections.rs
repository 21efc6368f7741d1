//! `mailroom-bench connections`: many IDLE connections on one user, and
//! how fast a delivery reaches every one of them; mailroomd next to
//! Dovecot in the same run.
//!
//! For each server: `--connections` IMAP connections (mailroomd 10,000,
//! Dovecot `--dovecot-connections`, 1,000: it runs a process per
//! connection) all LOGIN as one user, SELECT INBOX and IDLE. Then:
//!
//! - CPU while idle: the server's user + system CPU time over `--idle-secs`
//!   (10 s) with every connection in IDLE and nothing happening, from
//!   `/proc/PID/stat` (mailroomd: its process; Dovecot: the master and
//!   every process under it), as a percentage of one CPU;
//! - USS per connection: the server's USS (Private_Clean + Private_Dirty,
//!   `/proc/PID/smaps_rollup`; Dovecot: summed over its processes) with
//!   the connections held, minus before, divided by the connections;
//! - push latency: `--deliveries` (20) messages delivered over LMTP one at
//!   a time; for each, the time from the `250` after DATA to the
//!   `* n EXISTS` line in every session (a session that saw it before the
//!   `250` counts 0); p50, p99 and max over all sessions and deliveries,
//!   and how many sessions never saw it within 30 s.
//!
//! mailroomd: the release binary next to this one, CRC store with
//! durability on (its default). Dovecot: Debian's, Maildir, its process
//! and per-user-and-IP connection limits raised to take the connections.
//! Connections come from many loopback addresses so per-IP limits do not
//! interfere.
//!
//! Dovecot's IDLE watches the mailbox with one inotify instance per IMAP
//! process; past the kernel's per-user limit
//! (`/proc/sys/fs/inotify/max_user_instances`, 128 by default, shared by
//! every process of the user) a process falls back to looking every
//! `mailbox_idle_check_interval` (30 s by default: the 25 s push latency of
//! an earlier run). The private Dovecot here is set to look every second,
//! and the tool prints the limit next to the table, so a Dovecot row
//! measured above the limit says it was polling. If Dovecot fails mid-run
//! the table still shows mailroomd's row, followed by the end of Dovecot's
//! log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use crate::accounts::{Conn, PASSWORD, Server, account, raise_open_files, uss_kib};

/// `mailroom-bench connections` options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// IDLE connections to mailroomd.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// IDLE connections to Dovecot.
    #[arg(long, default_value_t = 1_000)]
    dovecot_connections: usize,
    /// Deliveries whose push latency is measured.
    #[arg(long, default_value_t = 20, value_parser = crate::cli::at_least_one)]
    deliveries: usize,
    /// Seconds of idle CPU measured.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    #[command(flatten)]
    only: crate::cli::Only,
}

/// What one server did.
struct Figures {
    connections: usize,
    uss_per_connection_kib: f64,
    idle_cpu_percent: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    missed: usize,
}

/// The processes whose CPU and memory count as the server's.
trait Processes {
    fn pids(&self) -> Vec<u32>;
}

struct One(u32);
impl Processes for One {
    fn pids(&self) -> Vec<u32> {
        vec![self.0]
    }
}

/// A Dovecot master and every process under it.
struct Tree(u32);
impl Processes for Tree {
    fn pids(&self) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                    children.entry(ppid).or_default().push(pid);
                }
            }
        }
        let mut out = vec![self.0];
        let mut i = 0;
        while i < out.len() {
            if let Some(c) = children.get(&out[i]) {
                out.extend(c);
            }
            i += 1;
        }
        out
    }
}

/// The fields of `/proc/PID/stat` after the command name (state first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU ticks of a process.
fn cpu_ticks(pid: u32) -> u64 {
    stat_fields(pid)
        .map(|f| {
            // utime and stime are fields 14 and 15 of stat: 11 and 12 here
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .unwrap_or(0)
}

fn total_ticks(p: &dyn Processes) -> HashMap<u32, u64> {
    p.pids()
        .into_iter()
        .map(|pid| (pid, cpu_ticks(pid)))
        .collect()
}

fn total_uss(p: &dyn Processes) -> u64 {
    p.pids()
        .into_iter()
        .filter_map(|pid| uss_kib(pid).ok())
        .sum()
}

/// One LMTP delivery to `rcpt`; returns when the `250` after DATA arrived.
fn deliver(port: u16, rcpt: &str, n: usize) -> Result<Instant> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<TcpStream>, code: &str| -> Result<()> {
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                bail!("LMTP connection closed");
            }
            if !line.starts_with(code) {
                bail!("LMTP: wanted {code}, got {line:?}");
            }
            if line.as_bytes().get(3) == Some(&b' ') {
                return Ok(());
            }
        }
    };
    expect(&mut r, "220")?;
    w.write_all(b"LHLO bench.example\r\n")?;
    expect(&mut r, "250")?;
    w.write_all(
        format!("MAIL FROM:<sender@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes(),
    )?;
    expect(&mut r, "250")?;
    expect(&mut r, "250")?;
    expect(&mut r, "354")?;
    let mut msg = crate::small_message(n);
    msg.extend_from_slice(b"\r\n.\r\n");
    w.write_all(&msg)?;
    expect(&mut r, "250")?;
    let at = Instant::now();
    w.write_all(b"QUIT\r\n").ok();
    Ok(at)
}

fn run(
    name: &str,
    imap: u16,
    lmtp: u16,
    user: &str,
    procs: &dyn Processes,
    o: &Options,
    connections: usize,
) -> Result<Figures> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = total_uss(procs);
    eprintln!("[{name}] {connections} connections LOGIN + SELECT + IDLE ...");
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let conns = rt.block_on(async {
        let mut held = Vec::with_capacity(connections);
        let mut pending = tokio::task::JoinSet::new();
        let mut i = 0;
        while held.len() < connections {
            while i < connections && pending.len() < 32 {
                let u = user.to_owned();
                let idx = i;
                pending.spawn(async move { Conn::login_select_idle(imap, idx, &u).await });
                i += 1;
            }
            match pending.join_next().await {
                Some(r) => held.push(r??),
                None => break,
            }
        }
        anyhow::Ok(held)
    })?;
    // every session reports each EXISTS line it reads
    let _guard = rt.enter();
    let mut readers = Vec::with_capacity(conns.len());
    for (i, mut c) in conns.into_iter().enumerate() {
        let tx = tx.clone();
        readers.push(rt.spawn(async move {
            while let Ok(line) = c.line().await {
                if line.ends_with(" EXISTS\r\n") && tx.send((i, Instant::now())).is_err() {
                    break;
                }
            }
        }));
    }
    // let the runtime start the readers
    rt.block_on(tokio::time::sleep(Duration::from_millis(500)));
    let held = total_uss(procs);
    let t0 = total_ticks(procs);
    let w = Instant::now();
    rt.block_on(tokio::time::sleep(Duration::from_secs(o.idle_secs)));
    let window = w.elapsed();
    let t1 = total_ticks(procs);
    let ticks: u64 = t1
        .iter()
        .map(|(pid, t)| t.saturating_sub(t0.get(pid).copied().unwrap_or(0)))
        .sum();
    let hz = 100.0; // USER_HZ on Linux
    let idle_cpu_percent = ticks as f64 / hz / window.as_secs_f64() * 100.0;
    eprintln!("[{name}] {} deliveries ...", o.deliveries);
    let mut lat = Vec::new();
    let mut missed = 0;
    for d in 0..o.deliveries {
        // nothing left over from the previous round
        while rx.try_recv().is_ok() {}
        let acked = rt.block_on(async {
            let user = user.to_owned();
            tokio::task::spawn_blocking(move || deliver(lmtp, &user, d)).await?
        })?;
        let deadline = acked + Duration::from_secs(30);
        let mut seen = vec![false; connections];
        let mut count = 0;
        while count < connections {
            let left = deadline.saturating_duration_since(Instant::now());
            match rt.block_on(tokio::time::timeout(left, rx.recv())) {
                Ok(Some((i, at))) if !seen[i] => {
                    seen[i] = true;
                    count += 1;
                    lat.push(at.saturating_duration_since(acked));
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        missed += connections - count;
        rt.block_on(tokio::time::sleep(Duration::from_millis(200)));
    }
    for r in readers {
        r.abort();
    }
    lat.sort();
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figures {
        connections,
        uss_per_connection_kib: (held as f64 - before as f64) / connections.max(1) as f64,
        idle_cpu_percent,
        p50: pick(0.5),
        p99: pick(0.99),
        max: lat.last().copied().unwrap_or_default(),
        missed,
    })
}

fn dovecot_master_pid(config: &Path) -> Result<u32> {
    let path = config
        .parent()
        .context("dovecot dir")?
        .join("run/master.pid");
    // written once the master has daemonized, possibly after it listens
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(pid) = text.trim().parse()
        {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("no Dovecot master pid in {}", path.display())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Entry point of `mailroom-bench connections`.
pub(crate) fn main(o: Options) -> Result<()> {
    let limit = raise_open_files()?;
    if (limit as usize) < o.connections + 100 {
        bail!(
            "open-file limit {limit} is too low for {} connections",
            o.connections
        );
    }
    let mut results: Vec<(&str, Figures)> = Vec::new();
    let mut dovecot_failed = None;
    if o.only.mailroomd() {
        let server = Server::start(1, &[], o.connections + 100)?;
        let f = run(
            "mailroomd",
            server.imap,
            server.lmtp,
            &account(0),
            &One(server.pid()),
            &o,
            o.connections,
        )?;
        results.push(("mailroomd", f));
    }
    if o.only.dovecot() {
        let n = o.dovecot_connections;
        let options = mailroom_e2e::DovecotOptions {
            lmtp: true,
            ..mailroom_e2e::DovecotOptions::default()
        };
        let limits = format!(
            "default_process_limit = {}\ndefault_client_limit = {}\nmailbox_idle_check_interval = 1 secs\nprotocol imap {{\n  mail_max_userip_connections = {}\n}}\n",
            n + 100,
            4 * n + 1000,
            n + 100
        );
        let user = account(0);
        let d = mailroom_e2e::Dovecot::start_with_config(&user, PASSWORD, &options, &limits);
        let master = dovecot_master_pid(d.config())?;
        let f = run(
            "dovecot",
            d.port(),
            d.lmtp_port().context("dovecot lmtp port")?,
            &user,
            &Tree(master),
            &o,
            n,
        );
        match f {
            Ok(f) => results.push(("Dovecot", f)),
            Err(e) => {
                let log = d.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let alive = Path::new(&format!("/proc/{master}")).exists();
                dovecot_failed = Some(format!(
                    "{e:#}\nDovecot master (pid {master}) {}; the end of its log:\n{}",
                    if alive { "still running" } else { "gone" },
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    println!();
    println!(
        "IDLE connections on one user; push latency from LMTP `250` to `* n EXISTS` in every session ({} deliveries); CPU over {} s with all connections idle",
        o.deliveries, o.idle_secs
    );
    println!();
    println!(
        "| server | connections | USS per connection | CPU while idle | p50 | p99 | max | sessions that missed a delivery |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, f) in &results {
        println!(
            "| {name} | {} | {:.1} KiB | {:.2} % | {} | {} | {} | {} |",
            f.connections,
            f.uss_per_connection_kib,
            f.idle_cpu_percent,
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.missed
        );
    }
    if o.only.dovecot() {
        let instances = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
        println!(
            "\ninotify max_user_instances = {instances} (Dovecot takes one per IDLE process; \
             processes past the limit looked every mailbox_idle_check_interval = 1 s)"
        );
    }
    if let Some(failure) = dovecot_failed {
        bail!("the Dovecot run failed: {failure}");
    }
    Ok(())
}
