//! `[metrics]` as `mailroomd serve` runs it: one registry shared by the
//! IMAP, POP3 and LMTP listeners, served at `GET /metrics` over a plain TCP
//! socket; 404 and 405 for other paths and methods; no endpoint without the
//! table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, add_user, plain, write_config};

const USER: &str = "metrics@example.com";
const PASSWORD: &str = "metrics-pw";

/// One HTTP request over a fresh connection; the whole answer.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// The body of `GET /metrics`, checking the status line and headers.
fn scrape(addr: SocketAddr) -> String {
    let answer = http(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}", body.len())),
        "{head}"
    );
    body.to_owned()
}

/// Scrapes until every line of `want` is in the answer (sessions are
/// counted closed a moment after the client hangs up); the last scrape.
fn scrape_until(addr: SocketAddr, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(addr);
        let missing: Vec<&&str> = want
            .iter()
            .filter(|w| !body.lines().any(|l| l == **w))
            .collect();
        if missing.is_empty() {
            return body;
        }
        assert!(Instant::now() < deadline, "missing {missing:?} in\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metrics_addr(server: &Server) -> SocketAddr {
    server
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("mailroomd: metrics endpoint http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .expect("the startup line names the metrics endpoint")
        .parse()
        .unwrap()
}

fn start(dir: &Path, extra: &str) -> Server {
    let cfg = write_config(
        dir,
        &format!(
            "[pop3]\nlisten = \"127.0.0.1:0\"\n\n[lmtp]\nlisten = \"127.0.0.1:0\"\n\n\
             [auth]\nallow_plaintext = true\n\n{extra}"
        ),
    );
    let cfg = cfg.to_str().unwrap().to_owned();
    add_user(dir, &cfg, USER, PASSWORD);
    Server::start(dir, &["-c", &cfg])
}

#[test]
fn every_protocol_records_into_one_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let addr = metrics_addr(&server);
    assert!(addr.ip().is_loopback());

    // IMAP: a login, a command, a logout; then a failed login.
    let mut imap = plain(server.imap.unwrap());
    assert!(imap.line().starts_with("* OK"));
    let (_, status) = imap.command(&format!("LOGIN {USER} {PASSWORD}"));
    assert!(status.starts_with("OK"), "{status}");
    let (_, status) = imap.command("NOOP");
    assert!(status.starts_with("OK"), "{status}");
    let (_, status) = imap.command("LOGOUT");
    assert!(status.starts_with("OK"), "{status}");
    let mut imap = plain(server.imap.unwrap());
    imap.line();
    let (_, status) = imap.command(&format!("LOGIN {USER} wrong"));
    assert!(status.starts_with("NO"), "{status}");
    drop(imap);

    // LMTP: one message delivered.
    let mut lmtp = plain(server.lmtp.unwrap());
    assert!(lmtp.line().starts_with("220 "));
    let mut reply = lmtp.raw("LHLO test");
    while reply.starts_with("250-") {
        reply = lmtp.line();
    }
    assert!(lmtp.raw("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(lmtp.raw(&format!("RCPT TO:<{USER}>")).starts_with("250"));
    assert!(lmtp.raw("DATA").starts_with("354"));
    assert!(lmtp.raw("Subject: m\r\n\r\nhi\r\n.").starts_with("250"));
    assert!(lmtp.raw("QUIT").starts_with("221"));

    // POP3: the message is there.
    let mut pop3 = plain(server.pop3.unwrap());
    assert!(pop3.line().starts_with("+OK"));
    assert!(pop3.raw(&format!("USER {USER}")).starts_with("+OK"));
    assert!(pop3.raw(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    let stat = pop3.raw("STAT");
    assert!(stat.starts_with("+OK 1 "), "{stat}");
    assert!(pop3.raw("QUIT").starts_with("+OK"));

    let body = scrape_until(
        addr,
        &[
            r#"mailroom_commands_total{protocol="imap",command="LOGIN",status="OK"} 1"#,
            r#"mailroom_commands_total{protocol="imap",command="LOGIN",status="NO"} 1"#,
            r#"mailroom_commands_total{protocol="imap",command="NOOP",status="OK"} 1"#,
            r#"mailroom_commands_total{protocol="imap",command="LOGOUT",status="OK"} 1"#,
            r#"mailroom_commands_total{protocol="pop3",command="STAT",status="+OK"} 1"#,
            r#"mailroom_commands_total{protocol="lmtp",command="MESSAGE",status="2xx"} 1"#,
            r#"mailroom_command_duration_seconds_count{protocol="imap",command="NOOP"} 1"#,
            r#"mailroom_connections_opened_total{protocol="imap"} 2"#,
            r#"mailroom_connections_opened_total{protocol="pop3"} 1"#,
            r#"mailroom_connections_opened_total{protocol="lmtp"} 1"#,
            r#"mailroom_connections_open{protocol="imap"} 0"#,
            r#"mailroom_connections_open{protocol="pop3"} 0"#,
            r#"mailroom_connections_open{protocol="lmtp"} 0"#,
            r#"mailroom_login_failures_total{protocol="imap"} 1"#,
            r#"mailroom_login_failures_total{protocol="pop3"} 0"#,
            r#"mailroom_lmtp_deliveries_total{result="accepted"} 1"#,
        ],
    );
    for leaked in [USER, "metrics@", PASSWORD, "wrong", "INBOX"] {
        assert!(!body.contains(leaked), "{leaked} in\n{body}");
    }

    let not_found = http(addr, "GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(
        not_found.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{not_found}"
    );
    let not_allowed = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(
        not_allowed.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{not_allowed}"
    );
    assert!(
        not_allowed.contains("\r\nAllow: GET, HEAD\r\n"),
        "{not_allowed}"
    );
    let garbage = http(addr, "HELLO\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
}

#[test]
fn no_endpoint_without_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    assert!(
        !server.seen.iter().any(|l| l.contains("metrics")),
        "{:?}",
        server.seen
    );
}
