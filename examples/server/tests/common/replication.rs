//! The replication tests' pieces (`tests/replication.rs`,
//! `tests/replication_postgres.rs`): nodes with their configs, LMTP load,
//! IMAP churn, and the imaplib dump that compares two servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super as common;
use super::{Server, plain, run, stderr, stdout};

pub const PASSWORD: &str = "replica-pw";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@example.com")).collect()
}

/// A free loopback port for the replica, which keeps it across restarts
/// (so the primary's `peer` stays right). Taken below the kernel's
/// ephemeral range (`ip_local_port_range`, from 32768 by default), so no
/// outgoing connection of another test takes it while the replica restarts.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(101)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One node's directory: config, secret, data.
pub struct Node {
    pub dir: PathBuf,
    pub cfg: String,
}

impl Node {
    pub fn new(root: &Path, name: &str, replication: &str) -> Node {
        Node::on(root, name, "", "", replication)
    }

    /// A node with `store` (a `[store]` table, or nothing for the CRC
    /// store) and `auth` (more lines of `[auth]`).
    pub fn on(root: &Path, name: &str, store: &str, auth: &str, replication: &str) -> Node {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let base = format!(
            "data_dir = \"data\"\n\n[imap]\nlisten = \"127.0.0.1:0\"\n\n\
             [pop3]\nlisten = \"127.0.0.1:0\"\n\n[lmtp]\nlisten = \"127.0.0.1:0\"\n\n\
             [auth]\nallow_plaintext = true\n{auth}\n\n[limits]\ncommands_per_second = 0\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n{store}\n\n"
        );
        std::fs::write(
            dir.join("mailroomd.toml"),
            format!("{base}[replication]\nsecret_file = \"secret\"\n{replication}\n"),
        )
        .unwrap();
        // The same data without [replication]: how the tests read a
        // stopped replica's contents over IMAP.
        std::fs::write(dir.join("inspect.toml"), base).unwrap();
        Node {
            cfg: dir.join("mailroomd.toml").to_str().unwrap().to_owned(),
            dir,
        }
    }

    pub fn start(&self) -> Server {
        Server::start(&self.dir, &["-c", &self.cfg])
    }

    /// `mailroomd replication ARGS`: the output lines (without the
    /// `mailroomd:` path line) and whether it succeeded.
    pub fn replication(&self, args: &[&str]) -> (Vec<String>, bool) {
        let mut all = vec!["-c", self.cfg.as_str(), "replication"];
        all.extend_from_slice(args);
        let out = run(&self.dir, &all, "");
        let lines = stdout(&out)
            .lines()
            .filter(|l| !l.starts_with("mailroomd: "))
            .map(str::to_owned)
            .collect();
        if !out.status.success() {
            eprintln!("replication {args:?}: {}", stderr(&out));
        }
        (lines, out.status.success())
    }

    pub fn status(&self) -> HashMap<String, String> {
        let (lines, ok) = self.replication(&["status"]);
        assert!(ok, "status failed: {lines:?}");
        lines
            .iter()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Waits until `status` satisfies `want`; returns it and how long it took.
    pub fn wait_status(
        &self,
        what: &str,
        limit: Duration,
        want: impl Fn(&HashMap<String, String>) -> bool,
    ) -> (HashMap<String, String>, Duration) {
        let start = Instant::now();
        loop {
            let s = self.status();
            if want(&s) {
                return (s, start.elapsed());
            }
            assert!(start.elapsed() < limit, "{what}: still {s:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The messages of `users` as imaplib sees them, read from a plain
    /// mailroomd on this node's data (which must not be running).
    pub fn inspect(&self, users: &[String]) -> Vec<String> {
        let cfg = self.dir.join("inspect.toml");
        let server = Server::start(&self.dir, &["-c", cfg.to_str().unwrap()]);
        let dump = dump(server.imap.unwrap(), users);
        drop(server);
        dump
    }
}

/// Adds every user to the primary's users file (`mailroomd user add`);
/// replication carries the file to the replica.
pub fn add_users(primary: &Node, names: &[String]) {
    for name in names {
        common::add_user(&primary.dir, &primary.cfg, name, PASSWORD);
    }
}

/// Waits until the replica's users file is the primary's (replication
/// carried it: the test only reads both).
pub fn wait_users_replicated(primary: &Node, replica: &Node) {
    let ours = std::fs::read(primary.dir.join("data/users.toml")).unwrap();
    let start = Instant::now();
    while std::fs::read(replica.dir.join("data/users.toml"))
        .ok()
        .as_ref()
        != Some(&ours)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the users file did not reach the replica"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pair's nodes: a replica on a fixed port and a primary pointing at it.
pub fn pair(root: &Path, primary_extra: &str) -> (Node, Node) {
    let port = free_port();
    let replica = Node::new(
        root,
        "replica",
        &format!("role = \"replica\"\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let primary = Node::new(
        root,
        "primary",
        &format!(
            "role = \"primary\"\npeer = \"127.0.0.1:{port}\"\nverify_interval_secs = 600\n{primary_extra}"
        ),
    );
    (primary, replica)
}

/// Runs `replication_dump.py` against an IMAP listener.
pub fn dump(addr: SocketAddr, users: &[String]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/replication_dump.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(PASSWORD)
        .args(users)
        .output()
        .expect("python3 (with imaplib) is needed");
    assert!(
        out.status.success(),
        "replication_dump.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn message_ids(dump: &[String]) -> BTreeSet<(String, String)> {
    dump.iter()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_owned(), f[6].to_owned())
        })
        .collect()
}

/// A line-oriented LMTP client.
pub struct Lmtp {
    reader: BufReader<TcpStream>,
}

impl Lmtp {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Lmtp> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut l = Lmtp {
            reader: BufReader::new(s),
        };
        let greeting = l.line()?;
        if !greeting.starts_with("220 ") {
            return Err(std::io::Error::other(greeting));
        }
        l.reader.get_mut().write_all(b"LHLO test\r\n")?;
        loop {
            let line = l.line()?;
            if line.starts_with("250 ") {
                return Ok(l);
            }
            if !line.starts_with("250-") {
                return Err(std::io::Error::other(line));
            }
        }
    }

    pub fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }

    /// One transaction; the reply to RCPT if it failed, else to the data.
    pub fn deliver(&mut self, rcpt: &str, message: &str) -> std::io::Result<String> {
        write!(
            self.reader.get_mut(),
            "MAIL FROM:<load@example.org>\r\nRCPT TO:<{rcpt}>\r\n"
        )?;
        let mail = self.line()?;
        let rcpt_reply = self.line()?;
        if !mail.starts_with("250") || !rcpt_reply.starts_with("250") {
            self.reader.get_mut().write_all(b"RSET\r\n")?;
            self.line()?;
            return Ok(rcpt_reply);
        }
        self.reader.get_mut().write_all(b"DATA\r\n")?;
        let go = self.line()?;
        if !go.starts_with("354") {
            return Ok(go);
        }
        write!(self.reader.get_mut(), "{message}.\r\n")?;
        self.line()
    }
}

pub fn load_message(id: &str, size: usize) -> String {
    let mut m = format!(
        "From: load@example.org\r\nTo: someone@example.com\r\nSubject: load {id}\r\nMessage-ID: <{id}>\r\n\r\n"
    );
    let mut n = 0;
    while m.len() < size {
        m.push_str(&format!("line {n} of {id}: the quick brown fox\r\n"));
        n += 1;
    }
    m
}

/// 8 LMTP connections delivering to `users` until `stop` (or until the
/// server goes away); returns every acknowledged (user, Message-ID).
pub fn lmtp_load(
    addr: SocketAddr,
    users: &[String],
    tag: &str,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(String, String)>>> {
    (0..8)
        .map(|t| {
            let users = users.to_vec();
            let stop = Arc::clone(&stop);
            let tag = tag.to_owned();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut lmtp) = Lmtp::connect(addr) else {
                    return acked;
                };
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let user = &users[(t + n * 3) % users.len()];
                    let id = format!("{tag}-{t}-{n}@load");
                    let size = 600 + (n * 397 + t * 131) % 3000;
                    match lmtp.deliver(user, &load_message(&id, size)) {
                        Ok(reply) if reply.starts_with("250") => acked.push((user.clone(), id)),
                        Ok(reply) => panic!("delivery refused: {reply}"),
                        Err(_) => break, // the server was killed
                    }
                    n += 1;
                }
                acked
            })
        })
        .collect()
}

pub fn join_acked(
    handles: Vec<std::thread::JoinHandle<Vec<(String, String)>>>,
) -> Vec<(String, String)> {
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

pub fn login(addr: SocketAddr, user: &str) -> common::Imap<TcpStream> {
    let mut c = plain(addr);
    c.line();
    let (_, ok) = c.command(&format!("LOGIN {user} {PASSWORD}"));
    assert!(ok.starts_with("OK"), "LOGIN {user}: {ok}");
    c
}

pub fn uids(untagged: &[String]) -> Vec<u32> {
    untagged
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|rest| {
            rest.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// IMAP work on the primary until `stop`: flag changes, expunges,
/// appends and renames (each user's folder flips between two names).
pub fn imap_churn(addr: SocketAddr, users: Vec<String>, stop: Arc<AtomicBool>) -> usize {
    let mut folder: BTreeMap<String, u32> = BTreeMap::new();
    for user in &users {
        let mut c = login(addr, user);
        let (_, ok) = c.command("CREATE Work0");
        assert!(ok.starts_with("OK"), "{ok}");
        c.command("LOGOUT");
        folder.insert(user.clone(), 0);
    }
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let user = &users[round % users.len()];
        let mut c = login(addr, user);
        let (_, ok) = c.command("SELECT INBOX");
        assert!(ok.starts_with("OK"), "{ok}");
        let (untagged, _) = c.command("UID SEARCH ALL");
        let all = uids(&untagged);
        if all.len() > 3 {
            let pick = |k: usize| all[(round * 7 + k * 13) % all.len()];
            for (k, change) in [
                "+FLAGS (\\Seen)",
                "+FLAGS ($Label1 \\Flagged)",
                "-FLAGS (\\Seen)",
            ]
            .iter()
            .enumerate()
            {
                let (_, ok) = c.command(&format!("UID STORE {} {change}", pick(k)));
                assert!(ok.starts_with("OK"), "{ok}");
            }
            if round.is_multiple_of(3) {
                let (_, ok) = c.command(&format!("UID STORE {} +FLAGS (\\Deleted)", pick(5)));
                assert!(ok.starts_with("OK"), "{ok}");
                let (_, ok) = c.command("EXPUNGE");
                assert!(ok.starts_with("OK"), "{ok}");
            }
        }
        let n = folder.get_mut(user).unwrap();
        let ok = c.append(
            &format!("Work{n}"),
            load_message(&format!("append-{round}@churn"), 700).as_bytes(),
        );
        assert!(ok.starts_with("OK"), "APPEND: {ok}");
        if round.is_multiple_of(4) {
            let (_, ok) = c.command(&format!("RENAME Work{n} Work{}", *n + 1));
            assert!(ok.starts_with("OK"), "RENAME: {ok}");
            *n += 1;
        }
        c.command("LOGOUT");
        round += 1;
    }
    round
}

pub fn kill9(server: &mut Server) {
    let status = server
        .signal_and_wait("KILL", Duration::from_secs(10))
        .expect("killed");
    assert!(!status.success());
}

pub fn stop(server: &mut Server) {
    server
        .signal_and_wait("TERM", Duration::from_secs(30))
        .expect("stopped on SIGTERM");
}

pub fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
