//! POP3, POP3S and LMTP (TCP and Unix socket) as `mailroomd serve` runs
//! them: startup lines, delivery by LMTP then retrieval by POP3, the
//! plaintext rule, the connection limit shared by a protocol's listeners,
//! the Unix socket's mode, stale-socket replacement and removal at shutdown,
//! and graceful shutdown of POP3 and LMTP sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{Server, add_user, plain, run, stderr, tls, write_config};

const USER: &str = "pat@example.com";
const PASSWORD: &str = "pop-pw";

/// A config with every listener on port 0 and the LMTP socket in the
/// scratch directory.
fn start(dir: &Path, extra: &str) -> (Server, String) {
    let cfg = write_config(
        dir,
        &format!(
            "[pop3]\nlisten = \"127.0.0.1:0\"\n\n[pop3s]\nlisten = \"127.0.0.1:0\"\n\n\
             [lmtp]\nlisten = \"127.0.0.1:0\"\nsocket = \"lmtp.sock\"\nsocket_mode = 0o660\n\n{extra}"
        ),
    );
    let cfg = cfg.to_str().unwrap().to_owned();
    add_user(dir, &cfg, USER, PASSWORD);
    (Server::start(dir, &["-c", &cfg]), cfg)
}

/// One LMTP transaction over any stream; returns the reply to the data.
fn lmtp_deliver<S: std::io::Read + Write>(stream: S, rcpt: &str, message: &str) -> String {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    let mut read = |r: &mut BufReader<S>| {
        line.clear();
        r.read_line(&mut line).unwrap();
        line.clone()
    };
    assert!(read(&mut r).starts_with("220 "));
    // PIPELINING: the whole transaction in one write
    write!(
        r.get_mut(),
        "LHLO test\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
    )
    .unwrap();
    let mut reply = read(&mut r);
    while reply.starts_with("250-") {
        reply = read(&mut r);
    }
    assert!(reply.starts_with("250 "), "LHLO: {reply:?}");
    assert!(read(&mut r).starts_with("250"), "MAIL");
    let rcpt_reply = read(&mut r);
    assert!(rcpt_reply.starts_with("250"), "RCPT: {rcpt_reply:?}");
    assert!(read(&mut r).starts_with("354"), "DATA");
    write!(r.get_mut(), "{message}.\r\nQUIT\r\n").unwrap();
    let done = read(&mut r);
    assert!(read(&mut r).starts_with("221"), "QUIT");
    done
}

/// `CAPA`: the capability lines.
fn capa<S: std::io::Read + Write>(p: &mut common::Imap<S>) -> Vec<String> {
    let first = p.raw("CAPA");
    assert!(first.starts_with("+OK"), "{first:?}");
    let mut caps = Vec::new();
    loop {
        let l = p.line();
        assert!(!l.is_empty(), "connection closed in CAPA");
        if l.trim_end() == "." {
            return caps;
        }
        caps.push(l.trim_end().to_owned());
    }
}

#[test]
fn deliver_by_lmtp_tcp_and_unix_then_retrieve_by_pop3() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _cfg) = start(dir.path(), "");
    let socket = server.lmtp_unix.clone().expect("lmtp-unix line");
    assert_eq!(socket, dir.path().join("lmtp.sock"));
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert!(
        server
            .seen
            .iter()
            .any(|l| l.starts_with("mailroomd: pop3s listening on 127.0.0.1:")),
        "{:?}",
        server.seen
    );

    let first = "Subject: over tcp\r\n\r\nfirst body\r\n";
    let reply = lmtp_deliver(
        std::net::TcpStream::connect(server.lmtp.unwrap()).unwrap(),
        USER,
        first,
    );
    assert!(reply.starts_with("250 2."), "{reply:?}");
    let second = "Subject: over the socket\r\n\r\n..a stuffed line\r\n";
    let reply = lmtp_deliver(UnixStream::connect(&socket).unwrap(), USER, second);
    assert!(reply.starts_with("250 2."), "{reply:?}");

    // plaintext USER is refused before STLS (allow_plaintext = false), also on loopback
    let mut p = plain(server.pop3.unwrap());
    assert!(p.line().starts_with("+OK"));
    let caps = capa(&mut p);
    assert!(caps.iter().any(|c| c == "STLS"), "{caps:?}");
    assert!(!caps.iter().any(|c| c == "USER"), "{caps:?}");
    assert!(p.raw(&format!("USER {USER}")).starts_with("-ERR [AUTH]"));

    // POP3S: both messages, Return-Path added, dot-stuffing on the wire
    let cert = dir.path().join("data/tls/cert.pem");
    let mut p = tls(server.pop3s.unwrap(), &cert);
    assert!(p.line().starts_with("+OK"));
    assert!(p.raw(&format!("USER {USER}")).starts_with("+OK"));
    assert!(p.raw(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    let stat = p.raw("STAT");
    assert!(stat.starts_with("+OK 2 "), "{stat:?}");
    assert!(p.raw("RETR 2").starts_with("+OK"));
    let mut lines = Vec::new();
    loop {
        let l = p.line();
        if l == ".\r\n" {
            break;
        }
        lines.push(l);
    }
    assert!(
        lines[0].starts_with("Return-Path: <sender@example.org>"),
        "{lines:?}"
    );
    // sent as "..a" (stuffed), stored as ".a", stuffed again by RETR
    assert!(
        lines.iter().any(|l| l == "..a stuffed line\r\n"),
        "{lines:?}"
    );
    assert!(p.raw("QUIT").starts_with("+OK"));

    // SIGTERM: listeners stop, the socket file goes
    let status = server
        .signal_and_wait("TERM", Duration::from_secs(15))
        .expect("exits");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert!(!socket.exists(), "the LMTP socket is removed at shutdown");
}

#[test]
fn connection_limit_is_shared_by_pop3_and_pop3s() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _cfg) = start(dir.path(), "[limits]\nmax_connections = 1\n");
    let mut first = plain(server.pop3.unwrap());
    assert!(first.line().starts_with("+OK"));
    assert!(!capa(&mut first).is_empty());
    // the POP3S listener counts against the same limit
    let cert = dir.path().join("data/tls/cert.pem");
    // (refused at once, instead of a greeting, inside TLS)
    let mut second = tls(server.pop3s.unwrap(), &cert);
    let refused = second.line();
    assert!(refused.starts_with("-ERR [SYS/TEMP]"), "{refused:?}");
    assert_eq!(second.line(), "", "closed after the refusal");
    // LMTP has its own limit: the socket and TCP share it
    let sock = UnixStream::connect(server.lmtp_unix.as_ref().unwrap()).unwrap();
    let mut l1 = BufReader::new(sock);
    let mut greeting = String::new();
    l1.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220 "));
    writeln!(l1.get_mut(), "NOOP\r").unwrap();
    let mut reply = String::new();
    l1.read_line(&mut reply).unwrap();
    assert!(reply.starts_with("250"), "{reply:?}");
    let mut l2 = plain(server.lmtp.unwrap());
    let refused = l2.line();
    assert!(refused.starts_with("421 4.3.2"), "{refused:?}");

    // a slot is free again once its connection ends
    assert!(first.raw("QUIT").starts_with("+OK"));
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    let mut third = plain(server.pop3.unwrap());
    assert!(third.line().starts_with("+OK"));
    assert!(!capa(&mut third).is_empty());
}

#[test]
fn stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    // a socket file nobody listens on (a killed server's)
    let stale = std::os::unix::net::UnixListener::bind(dir.path().join("lmtp.sock")).unwrap();
    drop(stale);
    let (server, cfg) = start(dir.path(), "");
    assert!(server.lmtp_unix.is_some());

    // a second server (other data directory) on the same socket path: refused
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        "data_dir = \"data2\"\n[lmtp]\nsocket = \"lmtp.sock\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["-c", other.to_str().unwrap(), "serve"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("[lmtp] cannot listen on the socket") && err.contains("another process"),
        "{err}"
    );
    // ...and the live socket was left alone
    assert!(UnixStream::connect(dir.path().join("lmtp.sock")).is_ok());

    // a regular file in the way is never replaced
    let blocker = dir.path().join("not-a-socket");
    std::fs::write(&blocker, "keep me").unwrap();
    std::fs::write(
        &other,
        "data_dir = \"data3\"\n[lmtp]\nsocket = \"not-a-socket\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["-c", other.to_str().unwrap(), "serve"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a socket"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "keep me");
    drop((server, cfg));
}

#[test]
fn sigterm_ends_pop3_and_lmtp_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _cfg) = start(dir.path(), "[shutdown]\ngrace_secs = 3\n");
    let mut p = plain(server.pop3.unwrap());
    assert!(p.line().starts_with("+OK"));
    let mut l = plain(server.lmtp.unwrap());
    assert!(l.line().starts_with("220 "));
    let started = std::time::Instant::now();
    let status = server
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // LMTP says 421 to an idle session; POP3 closes it
    let bye = l.line();
    assert!(bye.is_empty() || bye.starts_with("421"), "{bye:?}");
    let rest = p.line();
    assert!(rest.is_empty() || rest.starts_with("-ERR"), "{rest:?}");
}

/// `[limits] commands_per_second` bounds every protocol's sessions: a flood
/// of pipelined commands is answered in full, but no faster than the limit
/// (only the lower bound is checked: it cannot be met by luck).
#[test]
fn command_rate_limit_applies_to_imap_pop3_and_lmtp() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _cfg) = start(dir.path(), "[limits]\ncommands_per_second = 4\n");
    // 10 pipelined commands at 4/s: windows at 0 s, 1 s and 2 s; returns
    // how long the 10 replies took
    let flood = |addr: std::net::SocketAddr, cmd: &dyn Fn(usize) -> String, reply: &str| {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let start = std::time::Instant::now();
        let all: String = (0..10).map(cmd).collect();
        r.get_mut().write_all(all.as_bytes()).unwrap();
        let mut replies = 0;
        while replies < 10 {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "closed early");
            if line.starts_with(reply) {
                replies += 1;
            }
        }
        start.elapsed()
    };
    // (NOOP needs a login in POP3; CAPA works in every state and ends with ".")
    let took = flood(server.pop3.unwrap(), &|_| "CAPA\r\n".into(), ".\r\n");
    assert!(
        took >= Duration::from_secs(2),
        "POP3: 10 commands in {took:?}"
    );
    let took = flood(server.lmtp.unwrap(), &|_| "NOOP\r\n".into(), "250 ");
    assert!(
        took >= Duration::from_secs(2),
        "LMTP: 10 commands in {took:?}"
    );
    let took = flood(server.imap.unwrap(), &|i| format!("t{i} NOOP\r\n"), "t");
    assert!(
        took >= Duration::from_secs(2),
        "IMAP: 10 commands in {took:?}"
    );
}
