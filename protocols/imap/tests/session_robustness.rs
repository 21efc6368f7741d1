//! Bad input, limits, timeouts and shutdown: every refusal is a BAD or NO
//! with a reason and the connection goes on, except where it must not.

mod common;

use std::time::Duration;

use common::*;
use mailroom_imap::{ImapConfig, TlsMode};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn one_mib_line_without_crlf_gets_bad_and_the_connection_goes_on() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut line = b"x1 NOOP ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    // Send in pieces, as a slow client would.
    for chunk in line.chunks(64 * 1024) {
        c.send_raw(chunk).await;
    }
    let r = c.read_response().await.unwrap();
    assert!(
        r.contains("BAD") && r.to_lowercase().contains("too long"),
        "{r}"
    );
    c.send_raw(b"\r\n").await;
    c.ok("NOOP").await;
    c.ok("SELECT INBOX").await;
}

#[tokio::test]
async fn oversized_literals() {
    let config = ImapConfig {
        limits: mailroom_imap::parser::Limits {
            max_literal: 1024,
            ..Default::default()
        },
        ..test_config()
    };
    let srv = start_with(config, None, TlsMode::Plain).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    // A synchronising literal over the limit is refused before it is sent:
    // NO for an APPEND (RFC 7889 APPENDLIMIT), BAD for anything else.
    let r = c.cmd("APPEND INBOX {999999999}").await;
    assert!(r.contains("NO [TOOBIG]"), "{r}");
    c.ok("NOOP").await;
    let r = c.cmd("APPEND INBOX {2048}").await;
    assert!(r.contains("NO [TOOBIG]"), "{r}");
    c.ok("NOOP").await;
    let r = c.cmd("LOGIN {2048}").await;
    assert!(r.contains("BAD [TOOBIG]"), "{r}");
    c.ok("NOOP").await;
    // A non-synchronising one cannot be refused in time: BAD, then BYE.
    c.send_raw(b"big APPEND INBOX {4096+}\r\n").await;
    c.send_raw(&[b'x'; 4096]).await;
    let r = c.read_response().await.unwrap();
    assert!(r.contains("BAD"), "{r}");
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("* BYE"), "{r}");
    assert!(c.read_response().await.is_none());
    // The server still serves.
    let mut d = Client::login(srv.addr, "alice@example.com").await;
    d.ok("NOOP").await;
}

#[tokio::test]
async fn syntax_errors_get_bad_with_a_reason() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", &message("a", "b")).await;
    c.ok("SELECT INBOX").await;
    for bad in [
        "FETCH 1 (FLAGS",
        "FETCH 1 FLAGS)",
        "SEARCH (SEEN",
        "SEARCH OR SEEN",
        "STORE 1 +FLAGS (\\Seen",
        "FETCH 0 FLAGS",
        "FETCH 1 BODY[1.",
        "FROBNICATE",
        "SEARCH SINCE 32-Foo-2020",
    ] {
        let r = c.cmd(bad).await;
        let last = r.lines().last().unwrap();
        assert!(last.contains(" BAD ") && last.len() > 10, "{bad}: {r}");
    }
    // NUL in an atom.
    c.send_raw(b"n1 LOGIN al\0ice secret\r\n").await;
    let r = c.read_response().await.unwrap();
    assert!(r.contains("BAD"), "{r}");
    // Deep nesting is bounded.
    let deep = format!("SEARCH {}ALL{}", "(".repeat(500), ")".repeat(500));
    let r = c.cmd(&deep).await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let deep = format!("SEARCH {}ALL", "NOT ".repeat(500));
    let r = c.cmd(&deep).await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    c.ok("NOOP").await;
    let r = c.ok("FETCH 1 FLAGS").await;
    assert!(r.contains("* 1 FETCH"), "{r}");
}

#[tokio::test]
async fn autologout_after_idle_timeout() {
    let config = ImapConfig {
        idle_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let srv = start_with(config, None, TlsMode::Plain).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("NOOP").await;
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("* BYE") && r.contains("autologout"), "{r}");
    assert!(c.read_response().await.is_none());
}

#[tokio::test]
async fn connection_limit() {
    let config = ImapConfig {
        max_connections: 2,
        ..test_config()
    };
    let srv = start_with(config, None, TlsMode::Plain).await;
    let mut a = Client::connect(srv.addr).await;
    let _b = Client::connect(srv.addr).await;
    let c = Client::connect(srv.addr).await;
    assert!(c.greeting.starts_with("* BYE"), "{}", c.greeting);
    a.ok("LOGOUT").await;
    drop(a);
    // A slot is free again (the first session has ended).
    let mut ok = false;
    for _ in 0..50 {
        let d = Client::connect(srv.addr).await;
        if d.greeting.starts_with("* OK") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);
}

#[tokio::test]
async fn graceful_shutdown_says_bye() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    a.ok("SELECT INBOX").await;
    let mut idle = Client::login(srv.addr, "bob@example.com").await;
    idle.ok("SELECT INBOX").await;
    idle.send_raw(b"i IDLE\r\n").await;
    assert!(idle.read_response().await.unwrap().starts_with('+'));
    let addr = srv.addr;
    let done = tokio::spawn(srv.shutdown());
    let r = a.read_response().await.unwrap();
    assert!(r.starts_with("* BYE"), "{r}");
    let r = idle.read_response().await.unwrap();
    assert!(r.starts_with("* BYE"), "{r}");
    tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn client_closing_mid_command_does_not_hurt() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.send_raw(b"a APPEND INBOX {100}\r\n").await;
    let _ = c.read_response().await;
    c.send_raw(b"only part of it").await;
    let mut io = c.io.into_inner();
    io.shutdown().await.unwrap();
    drop(io);
    let mut d = Client::login(srv.addr, "alice@example.com").await;
    let r = d.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("MESSAGES 0"), "{r}");
}
