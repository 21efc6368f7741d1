//! Several `mailroomd` frontends on one PostgreSQL database
//! (tests/clients/frontends.py): IDLE on one sees an LMTP delivery through
//! another within 1 s, concurrent APPENDs through all three get distinct
//! increasing UIDs, CONDSTORE/QRESYNC answers agree on every frontend; and
//! the database stopped under load: IMAP `NO [UNAVAILABLE]`, LMTP
//! `451 4.3.0`, nothing acknowledged lost, recovery without a restart;
//! a frontend killed with SIGKILL loses nothing it acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is a failure with its message

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mailroom_e2e::Server;
use mailroom_testkit::postgres::PgCluster;

const USER: &str = "alice@example.com";
const PASSWORD: &str = "secret";

fn frontends(url: &str, n: usize) -> Vec<Server> {
    (0..n)
        .map(|_| {
            let s = Server::start_on_postgres(url, "");
            // each frontend has its own users file (until [auth] backend = "postgres")
            s.add_user(USER, PASSWORD);
            s
        })
        .collect()
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
    let doomed = Server::start_on_postgres(&url, "");
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
    let survivor = Server::start_on_postgres(&url, "");
    survivor.add_user(USER, PASSWORD);
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
