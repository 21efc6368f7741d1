//! The metrics layer over real POP3 sessions: exact counts per command and
//! outcome, failed logins, the AUTH exchange counted once, connections.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mailroom_core::Storage;
use mailroom_core::metrics::{Metrics, OTHER, POP3_COMMANDS, POP3_STATUSES, Protocol};
use mailroom_pop3::layer::metrics::MetricsLayer;
use mailroom_pop3::{Pop3Error, Pop3Server, TlsMode};
use mailroom_store_memory::MemoryStore;
use mailroom_testkit::{LineClient, Spawned, spawn_on_loopback, store};
use tokio::net::TcpStream;

const MSG: &[u8] = b"Subject: metrics\r\n\r\nhello\r\n";

struct Metered {
    addr: SocketAddr,
    store: Arc<MemoryStore>,
    metrics: Arc<Metrics>,
    serving: Spawned<Result<(), Pop3Error>>,
}

/// A POP3 server over the memory store with every session in a
/// [`MetricsLayer`].
async fn start() -> Metered {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let storage: Arc<dyn Storage> = store.clone();
    let server = Pop3Server::new(storage, Arc::new(USERS), test_config());
    let layer = MetricsLayer::new(metrics.clone());
    let serving = spawn_on_loopback(|listener, stop| {
        server.serve_with(listener, TlsMode::Plain, layer, stop)
    })
    .await;
    Metered {
        addr: serving.addr(),
        store,
        metrics,
        serving,
    }
}

impl Metered {
    async fn connect(&self) -> LineClient<TcpStream> {
        let mut c = LineClient::new(TcpStream::connect(self.addr).await.unwrap());
        assert!(c.line().await.starts_with("+OK"));
        c
    }

    fn count(&self, command: &str, status: &str) -> u64 {
        self.metrics.commands(Protocol::Pop3, command, status)
    }

    fn total(&self) -> u64 {
        let mut n = 0;
        for command in POP3_COMMANDS.iter().chain([&OTHER]) {
            for status in POP3_STATUSES.iter().chain([&OTHER]) {
                n += self.count(command, status);
            }
        }
        n
    }

    /// Waits until the server has dropped every session.
    async fn until_closed(&self) {
        for _ in 0..500 {
            if self.metrics.connections_open(Protocol::Pop3) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("POP3 connections still open");
    }
}

#[tokio::test]
async fn counts_every_command_by_name_and_outcome() {
    let mut h = start().await;
    store::deliver(&h.store, ALICE, MSG).await;
    let mut c = h.connect().await;
    assert_eq!(h.metrics.connections_open(Protocol::Pop3), 1);
    assert!(c.cmd(&format!("USER {ALICE}")).await.starts_with("+OK"));
    assert!(c.cmd("PASS wrong").await.starts_with("-ERR"));
    assert!(c.cmd(&format!("USER {ALICE}")).await.starts_with("+OK"));
    assert!(c.cmd(&format!("PASS {PASSWORD}")).await.starts_with("+OK"));
    assert!(c.cmd("STAT").await.starts_with("+OK"));
    assert!(c.cmd("NOOP").await.starts_with("+OK"));
    assert!(c.cmd("NOOP").await.starts_with("+OK"));
    let (status, message) = c.retrieve("RETR 1").await;
    assert!(status.starts_with("+OK"), "{status}");
    assert!(message.ends_with(b"hello\r\n"));
    assert!(c.cmd("RETR 99").await.starts_with("-ERR"));
    // A word the client made up: counted as "other", never by name.
    assert!(c.cmd("XYZZY plugh").await.starts_with("-ERR"));
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    c.expect_closed().await;
    h.until_closed().await;

    assert_eq!(h.count("USER", "+OK"), 2);
    assert_eq!(h.count("PASS", "-ERR"), 1);
    assert_eq!(h.count("PASS", "+OK"), 1);
    assert_eq!(h.count("STAT", "+OK"), 1);
    assert_eq!(h.count("NOOP", "+OK"), 2);
    assert_eq!(h.count("RETR", "+OK"), 1);
    assert_eq!(h.count("RETR", "-ERR"), 1);
    assert_eq!(h.count("other", "-ERR"), 1);
    assert_eq!(h.count("QUIT", "+OK"), 1);
    assert_eq!(h.total(), 11);
    assert_eq!(h.metrics.command_latency_count(Protocol::Pop3, "NOOP"), 2);
    assert_eq!(h.metrics.login_failures(Protocol::Pop3), 1);
    assert_eq!(h.metrics.connections_opened(Protocol::Pop3), 1);
    assert_eq!(h.metrics.connections_open(Protocol::Pop3), 0);

    let text = h.metrics.render_prometheus();
    for line in [
        r#"mailroom_commands_total{protocol="pop3",command="NOOP",status="+OK"} 2"#,
        r#"mailroom_commands_total{protocol="pop3",command="other",status="-ERR"} 1"#,
        r#"mailroom_login_failures_total{protocol="pop3"} 1"#,
        r#"mailroom_connections_opened_total{protocol="pop3"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    for leaked in ["alice", "wrong", PASSWORD, "XYZZY", "plugh"] {
        assert!(!text.contains(leaked), "{leaked} in\n{text}");
    }
    h.serving.shutdown().await;
}

/// `AUTH PLAIN`, `+ `, the credentials: one AUTH, counted with its outcome.
#[tokio::test]
async fn an_auth_exchange_counts_once() {
    let mut h = start().await;
    let good = mailroom_pop3::codec::base64_encode(format!("\0{BOB}\0{PASSWORD}").as_bytes());
    let bad = mailroom_pop3::codec::base64_encode(format!("\0{BOB}\0nope").as_bytes());
    let mut c = h.connect().await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(c.cmd(&bad).await.starts_with("-ERR"));
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(c.cmd(&good).await.starts_with("+OK"));
    drop(c);
    h.until_closed().await;
    assert_eq!(h.count("AUTH", "-ERR"), 1);
    assert_eq!(h.count("AUTH", "+OK"), 1);
    assert_eq!(h.total(), 2);
    assert_eq!(h.metrics.login_failures(Protocol::Pop3), 1);
    h.serving.shutdown().await;
}
