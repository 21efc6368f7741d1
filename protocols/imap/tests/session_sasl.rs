//! AUTHENTICATE with the mechanisms the authenticator offers, over real
//! sockets: the capability list follows the connection (SCRAM before TLS,
//! PLAIN only where plaintext is allowed, -PLUS only with a TLS exporter),
//! a SCRAM exchange across continuations, `*` cancelling it, a too-long
//! line ending it, malformed messages answered NO (bad base64: BAD) with
//! the connection going on, and a wrong proof refused with `[AUTHENTICATIONFAILED]`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use mailroom_core::base64;
use mailroom_core::sasl::scram::ScramClient;
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;

async fn start_scram(allow_plaintext_auth: bool) -> TestServer {
    start_scram_tls(allow_plaintext_auth, None).await
}

async fn start_scram_tls(
    allow_plaintext_auth: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> TestServer {
    let store = Arc::new(MemoryStore::new());
    let config = ImapConfig {
        allow_plaintext_auth,
        ..test_config()
    };
    let mut server = ImapServer::new(store.clone(), None, Arc::new(TestAuth.scram()), config);
    if let Some(tls) = tls {
        server = server.with_tls(tls);
    }
    start_server(server, store, TlsMode::Plain).await
}

/// Sends a line and reads one response line.
async fn line(c: &mut Client, text: &str) -> String {
    c.send_raw(format!("{text}\r\n").as_bytes()).await;
    c.read_response().await.unwrap()
}

fn challenge(r: &str) -> Vec<u8> {
    let r = r.trim_end_matches(['\r', '\n']);
    base64::decode(r.strip_prefix("+ ").unwrap_or_else(|| panic!("{r}"))).unwrap()
}

/// A SCRAM-SHA-256 exchange without an initial response; the tagged answer.
async fn scram(c: &mut Client, tag: &str, password: &str) -> String {
    let r = line(c, &format!("{tag} AUTHENTICATE SCRAM-SHA-256")).await;
    assert!(challenge(&r).is_empty(), "{r}");
    let mut client = ScramClient::new("alice@example.com", password, None);
    let r = line(c, &base64::encode(client.client_first().as_bytes())).await;
    let fin = client.client_final(&challenge(&r)).unwrap();
    let r = line(c, &base64::encode(fin.as_bytes())).await;
    if !r.starts_with("+ ") {
        return r;
    }
    client.verify_server_final(&challenge(&r)).unwrap();
    line(c, "").await
}

#[tokio::test]
async fn capabilities_follow_the_connection() {
    let srv = start_scram(false).await;
    let mut c = Client::connect(srv.addr).await;
    assert!(
        c.greeting.contains("AUTH=SCRAM-SHA-256 LOGINDISABLED"),
        "{}",
        c.greeting
    );
    assert!(!c.greeting.contains("AUTH=PLAIN") && !c.greeting.contains("-PLUS"));
    let r = c
        .cmd("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
        .await;
    assert!(r.contains("NO [PRIVACYREQUIRED]"), "{r}");
    let r = c.cmd("AUTHENTICATE SCRAM-SHA-256-PLUS biws").await;
    assert!(r.contains("NO [CANNOT]") && r.contains("TLS 1.3"), "{r}");
    let r = c.cmd("AUTHENTICATE OAUTHBEARER").await;
    assert!(r.contains("NO [CANNOT]"), "{r}");
    // SCRAM sends no password: it works before TLS.
    let r = scram(&mut c, "s1", PASSWORD).await;
    assert!(r.starts_with("s1 OK [CAPABILITY"), "{r}");
    c.ok("SELECT INBOX").await;

    let srv = start_scram(true).await;
    let c = Client::connect(srv.addr).await;
    assert!(
        c.greeting
            .contains("AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256]"),
        "{}",
        c.greeting
    );
}

#[tokio::test]
async fn exchanges_cancel_end_and_fail_cleanly() {
    let srv = start_scram(false).await;
    let mut c = Client::connect(srv.addr).await;
    // `*` cancels after the first step; a new exchange starts afresh.
    let r = line(&mut c, "a1 AUTHENTICATE SCRAM-SHA-256").await;
    assert!(r.starts_with("+"), "{r}");
    let client = ScramClient::new("alice@example.com", PASSWORD, None);
    let r = line(&mut c, &base64::encode(client.client_first().as_bytes())).await;
    assert!(r.starts_with("+ "), "{r}");
    let r = line(&mut c, "*").await;
    assert!(r.starts_with("a1 BAD") && r.contains("cancelled"), "{r}");
    // A line longer than the limit ends the exchange too.
    let r = line(&mut c, "a2 AUTHENTICATE SCRAM-SHA-256").await;
    assert!(r.starts_with("+"), "{r}");
    let long = "A".repeat(70 * 1024);
    let r = line(&mut c, &long).await;
    assert!(r.starts_with("a2 BAD"), "{r}");
    // What came after the long line in the same read is still served.
    c.ok("NOOP").await;
    // A message SCRAM cannot parse: NO (as Dovecot answers it); bad
    // base64: BAD; the connection goes on.
    let r = c
        .cmd(&format!(
            "AUTHENTICATE SCRAM-SHA-256 {}",
            base64::encode(b"x,,n=u,r=n")
        ))
        .await;
    assert!(
        r.contains("NO [AUTHENTICATIONFAILED]") && r.contains("channel-binding flag"),
        "{r}"
    );
    let r = c.cmd("AUTHENTICATE SCRAM-SHA-256 !!!!").await;
    assert!(r.contains("BAD"), "{r}");
    // A wrong password: the proof is refused.
    let r = scram(&mut c, "a3", "not the password").await;
    assert!(r.starts_with("a3 NO [AUTHENTICATIONFAILED]"), "{r}");
    // An unknown user fails the same way.
    let r = line(&mut c, "a4 AUTHENTICATE SCRAM-SHA-256").await;
    assert!(r.starts_with("+"), "{r}");
    let mut ghost = ScramClient::new("ghost@example.com", PASSWORD, None);
    let r = line(&mut c, &base64::encode(ghost.client_first().as_bytes())).await;
    let fin = ghost.client_final(&challenge(&r)).unwrap();
    let r = line(&mut c, &base64::encode(fin.as_bytes())).await;
    assert!(r.starts_with("a4 NO [AUTHENTICATIONFAILED]"), "{r}");
    // And the right one still logs in.
    let r = scram(&mut c, "a5", PASSWORD).await;
    assert!(r.starts_with("a5 OK"), "{r}");
}

#[tokio::test]
async fn scram_plus_after_starttls_binds_to_the_new_tls_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server_tls, client_tls) = tls_pair();
    let srv = start_scram_tls(false, Some(server_tls)).await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let mut greeting = Vec::new();
    while greeting.last() != Some(&b'\n') {
        let mut b = [0u8; 1];
        assert_eq!(tcp.read(&mut b).await.unwrap(), 1);
        greeting.push(b[0]);
    }
    assert!(!String::from_utf8_lossy(&greeting).contains("-PLUS"));
    tcp.write_all(b"s1 STARTTLS\r\n").await.unwrap();
    let mut ok = [0u8; 64];
    let n = tcp.read(&mut ok).await.unwrap();
    assert!(ok[..n].starts_with(b"s1 OK"));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let exporter = tls
        .get_ref()
        .1
        .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
        .unwrap();
    let mut c = Client::without_greeting(Box::new(tls));
    let r = c.cmd("CAPABILITY").await;
    assert!(
        r.contains("AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-256-PLUS"),
        "{r}"
    );
    // A client that could bind but thinks the server cannot: a downgrade.
    let first = base64::encode(b"y,,n=alice@example.com,r=abcdef");
    let r = c.cmd(&format!("AUTHENTICATE SCRAM-SHA-256 {first}")).await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED]"), "{r}");
    // Bound to this connection: accepted.
    let mut client = ScramClient::new("alice@example.com", PASSWORD, Some(exporter));
    let ir = base64::encode(client.client_first().as_bytes());
    let r = line(&mut c, &format!("p1 AUTHENTICATE SCRAM-SHA-256-PLUS {ir}")).await;
    let fin = client.client_final(&challenge(&r)).unwrap();
    let r = line(&mut c, &base64::encode(fin.as_bytes())).await;
    client.verify_server_final(&challenge(&r)).unwrap();
    let r = line(&mut c, "").await;
    assert!(r.starts_with("p1 OK"), "{r}");
}
