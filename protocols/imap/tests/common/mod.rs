//! Shared test harness: a server on 127.0.0.1 over the memory store, a
//! static authenticator, and a small raw IMAP client.
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

use async_trait::async_trait;
use mailroom_core::{Authenticator, Credentials, Error, Principal, Result, Roles};
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "secret";

/// alice, bob and carol at example.com with password "secret"; admin@example.com is a server admin.
#[derive(Debug)]
pub struct TestAuth;

#[async_trait]
impl Authenticator for TestAuth {
    async fn authenticate(&self, c: &Credentials) -> Result<Principal> {
        let known = [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "admin@example.com",
        ];
        if c.password != PASSWORD || !known.contains(&c.authcid.as_str()) {
            return Err(Error::AuthFailed);
        }
        let mut p = Principal::user(c.authcid.clone());
        if c.authcid == "admin@example.com" {
            p.roles = Roles {
                domain_admin: true,
                server_admin: true,
            };
        }
        Ok(p)
    }

    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        Ok(Some(Principal::user(user)))
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.expect("server task panicked")
    }
}

/// A config suited to tests: plaintext login allowed, short throttle.
pub fn test_config() -> ImapConfig {
    ImapConfig {
        allow_plaintext_auth: true,
        login_failure_delay: Duration::from_millis(10),
        login_failure_max_delay: Duration::from_millis(50),
        ..ImapConfig::default()
    }
}

pub async fn start() -> TestServer {
    start_with(test_config(), None, TlsMode::Plain).await
}

pub async fn start_with(
    config: ImapConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    mode: TlsMode,
) -> TestServer {
    let store = Arc::new(MemoryStore::new());
    let quota: Arc<dyn mailroom_core::Quota> = store.clone();
    let mut server = ImapServer::new(store.clone(), Some(quota), Arc::new(TestAuth), config);
    if let Some(t) = tls {
        server = server.with_tls(t);
    }
    start_server(server, store, mode).await
}

pub async fn start_server(
    server: ImapServer,
    store: Arc<MemoryStore>,
    mode: TlsMode,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.serve(listener, mode, async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        store,
        stop: Some(tx),
        task,
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw IMAP client: sends lines, reads responses with literals inlined.
pub struct Client {
    pub io: BufReader<Box<dyn Io>>,
    next_tag: u32,
    /// The greeting line.
    pub greeting: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.unwrap();
        Client::over(Box::new(s)).await
    }

    pub async fn over(io: Box<dyn Io>) -> Client {
        let mut c = Client {
            io: BufReader::new(io),
            next_tag: 0,
            greeting: String::new(),
        };
        c.greeting = c.read_response().await.expect("greeting");
        c
    }

    /// A client over an already greeted connection (after STARTTLS).
    pub fn without_greeting(io: Box<dyn Io>) -> Client {
        Client {
            io: BufReader::new(io),
            next_tag: 100,
            greeting: String::new(),
        }
    }

    pub async fn login(addr: SocketAddr, user: &str) -> Client {
        let mut c = Client::connect(addr).await;
        let r = c.ok(&format!("LOGIN {user} {PASSWORD}")).await;
        assert!(r.contains("OK"), "{r}");
        c
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// One response line with any literals inlined; `None` at EOF.
    pub async fn read_response(&mut self) -> Option<String> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(
                Duration::from_secs(20),
                self.io.read_until(b'\n', &mut line),
            )
            .await
            .expect("timed out waiting for the server")
            .ok()?;
            if n == 0 {
                return if out.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&out).into_owned())
                };
            }
            out.extend_from_slice(&line);
            if let Some(len) = literal_len(&line) {
                let mut lit = vec![0u8; len];
                self.io.read_exact(&mut lit).await.ok()?;
                out.extend_from_slice(&lit);
                continue;
            }
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
    }

    pub fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("t{}", self.next_tag)
    }

    /// Sends a command and returns everything up to and including the tagged response.
    pub async fn cmd(&mut self, command: &str) -> String {
        let tag = self.tag();
        self.send_raw(format!("{tag} {command}\r\n").as_bytes())
            .await;
        self.until_tagged(&tag).await
    }

    pub async fn until_tagged(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let r = self
                .read_response()
                .await
                .unwrap_or_else(|| panic!("EOF before tagged response; got: {all}"));
            all.push_str(&r);
            if r.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    /// Like `cmd`, asserting the tagged status is OK.
    pub async fn ok(&mut self, command: &str) -> String {
        let r = self.cmd(command).await;
        let last = r.lines().last().unwrap_or_default().to_owned();
        assert!(
            last.split_whitespace().nth(1) == Some("OK"),
            "expected OK for {command:?}, got:\n{r}"
        );
        r
    }

    /// The tagged status word of a `cmd` result.
    pub fn status(r: &str) -> &str {
        r.lines()
            .last()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
    }

    /// Appends with a synchronising literal.
    pub async fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> String {
        let tag = self.tag();
        self.send_raw(
            format!("{tag} APPEND {mailbox} ({flags}) {{{}}}\r\n", message.len()).as_bytes(),
        )
        .await;
        let cont = self.read_response().await.unwrap();
        assert!(cont.starts_with('+'), "expected continuation, got {cont}");
        self.send_raw(message).await;
        self.send_raw(b"\r\n").await;
        self.until_tagged(&tag).await
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// A small message.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: {subject}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{subject}@example.com>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Lines of `r` that start with `* ` and contain `word`.
pub fn untagged<'a>(r: &'a str, word: &str) -> Vec<&'a str> {
    r.lines()
        .filter(|l| l.starts_with("* ") && l.contains(word))
        .collect()
}

/// The numbers of a `* SEARCH` response.
pub fn search_ids(r: &str) -> Vec<u32> {
    r.lines()
        .find(|l| l.starts_with("* SEARCH"))
        .map(|l| {
            l["* SEARCH".len()..]
                .split_whitespace()
                .take_while(|w| !w.starts_with('('))
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A self-signed TLS config for "localhost" and a client config trusting it.
pub fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
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
