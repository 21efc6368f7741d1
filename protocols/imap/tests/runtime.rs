//! IMAP on the shared runtime, over real sockets: the refusal over the
//! limit comes inside TLS on an implicit-TLS port; a client that stops
//! reading a large FETCH is dropped after the write timeout; 1,000
//! connections trickling a byte every few seconds do not keep another
//! client from being served; graceful shutdown lets the command in flight
//! finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, PASSWORD, TestAuth, start_server, test_config};
use mailroom_core::{Authenticator, Credentials, Principal, Result};
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;
use mailroom_testkit::{tls_connect, tls_pair};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn server(config: ImapConfig) -> (ImapServer, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let quota: Arc<dyn mailroom_core::Quota> = store.clone();
    let server = ImapServer::new(store.clone(), Some(quota), Arc::new(TestAuth), config);
    (server, store)
}

#[tokio::test]
async fn over_the_limit_on_port_993_the_bye_comes_inside_tls() {
    let (server_tls, client_tls) = tls_pair();
    let (imap, store) = server(ImapConfig {
        max_connections: 1,
        ..test_config()
    });
    let srv = start_server(imap.with_tls(server_tls), store, TlsMode::Implicit).await;
    let first = TcpStream::connect(srv.addr).await.unwrap();
    let first = Client::over(Box::new(tls_connect(first, client_tls.clone()).await)).await;
    assert!(first.greeting.starts_with("* OK"), "{}", first.greeting);

    let second = TcpStream::connect(srv.addr).await.unwrap();
    let mut second = Client::over(Box::new(tls_connect(second, client_tls).await)).await;
    assert_eq!(second.greeting, "* BYE too many connections, try later\r\n");
    assert_eq!(second.read_response().await, None, "then closed");
    drop(first);
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_fetch_is_dropped() {
    let (imap, store) = server(ImapConfig {
        write_timeout: Duration::from_secs(1),
        ..test_config()
    });
    let limits = imap.connection_limits().clone();
    // 32 MiB: more than the socket buffers of both ends hold
    let mut message = b"From: a@example.com\r\nSubject: big\r\n\r\n".to_vec();
    message.resize(32 << 20, b'x');
    mailroom_testkit::store::deliver(&store, "alice@example.com", &message).await;
    let srv = start_server(imap, store, TlsMode::Plain).await;

    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("SELECT INBOX").await;
    assert_eq!(limits.open(), 1);
    c.send_raw(b"f FETCH 1 BODY[]\r\n").await;
    // ... and never reads the answer
    let dropped = tokio::time::timeout(Duration::from_secs(30), async {
        while limits.open() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(dropped.is_ok(), "the connection is still open");
    // the server is fine
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    other.ok("SELECT INBOX").await;
}

#[tokio::test]
async fn a_thousand_slow_connections_do_not_stop_other_clients() {
    let (imap, store) = server(ImapConfig {
        max_connections: 2000,
        max_connections_per_ip: 2000,
        ..test_config()
    });
    let limits = imap.connection_limits().clone();
    mailroom_testkit::store::deliver(&store, "alice@example.com", b"Subject: hi\r\n\r\nhello\r\n")
        .await;
    let srv = start_server(imap, store, TlsMode::Plain).await;

    // 1,000 clients each sending a byte every 2 s of a command that never ends
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let mut stop = stop_rx.clone();
        let s = TcpStream::connect(srv.addr).await.unwrap();
        slow.spawn(async move {
            let mut s = s;
            loop {
                if s.write_all(b"a").await.is_err() {
                    return false;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => return true,
                }
            }
        });
    }
    let all_open = tokio::time::timeout(Duration::from_secs(30), async {
        while limits.open() < 1000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(all_open.is_ok(), "{} open", limits.open());

    // meanwhile another client is served, command after command
    let served = tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..5 {
            let mut c = Client::login(srv.addr, "alice@example.com").await;
            c.ok("SELECT INBOX").await;
            let r = c.ok("FETCH 1 BODY[]").await;
            assert!(r.contains("hello"), "{r}");
            c.ok("LOGOUT").await;
        }
    })
    .await;
    assert!(served.is_ok(), "the other client was not served in time");
    let _ = stop_tx.send(true);
    let mut alive = 0;
    while let Some(r) = slow.join_next().await {
        alive += usize::from(r.unwrap());
    }
    assert_eq!(alive, 1000, "the slow clients were kept too");
}

/// An authenticator that takes its time, so a LOGIN is in flight when the
/// server is told to stop.
#[derive(Debug)]
struct SlowAuth;

#[async_trait::async_trait]
impl Authenticator for SlowAuth {
    async fn authenticate(&self, credentials: &Credentials) -> Result<Principal> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        TestAuth.authenticate(credentials).await
    }

    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        TestAuth.lookup(user).await
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_the_command_in_flight_complete() {
    let store = Arc::new(MemoryStore::new());
    let imap = ImapServer::new(
        store.clone(),
        None,
        Arc::new(SlowAuth),
        ImapConfig {
            shutdown_grace: Duration::from_secs(10),
            ..test_config()
        },
    );
    let srv = start_server(imap, store, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    c.send_raw(format!("a LOGIN alice@example.com {PASSWORD}\r\n").as_bytes())
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(srv.shutdown());
    let r = c.until_tagged("a").await;
    assert!(r.starts_with("a OK"), "{r}");
    assert_eq!(
        c.read_response().await.as_deref(),
        Some("* BYE server shutting down\r\n")
    );
    assert_eq!(c.read_response().await, None);
    stopping.await.unwrap().unwrap();
}
