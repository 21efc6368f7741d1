//! The metrics layer over real LMTP sessions: exact counts per command and
//! reply class, per recipient, and connections.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mailroom_core::metrics::{
    DeliveryResult, LMTP_COMMANDS, LMTP_STATUSES, Metrics, OTHER, Protocol,
};
use mailroom_core::{Quota, QuotaLimits};
use mailroom_lmtp::layer::metrics::MetricsLayer;
use mailroom_lmtp::{LmtpError, LmtpListener, LmtpServer};
use mailroom_store_memory::MemoryStore;
use mailroom_testkit::{Spawned, spawn_on_loopback, store};
use tokio::net::TcpStream;

const MSG: &[u8] = b"Subject: metrics\r\n\r\nhello\r\n";

struct Metered {
    addr: SocketAddr,
    store: Arc<MemoryStore>,
    metrics: Arc<Metrics>,
    serving: Spawned<Result<(), LmtpError>>,
}

/// An LMTP server over the memory store with every session in a
/// [`MetricsLayer`].
async fn start() -> Metered {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let delivery = Arc::new(store::standard_pipeline(&store));
    let server = LmtpServer::new(delivery, Arc::new(StaticAuth), test_config());
    let layer = MetricsLayer::new(metrics.clone());
    let serving = spawn_on_loopback(|listener, stop| async move {
        server
            .serve_with(LmtpListener::Tcp(listener), layer, stop)
            .await
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
    async fn session(&self) -> Client<TcpStream> {
        let mut c = Client::new(TcpStream::connect(self.addr).await.unwrap());
        assert_eq!(c.reply().await, ["220 lmtp.test LMTP Mailroom ready"]);
        let lhlo = c.cmd("LHLO mx.example.org").await;
        assert!(lhlo.last().unwrap().starts_with("250 "), "{lhlo:?}");
        c
    }

    fn count(&self, command: &str, status: &str) -> u64 {
        self.metrics.commands(Protocol::Lmtp, command, status)
    }

    fn total(&self) -> u64 {
        let mut n = 0;
        for command in LMTP_COMMANDS.iter().chain([&OTHER]) {
            for status in LMTP_STATUSES.iter().chain([&OTHER]) {
                n += self.count(command, status);
            }
        }
        n
    }

    /// Waits until the server has dropped every session.
    async fn until_closed(&self) {
        for _ in 0..500 {
            if self.metrics.connections_open(Protocol::Lmtp) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("LMTP connections still open");
    }
}

#[tokio::test]
async fn one_delivered_and_one_unknown_recipient() {
    let mut h = start().await;
    let mut c = h.session().await;
    assert_eq!(h.metrics.connections_open(Protocol::Lmtp), 1);
    c.cmd1("MAIL FROM:<sender@example.org>").await;
    assert!(
        c.cmd1(&format!("RCPT TO:<{ALICE}>"))
            .await
            .starts_with("250 ")
    );
    let r = c.cmd1("RCPT TO:<nobody@example.com>").await;
    assert!(r.starts_with("550 5.1.1"), "{r}");
    assert!(c.cmd1("DATA").await.starts_with("354 "));
    assert_eq!(
        c.data(MSG, 1).await,
        [format!("250 2.0.0 <{ALICE}> delivered")]
    );
    // Not LMTP commands: counted as "other", never by their (client-chosen) name.
    assert!(c.cmd1("VRFY alice").await.starts_with("5"));
    assert!(c.cmd1("XYZZY plugh").await.starts_with("5"));
    assert!(c.cmd1("QUIT").await.starts_with("221 "));
    c.expect_closed().await;
    h.until_closed().await;

    assert_eq!(h.count("LHLO", "2xx"), 1);
    assert_eq!(h.count("MAIL", "2xx"), 1);
    assert_eq!(h.count("RCPT", "2xx"), 1);
    assert_eq!(h.count("RCPT", "5xx"), 1);
    assert_eq!(h.count("DATA", "3xx"), 1);
    assert_eq!(h.count("MESSAGE", "2xx"), 1);
    assert_eq!(h.count("other", "5xx"), 2);
    assert_eq!(h.count("QUIT", "2xx"), 1);
    assert_eq!(h.total(), 9);
    assert_eq!(h.metrics.deliveries(DeliveryResult::Accepted), 1);
    assert_eq!(h.metrics.deliveries(DeliveryResult::TempFailed), 0);
    assert_eq!(h.metrics.deliveries(DeliveryResult::PermFailed), 1);
    assert_eq!(h.metrics.connections_opened(Protocol::Lmtp), 1);
    assert_eq!(h.metrics.connections_open(Protocol::Lmtp), 0);
    assert_eq!(h.metrics.login_failures(Protocol::Lmtp), 0);
    assert_eq!(h.metrics.command_latency_count(Protocol::Lmtp, "RCPT"), 2);

    let text = h.metrics.render_prometheus();
    for line in [
        r#"mailroom_commands_total{protocol="lmtp",command="RCPT",status="5xx"} 1"#,
        r#"mailroom_commands_total{protocol="lmtp",command="MESSAGE",status="2xx"} 1"#,
        r#"mailroom_lmtp_deliveries_total{result="accepted"} 1"#,
        r#"mailroom_lmtp_deliveries_total{result="perm_failed"} 1"#,
        r#"mailroom_connections_opened_total{protocol="lmtp"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    for leaked in ["alice", "nobody", "sender", "VRFY", "XYZZY"] {
        assert!(!text.contains(leaked), "{leaked} in\n{text}");
    }
    h.serving.shutdown().await;
}

#[tokio::test]
async fn temporary_failures_at_rcpt_and_after_the_message() {
    let mut h = start().await;
    h.store
        .set_limits(
            ALICE,
            QuotaLimits {
                storage_bytes: Some(10),
                messages: None,
            },
        )
        .await
        .unwrap();
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<sender@example.org>").await;
    let r = c.cmd1(&format!("RCPT TO:<{FLAKY}>")).await;
    assert!(r.starts_with("451 "), "{r}");
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1(&format!("RCPT TO:<{BOB}>")).await;
    c.cmd1("DATA").await;
    assert_eq!(
        c.data(MSG, 2).await,
        [
            format!("452 4.2.2 <{ALICE}> mailbox is full"),
            format!("250 2.0.0 <{BOB}> delivered"),
        ]
    );
    drop(c);
    h.until_closed().await;

    assert_eq!(h.count("RCPT", "4xx"), 1);
    assert_eq!(h.count("RCPT", "2xx"), 2);
    // One reply per recipient; the message's class is the worst of them.
    assert_eq!(h.count("MESSAGE", "4xx"), 1);
    assert_eq!(h.metrics.deliveries(DeliveryResult::Accepted), 1);
    assert_eq!(h.metrics.deliveries(DeliveryResult::TempFailed), 2);
    assert_eq!(h.metrics.deliveries(DeliveryResult::PermFailed), 0);
    h.serving.shutdown().await;
}
