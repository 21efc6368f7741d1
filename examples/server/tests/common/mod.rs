//! Helpers shared by the integration tests: run the built `mailroomd`,
//! read its startup lines, talk IMAP over plain TCP and TLS.

#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub mod replication;

pub const BIN: &str = env!("CARGO_BIN_EXE_mailroomd");

/// Runs `mailroomd ARGS` in `cwd` with `stdin`, waiting for it to finish.
pub fn run(cwd: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that does not read stdin may exit before we write: ignore EPIPE.
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Adds `user` with password `pw` through `mailroomd user add`.
pub fn add_user(cwd: &Path, cfg: &str, user: &str, pw: &str) {
    let out = run(
        cwd,
        &["-c", cfg, "user", "add", user, "--password-stdin"],
        &format!("{pw}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Writes a config with IMAP and IMAPS on free loopback ports.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("mailroomd.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\n\n[imap]\nlisten = \"127.0.0.1:0\"\n\n[imaps]\nlisten = \"127.0.0.1:0\"\n\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

/// A running server; killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    pub imap: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    pub lmtp: Option<SocketAddr>,
    /// From the `mailroomd: lmtp-unix listening on PATH` line.
    pub lmtp_unix: Option<PathBuf>,
    /// From the `mailroomd: admin socket PATH` line.
    pub admin_socket: Option<PathBuf>,
    /// From the `mailroomd: replication listening on ADDR` line.
    pub replication: Option<SocketAddr>,
    /// From the `mailroomd: metrics endpoint http://ADDR/metrics` line.
    pub metrics: Option<SocketAddr>,
    pub stderr_path: PathBuf,
}

impl Server {
    /// Starts `mailroomd ARGS` in `cwd` and waits for `mailroomd: ready`.
    pub fn start(cwd: &Path, args: &[&str]) -> Server {
        let stderr_path = cwd.join(format!("stderr-{}.log", unique()));
        let log = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new(BIN)
            .current_dir(cwd)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            lines: rx,
            seen: Vec::new(),
            imap: None,
            imaps: None,
            pop3: None,
            pop3s: None,
            lmtp: None,
            lmtp_unix: None,
            admin_socket: None,
            replication: None,
            metrics: None,
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match server.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!("no `ready` line; stderr:\n{}", server.stderr()),
            };
            if let Some(rest) = line.strip_prefix("mailroomd: admin socket ") {
                server.admin_socket = Some(PathBuf::from(rest));
            }
            if let Some(rest) = line
                .strip_prefix("mailroomd: metrics endpoint http://")
                .and_then(|r| r.strip_suffix("/metrics"))
            {
                server.metrics = Some(rest.parse().unwrap());
            }
            if let Some(rest) = line.strip_prefix("mailroomd: lmtp-unix listening on ") {
                server.lmtp_unix = Some(PathBuf::from(rest));
            } else if let Some(rest) = line.strip_prefix("mailroomd: ")
                && let Some((proto, addr)) = rest.split_once(" listening on ")
            {
                let addr: SocketAddr = addr.parse().unwrap();
                assert_ne!(addr.port(), 0, "the real port is printed");
                match proto {
                    "imap" => server.imap = Some(addr),
                    "imaps" => server.imaps = Some(addr),
                    "pop3" => server.pop3 = Some(addr),
                    "pop3s" => server.pop3s = Some(addr),
                    "lmtp" => server.lmtp = Some(addr),
                    "replication" => server.replication = Some(addr),
                    other => panic!("unexpected listener {other}"),
                }
            }
            let ready = line == "mailroomd: ready";
            server.seen.push(line);
            if ready {
                return server;
            }
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends a signal and waits (up to `limit`) for the exit status.
    pub fn signal_and_wait(&mut self, sig: &str, limit: Duration) -> Option<ExitStatus> {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A line-oriented IMAP client over any stream.
pub struct Imap<S: Read + Write> {
    reader: BufReader<S>,
    tag: u32,
}

impl<S: Read + Write> Imap<S> {
    pub fn new(stream: S) -> Imap<S> {
        Imap {
            reader: BufReader::new(stream),
            tag: 0,
        }
    }

    /// Sends one raw line (CRLF added) and reads one line back: for the
    /// line-per-reply protocols (POP3, LMTP) over the same streams.
    pub fn raw(&mut self, line: &str) -> String {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        stream.flush().unwrap();
        self.line()
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Sends a command; returns the untagged lines and the tagged status line.
    pub fn command(&mut self, cmd: &str) -> (Vec<String>, String) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .unwrap();
        stream.flush().unwrap();
        let mut untagged = Vec::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "connection closed during {cmd:?}");
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (untagged, rest.trim_end().to_owned());
            }
            untagged.push(line);
        }
    }

    /// `APPEND mailbox {n}` with a synchronizing literal; returns the
    /// tagged status (also when the server refuses before the literal).
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> String {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{tag} APPEND {mailbox} {{{}}}\r\n", message.len()).as_bytes())
            .unwrap();
        stream.flush().unwrap();
        let line = self.line();
        if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
            return rest.trim_end().to_owned();
        }
        assert!(line.starts_with('+'), "no continuation: {line:?}");
        let stream = self.reader.get_mut();
        stream.write_all(message).unwrap();
        stream.write_all(b"\r\n").unwrap();
        stream.flush().unwrap();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "connection closed during APPEND");
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return rest.trim_end().to_owned();
            }
        }
    }

    /// `UID FETCH uid BODY.PEEK[]`: the message bytes, exactly.
    pub fn fetch_body(&mut self, uid: u32) -> Vec<u8> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{tag} UID FETCH {uid} BODY.PEEK[]\r\n").as_bytes())
            .unwrap();
        stream.flush().unwrap();
        let mut body = None;
        loop {
            let mut raw = Vec::new();
            self.reader.read_until(b'\n', &mut raw).unwrap();
            assert!(!raw.is_empty(), "connection closed during FETCH");
            let line = String::from_utf8_lossy(&raw).into_owned();
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{rest}");
                return body.expect("a BODY[] literal");
            }
            let trimmed = line.trim_end();
            if trimmed.contains("BODY[]")
                && let Some(open) = trimmed.rfind('{')
                && trimmed.ends_with('}')
            {
                let n: usize = trimmed[open + 1..trimmed.len() - 1].parse().unwrap();
                let mut bytes = vec![0; n];
                self.reader.read_exact(&mut bytes).unwrap();
                body = Some(bytes);
            }
        }
    }

    pub fn into_inner(self) -> S {
        self.reader.into_inner()
    }

    /// The stream (e.g. to read TLS parameters).
    pub fn get_ref(&self) -> &S {
        self.reader.get_ref()
    }
}

/// One LMTP transaction that may fail (the server may be killed under it):
/// the reply to the data, or `None` if the connection broke before it.
pub fn try_lmtp(addr: SocketAddr, rcpt: &str, message: &str) -> Option<String> {
    let stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut r = BufReader::new(stream);
    let read = |r: &mut BufReader<TcpStream>| -> Option<String> {
        let mut line = String::new();
        (r.read_line(&mut line).ok()? > 0).then_some(line)
    };
    read(&mut r)?;
    write!(r.get_mut(), "LHLO test\r\n").ok()?;
    while read(&mut r)?.starts_with("250-") {}
    write!(
        r.get_mut(),
        "MAIL FROM:<sender@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
    )
    .ok()?;
    read(&mut r)?;
    read(&mut r)?;
    read(&mut r)?;
    write!(r.get_mut(), "{message}.\r\n").ok()?;
    let data = read(&mut r)?.trim_end().to_owned();
    let _ = write!(r.get_mut(), "QUIT\r\n");
    Some(data)
}

pub fn plain(addr: SocketAddr) -> Imap<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    Imap::new(s)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects with TLS, trusting only `cert_pem`.
pub fn tls(addr: SocketAddr, cert_pem: &Path) -> Imap<TlsStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(cert_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    Imap::new(rustls::StreamOwned::new(conn, sock))
}
