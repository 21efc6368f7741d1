//! # mailroom-e2e
//!
//! The harness of Mailroom's end-to-end tests: it starts the real
//! `mailroomd` binary on 127.0.0.1 with a fresh data directory and a
//! generated config, creates users through the binary's own admin commands,
//! and runs real clients (Python's `imaplib` and `imapclient`, `mbsync`,
//! `offlineimap`) against it. The tests themselves live in `tests/tests/`;
//! the client scripts in `tests/clients/`.
//!
//! A missing client program is a test failure, never a skip: `.ci/run`
//! installs them all.
//!
//! ```no_run
//! use mailroom_e2e::{Server, Store};
//! let server = Server::start(Store::Memory);
//! server.add_user("alice@example.com", "secret");
//! println!("IMAP on {}", server.imap_addr());
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test harness: a panic is a test failure with its message

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod dovecot;
pub use dovecot::Dovecot;

/// Which storage backend the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The in-memory store.
    Memory,
    /// The CRC on-disk store.
    Crc,
}

impl Store {
    /// The `store` value in the config file.
    pub fn config_name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Crc => "crc",
        }
    }
}

/// A running `mailroomd` with its own data directory; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    config: PathBuf,
    imap: SocketAddr,
    imaps: SocketAddr,
    log: PathBuf,
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `mailroomd` binary: `$MAILROOMD_BIN`, or the debug build next to
/// this test executable, brought up to date once per test process (so
/// `cargo test -p mailroom-e2e` never runs a stale server).
pub fn mailroomd_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("MAILROOMD_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().unwrap_or_default();
        // target/<profile>/deps/<test-exe> -> target/<profile>/mailroomd
        let candidate = exe
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join("mailroomd"))
            .unwrap_or_default();
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "mailroomd"])
            .current_dir(workspace_root())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "could not build mailroomd ({})",
            candidate.display()
        );
        assert!(candidate.exists(), "mailroomd not found at {}", candidate.display());
        candidate
    })
    .clone()
}

/// Fails the test with a clear message if an external program is missing.
pub fn require_program(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "required client program `{name}` is not installed (run .ci/run, which installs every client)"
    );
}

impl Server {
    /// Starts a server on free loopback ports with the given store.
    pub fn start(store: Store) -> Server {
        Server::start_with(store, "")
    }

    /// Starts a server with extra TOML appended to the generated config.
    pub fn start_with(store: Store, extra_config: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let config = dir.path().join("mailroomd.toml");
        let log = dir.path().join("server.log");
        let text = format!(
            "data_dir = \"{}\"\nstore = \"{}\"\nlog_level = \"info\"\n\n[imap]\nlisten = \"127.0.0.1:0\"\n\n[imaps]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nallow_plaintext = false\n{}\n",
            data.display(),
            store.config_name(),
            extra_config
        );
        std::fs::write(&config, text).expect("write config");
        let mut server = Server {
            child: None,
            dir,
            config,
            imap: "127.0.0.1:0".parse().expect("addr"),
            imaps: "127.0.0.1:0".parse().expect("addr"),
            log,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("log file");
        let mut child = Command::new(mailroomd_bin())
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn mailroomd");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    // keep draining so the server never blocks on a full pipe
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut imap, mut imaps) = (None, None);
        while imap.is_none() || imaps.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "mailroomd did not report its listeners in time; log:\n{}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
            };
            // "mailroomd: imap listening on 127.0.0.1:1143"
            if let Some((proto, addr)) = parse_listen_line(&line) {
                match proto.as_str() {
                    "imap" => imap = Some(addr),
                    "imaps" => imaps = Some(addr),
                    _ => {}
                }
            }
        }
        self.imap = imap.expect("imap addr");
        self.imaps = imaps.expect("imaps addr");
        self.child = Some(child);
    }

    /// Stops the server with SIGTERM and waits for it; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// Stops and starts the server again on new ports, same data directory.
    pub fn restart(&mut self) {
        assert!(self.stop(), "mailroomd did not exit cleanly on SIGTERM");
        self.spawn();
    }

    /// The plain (STARTTLS) IMAP address.
    pub fn imap_addr(&self) -> SocketAddr {
        self.imap
    }

    /// The implicit-TLS IMAP address.
    pub fn imaps_addr(&self) -> SocketAddr {
        self.imaps
    }

    /// The scratch directory of this server (data, config, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The certificate the server generated (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("data").join("tls").join("cert.pem")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `mailroomd --config <cfg> <args>` with `stdin`, returning its output.
    pub fn admin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(mailroomd_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailroomd admin command");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("admin command output")
    }

    /// Adds a user through `mailroomd user add --password-stdin`.
    pub fn add_user(&self, user: &str, password: &str) {
        let out = self.admin(&["user", "add", user, "--password-stdin"], &format!("{password}\n"));
        assert!(
            out.status.success(),
            "user add failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Reads the greeting of a plain connection (a liveness probe).
    pub fn greeting(&self) -> String {
        let mut s = TcpStream::connect(self.imap).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Runs a Python client script from `tests/clients/` with the server's
    /// addresses in the environment; fails the test with its output on error.
    pub fn run_python(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        require_program("python3");
        let path = workspace_root().join("tests").join("clients").join(script);
        let mut cmd = Command::new("python3");
        cmd.arg(&path)
            .args(args)
            .env("MR_HOST", "127.0.0.1")
            .env("MR_IMAP_PORT", self.imap.port().to_string())
            .env("MR_IMAPS_PORT", self.imaps.port().to_string())
            .env("MR_CERT", self.cert_path())
            .env("MR_WORKDIR", self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run python3");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{script} failed:\n{text}\n--- server log ---\n{}",
            self.log()
        );
        text
    }
}

fn parse_listen_line(line: &str) -> Option<(String, SocketAddr)> {
    let rest = line.strip_prefix("mailroomd: ")?;
    let (proto, addr) = rest.split_once(" listening on ")?;
    Some((proto.trim().to_owned(), addr.trim().parse().ok()?))
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_line() {
        let (p, a) = parse_listen_line("mailroomd: imaps listening on 127.0.0.1:1993").unwrap();
        assert_eq!(p, "imaps");
        assert_eq!(a.port(), 1993);
        assert!(parse_listen_line("other").is_none());
    }
}
