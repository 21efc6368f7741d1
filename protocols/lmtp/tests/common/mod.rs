//! Test harness: an LMTP server on 127.0.0.1 (and a Unix socket) over the
//! memory store and the standard core delivery pipeline.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    Authenticator, Credentials, Delivery, Error, MailboxName, MailboxRef, Principal, Quota,
    QuotaLimits, Storage,
};
use mailroom_lmtp::{LmtpConfig, LmtpServer};
use mailroom_store_memory::MemoryStore;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
/// A user without a domain, found through the local-part fallback.
pub const CAROL: &str = "carol";
/// Looking this user up fails with a temporary error.
pub const FLAKY: &str = "flaky@example.com";

#[derive(Debug)]
pub struct StaticAuth;

#[async_trait::async_trait]
impl Authenticator for StaticAuth {
    async fn authenticate(&self, _: &Credentials) -> mailroom_core::Result<Principal> {
        Err(Error::AuthFailed)
    }

    async fn lookup(&self, user: &str) -> mailroom_core::Result<Option<Principal>> {
        if user == FLAKY {
            return Err(Error::Busy("directory unavailable".into()));
        }
        Ok([ALICE, BOB, CAROL]
            .contains(&user)
            .then(|| Principal::user(user)))
    }
}

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
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), mailroom_lmtp::LmtpError>>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(test_config()).await
    }

    pub async fn start_with(config: LmtpConfig) -> Harness {
        let store = Arc::new(MemoryStore::new());
        let quota: Arc<dyn Quota> = store.clone();
        let delivery = Arc::new(Pipeline::standard(store.clone(), quota));
        Harness::start_delivery(store, delivery, config).await
    }

    pub async fn start_delivery(
        store: Arc<MemoryStore>,
        delivery: Arc<dyn Delivery>,
        config: LmtpConfig,
    ) -> Harness {
        let server = LmtpServer::new(delivery, Arc::new(StaticAuth), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let s = server.clone();
        let task = tokio::spawn(async move {
            s.serve_tcp(listener, async {
                let _ = rx.await;
            })
            .await
        });
        Harness {
            addr,
            store,
            server,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Takes the shutdown trigger (for tests that signal it themselves).
    pub fn stop_signal(&mut self) -> oneshot::Sender<()> {
        self.stop.take().expect("not yet signalled")
    }

    pub async fn store_ensure(&self, user: &str) {
        self.store.ensure_account(user).await.unwrap();
    }

    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("serve returns after shutdown")
                .unwrap()
                .unwrap();
        }
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
        let mb = self
            .store
            .open(
                &MailboxRef::new(user, MailboxName::new(mailbox).unwrap()),
                user,
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        for m in mb.snapshot().await.unwrap().messages {
            out.push(mb.content(m.uid).await.unwrap().to_vec());
        }
        out
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

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Client<S> {
    pub io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(io: S) -> Client<S> {
        Client {
            io: BufReader::new(io),
        }
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.io.get_mut().write_all(raw).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    pub async fn try_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_until(b'\n', &mut buf))
            .await
            .expect("reply within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        assert!(buf.ends_with(b"\r\n"), "{buf:?}");
        buf.truncate(buf.len() - 2);
        Some(String::from_utf8(buf).unwrap())
    }

    /// One (possibly multi-line) reply.
    pub async fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.try_line().await.expect("server closed the connection");
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
    }

    /// Sends a command and returns its one-line reply.
    pub async fn cmd1(&mut self, line: &str) -> String {
        let r = self.cmd(line).await;
        assert_eq!(r.len(), 1, "{r:?}");
        r.into_iter().next().unwrap()
    }

    pub async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a dot-stuffed message and the terminator; returns `n` replies.
    pub async fn data(&mut self, message: &[u8], n: usize) -> Vec<String> {
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

    pub async fn expect_closed(&mut self) {
        assert_eq!(self.try_line().await, None, "connection closed");
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
