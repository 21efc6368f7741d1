//! Several `mailroomd` frontends on one PostgreSQL database
//! (tests/clients/frontends.py): IDLE on one sees an LMTP delivery through
//! another within 1 s, concurrent APPENDs through all three get distinct
//! increasing UIDs, CONDSTORE/QRESYNC answers agree on every frontend; and
//! the database stopped under load: IMAP `NO [UNAVAILABLE]`, LMTP
//! `451 4.3.0`, nothing acknowledged lost, recovery without a restart;
//! a frontend killed with SIGKILL loses nothing it acknowledged; users in
//! PostgreSQL (`[auth] backend = "postgres"`, tests/clients/pg_users.py):
//! added, changed and deleted through one frontend's admin commands, they
//! count on every frontend at once, and log in by SCRAM-SHA-256 on every
//! frontend (tests/clients/pg_scram.py, scramp).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is a failure with its message

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mailroom_e2e::Server;
use mailroom_testkit::postgres::PgCluster;

const USER: &str = "alice@example.com";
const PASSWORD: &str = "secret";

/// `[auth] backend = "postgres"`: the users are in the store's database,
/// so the frontends keep no state of their own. (A users file beside a
/// PostgreSQL store is covered by the per-store client suites,
/// `imap_clients` and `pop3_lmtp_clients`.)
const PG_AUTH: &str = "backend = \"postgres\"\n";

/// `n` frontends on the database at `url`, with the user added once,
/// through the first.
fn frontends(url: &str, n: usize) -> Vec<Server> {
    let servers: Vec<Server> = (0..n)
        .map(|_| Server::start_on_postgres(url, PG_AUTH))
        .collect();
    servers[0].add_user(USER, PASSWORD);
    servers
}

#[test]
fn three_frontends_on_one_database() {
    let url = PgCluster::shared().create_database("frontends");
    let servers = frontends(&url, 3);
    let imaps: Vec<String> = servers
        .iter()
        .map(|s| s.imaps_addr().port().to_string())
        .collect();
    let lmtp: Vec<String> = servers
        .iter()
        .map(|s| s.lmtp_addr().port().to_string())
        .collect();
    let certs: Vec<String> = servers
        .iter()
        .map(|s| s.cert_path().display().to_string())
        .collect();
    let out = servers[0].run_python(
        "frontends.py",
        &[],
        &[
            ("MR_FRONTEND_IMAPS", &imaps.join(",")),
            ("MR_FRONTEND_LMTP", &lmtp.join(",")),
            ("MR_FRONTEND_CERTS", &certs.join(",")),
        ],
    );
    assert!(out.contains("ALL OK"), "{out}");
    println!("{out}");
}

fn stdout(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Users in the database: a user added through frontend 1's admin command
/// logs in on all three at once (imaplib LOGIN and AUTHENTICATE PLAIN,
/// poplib), with no users file anywhere; a password changed through
/// frontend 2 and a user deleted through frontend 3 count on every frontend
/// at once; a wrong password is refused on every frontend and throttled
/// there; the quota commands work through a running frontend and, with
/// none running, on the database directly.
#[test]
fn users_in_postgres_count_on_every_frontend_at_once() {
    const NEW_PASSWORD: &str = "a new secret";
    let url = PgCluster::shared().create_database("pgusers");
    let mut servers: Vec<Server> = (0..3)
        .map(|_| Server::start_on_postgres(&url, PG_AUTH))
        .collect();
    let ports = |f: fn(&Server) -> u16| -> String {
        servers
            .iter()
            .map(|s| f(s).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let imaps = ports(|s| s.imaps_addr().port());
    let pop3s = ports(|s| s.pop3s_addr().port());
    let certs: Vec<String> = servers
        .iter()
        .map(|s| s.cert_path().display().to_string())
        .collect();
    let certs = certs.join(",");
    let env = [
        ("MR_FRONTEND_IMAPS", imaps.as_str()),
        ("MR_FRONTEND_POP3S", pop3s.as_str()),
        ("MR_FRONTEND_CERTS", certs.as_str()),
    ];
    let logins = |servers: &[Server], password: &str, expect: &str| {
        let out = servers[0].run_python("pg_users.py", &[USER, password, expect], &env);
        assert!(out.contains("ALL OK"), "{out}");
        println!("{out}");
    };

    servers[0].add_user(USER, PASSWORD);
    logins(&servers, PASSWORD, "ok");
    for s in &servers {
        assert!(
            !s.dir().join("data/users.toml").exists(),
            "no users file with [auth] backend = \"postgres\""
        );
    }
    let list = servers[2].admin(&["user", "list"], "");
    assert!(list.status.success(), "{}", stdout(&list));
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), USER);

    let passwd = servers[1].admin(
        &["user", "passwd", USER, "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(passwd.status.success(), "{}", stdout(&passwd));
    logins(&servers, NEW_PASSWORD, "ok");

    // quota through a running frontend's admin socket, read on another
    let set = servers[0].admin(&["quota", "set", USER, "--storage", "2048"], "");
    assert!(set.status.success(), "{}", stdout(&set));
    assert!(
        stdout(&set).contains("through the running server"),
        "{}",
        stdout(&set)
    );
    let show = servers[2].admin(&["quota", "show", USER], "");
    assert!(
        stdout(&show).contains("storage_limit_kib 2048"),
        "{}",
        stdout(&show)
    );
    let ghost = servers[2].admin(&["quota", "show", "ghost@example.com"], "");
    assert!(!ghost.status.success(), "{}", stdout(&ghost));
    assert!(
        stdout(&ghost).contains("no such user"),
        "{}",
        stdout(&ghost)
    );

    // the old password: refused on every frontend, each failure throttled
    logins(&servers, PASSWORD, "no");
    for (i, s) in servers.iter().enumerate() {
        assert!(
            s.log().contains("failed login throttled"),
            "frontend {}: no throttled failure in its log",
            i + 1
        );
    }

    let del = servers[2].admin(&["user", "del", USER], "");
    assert!(del.status.success(), "{}", stdout(&del));
    logins(&servers, NEW_PASSWORD, "no");

    // with no frontend running, the admin commands work on the database
    let add = servers[1].admin(
        &["user", "add", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(add.status.success(), "{}", stdout(&add));
    for s in &mut servers {
        assert!(s.stop(), "mailroomd exits cleanly");
    }
    let show = servers[1].admin(&["quota", "show", USER], "");
    let text = stdout(&show);
    assert!(show.status.success(), "{text}");
    assert!(
        text.contains("working on the postgres database directly"),
        "{text}"
    );
    assert!(text.contains("storage_limit_kib 2048"), "{text}");
    let list = servers[0].admin(&["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), USER);
}

/// A line-based LMTP client over plain TCP.
struct Line {
    r: BufReader<TcpStream>,
}

impl Line {
    fn connect(addr: std::net::SocketAddr) -> Line {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Line {
            r: BufReader::new(s),
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }

    fn send(&mut self, text: &str) {
        self.r.get_mut().write_all(text.as_bytes()).unwrap();
    }

    /// One LMTP transaction; returns the reply to the end of data.
    fn deliver(&mut self, n: usize) -> String {
        self.send(&format!(
            "MAIL FROM:<a@example.net>\r\nRCPT TO:<{USER}>\r\nDATA\r\n"
        ));
        let replies = [self.line(), self.line(), self.line()];
        if !replies[2].starts_with("354") {
            // the first refusal says why (a refused RCPT makes DATA fail too)
            let first = replies
                .iter()
                .find(|l| !l.starts_with('2') && !l.starts_with('3'));
            return first.unwrap_or(&replies[2]).clone();
        }
        self.send(&format!("Subject: load {n}\r\n\r\nmessage {n}\r\n.\r\n"));
        self.line()
    }
}

/// Waits for a file the client script writes.
fn wait_file(path: &std::path::Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn the_database_stopped_under_load() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("down");
    let servers = frontends(&url, 1);
    let server = &servers[0];
    let dir = server.dir().to_path_buf();
    // an LMTP session kept open across the outage
    let mut lmtp = Line::connect(server.lmtp_addr());
    lmtp.line();
    lmtp.send("LHLO test\r\n");
    while lmtp.line().starts_with("250-") {}
    let mut acknowledged = 0;
    for n in 0..20 {
        let reply = lmtp.deliver(n);
        assert!(
            reply.starts_with("250"),
            "delivery {n} before the stop: {reply}"
        );
        acknowledged += 1;
    }
    std::thread::scope(|scope| {
        let imap = scope.spawn(|| server.run_python("db_down.py", &[], &[]));
        wait_file(&dir.join("ready"));
        cluster.stop();
        let reply = lmtp.deliver(100);
        assert!(
            reply.starts_with("451 4.3.0"),
            "a delivery while the database is down: {reply}"
        );
        lmtp.send("RSET\r\n");
        lmtp.line();
        write_file(&dir.join("down"), "1");
        wait_file(&dir.join("checked"));
        cluster.restart();
        // the same LMTP session delivers again once the pool has reconnected
        let start = Instant::now();
        loop {
            let reply = lmtp.deliver(200);
            if reply.starts_with("250") {
                acknowledged += 1;
                break;
            }
            assert!(
                reply.starts_with("451") && start.elapsed() < Duration::from_secs(60),
                "after the restart: {reply}"
            );
            lmtp.send("RSET\r\n");
            lmtp.line();
            std::thread::sleep(Duration::from_millis(200));
        }
        write_file(&dir.join("up"), &acknowledged.to_string());
        let out = imap.join().unwrap();
        assert!(out.contains("ALL OK"), "{out}");
    });
}

#[test]
fn a_frontend_killed_mid_load_loses_nothing_acknowledged() {
    let url = PgCluster::shared().create_database("kill");
    let doomed = Server::start_on_postgres(&url, PG_AUTH);
    doomed.add_user(USER, PASSWORD);
    let mut lmtp = Line::connect(doomed.lmtp_addr());
    lmtp.line();
    lmtp.send("LHLO test\r\n");
    while lmtp.line().starts_with("250-") {}
    let mut acknowledged = 0;
    for n in 0..40 {
        if lmtp.deliver(n).starts_with("250") {
            acknowledged += 1;
        }
    }
    // one more delivery sent and the frontend killed before its answer
    lmtp.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
    drop(doomed); // SIGKILL
    // the user is in the database: nothing to add on the survivor
    let survivor = Server::start_on_postgres(&url, PG_AUTH);
    let out = survivor.admin(&["quota", "show", USER], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let used: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("messages_used "))
        .unwrap_or_else(|| panic!("no messages_used in {text}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        acknowledged, 40,
        "every delivery before the kill was acknowledged"
    );
    assert_eq!(
        used, acknowledged,
        "the other frontend sees exactly what the killed one acknowledged: {text}"
    );
}

/// SCRAM with users in PostgreSQL (issue 11): a user added with `mailroomd
/// user add` through frontend 1 on `[auth] backend = "postgres"` logs in by
/// SCRAM-SHA-256 (scramp, over imaplib and poplib, the server's signature
/// checked) on both frontends, with a non-ASCII password typed in another
/// Unicode form than it was set in (SASLprep); a password changed through
/// frontend 2 gives both frontends the new verifier at once, and the old
/// password's proof is refused on both.
#[test]
fn scram_with_users_in_postgres_on_two_frontends() {
    const SCRAM_USER: &str = "sven@example.com";
    let url = PgCluster::shared().create_database("pgscram");
    let servers: Vec<Server> = (0..2)
        .map(|_| Server::start_on_postgres(&url, "backend = \"postgres\"\n"))
        .collect();
    let join = |f: fn(&Server) -> String| -> String {
        servers.iter().map(f).collect::<Vec<_>>().join(",")
    };
    let imaps = join(|s| s.imaps_addr().port().to_string());
    let pop3s = join(|s| s.pop3s_addr().port().to_string());
    let certs = join(|s| s.cert_path().display().to_string());
    let env = [
        ("MR_FRONTEND_IMAPS", imaps.as_str()),
        ("MR_FRONTEND_POP3S", pop3s.as_str()),
        ("MR_FRONTEND_CERTS", certs.as_str()),
    ];
    let logins = |password: &str, expect: &str| {
        let out = servers[0].run_python("pg_scram.py", &[SCRAM_USER, password, expect], &env);
        assert!(out.contains("ALL OK"), "{out}");
        println!("{out}");
    };

    // Set decomposed, typed composed.
    servers[0].add_user(SCRAM_USER, "gru\u{308}n und blau");
    logins("gr\u{fc}n und blau", "ok");

    let passwd = servers[1].admin(
        &["user", "passwd", SCRAM_USER, "--password-stdin"],
        "rot\u{a0}und gelb\n",
    );
    assert!(passwd.status.success(), "{}", stdout(&passwd));
    logins("rot und gelb", "ok");
    logins("gr\u{fc}n und blau", "no");
}
