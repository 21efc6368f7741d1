//! Integrators choose the layer stack: no layers at all, their own layers,
//! and the command timeout ending a connection with `BYE`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use mailroom_imap::command::Request;
use mailroom_imap::layer::timeout::CommandTimeoutLayer;
use mailroom_imap::layer::trace::TraceLayer;
use mailroom_imap::{ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;
use tower::ServiceBuilder;

fn server(store: &Arc<MemoryStore>) -> ImapServer {
    ImapServer::new(store.clone(), None, Arc::new(TestAuth), test_config())
}

#[tokio::test]
async fn bare_session_without_layers() {
    let store = Arc::new(MemoryStore::new());
    let srv = server(&store).with_stack(|_, session| session);
    let srv = start_server(srv, store, TlsMode::Plain).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("SELECT INBOX").await;
    c.ok("LOGOUT").await;
}

#[tokio::test]
async fn custom_layers_see_every_command() {
    let store = Arc::new(MemoryStore::new());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let srv = server(&store).with_stack(move |conn, session| {
        let counter = counter.clone();
        assert!(conn.peer.is_some());
        ServiceBuilder::new()
            .layer(TraceLayer::new())
            .map_request(move |r: Request| {
                counter.fetch_add(1, Ordering::SeqCst);
                r
            })
            .service(session)
    });
    let srv = start_server(srv, store, TlsMode::Plain).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("NOOP").await;
    c.ok("CAPABILITY").await;
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_command_over_the_timeout_ends_the_connection_with_bye() {
    let store = Arc::new(MemoryStore::new());
    let srv = server(&store).with_stack(|_, session| {
        ServiceBuilder::new()
            .layer(CommandTimeoutLayer::new(Duration::from_millis(50)))
            .and_then(|reply| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, std::convert::Infallible>(reply)
            })
            .service(session)
    });
    let srv = start_server(srv, store, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    c.send_raw(b"a NOOP\r\n").await;
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("* BYE") && r.contains("timed out"), "{r}");
    assert!(c.read_response().await.is_none());
    // The server goes on.
    let d = Client::connect(srv.addr).await;
    assert!(d.greeting.starts_with("* OK"));
}

/// Floods one in-memory connection of a default-stack server limited to
/// `per_second` with `n` pipelined NOOPs; returns the virtual time until
/// every one was answered OK, and the client and its connection task.
async fn flood(
    per_second: u32,
    n: usize,
) -> (
    Duration,
    Client,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let store = Arc::new(MemoryStore::new());
    let config = mailroom_imap::ImapConfig {
        commands_per_second: per_second,
        ..test_config()
    };
    let srv = ImapServer::new(store, None, Arc::new(TestAuth), config);
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let conn = tokio::spawn(async move {
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        srv.serve_connection(server_io, None, TlsMode::Plain, stop)
            .await
    });
    let mut c = Client::over(Box::new(client_io)).await;
    let start = tokio::time::Instant::now();
    let all: String = (0..n).map(|i| format!("n{i} NOOP\r\n")).collect();
    c.send_raw(all.as_bytes()).await;
    for i in 0..n {
        let r = c.until_tagged(&format!("n{i}")).await;
        assert!(r.contains(&format!("n{i} OK")), "{r}");
    }
    (start.elapsed(), c, conn)
}

/// The default stack bounds the command rate per connection: past
/// `commands_per_second` the next command waits for the next second (on
/// tokio's paused clock, so the test measures virtual time, not the machine).
#[tokio::test(start_paused = true)]
async fn default_stack_slows_a_command_flood_and_answers_every_command() {
    // 12 pipelined NOOPs at 5/s: 5 in the first second, 5 in the second, 2 in the third
    let (took, mut c, conn) = flood(5, 12).await;
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "12 commands at 5/s took {took:?} of virtual time"
    );
    // the connection is fine afterwards
    c.ok("LOGOUT").await;
    conn.await.unwrap().unwrap();
}

/// `commands_per_second = 0` turns the limit off.
#[tokio::test(start_paused = true)]
async fn zero_means_no_command_rate_limit() {
    let (took, _c, _conn) = flood(0, 50).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}
