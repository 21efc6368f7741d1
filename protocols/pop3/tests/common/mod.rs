//! Test harness: a POP3 server on 127.0.0.1 over the memory store, the test
//! directory, and POP3 replies (status lines, dot-stuffed multi-line bodies)
//! on top of the shared line client, built on `mailroom_testkit`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::throttle::ThrottleConfig;
use mailroom_core::{Authenticator, MailboxName, Storage};
use mailroom_pop3::{PlaintextAuth, Pop3Config, Pop3Error, Pop3Server, TlsMode};
use mailroom_store_memory::MemoryStore;
#[allow(unused_imports)] // each test binary uses part of this module
pub use mailroom_testkit::{LineClient as Client, tls_connect, tls_pair};
use mailroom_testkit::{Spawned, StaticAuthenticator, spawn_on_loopback, store};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const PASSWORD: &str = "correct horse";

/// The test directory: alice and bob with [`PASSWORD`].
pub const USERS: StaticAuthenticator = StaticAuthenticator::new(&[ALICE, BOB]).password(PASSWORD);

/// The test directory with APOP: alice and bob with [`PASSWORD`].
pub const APOP_USERS: StaticAuthenticator = StaticAuthenticator::new(&[ALICE, BOB])
    .password(PASSWORD)
    .apop();

/// The tests build the directory as `StaticAuth::new()`.
#[derive(Debug)]
pub struct StaticAuth;

impl StaticAuth {
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> StaticAuthenticator {
        USERS
    }
}

pub fn test_config() -> Pop3Config {
    let mut c = Pop3Config::default();
    c.hostname = "pop.test".into();
    c.auth_failure_delay = Duration::ZERO;
    // The throttle stays on (it is the default), with delays small enough
    // for tests that fail logins on purpose.
    c.login_throttle = Some(ThrottleConfig {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        ..ThrottleConfig::default()
    });
    c.shutdown_grace = Duration::from_secs(2);
    c
}

pub struct Harness {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    pub server: Pop3Server,
    serving: Spawned<Result<(), Pop3Error>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(test_config(), None, TlsMode::Plain).await
    }

    pub async fn start_with(
        config: Pop3Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        mode: TlsMode,
    ) -> Harness {
        let store = Arc::new(MemoryStore::new());
        Harness::start_on(store, config, tls, mode).await
    }

    pub async fn start_on(
        store: Arc<MemoryStore>,
        config: Pop3Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        mode: TlsMode,
    ) -> Harness {
        Harness::start_full(store, config, tls, mode, Arc::new(USERS)).await
    }

    /// A plain server over a new store whose users come from `auth`.
    pub async fn start_with_auth(config: Pop3Config, auth: Arc<dyn Authenticator>) -> Harness {
        let store = Arc::new(MemoryStore::new());
        Harness::start_full(store, config, None, TlsMode::Plain, auth).await
    }

    pub async fn start_full(
        store: Arc<MemoryStore>,
        config: Pop3Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        mode: TlsMode,
        auth: Arc<dyn Authenticator>,
    ) -> Harness {
        let storage: Arc<dyn Storage> = store.clone();
        let mut server = Pop3Server::new(storage, auth, config);
        if let Some(tls) = tls {
            server = server.with_tls(tls);
        }
        let serve = server.clone();
        let serving = spawn_on_loopback(|listener, stop| serve.serve(listener, mode, stop)).await;
        Harness {
            addr: serving.addr(),
            store,
            server,
            serving,
        }
    }

    /// Signals shutdown and waits for `serve` to return `Ok`.
    pub async fn shutdown(&mut self) {
        self.serving.shutdown().await;
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.store.clone()
    }

    /// Delivers through the standard core pipeline (quota check, filing).
    pub async fn deliver(&self, user: &str, message: &[u8]) {
        store::deliver(&self.store, user, message).await;
    }

    pub async fn inbox_uids(&self, user: &str) -> Vec<u32> {
        store::messages(&self.store, user, MailboxName::inbox())
            .await
            .into_iter()
            .map(|(uid, _)| uid.0)
            .collect()
    }

    pub async fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(self.addr).await.unwrap())
    }

    /// Connects, checks the greeting and logs in with USER/PASS.
    pub async fn login(&self, user: &str) -> Client<TcpStream> {
        let mut c = self.connect().await;
        let greeting = c.line().await;
        assert!(greeting.starts_with("+OK"), "{greeting}");
        assert_eq!(c.cmd(&format!("USER {user}")).await, "+OK send PASS");
        let r = c.cmd(&format!("PASS {PASSWORD}")).await;
        assert!(r.starts_with("+OK"), "{r}");
        c
    }
}

/// POP3 replies on top of the shared line client (which gives `send`,
/// `line`, `try_line` and `expect_closed`).
pub trait Pop3Client {
    /// Sends a command and returns its status line.
    async fn cmd(&mut self, line: &str) -> String;

    /// The raw lines of a multi-line body, still stuffed, up to (not including) ".".
    async fn raw_body(&mut self) -> Vec<Vec<u8>>;

    /// A multi-line reply: status line and the unstuffed body lines.
    async fn multi(&mut self, line: &str) -> (String, Vec<String>);

    /// The message as the client reassembles it: unstuffed lines joined by CRLF.
    async fn retrieve(&mut self, line: &str) -> (String, Vec<u8>);
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3Client for Client<S> {
    async fn cmd(&mut self, line: &str) -> String {
        self.send_line(line).await;
        self.line().await
    }

    async fn raw_body(&mut self) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .try_line_bytes()
                .await
                .expect("EOF inside a multi-line reply");
            if line == b"." {
                return lines;
            }
            lines.push(line);
        }
    }

    async fn multi(&mut self, line: &str) -> (String, Vec<String>) {
        let status = self.cmd(line).await;
        if !status.starts_with("+OK") {
            return (status, Vec::new());
        }
        let body = self
            .raw_body()
            .await
            .into_iter()
            .map(|l| {
                let l = l.strip_prefix(b".").map(<[u8]>::to_vec).unwrap_or(l);
                String::from_utf8(l).unwrap()
            })
            .collect();
        (status, body)
    }

    async fn retrieve(&mut self, line: &str) -> (String, Vec<u8>) {
        let status = self.cmd(line).await;
        assert!(status.starts_with("+OK"), "{line}: {status}");
        let mut msg = Vec::new();
        for l in self.raw_body().await {
            msg.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
            msg.extend_from_slice(b"\r\n");
        }
        (status, msg)
    }
}

pub fn plaintext_tls_only(mut c: Pop3Config) -> Pop3Config {
    c.plaintext_auth = PlaintextAuth::TlsOnly;
    c
}
