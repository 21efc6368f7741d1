//! Test harness: a POP3 server on 127.0.0.1 over the memory store, a static
//! authenticator, a line-oriented client, and TLS material from rcgen.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    Authenticator, Credentials, Delivery, DeliveryOutcome, DeliveryRequest, Error, MailboxName,
    MailboxRef, Principal, Quota, Recipient, Storage,
};
use mailroom_pop3::{PlaintextAuth, Pop3Config, Pop3Server, TlsMode};
use mailroom_store_memory::MemoryStore;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const PASSWORD: &str = "correct horse";

/// Users with passwords; PLAIN and LOGIN.
#[derive(Debug)]
pub struct StaticAuth {
    users: HashMap<String, String>,
}

impl StaticAuth {
    pub fn new() -> StaticAuth {
        StaticAuth {
            users: [(ALICE, PASSWORD), (BOB, PASSWORD)]
                .into_iter()
                .map(|(u, p)| (u.to_owned(), p.to_owned()))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for StaticAuth {
    async fn authenticate(&self, c: &Credentials) -> mailroom_core::Result<Principal> {
        match self.users.get(&c.authcid) {
            Some(p) if *p == c.password && c.authzid.as_ref().is_none_or(|z| *z == c.authcid) => {
                Ok(Principal::user(c.authcid.clone()))
            }
            _ => Err(Error::AuthFailed),
        }
    }

    async fn lookup(&self, user: &str) -> mailroom_core::Result<Option<Principal>> {
        Ok(self.users.contains_key(user).then(|| Principal::user(user)))
    }
}

pub fn test_config() -> Pop3Config {
    let mut c = Pop3Config::default();
    c.hostname = "pop.test".into();
    c.auth_failure_delay = Duration::ZERO;
    c.shutdown_grace = Duration::from_secs(2);
    c
}

pub struct Harness {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    pub server: Pop3Server,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), mailroom_pop3::Pop3Error>>>,
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
        let storage: Arc<dyn Storage> = store.clone();
        let mut server = Pop3Server::new(storage, Arc::new(StaticAuth::new()), config);
        if let Some(tls) = tls {
            server = server.with_tls(tls);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve(listener, mode, async {
            let _ = rx.await;
        }));
        Harness {
            addr,
            store,
            server,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits for `serve` to return.
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

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.store.clone()
    }

    /// Delivers through the standard core pipeline (quota check, filing).
    pub async fn deliver(&self, user: &str, message: &[u8]) {
        let quota: Arc<dyn Quota> = self.store.clone();
        let pipeline = Pipeline::standard(self.storage(), quota);
        let out = pipeline
            .deliver(&DeliveryRequest {
                return_path: Some("sender@example.org".into()),
                recipients: vec![Recipient {
                    user: user.into(),
                    detail: None,
                }],
                message: Bytes::copy_from_slice(message),
            })
            .await;
        assert!(
            matches!(out.as_slice(), [DeliveryOutcome::Delivered { .. }]),
            "{out:?}"
        );
    }

    pub async fn inbox_uids(&self, user: &str) -> Vec<u32> {
        let mb = self
            .store
            .open(&MailboxRef::new(user, MailboxName::inbox()), user)
            .await
            .unwrap();
        mb.snapshot()
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid.0)
            .collect()
    }

    pub async fn connect(&self) -> Client<TcpStream> {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        Client::new(stream)
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

    /// One line without CRLF; panics on EOF (use `try_line` to expect it).
    pub async fn line(&mut self) -> String {
        self.try_line().await.expect("server closed the connection")
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
        assert!(buf.ends_with(b"\r\n"), "line ends with CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        Some(String::from_utf8(buf).unwrap())
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await
    }

    /// The raw lines of a multi-line body, still stuffed, up to (not including) ".".
    pub async fn raw_body(&mut self) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            self.io.read_until(b'\n', &mut buf).await.unwrap();
            assert!(buf.ends_with(b"\r\n"), "{buf:?}");
            buf.truncate(buf.len() - 2);
            if buf == b"." {
                return lines;
            }
            lines.push(buf);
        }
    }

    /// A multi-line reply: status line and the unstuffed body lines.
    pub async fn multi(&mut self, line: &str) -> (String, Vec<String>) {
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

    /// The message as the client reassembles it: unstuffed lines joined by CRLF.
    pub async fn retrieve(&mut self, line: &str) -> (String, Vec<u8>) {
        let status = self.cmd(line).await;
        assert!(status.starts_with("+OK"), "{line}: {status}");
        let mut msg = Vec::new();
        for l in self.raw_body().await {
            msg.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
            msg.extend_from_slice(b"\r\n");
        }
        (status, msg)
    }

    pub async fn expect_closed(&mut self) {
        assert_eq!(self.try_line().await, None, "connection closed");
    }
}

/// A self-signed certificate for "localhost": the server config and a
/// client config trusting it.
pub fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

pub async fn tls_connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    client: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<S> {
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(client)
        .connect(name, io)
        .await
        .unwrap()
}

pub fn plaintext_tls_only(mut c: Pop3Config) -> Pop3Config {
    c.plaintext_auth = PlaintextAuth::TlsOnly;
    c
}
