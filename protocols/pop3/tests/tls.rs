//! STLS (RFC 2595) and implicit TLS, and the plaintext-login policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mailroom_pop3::{Pop3Error, Pop3Server, TlsMode};

#[tokio::test]
async fn plaintext_login_refused_before_stls_then_allowed() {
    let (server_tls, client_tls) = tls_pair();
    let h = Harness::start_with(
        plaintext_tls_only(test_config()),
        Some(server_tls),
        TlsMode::Plain,
    )
    .await;
    h.deliver(ALICE, b"Subject: x\r\n\r\nhi\r\n").await;
    let mut c = h.connect().await;
    c.line().await;
    let (_, caps) = c.multi("CAPA").await;
    assert!(caps.contains(&"STLS".to_owned()), "{caps:?}");
    assert!(
        !caps.iter().any(|c| c == "USER" || c.starts_with("SASL")),
        "{caps:?}"
    );
    let refused =
        "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS";
    assert_eq!(c.cmd(&format!("USER {ALICE}")).await, refused);
    assert_eq!(c.cmd("AUTH PLAIN").await, refused);
    // Commands pipelined after STLS in the clear are discarded (RFC 2595 §3.1).
    c.send(b"STLS\r\nUSER injected\r\n").await;
    assert_eq!(c.line().await, "+OK Begin TLS negotiation now");
    let stream = c.io.into_inner();
    let mut c = Client::new(tls_connect(stream, client_tls).await);
    let (_, caps) = c.multi("CAPA").await;
    assert!(
        caps.contains(&"USER".to_owned()) && !caps.contains(&"STLS".to_owned()),
        "{caps:?}"
    );
    assert_eq!(c.cmd("STLS").await, "-ERR already using TLS");
    assert_eq!(
        c.cmd("PASS x").await,
        "-ERR USER first",
        "the injected USER was dropped"
    );
    assert_eq!(c.cmd(&format!("USER {ALICE}")).await, "+OK send PASS");
    assert!(c.cmd(&format!("PASS {PASSWORD}")).await.starts_with("+OK"));
    let (_, msg) = c.retrieve("RETR 1").await;
    assert_eq!(msg, b"Subject: x\r\n\r\nhi\r\n");
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
}

#[tokio::test]
async fn implicit_tls_serves_pop3s() {
    let (server_tls, client_tls) = tls_pair();
    let h = Harness::start_with(
        plaintext_tls_only(test_config()),
        Some(server_tls),
        TlsMode::Implicit,
    )
    .await;
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let mut c = Client::new(tls_connect(tcp, client_tls).await);
    assert!(c.line().await.starts_with("+OK pop.test"));
    let (_, caps) = c.multi("CAPA").await;
    assert!(caps.contains(&"USER".to_owned()) && !caps.contains(&"STLS".to_owned()));
    let ir = mailroom_pop3::codec::base64_encode(format!("\0{ALICE}\0{PASSWORD}").as_bytes());
    assert!(c.cmd(&format!("AUTH PLAIN {ir}")).await.starts_with("+OK"));
    assert_eq!(c.cmd("STAT").await, "+OK 0 0");
}

#[tokio::test]
async fn implicit_tls_without_config_is_an_error() {
    let store = std::sync::Arc::new(mailroom_store_memory::MemoryStore::new());
    let server = Pop3Server::new(store, std::sync::Arc::new(StaticAuth::new()), test_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = server.serve(listener, TlsMode::Implicit, async {}).await;
    assert!(matches!(r, Err(Pop3Error::TlsNotConfigured)));
}

#[tokio::test]
async fn failed_handshake_does_not_stop_the_server() {
    let (server_tls, client_tls) = tls_pair();
    let h = Harness::start_with(test_config(), Some(server_tls), TlsMode::Implicit).await;
    {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
        tcp.write_all(b"USER plaintext-on-a-TLS-port\r\n")
            .await
            .unwrap();
    }
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let mut c = Client::new(tls_connect(tcp, client_tls).await);
    assert!(c.line().await.starts_with("+OK"));
}

/// SCRAM before STLS (it sends no password, so the plaintext policy lets
/// it through), then SCRAM-SHA-256-PLUS bound to the TLS connection STLS
/// made, and a binding to other bytes refused.
#[tokio::test]
async fn scram_before_stls_and_scram_plus_after() {
    use mailroom_core::base64;
    use mailroom_core::sasl::scram::{EXPORTER_LABEL, ScramClient};
    use mailroom_pop3::codec::base64_encode;
    use std::sync::Arc;

    async fn scram<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        c: &mut Client<S>,
        mech: &str,
        exporter: Option<Vec<u8>>,
    ) -> String {
        let mut client = ScramClient::new(ALICE, PASSWORD, exporter);
        let ir = base64_encode(client.client_first().as_bytes());
        let r = c.cmd(&format!("AUTH {mech} {ir}")).await;
        let sf = base64::decode(r.strip_prefix("+ ").unwrap()).unwrap();
        let r = c
            .cmd(&base64_encode(client.client_final(&sf).unwrap().as_bytes()))
            .await;
        let Some(v) = r.strip_prefix("+ ") else {
            return r;
        };
        client
            .verify_server_final(&base64::decode(v).unwrap())
            .unwrap();
        c.cmd("").await
    }

    let (server_tls, client_tls) = tls_pair();
    let h = Harness::start_full(
        Arc::new(mailroom_store_memory::MemoryStore::new()),
        plaintext_tls_only(test_config()),
        Some(server_tls),
        TlsMode::Plain,
        Arc::new(USERS.scram()),
    )
    .await;
    let mut c = h.connect().await;
    c.line().await;
    let (_, caps) = c.multi("CAPA").await;
    assert!(caps.contains(&"SASL SCRAM-SHA-256".to_owned()), "{caps:?}");
    assert!(
        scram(&mut c, "SCRAM-SHA-256", None)
            .await
            .starts_with("+OK")
    );
    assert!(c.cmd("QUIT").await.starts_with("+OK"));

    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.cmd("STLS").await, "+OK Begin TLS negotiation now");
    let tls = tls_connect(c.io.into_inner(), client_tls).await;
    let exporter = tls
        .get_ref()
        .1
        .export_keying_material(vec![0u8; 32], EXPORTER_LABEL, None)
        .unwrap();
    let mut c = Client::new(tls);
    let (_, caps) = c.multi("CAPA").await;
    assert!(
        caps.contains(&"SASL PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS".to_owned()),
        "{caps:?}"
    );
    let r = scram(&mut c, "SCRAM-SHA-256-PLUS", Some(vec![7; 32])).await;
    assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    let r = scram(&mut c, "SCRAM-SHA-256-PLUS", Some(exporter)).await;
    assert!(r.starts_with("+OK"), "{r}");
    assert!(c.cmd("STAT").await.starts_with("+OK"));
}
