//! Shared test harness: an IMAP server on 127.0.0.1 over the memory store,
//! the test directory, and a small raw IMAP client (tags, literals), built on
//! `mailroom_testkit`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;
#[allow(unused_imports)] // each test binary uses part of this module
pub use mailroom_testkit::tls_pair;
use mailroom_testkit::{LineClient, Spawned, StaticAuthenticator, spawn_on_loopback};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub const PASSWORD: &str = "secret";

/// alice, bob and carol at example.com with password "secret"; admin@example.com is a server admin.
/// Lookups find anyone. (A const named like a type: the tests build it as `Arc::new(TestAuth)`.)
#[allow(non_upper_case_globals)]
pub const TestAuth: StaticAuthenticator = StaticAuthenticator::new(&[
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "admin@example.com",
])
.password(PASSWORD)
.admins(&["admin@example.com"])
.lookup_anyone();

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    server: Spawned<std::io::Result<()>>,
}

impl TestServer {
    /// Stops the server and returns what `serve` returned.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.server.stop_and_join().await.expect("joined once")
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
    let server = spawn_on_loopback(|listener, stop| server.serve(listener, mode, stop)).await;
    TestServer {
        addr: server.addr(),
        store,
        server,
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How long the client waits for any one line or literal.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A raw IMAP client: sends lines, reads responses with literals inlined.
pub struct Client {
    pub io: LineClient<Box<dyn Io>>,
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
            io: LineClient::with_timeout(io, READ_TIMEOUT),
            next_tag: 0,
            greeting: String::new(),
        };
        c.greeting = c.read_response().await.expect("greeting");
        c
    }

    /// A client over an already greeted connection (after STARTTLS).
    pub fn without_greeting(io: Box<dyn Io>) -> Client {
        Client {
            io: LineClient::with_timeout(io, READ_TIMEOUT),
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
        self.io.send(bytes).await;
    }

    /// One response line with any literals inlined; `None` at EOF.
    pub async fn read_response(&mut self) -> Option<String> {
        let mut out = Vec::new();
        loop {
            let Some(line) = self.io.read_raw_line().await else {
                return (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned());
            };
            out.extend_from_slice(&line);
            if let Some(len) = literal_len(&line) {
                out.extend_from_slice(&self.io.read_exact(len).await?);
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
