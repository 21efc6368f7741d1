//! `mailroom-bench stress`: N clients over M users doing a random mix of
//! SELECT/EXAMINE, FETCH, STORE, EXPUNGE, APPEND, COPY/MOVE, SEARCH, IDLE,
//! NOOP and LOGOUT on three shared mailboxes per user, every response
//! checked against one model of each mailbox that all clients share (the
//! `model` module says how races are told apart from faults). Written from
//! RFC 3501/9051, 4315 (UIDPLUS), 6851 (MOVE), 7162 (CONDSTORE and
//! QRESYNC) and 3516 (BINARY). Some sessions (40%) ENABLE QRESYNC: they get
//! VANISHED instead of EXPUNGE, and come back to a mailbox they left with
//! `SELECT box (QRESYNC (uidvalidity modseq known-uids))`, giving what
//! they knew when they left (the UIDVALIDITY and HIGHESTMODSEQ their
//! SELECT answered, the UIDs they had).
//!
//! What is checked:
//!
//! - UIDs only grow: a session's UIDs ascend with the sequence numbers and
//!   never change; APPENDUID/COPYUID and UIDNEXT are above every UID given
//!   out before the command; UIDVALIDITY never changes;
//! - EXISTS and EXPUNGE agree: EXISTS never shrinks, EXPUNGE and FETCH name
//!   messages the session has, a non-UID FETCH gets no EXPUNGE (RFC 3501
//!   7.4.1) and answers every message asked; SELECT shows every message
//!   APPENDed or copied before it and none expunged before it; NOOP and
//!   IDLE bring the session up to every message APPENDed before them; only
//!   messages some client set `\Deleted` on (or moved) are expunged, and
//!   after EXPUNGE no message we know has `\Deleted` is left;
//! - flags match what the last STORE set, unless a change raced with the
//!   answer; SEARCH FLAGGED/UNSEEN/KEYWORD agree with them;
//! - a keyword is in an untagged FLAGS before a FETCH uses it;
//! - MODSEQ: a message's never goes down, goes up with each flag change,
//!   HIGHESTMODSEQ (of SELECT and EXAMINE: elsewhere, with QRESYNC, it is
//!   the session's point to resync from, which RFC 7162 3.2 lets lag behind
//!   MODSEQs already sent) never goes down nor below a message's; `CHANGEDSINCE m`
//!   and `SEARCH MODSEQ m` return every message known to be above `m` (what
//!   they return at or below `m` is not held against them: an unsolicited
//!   FETCH may report an older change in the same response);
//! - QRESYNC: a session that enabled it gets no EXPUNGE, and VANISHED only
//!   of messages it has; `VANISHED (EARLIER)` (to SELECT or to `UID FETCH
//!   ... (CHANGEDSINCE m VANISHED)`) names no message that no client set
//!   `\Deleted` on or moved; a QRESYNC SELECT's `VANISHED (EARLIER)` names
//!   every UID the client knew that was expunged before the SELECT, and it
//!   FETCHes every message the client knew (of its known-uids) known to
//!   have changed since the client's MODSEQ (their flags and MODSEQs held
//!   to the model as any FETCH's; new messages may be left to EXISTS, as
//!   Dovecot does);
//! - CONDSTORE `STORE (UNCHANGEDSINCE n)`: `[MODIFIED]` names every message
//!   whose MODSEQ was known above `n` before the STORE was sent (a MODSEQ
//!   only grows), and none whose MODSEQ was known exactly (read with no
//!   change racing, none since) at or below `n` with no other change on it
//!   while the STORE ran; the messages it names keep their flags;
//! - bodies: the model keeps a digest of every APPEND's bytes (and of its
//!   header and text), carried to the copies by COPY and MOVE; `BODY[]`,
//!   `BINARY[]`, `BODY[HEADER]`, `BODY[TEXT]` and `RFC822.SIZE` of any
//!   message must be what was appended to that UID (a message that may be
//!   expunged may be answered NIL and size 0 instead, as Dovecot does);
//! - `\Recent`: one read-write session at most per message; a read-write
//!   SELECT sees `\Recent` on every message no read-write session can have
//!   been told of (none had the mailbox selected since it was added, none
//!   came meanwhile); SELECT's RECENT count is the number of messages it
//!   then FETCHes with `\Recent`. A session holds its read-write mailbox
//!   until the answer to the SELECT that leaves it is read (the server may
//!   give it the `\Recent` of a message added while that SELECT ran).
//!
//! What a server may do either way is allowed: it may leave out of a FETCH
//! a message expunged meanwhile (RFC 2180 4.1.3), answer a non-SILENT STORE
//! only for the messages it changed, answer SEARCH from the state its
//! session was last brought up to (Dovecot does), and leave COPYUID out or
//! say NO when the messages went away meanwhile.
//!
//! It prints per-second counts per command, every violation with the
//! exchange that caused it (and, for a message's flags, what the model last
//! learnt of it), and a summary: the counts per command, how many times each
//! check was made (a check never made proves nothing), and the violations by
//! kind. `--seed` makes every client's choices the same from run to run (the
//! interleaving is the machine's); `--trace FILE` writes every exchange to
//! `FILE.<server>` with its window on the model's clock. The exit status is
//! 1 when a server had a violation.
//!
//! ```sh
//! cargo build --release -p mailroomd -p mailroom-bench
//! target/release/mailroom-bench stress --clients 50 --duration 1800
//! target/release/mailroom-bench stress --clients 8 --duration 10 --store memory --only mailroomd
//! target/release/mailroom-bench stress --addr 127.0.0.1:143 --only mailroomd   # a running server
//! target/release/mailroom-bench stress --store crc,postgres --frontends 1,3 --duration 120
//! ```
//!
//! `--store postgres` starts a private PostgreSQL cluster (`fsync=on`, see
//! `mailroom_testkit::postgres`) and, for each count in `--frontends`, a
//! new database with that many mailroomd processes on it; a client's every
//! new connection goes to the next frontend, so what one frontend
//! acknowledged is checked on the others. Each run is a column of the
//! table (`mailroomd postgres x3`: three frontends).
//!
//! With `--addr` the server must have the users `stress0@example.com` ..
//! `stress{M-1}@example.com` with password `benchpw`, and should be fresh.

mod model;
pub(crate) mod parse;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use model::{Body, Model, StoreOp, View, Who};
use parse::in_ranges;
use wire::{Code, Conn, Exchange};

use crate::{Mailroomd, PASSWORD, StoreKind, Stores};

/// The mailboxes of every user.
const MAILBOXES: [&str; 3] = ["INBOX", "Work", "Archive"];

/// The commands counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Login,
    Select,
    Examine,
    Fetch,
    Store,
    Expunge,
    Append,
    Copy,
    Move,
    Search,
    Idle,
    Noop,
    Logout,
}

const CMDS: [Cmd; 13] = [
    Cmd::Login,
    Cmd::Select,
    Cmd::Examine,
    Cmd::Fetch,
    Cmd::Store,
    Cmd::Expunge,
    Cmd::Append,
    Cmd::Copy,
    Cmd::Move,
    Cmd::Search,
    Cmd::Idle,
    Cmd::Noop,
    Cmd::Logout,
];

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Login => "LOGIN",
            Cmd::Select => "SELECT",
            Cmd::Examine => "EXAMINE",
            Cmd::Fetch => "FETCH",
            Cmd::Store => "STORE",
            Cmd::Expunge => "EXPUNGE",
            Cmd::Append => "APPEND",
            Cmd::Copy => "COPY",
            Cmd::Move => "MOVE",
            Cmd::Search => "SEARCH",
            Cmd::Idle => "IDLE",
            Cmd::Noop => "NOOP",
            Cmd::Logout => "LOGOUT",
        }
    }
}

/// The options of one run (`mailroom-bench stress`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Clients, each on its own connection.
    #[arg(long, default_value_t = 50, value_parser = crate::cli::at_least_one)]
    pub(crate) clients: usize,
    /// Users whose mailboxes the clients share.
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = crate::cli::at_least_one)]
    pub(crate) users: usize,
    /// Seconds each target runs.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = crate::cli::seconds)]
    pub(crate) duration: Duration,
    /// Seconds Dovecot runs (--duration by default).
    #[arg(long, value_name = "SECS", value_parser = crate::cli::seconds)]
    pub(crate) dovecot_duration: Option<Duration>,
    /// Seed of the clients' choices.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub(crate) seed: u64,
    /// The stores of the mailroomd started here, a run each.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [StoreKind::Crc])]
    pub(crate) store: Vec<StoreKind>,
    /// On PostgreSQL: how many mailroomd frontends share its database, a
    /// run each; the clients' connections go round them.
    #[arg(long, value_delimiter = ',', default_values_t = [1], value_parser = crate::cli::at_least_one)]
    pub(crate) frontends: Vec<usize>,
    /// A running mailroomd to test instead of starting one.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) addr: Option<SocketAddr>,
    #[command(flatten)]
    pub(crate) only: crate::cli::Only,
    /// The mailroomd binary (the one next to this tool by default).
    #[arg(long, value_name = "PATH")]
    pub(crate) mailroomd: Option<PathBuf>,
    /// Seconds between progress lines (at least 0.1).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = |s: &str| crate::cli::seconds(s).map(|d| d.max(Duration::from_millis(100))))]
    pub(crate) interval: Duration,
    /// Violations printed in full.
    #[arg(long, default_value_t = 1000)]
    pub(crate) print_limit: u64,
    /// Seconds a response may take.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = crate::cli::seconds)]
    pub(crate) timeout: Duration,
    /// Every exchange is written here, for finding what led to a violation.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        crate::cli::defaults()
    }
}

fn user_name(i: usize) -> String {
    format!("stress{i}@example.com")
}

/// What one target's run came to.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) target: String,
    pub(crate) counts: Vec<(&'static str, u64)>,
    pub(crate) seconds: f64,
    pub(crate) violations: u64,
    pub(crate) log: Vec<String>,
    pub(crate) checks: Vec<(&'static str, u64)>,
}

impl Summary {
    fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

pub(crate) fn main(o: Options) -> Result<()> {
    let mut summaries = Vec::new();
    if o.only.mailroomd() {
        if let Some(addr) = o.addr {
            summaries.push(run("mailroomd", &[addr], &o)?);
        } else {
            let mut runs = Vec::new();
            for &store in &o.store {
                if store == StoreKind::Postgres {
                    runs.extend(o.frontends.iter().map(|&n| (store, n)));
                } else {
                    runs.push((store, 1));
                }
            }
            let stores = Stores::default();
            for &(store, n) in &runs {
                let name = match (runs.len(), n) {
                    (1, _) => "mailroomd".to_owned(),
                    (_, 1) => format!("mailroomd {}", store.name()),
                    (_, n) => format!("mailroomd {} x{n}", store.name()),
                };
                summaries.push(run_mailroomd(&o, &stores, store, n, &name)?);
            }
        }
    }
    if o.only.dovecot() {
        let users: Vec<String> = (0..o.users).map(user_name).collect();
        let d = mailroom_e2e::Dovecot::start_with_config(
            &users[0],
            PASSWORD,
            &mailroom_e2e::DovecotOptions {
                extra_users: users[1..].to_vec(),
                ..Default::default()
            },
            "protocol imap {\n mail_max_userip_connections = 10000\n}\n",
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], d.port()));
        let mut od = o.clone();
        od.duration = o.dovecot_duration.unwrap_or(o.duration);
        summaries.push(run("dovecot", &[addr], &od)?);
    }
    print_summaries(&summaries, &o);
    if summaries.iter().any(|s| s.violations > 0) {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs against `frontends` mailroomd started here on a new `store` (one
/// database they share, for PostgreSQL), the clients' connections going
/// round them.
pub(crate) fn run_mailroomd(
    o: &Options,
    stores: &Stores,
    store: StoreKind,
    frontends: usize,
    name: &str,
) -> Result<Summary> {
    let tmp = tempfile::Builder::new()
        .prefix("mailroom-stress")
        .tempdir()?;
    let bin = match &o.mailroomd {
        Some(p) => p.clone(),
        None => crate::sibling_binary("mailroomd")?,
    };
    let users: Vec<String> = (0..o.users).map(user_name).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let table = stores.table(store, "stress");
    let mut servers = Vec::new();
    for i in 0..frontends {
        let dir = tmp.path().join(format!("frontend{i}"));
        std::fs::create_dir_all(&dir)?;
        servers.push(Mailroomd::launch_with(
            &dir,
            "imap",
            &table,
            bin.clone(),
            &names,
        )?);
    }
    let addrs: Vec<SocketAddr> = servers
        .iter()
        .map(|m| SocketAddr::from(([127, 0, 0, 1], m.port)))
        .collect();
    let s = run(name, &addrs, o);
    drop(servers);
    s
}

fn print_summaries(summaries: &[Summary], o: &Options) {
    println!();
    print!("| command |");
    for s in summaries {
        print!(" {} (per second) |", s.target);
    }
    println!();
    println!("|---|{}", "---|".repeat(summaries.len()));
    for (i, c) in CMDS.iter().enumerate() {
        print!("| {} |", c.name());
        for s in summaries {
            print!(
                " {} ({:.1}) |",
                s.counts[i].1,
                s.counts[i].1 as f64 / s.seconds
            );
        }
        println!();
    }
    print!("| all commands |");
    for s in summaries {
        print!(" {} ({:.1}) |", s.total(), s.total() as f64 / s.seconds);
    }
    println!();
    print!("| violations |");
    for s in summaries {
        print!(" {} |", s.violations);
    }
    println!();
    println!(
        "\n| check | {} |",
        summaries
            .iter()
            .map(|s| format!("{} (times made)", s.target))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(summaries.len()));
    let mut kinds: Vec<&str> = summaries
        .iter()
        .flat_map(|s| s.checks.iter().map(|c| c.0))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    for k in kinds {
        let counts: Vec<String> = summaries
            .iter()
            .map(|s| {
                s.checks
                    .iter()
                    .find(|c| c.0 == k)
                    .map_or(0, |c| c.1)
                    .to_string()
            })
            .collect();
        println!("| {k} | {} |", counts.join(" | "));
    }
    for s in summaries.iter().filter(|s| s.violations > 0) {
        // by kind: the description with its numbers taken out
        let mut kinds = std::collections::BTreeMap::<String, u64>::new();
        for l in &s.log {
            let what = l.split_once(": ").map_or(l.as_str(), |x| x.1);
            let what = what.split("; the model's history").next().unwrap_or(what);
            let mut kind = String::new();
            let mut depth = 0;
            for c in what.chars() {
                match c {
                    '[' | '(' => {
                        depth += 1;
                        if depth == 1 {
                            kind.push(c);
                            kind.push_str("..");
                        }
                    }
                    ']' | ')' => {
                        depth -= 1;
                        if depth == 0 {
                            kind.push(c);
                        }
                    }
                    _ if depth > 0 => {}
                    c if c.is_ascii_digit() => {
                        if !kind.ends_with('N') {
                            kind.push('N');
                        }
                    }
                    c => kind.push(c),
                }
            }
            *kinds.entry(kind).or_default() += 1;
        }
        println!("\n{} violations by kind:", s.target);
        for (k, n) in kinds {
            println!("  {n:>6}  {k}");
        }
    }
    println!(
        "\n{} clients over {} users, seed {}, {} store for mailroomd; {} cores on this machine",
        o.clients,
        o.users,
        o.seed,
        o.store
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
}

/// Counters per command, read by the per-second reporter.
#[derive(Debug)]
struct Counters([AtomicU64; 13]);

impl Counters {
    fn new() -> Counters {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
    fn add(&self, c: Cmd) {
        if let Some(i) = CMDS.iter().position(|&x| x == c) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    fn snapshot(&self) -> [u64; 13] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// What every client of one target shares.
#[derive(Debug)]
struct Shared {
    target: String,
    /// The server's addresses; a new connection takes the next.
    addrs: Vec<SocketAddr>,
    model: Mutex<Model>,
    counters: Counters,
    sessions: AtomicU64,
    deadline: Instant,
    timeout: Duration,
    users: usize,
    trace: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

impl Shared {
    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `o.clients` clients against `addrs` for `o.duration`.
pub(crate) fn run(target: &str, addrs: &[SocketAddr], o: &Options) -> Result<Summary> {
    if addrs.is_empty() {
        bail!("no address to run against");
    }
    let shared = Arc::new(Shared {
        target: target.to_owned(),
        addrs: addrs.to_vec(),
        model: Mutex::new(Model::new(target, o.users, MAILBOXES.len(), o.print_limit)),
        counters: Counters::new(),
        sessions: AtomicU64::new(0),
        deadline: Instant::now() + o.duration + Duration::from_secs(3600),
        timeout: o.timeout,
        users: o.users,
        trace: None,
    });
    setup(&shared, o.seed)?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target: target.to_owned(),
        addrs: addrs.to_vec(),
        model: Mutex::new(std::mem::replace(
            &mut *shared.model(),
            Model::new(target, 0, 0, 0),
        )),
        counters: Counters::new(),
        sessions: AtomicU64::new(shared.sessions.load(Ordering::Relaxed)),
        deadline: start + o.duration,
        timeout: o.timeout,
        users: o.users,
        trace: match &o.trace {
            Some(p) => Some(Mutex::new(std::io::BufWriter::new(
                std::fs::File::create(p.with_extension(target))
                    .with_context(|| format!("create {}", p.display()))?,
            ))),
            None => None,
        },
    });
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (shared, done, interval) = (shared.clone(), done.clone(), o.interval);
        std::thread::spawn(move || report(&shared, &done, interval, start))
    };
    let clients: Vec<_> = (0..o.clients)
        .map(|i| {
            let shared = shared.clone();
            let seed = o.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            std::thread::spawn(move || Client::new(&shared, i, seed).run())
        })
        .collect();
    for c in clients {
        let _ = c.join();
    }
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = reporter.join();
    let snap = shared.counters.snapshot();
    let model = shared.model();
    Ok(Summary {
        target: target.to_owned(),
        counts: CMDS.iter().zip(snap).map(|(c, n)| (c.name(), n)).collect(),
        seconds,
        violations: model.violations,
        log: model.log.clone(),
        checks: model.checks.iter().map(|(k, v)| (*k, *v)).collect(),
    })
}

fn report(shared: &Shared, done: &AtomicBool, interval: Duration, start: Instant) {
    let mut last = shared.counters.snapshot();
    let mut next = start + interval;
    while !done.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next += interval;
        let snap = shared.counters.snapshot();
        let secs = interval.as_secs_f64();
        let mut line = format!(
            "[{}] t={:>5.0}s",
            shared.target,
            start.elapsed().as_secs_f64()
        );
        for (i, c) in CMDS.iter().enumerate() {
            line.push_str(&format!(
                " {}={:.0}",
                c.name(),
                (snap[i] - last[i]) as f64 / secs
            ));
        }
        let violations = shared.model().violations;
        line.push_str(&format!(" violations={violations}"));
        println!("{line}");
        last = snap;
    }
}

/// Creates the mailboxes and puts a few messages in each, through the
/// model (so their UIDs and flags are known).
fn setup(shared: &Arc<Shared>, seed: u64) -> Result<()> {
    for user in 0..shared.users {
        let mut c = Client::new(shared, usize::MAX, seed ^ user as u64);
        c.user = user;
        c.connect()?;
        for name in &MAILBOXES[1..] {
            let ex = c.conn()?.exec(&format!("CREATE {name}"))?;
            if ex.status() != "OK" && !ex.tagged.contains("ALREADYEXISTS") {
                bail!("CREATE {name} failed: {}", ex.tagged);
            }
        }
        for b in 0..MAILBOXES.len() {
            for _ in 0..5 {
                c.append(b)?;
            }
        }
        c.logout()?;
    }
    Ok(())
}

/// Flags a STORE or APPEND picks from (`\Deleted` only by EXPUNGE's STORE).
const SYSTEM_FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"];
/// Keywords: a few common ones, and now and then one from a wider pool, new
/// to the mailbox (its FLAGS must be announced before it is used).
const KEYWORDS: [&str; 4] = ["$Stress0", "$Stress1", "$Stress2", "$Stress3"];

/// The most messages a client lets a mailbox grow to before it expunges
/// instead of appending.
const FULL: usize = 150;

/// One simulated client: a connection (or none), the view of its selected
/// mailbox, and its random choices.
struct Client {
    shared: Arc<Shared>,
    rng: StdRng,
    user: usize,
    conn: Option<Conn>,
    session: u64,
    view: Option<View>,
    uidvalidity: Vec<Option<u32>>,
    /// When the session's previous command was sent.
    synced: u64,
    /// The mailbox the server has selected read-write for this session.
    attached: Option<usize>,
    /// The session enabled QRESYNC.
    qresync: bool,
    /// Per mailbox, what the client knew when it last left it: to come
    /// back with `SELECT ... (QRESYNC ...)`.
    away: Vec<Option<Resync>>,
}

/// A client's knowledge of a mailbox it left (RFC 7162 3.2.5).
#[derive(Debug, Clone)]
struct Resync {
    uidvalidity: u32,
    modseq: u64,
    uids: Vec<u32>,
}

/// A `SELECT ... (QRESYNC ...)` as sent and answered: what its checks
/// read.
struct Resynced<'a> {
    /// What the client knew.
    rs: &'a Resync,
    /// The SELECT's answer.
    a: &'a model::Absorbed,
    ex: &'a Exchange,
    /// When it was sent.
    s: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .finish()
    }
}

impl Client {
    fn new(shared: &Arc<Shared>, index: usize, seed: u64) -> Client {
        Client {
            shared: shared.clone(),
            rng: StdRng::seed_from_u64(seed),
            user: index % shared.users.max(1),
            conn: None,
            session: 0,
            view: None,
            uidvalidity: vec![None; MAILBOXES.len()],
            synced: 0,
            attached: None,
            qresync: false,
            away: vec![None; MAILBOXES.len()],
        }
    }

    /// The session leaves its view: what it knew is kept for a QRESYNC
    /// SELECT later.
    fn leave_view(&mut self) {
        if let Some(v) = self.view.take()
            && let (Some(uidvalidity), Some(modseq)) = (v.uidvalidity, v.select_hms)
        {
            self.away[v.mailbox] = Some(Resync {
                uidvalidity,
                modseq,
                uids: v.known_uids(),
            });
        }
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        self.conn.as_mut().context("not connected")
    }

    fn who_names(&self) -> (String, &'static str) {
        let mailbox = self.view.as_ref().map_or("-", |v| MAILBOXES[v.mailbox]);
        (user_name(self.user), mailbox)
    }

    /// A protocol-level fault outside any command's model (a refused
    /// LOGIN, a dropped connection, a timeout).
    fn fault(&self, what: &str, ex: &Exchange) {
        let (user, mailbox) = self.who_names();
        let who = Who {
            session: self.session,
            user: &user,
            mailbox,
        };
        self.shared.model().violation(who, what, ex);
    }

    fn run(mut self) {
        while Instant::now() < self.shared.deadline {
            if let Err(e) = self.step() {
                if Instant::now() >= self.shared.deadline {
                    break;
                }
                let ex = Exchange {
                    sent: "(connection)".into(),
                    tagged: format!("{e:#}"),
                    ..Exchange::default()
                };
                self.fault("the connection failed", &ex);
                self.detach();
                self.conn = None;
                self.leave_view();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if self.conn.is_some() {
            let _ = self.logout();
        }
    }

    fn connect(&mut self) -> Result<()> {
        let session = self.shared.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let addrs = &self.shared.addrs;
        let addr = addrs[session as usize % addrs.len()];
        let mut conn = Conn::connect(addr, self.shared.timeout)?;
        self.session = session;
        self.view = None;
        let ex = conn.exec(&format!(
            "LOGIN \"{}\" \"{PASSWORD}\"",
            user_name(self.user)
        ))?;
        self.shared.counters.add(Cmd::Login);
        self.conn = Some(conn);
        if ex.status() != "OK" {
            self.fault("LOGIN refused", &ex);
            bail!("LOGIN refused");
        }
        let ex = self.conn()?.exec("ENABLE CONDSTORE")?;
        if ex.status() != "OK" {
            self.fault("ENABLE CONDSTORE refused", &ex);
        }
        self.qresync = self.rng.random_bool(0.4);
        if self.qresync {
            let ex = self.conn()?.exec("ENABLE QRESYNC")?;
            if ex.status() != "OK"
                || !ex.lines.iter().any(|l| {
                    l.to_ascii_uppercase().starts_with("* ENABLED")
                        && l.to_ascii_uppercase().contains("QRESYNC")
                })
            {
                self.fault("ENABLE QRESYNC refused (or not ENABLED)", &ex);
                self.qresync = false;
            }
        }
        Ok(())
    }

    /// One random step.
    fn step(&mut self) -> Result<()> {
        if self.conn.is_none() {
            self.connect()?;
            let b = self.rng.random_range(0..MAILBOXES.len());
            let rw = self.rng.random_bool(0.85);
            return self.select(b, rw);
        }
        if self
            .view
            .as_ref()
            .is_some_and(|v| v.uids.iter().any(Option::is_none))
        {
            return self.fetch_new();
        }
        let Some(view) = self.view.clone() else {
            let b = self.rng.random_range(0..MAILBOXES.len());
            return self.select(b, true);
        };
        let full = view.uids.len() >= FULL;
        let roll = self.rng.random_range(0..100);
        let done = match roll {
            0..15 => self.fetch(&view),
            15..20 => self.fetch_changedsince(&view),
            20..40 if view.rw => self.store(&view),
            40..47 if view.rw => self.expunge(&view),
            47..57 => {
                if full && view.rw {
                    self.expunge(&view)
                } else {
                    let b = if self.rng.random_bool(0.5) {
                        view.mailbox
                    } else {
                        self.rng.random_range(0..MAILBOXES.len())
                    };
                    self.append(b)
                }
            }
            57..62 => self.copy(&view, false),
            62..67 if view.rw => self.copy(&view, true),
            67..77 => self.search(&view),
            77..83 => self.idle(),
            83..89 => self.noop(),
            89..97 => {
                let b = self.rng.random_range(0..MAILBOXES.len());
                let rw = self.rng.random_bool(0.85);
                self.select(b, rw)
            }
            97..100 => self.logout(),
            _ => self.fetch(&view),
        };
        done?;
        // bodies, now and then
        match self.view.clone() {
            Some(view) if self.rng.random_bool(0.08) => self.fetch_body(&view),
            _ => Ok(()),
        }
    }

    /// Sends with the model's clock around it: returns the exchange and
    /// its window.
    fn timed<F>(&mut self, cmd: Cmd, send: F) -> Result<(Exchange, u64)>
    where
        F: FnOnce(&mut Conn) -> Result<Exchange>,
    {
        let s = self.shared.model().tick();
        let conn = self.conn()?;
        let ex = send(conn)?;
        self.shared.counters.add(cmd);
        Ok((ex, s))
    }

    /// Absorbs an exchange into the model and the view (under the lock
    /// `m`); returns what it said.
    fn absorb(&mut self, m: &mut Model, ex: &Exchange, s: u64, r: u64) -> model::Absorbed {
        let (user, mailbox) = self.who_names();
        let who = Who {
            session: self.session,
            user: &user,
            mailbox,
        };
        if let Some(t) = &self.shared.trace {
            use std::io::Write;
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            let _ = write!(
                t,
                "t{s}-{r} session {} {user} {mailbox}\n{}",
                self.session,
                ex.transcript(usize::MAX)
            );
        }
        let a = m.absorb(who, self.view.as_mut(), ex, s, r);
        self.synced = s;
        a
    }

    fn violation(&self, m: &mut Model, what: &str, ex: &Exchange) {
        let (user, mailbox) = self.who_names();
        let who = Who {
            session: self.session,
            user: &user,
            mailbox,
        };
        m.violation(who, what, ex);
    }

    fn select(&mut self, b: usize, rw: bool) -> Result<()> {
        let (cmd, verb) = if rw {
            (Cmd::Select, "SELECT")
        } else {
            (Cmd::Examine, "EXAMINE")
        };
        // the old view ends here (a failed SELECT leaves none either); the
        // server lets go of the old mailbox only when it runs this SELECT,
        // so the model lets go of it once the answer is read (a session
        // that let go of it earlier may still take the \Recent of a
        // message added meanwhile)
        self.leave_view();
        let mut view = View::new(self.user, b, rw);
        view.qresync = self.qresync;
        self.view = Some(view);
        let old = self.attached.take();
        let attach = rw.then(|| {
            let mut m = self.shared.model();
            let t = m.tick();
            m.attach(self.user, b, t)
        });
        if rw {
            self.attached = Some(b);
        }
        // a QRESYNC session back in a mailbox it left: what it knew then
        let resync = match &self.away[b] {
            Some(r) if self.qresync && self.rng.random_bool(0.7) => Some(r.clone()),
            _ => None,
        };
        let command = match &resync {
            Some(r) => format!(
                "{verb} {} (QRESYNC ({} {} {}))",
                MAILBOXES[b],
                r.uidvalidity,
                r.modseq,
                if r.uids.is_empty() {
                    "1".to_owned()
                } else {
                    compress(&r.uids)
                }
            ),
            None => format!("{verb} {}", MAILBOXES[b]),
        };
        let result = self.timed(cmd, |c| c.exec(&command));
        if let Some(old) = old {
            let mut m = self.shared.model();
            let t = m.tick();
            m.detach(self.user, old, t);
        }
        let (ex, s) = result?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let a = self.absorb(&mut m, &ex, s, r);
        if let Some(v) = self.view.as_mut() {
            for c in &a.codes {
                match c {
                    Code::UidValidity(u) => v.uidvalidity = Some(*u),
                    Code::HighestModseq(h) => v.select_hms = Some(*h),
                    _ => {}
                }
            }
        }
        if a.status != "OK" {
            self.violation(&mut m, &format!("{verb} refused"), &ex);
            self.view = None;
            drop(m);
            self.detach();
            return Ok(());
        }
        // messages no read-write session can have been told of, if no other
        // came while this SELECT ran: this one must see them \Recent
        let must_be_recent: Vec<u32> = match &attach {
            Some((unseen, events)) if m.attach_alone(self.user, b, *events) => unseen.clone(),
            _ => Vec::new(),
        };
        let mut missing = Vec::new();
        if a.exists.is_none() {
            missing.push("EXISTS");
        }
        if a.recent.is_none() {
            missing.push("RECENT");
        }
        if !a.flags_seen {
            missing.push("FLAGS");
        }
        if !a.codes.iter().any(|c| matches!(c, Code::UidValidity(_))) {
            missing.push("UIDVALIDITY");
        }
        if !a.codes.iter().any(|c| matches!(c, Code::HighestModseq(_))) {
            missing.push("HIGHESTMODSEQ (CONDSTORE is enabled)");
        }
        if !missing.is_empty() {
            self.violation(
                &mut m,
                &format!("{verb} without {}", missing.join(", ")),
                &ex,
            );
        }
        let resynced = resync.as_ref().map(|rs| Resynced {
            rs,
            a: &a,
            ex: &ex,
            s,
        });
        if let Some(q) = &resynced {
            self.check_vanished_earlier(&mut m, q);
        }
        let n = self.view.as_ref().map_or(0, |v| v.uids.len());
        let recent = a.recent.unwrap_or(0);
        drop(m);
        if n == 0 {
            if recent != 0 {
                let mut m = shared.model();
                self.violation(&mut m, &format!("RECENT {recent} in an empty mailbox"), &ex);
            }
            return Ok(());
        }
        // every message's UID, flags and MODSEQ
        let (ex2, s2) = self.timed(Cmd::Fetch, |c| {
            c.exec(&format!("FETCH 1:{n} (UID FLAGS MODSEQ)"))
        })?;
        let mut m = shared.model();
        let r2 = m.tick();
        let a2 = self.absorb(&mut m, &ex2, s2, r2);
        self.check_seq_fetch(&mut m, &ex2, &a2, 1, n as u32);
        if let Some(q) = &resynced {
            // (once the FETCH told every UID of the view)
            self.check_changed_since(&mut m, q);
        }
        let recent_seen = {
            let v = self.view.as_ref().context("view")?;
            v.uids
                .iter()
                .take(n)
                .flatten()
                .filter(|u| a2.recent_uids.contains(u))
                .count()
        };
        // (a message expunged meanwhile may be left out of the FETCH)
        let omitted = (1..=n as u32)
            .filter(|s| !a2.fetched_seqs.contains(s))
            .count();
        m.checked("SELECT's RECENT is its messages FETCHed \\Recent", 1);
        if recent_seen > recent as usize || recent as usize > recent_seen + omitted {
            self.violation(
                &mut m,
                &format!("{verb} said RECENT {recent}, FETCH showed \\Recent on {recent_seen} of those messages ({omitted} left out)"),
                &ex2,
            );
        }
        let view_uids: BTreeSet<u32> = self
            .view
            .as_ref()
            .map(|v| v.known_uids())
            .unwrap_or_default()
            .into_iter()
            .collect();
        m.checked(
            "\\Recent to at least one read-write session",
            must_be_recent.len(),
        );
        let not_recent: Vec<u32> = must_be_recent
            .into_iter()
            .filter(|u| view_uids.contains(u) && !a2.recent_uids.contains(u))
            .collect();
        if !not_recent.is_empty() {
            self.violation(
                &mut m,
                &format!("UIDs {not_recent:?} \\Recent to no session: no read-write session had the mailbox selected since they were added, and this SELECT does not show them \\Recent"),
                &ex2,
            );
        }
        let bm = m.boxm(self.user, b);
        let required = bm.required(s);
        let n_required = required.len();
        let reappeared: Vec<u32> = view_uids
            .iter()
            .filter(|u| {
                bm.msgs
                    .get(u)
                    .and_then(|x| x.expunged_at)
                    .is_some_and(|t| t < s)
            })
            .copied()
            .collect();
        m.checked("SELECT shows every message added before it", n_required);
        let absent: Vec<u32> = required
            .into_iter()
            .filter(|u| !view_uids.contains(u))
            .collect();
        if !absent.is_empty() {
            self.violation(
                &mut m,
                &format!("{verb} lacks UIDs {absent:?}, appended or copied before it and never marked \\Deleted"),
                &ex2,
            );
        }
        if !reappeared.is_empty() {
            self.violation(
                &mut m,
                &format!("{verb} shows UIDs {reappeared:?}, expunged before it"),
                &ex2,
            );
        }
        Ok(())
    }

    /// A `SELECT ... (QRESYNC (uidvalidity modseq known-uids))` (RFC 7162
    /// 3.2.5) sent at `s`: every known UID expunged before it is in its
    /// `VANISHED (EARLIER)` (none of them can have been expunged before
    /// `modseq`: the client saw them after its SELECT answered that
    /// HIGHESTMODSEQ). (That `VANISHED (EARLIER)` names no live message is
    /// checked for every response, in the model.)
    fn check_vanished_earlier(&self, m: &mut Model, q: &Resynced<'_>) {
        let Resynced { rs, a, ex, s } = *q;
        let Some(v) = self.view.as_ref() else { return };
        let (user, mailbox) = (v.user, v.mailbox);
        let bm = m.boxm(user, mailbox);
        let gone: Vec<u32> = rs
            .uids
            .iter()
            .copied()
            .filter(|u| {
                bm.msgs
                    .get(u)
                    .and_then(|x| x.expunged_at)
                    .is_some_and(|t| t < s)
            })
            .collect();
        let not_reported: Vec<u32> = gone
            .iter()
            .copied()
            .filter(|&u| !in_ranges(&a.vanished_earlier, u))
            .collect();
        m.checked(
            "QRESYNC SELECT: VANISHED (EARLIER) has every known UID expunged",
            gone.len(),
        );
        if !not_reported.is_empty() {
            self.violation(
                m,
                &format!(
                    "QRESYNC {verb}: UIDs {not_reported:?} were expunged before it (after MODSEQ {}), not in its VANISHED (EARLIER)",
                    rs.modseq,
                    verb = if v.rw { "SELECT" } else { "EXAMINE" }
                ),
                ex,
            );
        }
    }

    /// The QRESYNC SELECT (its answer `a`, sent at `s`) FETCHed every
    /// message of its known-uids still in the view and known to have
    /// changed after the client's `modseq` before it was sent; called once
    /// the view knows its UIDs.
    fn check_changed_since(&self, m: &mut Model, q: &Resynced<'_>) {
        let Resynced { rs, a, ex, s } = *q;
        let Some(v) = self.view.as_ref() else { return };
        let (user, mailbox) = (v.user, v.mailbox);
        let in_view: BTreeSet<u32> = v.known_uids().into_iter().collect();
        // (only the messages the client knew: a server may leave the new
        // ones to EXISTS and the client's FETCH, as Dovecot does, RFC 7162
        // 3.2.5 known-uids)
        let known: BTreeSet<u32> = rs.uids.iter().copied().collect();
        let changed: Vec<(u32, u64)> = m
            .floors(user, mailbox, s)
            .into_iter()
            .filter(|&(u, f)| {
                f > rs.modseq
                    && in_view.contains(&u)
                    && known.contains(&u)
                    && !m.may_expunge(user, mailbox, u)
            })
            .collect();
        m.checked(
            "QRESYNC SELECT: a FETCH for every message changed since",
            changed.len(),
        );
        let lacking: Vec<(u32, u64)> = changed
            .into_iter()
            .filter(|(u, _)| !a.fetched.contains_key(u))
            .collect();
        if !lacking.is_empty() {
            self.violation(
                m,
                &format!(
                    "QRESYNC SELECT since MODSEQ {} gave no FETCH for (UID, MODSEQ) {lacking:?}, changed before it",
                    rs.modseq
                ),
                ex,
            );
        }
    }

    /// `UID FETCH` of a few messages' bytes: `BODY.PEEK[]`, `BINARY.PEEK[]`,
    /// `BODY.PEEK[HEADER]`, `BODY.PEEK[TEXT]` and `RFC822.SIZE`, each held
    /// (in the model) to what was appended to that UID, also after COPY
    /// and MOVE.
    fn fetch_body(&mut self, view: &View) -> Result<()> {
        let uids = self.pick(view, 3);
        if uids.is_empty() {
            return Ok(());
        }
        let items = match self.rng.random_range(0..4) {
            0 => "BODY.PEEK[]",
            1 => "BINARY.PEEK[] RFC822.SIZE",
            2 => "BODY.PEEK[HEADER] RFC822.SIZE",
            _ => "BODY.PEEK[HEADER] BODY.PEEK[TEXT]",
        };
        let command = format!("UID FETCH {} (UID {items})", join(&uids));
        self.answered_ok(
            Cmd::Fetch,
            "UID FETCH of bodies refused",
            |c| c.exec(&command),
            |_, _, _, _| {},
        )
    }

    /// A non-UID FETCH of `lo:hi`: no EXPUNGE in it, every message answered
    /// with its UID.
    fn check_seq_fetch(&self, m: &mut Model, ex: &Exchange, a: &model::Absorbed, lo: u32, hi: u32) {
        if a.status != "OK" {
            self.violation(m, "FETCH refused", ex);
            return;
        }
        if a.expunges > 0 {
            self.violation(m, "EXPUNGE sent during a FETCH (RFC 3501 7.4.1)", ex);
            return;
        }
        // a message expunged meanwhile may go unanswered (RFC 2180 4.1.3)
        let Some(v) = self.view.as_ref() else { return };
        let gone_since = v.grown;
        let (user, mailbox) = (v.user, v.mailbox);
        m.checked("a FETCH answers every message asked, no EXPUNGE in it", 1);
        let unanswered: Vec<u32> = (lo..=hi)
            .filter(|n| !a.fetched_seqs.contains(n))
            .filter(|&n| match v.uids.get(n as usize - 1).copied().flatten() {
                Some(uid) => !m.may_expunge(user, mailbox, uid),
                None => !m.boxm(user, mailbox).expunged_since(gone_since),
            })
            .collect();
        if !unanswered.is_empty() {
            self.violation(
                m,
                &format!("FETCH {lo}:{hi} did not answer messages {unanswered:?}"),
                ex,
            );
        }
    }

    /// Learns the UIDs of messages EXISTS announced.
    fn fetch_new(&mut self) -> Result<()> {
        let (lo, hi) = {
            let v = self.view.as_ref().context("view")?;
            let lo = v.uids.iter().position(Option::is_none).unwrap_or(0) + 1;
            (lo as u32, v.uids.len() as u32)
        };
        let (ex, s) = self.timed(Cmd::Fetch, |c| {
            c.exec(&format!("FETCH {lo}:{hi} (UID FLAGS MODSEQ)"))
        })?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let a = self.absorb(&mut m, &ex, s, r);
        self.check_seq_fetch(&mut m, &ex, &a, lo, hi);
        drop(m);
        // messages expunged meanwhile: NOOP collects their EXPUNGE, and a
        // session still without their UIDs selects again
        if self
            .view
            .as_ref()
            .is_some_and(|v| v.uids.iter().take(hi as usize).any(Option::is_none))
        {
            self.noop()?;
            if self
                .view
                .as_ref()
                .is_some_and(|v| v.uids.iter().take(hi as usize).any(Option::is_none))
            {
                self.leave_view();
            }
        }
        Ok(())
    }

    fn pick(&mut self, view: &View, max: usize) -> Vec<u32> {
        let uids = view.known_uids();
        if uids.is_empty() {
            return Vec::new();
        }
        let k = self.rng.random_range(1..=max.min(uids.len()));
        let mut out: Vec<u32> = (0..k)
            .map(|_| uids[self.rng.random_range(0..uids.len())])
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn fetch(&mut self, view: &View) -> Result<()> {
        let set = if self.rng.random_bool(0.2) {
            "1:*".to_owned()
        } else {
            let uids = self.pick(view, 5);
            if uids.is_empty() {
                return self.noop();
            }
            join(&uids)
        };
        let size = if self.rng.random_bool(0.3) {
            " RFC822.SIZE"
        } else {
            ""
        };
        let command = format!("UID FETCH {set} (UID FLAGS MODSEQ{size})");
        self.answered_ok(
            Cmd::Fetch,
            "UID FETCH refused",
            |c| c.exec(&command),
            |_, _, _, _| {},
        )
    }

    /// `UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m)` with `m` a MODSEQ the
    /// model has seen in this mailbox.
    fn fetch_changedsince(&mut self, view: &View) -> Result<()> {
        let s0 = self.shared.model().tick();
        let floors = self.shared.model().floors(view.user, view.mailbox, s0);
        let in_view: BTreeSet<u32> = view.known_uids().into_iter().collect();
        let candidates: Vec<u64> = floors
            .iter()
            .filter(|(u, _)| in_view.contains(u))
            .map(|(_, &m)| m)
            .collect();
        let since = if candidates.is_empty() {
            1
        } else {
            candidates[self.rng.random_range(0..candidates.len())]
                .saturating_sub(self.rng.random_range(0..2))
        };
        // a QRESYNC session asks for the UIDs expunged since, too (their
        // VANISHED (EARLIER) must name no live message: the model checks)
        let vanished = if view.qresync && self.rng.random_bool(0.5) {
            " VANISHED"
        } else {
            ""
        };
        let (ex, s) = self.timed(Cmd::Fetch, |c| {
            c.exec(&format!(
                "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE {since}{vanished})"
            ))
        })?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" {
            self.violation(&mut m, "UID FETCH CHANGEDSINCE refused", &ex);
            return Ok(());
        }
        // (a FETCH with a MODSEQ at or below `since` may be an unsolicited
        // report of an older change, so only what is missing is checked)
        let floors = m.floors(view.user, view.mailbox, s0.min(s));
        let in_view_now: BTreeSet<u32> = self
            .view
            .as_ref()
            .map(|v| v.known_uids())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut lacking = Vec::new();
        for (u, f) in floors {
            if f > since
                && in_view.contains(&u)
                && in_view_now.contains(&u)
                && !m.may_expunge(view.user, view.mailbox, u)
            {
                m.checked("CHANGEDSINCE returns every message changed since", 1);
                if !a.fetched.contains_key(&u) {
                    lacking.push((u, f));
                }
            }
        }
        if !lacking.is_empty() {
            self.violation(
                &mut m,
                &format!(
                    "CHANGEDSINCE {since} lacks (UID, MODSEQ) {lacking:?}, read before the command"
                ),
                &ex,
            );
        }
        Ok(())
    }

    fn random_flags(&mut self, min: usize, max: usize) -> Vec<String> {
        let k = self.rng.random_range(min..=max);
        let mut out = BTreeSet::new();
        for _ in 0..k {
            let f = match self.rng.random_range(0..10) {
                0..5 => SYSTEM_FLAGS[self.rng.random_range(0..SYSTEM_FLAGS.len())].to_owned(),
                5..9 => KEYWORDS[self.rng.random_range(0..KEYWORDS.len())].to_owned(),
                _ => format!("kw{}", self.rng.random_range(0..40)),
            };
            out.insert(f);
        }
        out.into_iter().collect()
    }

    fn store(&mut self, view: &View) -> Result<()> {
        let uids = self.pick(view, 4);
        if uids.is_empty() {
            return self.noop();
        }
        let replace = self.rng.random_range(0..3) == 2;
        let flags = self.random_flags(usize::from(!replace), 3);
        let (op, verb) = match if replace {
            2
        } else {
            self.rng.random_range(0..2)
        } {
            0 => (StoreOp::Add(flags.clone()), "+FLAGS"),
            1 => (StoreOp::Remove(flags.clone()), "-FLAGS"),
            _ => (StoreOp::Replace(flags.clone()), "FLAGS"),
        };
        let silent = if self.rng.random_bool(0.2) {
            ".SILENT"
        } else {
            ""
        };
        // now and then a conditional STORE (RFC 7162 3.1.3), against a
        // MODSEQ the model knows of one of the messages (or just below it)
        let unchanged = if self.rng.random_bool(0.25) {
            let mut m = self.shared.model();
            let s0 = m.tick();
            let known: Vec<u64> = uids
                .iter()
                .filter_map(|&u| match m.modseq_of(view.user, view.mailbox, u, s0) {
                    (Some(e), _) => Some(e),
                    (None, f) => (f > 0).then_some(f),
                })
                .collect();
            drop(m);
            let base = if known.is_empty() {
                1
            } else {
                known[self.rng.random_range(0..known.len())]
            };
            Some(base.saturating_sub(self.rng.random_range(0..2)))
        } else {
            None
        };
        let condition = unchanged.map_or(String::new(), |n| format!("(UNCHANGEDSINCE {n}) "));
        self.do_store(
            view,
            &uids,
            op,
            unchanged,
            &format!(
                "UID STORE {} {condition}{verb}{silent} ({})",
                join(&uids),
                flags.join(" ")
            ),
        )
    }

    fn do_store(
        &mut self,
        view: &View,
        uids: &[u32],
        op: StoreOp,
        unchanged: Option<u64>,
        command: &str,
    ) -> Result<()> {
        let shared = self.shared.clone();
        let (begun, s, modseqs) = {
            let mut m = shared.model();
            let s = m.tick();
            // what the model knows of their MODSEQs as the STORE is sent
            let modseqs: Vec<(u32, Option<u64>, u64)> = uids
                .iter()
                .map(|&u| {
                    let (e, f) = m.modseq_of(view.user, view.mailbox, u, s);
                    (u, e, f)
                })
                .collect();
            (
                m.store_begin(view.user, view.mailbox, uids, Some(&op), s),
                s,
                modseqs,
            )
        };
        let conn = self.conn()?;
        let result = conn.exec(command);
        let mut m = shared.model();
        let r = m.tick();
        let ex = match result {
            Ok(ex) => ex,
            Err(e) => {
                m.store_end(view.user, view.mailbox, &begun, Some(&op), &[], false, r);
                return Err(e);
            }
        };
        self.shared.counters.add(Cmd::Store);
        let ok = ex.status() == "OK";
        let modified: Option<Vec<(u32, u32)>> = match wire::parse_tagged(&ex.tagged).1 {
            Some(Code::Modified(r)) => Some(r),
            _ => None,
        };
        let skipped = modified.clone().unwrap_or_default();
        let alone = m.store_end(view.user, view.mailbox, &begun, Some(&op), &skipped, ok, r);
        let a = self.absorb(&mut m, &ex, s, r);
        if ok {
            self.check_unchanged_since(
                &mut m,
                view,
                unchanged,
                modified.as_deref(),
                &modseqs,
                &alone,
                &ex,
            );
        }
        if !ok
            && !uids
                .iter()
                .any(|&u| m.may_expunge(view.user, view.mailbox, u))
        {
            self.violation(&mut m, "UID STORE refused", &ex);
        }
        // a STORE no other change raced with: its own FETCH shows its effect
        if ok && !command.contains(".SILENT") {
            for (u, changed) in alone {
                if m.may_expunge(view.user, view.mailbox, u) || in_ranges(&skipped, u) {
                    continue;
                }
                // (servers answer only the messages whose flags changed)
                let Some(flags) = a.fetched.get(&u).and_then(|f| f.0.clone()) else {
                    if changed {
                        self.violation(&mut m, &format!("UID STORE without .SILENT changed the flags of UID {u} and gave no FETCH FLAGS"), &ex);
                    }
                    continue;
                };
                m.checked("a STORE's FETCH shows its effect", 1);
                let wrong = match &op {
                    StoreOp::Add(f) => f.iter().any(|f| !flags.contains(f)),
                    StoreOp::Remove(f) => f.iter().any(|f| flags.contains(f)),
                    StoreOp::Replace(f) => flags != f.iter().cloned().collect(),
                };
                if wrong {
                    self.violation(
                        &mut m,
                        &format!("UID STORE answered FLAGS {flags:?} for UID {u}, not what it set"),
                        &ex,
                    );
                }
            }
        }
        Ok(())
    }

    /// A conditional STORE's `[MODIFIED]` (RFC 7162 3.1.3): it names every
    /// message whose MODSEQ was known above `n` before it was sent (a
    /// MODSEQ only grows), and none whose MODSEQ was known exactly, at or
    /// below `n`, with no other change on it while the STORE ran.
    #[allow(clippy::too_many_arguments)]
    fn check_unchanged_since(
        &self,
        m: &mut Model,
        view: &View,
        unchanged: Option<u64>,
        modified: Option<&[(u32, u32)]>,
        modseqs: &[(u32, Option<u64>, u64)],
        alone: &[(u32, bool)],
        ex: &Exchange,
    ) {
        let Some(n) = unchanged else {
            if let Some(set) = modified {
                self.violation(
                    m,
                    &format!("[MODIFIED {set:?}] to a STORE without UNCHANGEDSINCE"),
                    ex,
                );
            }
            return;
        };
        let set = modified.unwrap_or_default();
        let strange: Vec<u32> = set
            .iter()
            .flat_map(|&(lo, hi)| lo..=hi.min(lo.saturating_add(1000)))
            .filter(|u| !modseqs.iter().any(|(x, _, _)| x == u))
            .collect();
        if !strange.is_empty() {
            self.violation(
                m,
                &format!("[MODIFIED] names UIDs {strange:?}, not in the STORE"),
                ex,
            );
        }
        let mut wrong = Vec::new();
        let mut checks = 0;
        for &(u, exact, floor) in modseqs {
            if m.may_expunge(view.user, view.mailbox, u) {
                continue;
            }
            let reported = in_ranges(set, u);
            if floor > n {
                checks += 1;
                if !reported {
                    wrong.push(format!(
                        "UID {u} (MODSEQ at least {floor}) not in [MODIFIED]"
                    ));
                }
            } else if let Some(e) = exact
                && e <= n
                && alone.iter().any(|(x, _)| *x == u)
            {
                checks += 1;
                if reported {
                    wrong.push(format!(
                        "UID {u} (MODSEQ {e}, no change raced) in [MODIFIED]"
                    ));
                }
            }
        }
        m.checked(
            "UNCHANGEDSINCE: [MODIFIED] exactly the messages above it",
            checks,
        );
        if !wrong.is_empty() {
            self.violation(m, &format!("UNCHANGEDSINCE {n}: {}", wrong.join("; ")), ex);
        }
    }

    fn expunge(&mut self, view: &View) -> Result<()> {
        let uids = self.pick(view, 3);
        if uids.is_empty() {
            return self.noop();
        }
        let op = StoreOp::Add(vec!["\\Deleted".into()]);
        self.do_store(
            view,
            &uids,
            op,
            None,
            &format!("UID STORE {} +FLAGS.SILENT (\\Deleted)", join(&uids)),
        )?;
        let use_uid = self.rng.random_bool(0.5);
        let command = if use_uid {
            format!("UID EXPUNGE {}", join(&uids))
        } else {
            "EXPUNGE".to_owned()
        };
        let shared = self.shared.clone();
        let (begun, s, sure) = {
            let mut m = shared.model();
            let s = m.tick();
            // which of ours are known to have \Deleted as the EXPUNGE starts
            let sure: Vec<u32> = uids
                .iter()
                .copied()
                .filter(|&u| m.known_flag(view.user, view.mailbox, u, "\\Deleted", s) == Some(true))
                .collect();
            let s = m.tick();
            (m.expunge_begin(view.user, view.mailbox, s), s, sure)
        };
        let conn = self.conn()?;
        let result = conn.exec(&command);
        let mut m = shared.model();
        let r = m.tick();
        // ... and no change but this EXPUNGE touched them meanwhile
        let alone = m.expunge_end(view.user, view.mailbox, &begun, result.is_ok(), r);
        let sure: Vec<u32> = sure.into_iter().filter(|u| alone.contains(u)).collect();
        let ex = result?;
        self.shared.counters.add(Cmd::Expunge);
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" {
            self.violation(&mut m, "EXPUNGE refused", &ex);
            return Ok(());
        }
        m.checked("EXPUNGE removes the messages known \\Deleted", sure.len());
        let left: Vec<u32> = sure
            .into_iter()
            .filter(|&u| self.view.as_ref().is_some_and(|v| v.seq_of(u).is_some()))
            .collect();
        if !left.is_empty() {
            self.violation(
                &mut m,
                &format!(
                    "UIDs {left:?} had \\Deleted (no STORE raced) and are still there after EXPUNGE"
                ),
                &ex,
            );
        }
        Ok(())
    }

    /// APPENDs a small message with random flags to mailbox `b`.
    fn append(&mut self, b: usize) -> Result<()> {
        let flags: Vec<String> = self.random_flags(0, 3);
        let n: u64 = self.rng.random();
        // a body of 0 to ~60 lines, each its own, so that every message's
        // bytes differ and some need more than one read
        let lines = match self.rng.random_range(0..10) {
            0 => 0,
            1..8 => self.rng.random_range(1..6),
            _ => self.rng.random_range(6..60),
        };
        let mut text = String::new();
        for i in 0..lines {
            text.push_str(&format!(
                "line {i} of {n:x}: {}\r\n",
                "x".repeat(self.rng.random_range(0..70))
            ));
        }
        let body = format!(
            "From: stress@example.org\r\nTo: {}\r\nSubject: stress {n:016x}\r\nMessage-ID: <{n:016x}@stress>\r\n\r\n{text}",
            user_name(self.user)
        );
        let head = format!("APPEND {} ({})", MAILBOXES[b], flags.join(" "));
        let (ex, s) = self.timed(Cmd::Append, |c| c.append(&head, body.as_bytes()))?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" {
            self.violation(&mut m, "APPEND refused", &ex);
            return Ok(());
        }
        let Some((v, uids)) = a.codes.iter().find_map(|c| match c {
            Code::AppendUid(v, u) => Some((*v, u.clone())),
            _ => None,
        }) else {
            self.violation(&mut m, "APPEND OK without APPENDUID (UIDPLUS)", &ex);
            return Ok(());
        };
        let [uid] = uids.as_slice() else {
            self.violation(
                &mut m,
                "APPENDUID with more than one UID for one message",
                &ex,
            );
            return Ok(());
        };
        let known: BTreeSet<String> = flags.into_iter().collect();
        let digest = Body::of(body.as_bytes());
        for p in m.register(
            self.user,
            b,
            v,
            *uid,
            Some(known),
            Some(digest),
            false,
            s,
            r,
        ) {
            self.violation(&mut m, &format!("APPENDUID: {p}"), &ex);
        }
        if let Some(old) = self.uidvalidity[b].replace(v)
            && old != v
        {
            self.violation(
                &mut m,
                &format!("APPENDUID UIDVALIDITY {v}, earlier {old}"),
                &ex,
            );
        }
        Ok(())
    }

    fn copy(&mut self, view: &View, mv: bool) -> Result<()> {
        let uids = self.pick(view, 3);
        if uids.is_empty() {
            return self.noop();
        }
        let dest = self.rng.random_range(0..MAILBOXES.len());
        let (cmd, verb) = if mv {
            (Cmd::Move, "MOVE")
        } else {
            (Cmd::Copy, "COPY")
        };
        let shared = self.shared.clone();
        let (begun, s, may) = {
            let mut m = shared.model();
            let s = m.tick();
            let may: Vec<bool> = uids
                .iter()
                .map(|&u| m.may_expunge(view.user, view.mailbox, u))
                .collect();
            let begun = mv.then(|| m.move_begin(view.user, view.mailbox, &uids, s));
            (begun, s, may)
        };
        let command = format!("UID {verb} {} {}", join(&uids), MAILBOXES[dest]);
        let result = self.conn()?.exec(&command);
        let mut m = shared.model();
        let r = m.tick();
        // whether another EXPUNGE or MOVE in this mailbox ran meanwhile (it
        // may have taken messages from under this command)
        let raced = m
            .boxm(view.user, view.mailbox)
            .expunged_by_others(s, u32::from(mv));
        let gone: Vec<bool> = uids
            .iter()
            .enumerate()
            .map(|(i, &u)| may[i] || raced || (!mv && m.may_expunge(view.user, view.mailbox, u)))
            .collect();
        if let Some(b) = &begun {
            m.expunge_end(view.user, view.mailbox, b, result.is_ok(), r);
        }
        let ex = result?;
        self.shared.counters.add(cmd);
        // a copy has the flags its source had while the COPY ran: known if
        // no change touched the source since before it was sent (a moved
        // message's are not tracked), \Deleted possible if the source's was
        let src_flags: Vec<Option<BTreeSet<String>>> = uids
            .iter()
            .map(|&u| {
                if mv {
                    None
                } else {
                    m.full_flags(view.user, view.mailbox, u, s)
                }
            })
            .collect();
        let bodies: Vec<Option<Body>> = uids
            .iter()
            .map(|&u| m.body(view.user, view.mailbox, u))
            .collect();
        let copy_may: Vec<bool> = uids
            .iter()
            .map(|&u| mv || m.copy_may_expunge(view.user, view.mailbox, u))
            .collect();
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" {
            if !gone.iter().any(|&x| x) {
                self.violation(&mut m, &format!("UID {verb} refused"), &ex);
            }
            return Ok(());
        }
        let Some((v, src, dst)) = a.codes.iter().find_map(|c| match c {
            Code::CopyUid(v, s, d) => Some((*v, s.clone(), d.clone())),
            _ => None,
        }) else {
            // RFC 4315: COPYUID may be left out only when nothing was copied
            if gone.iter().all(|&x| x) {
                return Ok(());
            }
            self.violation(&mut m, &format!("UID {verb} OK without COPYUID"), &ex);
            return Ok(());
        };
        if src.len() != dst.len() || src.iter().any(|u| !uids.contains(u)) {
            self.violation(&mut m, &format!("COPYUID source {src:?} / destination {dst:?} do not match the UIDs asked {uids:?}"), &ex);
            return Ok(());
        }
        for (su, du) in src.iter().zip(&dst) {
            let i = uids.iter().position(|u| u == su).unwrap_or(0);
            for p in m.register(
                self.user,
                dest,
                v,
                *du,
                src_flags[i].clone(),
                bodies[i],
                copy_may[i],
                s,
                r,
            ) {
                self.violation(&mut m, &format!("COPYUID: {p}"), &ex);
            }
        }
        if mv {
            m.checked("MOVE expunges what it moved", src.len());
            let left: Vec<u32> = src
                .iter()
                .copied()
                .filter(|&u| self.view.as_ref().is_some_and(|v| v.seq_of(u).is_some()))
                .collect();
            if !left.is_empty() {
                self.violation(
                    &mut m,
                    &format!("UID MOVE OK, but UIDs {left:?} were not expunged from the session"),
                    &ex,
                );
            }
        }
        Ok(())
    }

    fn search(&mut self, view: &View) -> Result<()> {
        let (criterion, flag, set) = match self.rng.random_range(0..5) {
            0 => ("ALL".to_owned(), None, true),
            1 => ("FLAGGED".to_owned(), Some("\\Flagged"), true),
            2 => ("UNSEEN".to_owned(), Some("\\Seen"), false),
            3 => {
                let k = KEYWORDS[self.rng.random_range(0..KEYWORDS.len())];
                (format!("KEYWORD {k}"), Some(k), true)
            }
            _ => ("MODSEQ".to_owned(), None, true),
        };
        let s0 = self.shared.model().tick();
        let since = if criterion == "MODSEQ" {
            let floors = self.shared.model().floors(view.user, view.mailbox, s0);
            let v: Vec<u64> = floors.values().copied().collect();
            if v.is_empty() {
                1
            } else {
                v[self.rng.random_range(0..v.len())]
            }
        } else {
            0
        };
        let command = if criterion == "MODSEQ" {
            format!("UID SEARCH MODSEQ {since}")
        } else {
            format!("UID SEARCH {criterion}")
        };
        let (ex, s) = self.timed(Cmd::Search, |c| c.exec(&command))?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let before: BTreeSet<u32> = view.known_uids().into_iter().collect();
        // A server may answer SEARCH from the state the session was last
        // brought up to (Dovecot does, then reports the changes): the
        // answer is held to the state since the previous command began.
        let since_sync = self.synced.min(s);
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" {
            self.violation(&mut m, "UID SEARCH refused", &ex);
            return Ok(());
        }
        let Some((found, _)) = a.search.clone() else {
            self.violation(&mut m, "UID SEARCH without a SEARCH response", &ex);
            return Ok(());
        };
        let found: BTreeSet<u32> = found.into_iter().collect();
        let now: BTreeSet<u32> = self
            .view
            .as_ref()
            .map(|v| v.known_uids())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let max_known = now
            .iter()
            .max()
            .copied()
            .unwrap_or(0)
            .max(before.iter().max().copied().unwrap_or(0));
        let strange: Vec<u32> = found
            .iter()
            .filter(|u| !now.contains(u) && !before.contains(u) && **u <= max_known)
            .copied()
            .collect();
        if !strange.is_empty() {
            self.violation(
                &mut m,
                &format!("SEARCH returned UIDs {strange:?} the session does not have"),
                &ex,
            );
        }
        let mut wrong = Vec::new();
        for &u in before.intersection(&now) {
            if m.may_expunge(view.user, view.mailbox, u) {
                continue;
            }
            let expected = match (criterion.as_str(), flag) {
                ("ALL", _) => Some(true),
                ("MODSEQ", _) => {
                    let floors = m.floors(view.user, view.mailbox, since_sync);
                    floors.get(&u).and_then(|&f| (f > since).then_some(true))
                }
                (_, Some(f)) => m
                    .known_flag(view.user, view.mailbox, u, f, since_sync)
                    .map(|v| v == set),
                _ => None,
            };
            if let Some(e) = expected {
                m.checked("SEARCH agrees with the flags and MODSEQs known", 1);
                if found.contains(&u) != e {
                    wrong.push(u);
                }
            }
        }
        if !wrong.is_empty() {
            self.violation(
                &mut m,
                &format!("SEARCH {criterion} is wrong about UIDs {wrong:?} (flags or MODSEQ known, no change raced)"),
                &ex,
            );
        }
        Ok(())
    }

    /// After NOOP or IDLE: the session has at least every message known to
    /// exist before the command.
    fn check_caught_up(&self, m: &mut Model, ex: &Exchange, s: u64) {
        let Some(v) = self.view.as_ref() else { return };
        let required = m.boxm(v.user, v.mailbox).required(s);
        m.checked("NOOP/IDLE bring every message added before", required.len());
        let have: BTreeSet<u32> = v.known_uids().into_iter().collect();
        let unknown = v.uids.iter().filter(|u| u.is_none()).count();
        let missing: Vec<u32> = required.into_iter().filter(|u| !have.contains(u)).collect();
        // new messages still without a UID may be those missing ones
        if !fit_in_unknown(&v.uids, &missing) {
            self.violation(
                m,
                &format!("after this the session lacks UIDs {missing:?}, appended or copied before it (it has {} messages not yet fetched)", unknown),
                ex,
            );
        }
    }

    fn idle(&mut self) -> Result<()> {
        let wait = Duration::from_millis(self.rng.random_range(50..500));
        self.answered_ok(
            Cmd::Idle,
            "IDLE refused",
            |c| c.idle(wait),
            Self::check_caught_up,
        )
    }

    fn noop(&mut self) -> Result<()> {
        self.answered_ok(
            Cmd::Noop,
            "NOOP refused",
            |c| c.exec("NOOP"),
            Self::check_caught_up,
        )
    }

    /// Sends a command (timed) that must be answered OK (else the
    /// violation `refused`), absorbs its answer, then runs `check` (given
    /// the exchange and when it was sent) under the same model lock.
    fn answered_ok<F>(
        &mut self,
        cmd: Cmd,
        refused: &str,
        send: F,
        check: fn(&Self, &mut Model, &Exchange, u64),
    ) -> Result<()>
    where
        F: FnOnce(&mut Conn) -> Result<Exchange>,
    {
        let (ex, s) = self.timed(cmd, send)?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" {
            self.violation(&mut m, refused, &ex);
        }
        check(self, &mut m, &ex, s);
        Ok(())
    }

    fn logout(&mut self) -> Result<()> {
        let (ex, s) = self.timed(Cmd::Logout, |c| c.exec("LOGOUT"))?;
        let shared = self.shared.clone();
        let mut m = shared.model();
        let r = m.tick();
        let a = self.absorb(&mut m, &ex, s, r);
        if a.status != "OK" || !ex.lines.iter().any(|l| l.starts_with("* BYE")) {
            self.violation(&mut m, "LOGOUT without BYE and OK", &ex);
        }
        drop(m);
        self.detach();
        self.conn = None;
        self.leave_view();
        Ok(())
    }

    /// The session no longer has its read-write mailbox (LOGOUT, another
    /// SELECT, a dropped connection).
    fn detach(&mut self) {
        if let Some(b) = self.attached.take() {
            let mut m = self.shared.model();
            let t = m.tick();
            m.detach(self.user, b, t);
        }
    }
}

/// Whether the `missing` UIDs can be messages of the view still without a
/// UID: each in a slot without one where it falls in UID order (between
/// the known UIDs around it), one slot each. New messages are not always
/// at the end: an unsolicited FETCH with a UID (a QRESYNC session gets
/// them) may tell the UID of one in the middle of those not yet fetched.
fn fit_in_unknown(uids: &[Option<u32>], missing: &[u32]) -> bool {
    let mut need = std::collections::BTreeMap::<usize, usize>::new();
    for &u in missing {
        let start = uids
            .iter()
            .rposition(|x| x.is_some_and(|x| x < u))
            .map_or(0, |p| p + 1);
        *need.entry(start).or_default() += 1;
    }
    need.iter()
        .all(|(&start, &n)| uids[start..].iter().take_while(|x| x.is_none()).count() >= n)
}

/// UIDs as a set with ranges (`1:3,7`).
fn compress(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}:{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn join(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
