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
