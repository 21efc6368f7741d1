//! Greeting, CAPABILITY, LOGIN, AUTHENTICATE, STARTTLS, implicit TLS,
//! LOGOUT and commands in the wrong state, over real sockets.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mailroom_imap::{ImapConfig, TlsMode};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn b64(s: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn greeting_capability_and_logout() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    assert!(
        c.greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{}",
        c.greeting
    );
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains("AUTH=PLAIN") && r.contains("SASL-IR") && r.contains("LITERAL+"));
    assert!(!r.contains("STARTTLS"), "no TLS configured: {r}");
    c.ok("NOOP").await;
    let r = c.ok("LOGIN alice@example.com secret").await;
    assert!(r.contains("[CAPABILITY IMAP4rev1"), "{r}");
    let r = c.ok("CAPABILITY").await;
    for cap in [
        "IDLE",
        "NAMESPACE",
        "UIDPLUS",
        "MOVE",
        "UNSELECT",
        "CHILDREN",
        "SPECIAL-USE",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "CONDSTORE",
        "QRESYNC",
        "ESEARCH",
        "ACL",
        "RIGHTS=texk",
        "QUOTA",
        "STATUS=SIZE",
        "ENABLE",
        "ID",
        "XLIST",
    ] {
        assert!(r.contains(cap), "missing {cap} in {r}");
    }
    let r = c.cmd("LOGOUT").await;
    assert!(r.contains("* BYE") && r.contains("OK"), "{r}");
    assert!(
        c.read_response().await.is_none(),
        "connection closes after LOGOUT"
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn login_is_refused_without_tls_unless_allowed() {
    let srv = start_with(ImapConfig::default(), None, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    assert!(c.greeting.contains("LOGINDISABLED"), "{}", c.greeting);
    assert!(!c.greeting.contains("AUTH=PLAIN"));
    let r = c.cmd("LOGIN alice@example.com secret").await;
    assert!(r.contains("NO [PRIVACYREQUIRED]"), "{r}");
    let r = c
        .cmd(&format!(
            "AUTHENTICATE PLAIN {}",
            b64(b"\0alice@example.com\0secret")
        ))
        .await;
    assert!(r.contains("NO [PRIVACYREQUIRED]"), "{r}");
    // Still not logged in.
    let r = c.cmd("SELECT INBOX").await;
    assert!(r.contains("BAD"), "{r}");
}

#[tokio::test]
async fn wrong_password_fails_and_is_throttled() {
    let config = ImapConfig {
        login_failure_delay: Duration::from_millis(100),
        login_failure_max_delay: Duration::from_millis(400),
        ..test_config()
    };
    let srv = start_with(config, None, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    let t = Instant::now();
    let r = c.cmd("LOGIN alice@example.com wrong").await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED]"), "{r}");
    let first = t.elapsed();
    assert!(first >= Duration::from_millis(100), "{first:?}");
    let t = Instant::now();
    let r = c.cmd("LOGIN alice@example.com wrong").await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED]"));
    // Waits before the check (100 ms) and after the new failure (200 ms).
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // A new connection from the same IP is throttled too, but can log in.
    let mut d = Client::connect(srv.addr).await;
    let t = Instant::now();
    d.ok("LOGIN alice@example.com secret").await;
    assert!(t.elapsed() >= Duration::from_millis(100));
    let r = c.cmd("LOGIN nobody@example.com secret").await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED]"));
}

#[tokio::test]
async fn authenticate_plain_with_initial_response_and_continuation() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    let r = c
        .cmd(&format!(
            "AUTHENTICATE PLAIN {}",
            b64(b"\0alice@example.com\0secret")
        ))
        .await;
    assert_eq!(Client::status(&r), "OK", "{r}");

    let mut c = Client::connect(srv.addr).await;
    c.send_raw(b"a1 AUTHENTICATE PLAIN\r\n").await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(format!("{}\r\n", b64(b"\0bob@example.com\0secret")).as_bytes())
        .await;
    let r = c.until_tagged("a1").await;
    assert!(r.contains("a1 OK"), "{r}");
    c.ok("SELECT INBOX").await;

    // `*` cancels.
    let mut c = Client::connect(srv.addr).await;
    c.send_raw(b"a2 AUTHENTICATE PLAIN\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    c.send_raw(b"*\r\n").await;
    let r = c.until_tagged("a2").await;
    assert!(r.contains("a2 BAD"), "{r}");
    // Garbage base64 and wrong credentials.
    let r = c.cmd("AUTHENTICATE PLAIN !!!!").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let r = c
        .cmd(&format!(
            "AUTHENTICATE PLAIN {}",
            b64(b"\0alice@example.com\0nope")
        ))
        .await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED]"), "{r}");
    let r = c.cmd("AUTHENTICATE CRAM-MD5").await;
    assert_eq!(Client::status(&r), "NO", "{r}");
}

#[tokio::test]
async fn commands_in_the_wrong_state_get_bad_and_the_connection_goes_on() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    for cmd in [
        "SELECT INBOX",
        "LIST \"\" *",
        "FETCH 1 FLAGS",
        "EXPUNGE",
        "CLOSE",
    ] {
        let r = c.cmd(cmd).await;
        assert_eq!(Client::status(&r), "BAD", "{cmd}: {r}");
        assert!(r.contains("log in first"), "{r}");
    }
    c.ok("LOGIN alice@example.com secret").await;
    for cmd in [
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "CHECK",
        "UNSELECT",
    ] {
        let r = c.cmd(cmd).await;
        assert_eq!(Client::status(&r), "BAD", "{cmd}: {r}");
        assert!(r.contains("no mailbox selected"), "{r}");
    }
    let r = c.cmd("LOGIN alice@example.com secret").await;
    assert!(
        r.contains("BAD") && r.contains("already authenticated"),
        "{r}"
    );
    c.ok("SELECT INBOX").await;
    c.ok("NOOP").await;
}

async fn tls_connect(
    client: Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    TlsConnector::from(client).connect(name, tcp).await.unwrap()
}

/// Reads one line byte by byte (so nothing after it is consumed).
async fn read_line_raw(tcp: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if tcp.read(&mut b).await.unwrap() == 0 {
            break;
        }
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

#[tokio::test]
async fn starttls_then_login_and_injection_is_discarded() {
    use tokio::io::AsyncWriteExt;
    let (server_tls, client_tls) = tls_pair();
    let srv = start_with(ImapConfig::default(), Some(server_tls), TlsMode::Plain).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let greeting = read_line_raw(&mut tcp).await;
    assert!(
        greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"),
        "{greeting}"
    );
    // STARTTLS with a command injected in the same packet (CVE-2011-0411 style).
    tcp.write_all(b"s1 STARTTLS\r\ns2 LOGIN alice@example.com secret\r\n")
        .await
        .unwrap();
    let ok = read_line_raw(&mut tcp).await;
    assert!(ok.starts_with("s1 OK"), "{ok}");
    let tls = tls_connect(client_tls, tcp).await;
    let mut c = Client::without_greeting(Box::new(tls));
    // The injected LOGIN must not have run.
    let r = c.cmd("CAPABILITY").await;
    assert!(!r.contains("s2 "), "injected command ran: {r}");
    assert!(
        r.contains("AUTH=PLAIN") && !r.contains("STARTTLS") && !r.contains("LOGINDISABLED"),
        "{r}"
    );
    let r = c.cmd("SELECT INBOX").await;
    assert_eq!(Client::status(&r), "BAD", "not logged in: {r}");
    let r = c.cmd("STARTTLS").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    c.ok("LOGIN alice@example.com secret").await;
    c.ok("SELECT INBOX").await;
    c.ok("LOGOUT").await;
}

#[tokio::test]
async fn implicit_tls() {
    let (server_tls, client_tls) = tls_pair();
    let srv = start_with(ImapConfig::default(), Some(server_tls), TlsMode::Implicit).await;
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let tls = tls_connect(client_tls, tcp).await;
    let mut c = Client::over(Box::new(tls)).await;
    assert!(c.greeting.contains("AUTH=PLAIN"), "{}", c.greeting);
    assert!(!c.greeting.contains("STARTTLS") && !c.greeting.contains("LOGINDISABLED"));
    c.ok("LOGIN alice@example.com secret").await;
    let r = c.append("INBOX", "", &message("over tls", "hello")).await;
    assert!(r.contains("APPENDUID"), "{r}");
    c.ok("LOGOUT").await;
    // A plaintext client on the TLS port does not get a session.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.write_all(b"a LOGIN alice@example.com secret\r\n").await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("OK"));
    srv.shutdown().await.unwrap();
}
