//! Test harness: an LMTP server on 127.0.0.1 (and a Unix socket) over the
//! memory store and the standard core delivery pipeline, and LMTP replies
//! (`250-` continuations, DATA) on top of the shared line client, built on
//! `mailroom_testkit`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::{Delivery, MailboxName, Quota, QuotaLimits, Storage};
use mailroom_lmtp::{LmtpConfig, LmtpError, LmtpServer};
use mailroom_store_memory::MemoryStore;
pub use mailroom_testkit::LineClient as Client;
use mailroom_testkit::{Spawned, StaticAuthenticator, spawn_on_loopback, store};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
/// A user without a domain, found through the local-part fallback.
pub const CAROL: &str = "carol";
/// Looking this user up fails with a temporary error.
pub const FLAKY: &str = "flaky@example.com";

/// The test directory: lookups only (nobody logs in to LMTP). A const named
/// like a type: the tests build it as `Arc::new(StaticAuth)`.
#[allow(non_upper_case_globals)]
pub const StaticAuth: StaticAuthenticator =
    StaticAuthenticator::new(&[ALICE, BOB, CAROL]).unavailable(&[FLAKY]);

pub fn test_config() -> LmtpConfig {
    let mut c = LmtpConfig::default();
    c.hostname = "lmtp.test".into();
    c.shutdown_grace = Duration::from_secs(2);
    c
}

pub struct Harness {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    pub server: LmtpServer,
    serving: Spawned<Result<(), LmtpError>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(test_config()).await
    }

    pub async fn start_with(config: LmtpConfig) -> Harness {
        let store = Arc::new(MemoryStore::new());
        let delivery = Arc::new(store::standard_pipeline(&store));
        Harness::start_delivery(store, delivery, config).await
    }

    pub async fn start_delivery(
        store: Arc<MemoryStore>,
        delivery: Arc<dyn Delivery>,
        config: LmtpConfig,
    ) -> Harness {
        let server = LmtpServer::new(delivery, Arc::new(StaticAuth), config);
        let serve = server.clone();
        let serving =
            spawn_on_loopback(
                |listener, stop| async move { serve.serve_tcp(listener, stop).await },
            )
            .await;
        Harness {
            addr: serving.addr(),
            store,
            server,
            serving,
        }
    }

    /// Takes the shutdown trigger (for tests that signal it themselves).
    pub fn stop_signal(&mut self) -> oneshot::Sender<()> {
        self.serving.take_stop().expect("not yet signalled")
    }

    pub async fn store_ensure(&self, user: &str) {
        self.store.ensure_account(user).await.unwrap();
    }

    /// Signals shutdown (unless a test did) and waits for `serve` to return `Ok`.
    pub async fn shutdown(&mut self) {
        self.serving.shutdown().await;
    }

    pub async fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(self.addr).await.unwrap())
    }

    /// Connected, greeted and LHLO'd.
    pub async fn session(&self) -> Client<TcpStream> {
        let mut c = self.connect().await;
        let greeting = c.reply().await;
        assert_eq!(greeting, ["220 lmtp.test LMTP Mailroom ready"]);
        let lhlo = c.cmd("LHLO mx.example.org").await;
        assert!(lhlo.last().unwrap().starts_with("250 "), "{lhlo:?}");
        c
    }

    pub async fn messages(&self, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
        self.store.ensure_account(user).await.unwrap();
        let mailbox = MailboxName::new(mailbox).unwrap();
        store::messages(&self.store, user, mailbox)
            .await
            .into_iter()
            .map(|(_, content)| content.to_vec())
            .collect()
    }

    pub async fn set_quota(&self, user: &str, bytes: Option<u64>) {
        self.store
            .set_limits(
                user,
                QuotaLimits {
                    storage_bytes: bytes,
                    messages: None,
                },
            )
            .await
            .unwrap();
    }

    pub async fn used(&self, user: &str) -> u64 {
        self.store.usage(user).await.unwrap().storage_bytes
    }
}

/// LMTP replies on top of the shared line client (which gives `send`,
/// `try_line` and `expect_closed`).
pub trait LmtpClient {
    /// One (possibly multi-line) reply.
    async fn reply(&mut self) -> Vec<String>;

    /// Sends a command and returns its reply.
    async fn cmd(&mut self, line: &str) -> Vec<String>;

    /// Sends a command and returns its one-line reply.
    async fn cmd1(&mut self, line: &str) -> String;

    /// Sends a dot-stuffed message and the terminator; returns `n` replies.
    async fn data(&mut self, message: &[u8], n: usize) -> Vec<String>;
}

impl<S: AsyncRead + AsyncWrite + Unpin> LmtpClient for Client<S> {
    async fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.send_line(line).await;
        self.reply().await
    }

    async fn cmd1(&mut self, line: &str) -> String {
        let r = self.cmd(line).await;
        assert_eq!(r.len(), 1, "{r:?}");
        r.into_iter().next().unwrap()
    }

    async fn data(&mut self, message: &[u8], n: usize) -> Vec<String> {
        let mut wire = Vec::new();
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        self.send(&wire).await;
        let mut replies = Vec::new();
        for _ in 0..n {
            replies.push(self.reply().await.join("\n"));
        }
        replies
    }
}

/// The body of a stored message after the trace headers we add.
pub fn strip_trace(stored: &[u8]) -> (&str, &[u8]) {
    let text = std::str::from_utf8(stored).unwrap_or("");
    let rp = "Return-Path: ";
    assert!(text.starts_with(rp), "{text}");
    let received = text.find("\r\nReceived: ").unwrap() + 2;
    let end = received
        + text[received..]
            .match_indices("\r\n")
            .find(|(i, _)| !text[received + i + 2..].starts_with('\t'))
            .unwrap()
            .0
        + 2;
    (&text[..end], &stored[end..])
}
