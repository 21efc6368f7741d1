//! # mailroom-e2e
//!
//! The harness of Mailroom's end-to-end tests: it starts the real
//! `mailroomd` binary on 127.0.0.1 with a fresh data directory and a
//! generated config (IMAP, IMAPS, POP3, POP3S and LMTP on free ports, and an
//! LMTP Unix socket), creates users through the binary's own admin
//! commands, and runs real clients (Python's `imaplib`, `imapclient`,
//! `poplib` and `smtplib`, `mbsync`, `offlineimap`, `fetchmail`, `getmail`,
//! Postfix) against it. The tests themselves live in `tests/tests/`; the
//! client scripts in `tests/clients/` (and the Postfix/fetcher scripts of
//! the LMTP crate in `protocols/lmtp/tests/e2e/`, run through
//! [`Server::run_script`]).
//!
//! A missing client program is a test failure, never a skip: `.ci/run`
//! installs them all.
//!
//! Dependencies: `tempfile` (a scratch data directory per server, removed
//! when the test ends) and `mailroom-testkit` (the private PostgreSQL
//! cluster behind [`Store::Postgres`]); the clients are real programs, not
//! crates.
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
pub use dovecot::{Dovecot, DovecotOptions};

/// Which storage backend the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The in-memory store.
    Memory,
    /// The CRC on-disk store.
    Crc,
    /// The PostgreSQL store, on a new database of the test binary's private
    /// cluster (`mailroom_testkit::postgres::PgCluster::shared`).
    Postgres,
}

impl Store {
    /// The `store` value in the config file.
    pub fn config_name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Crc => "crc",
            Store::Postgres => "postgres",
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
    pop3: SocketAddr,
    pop3s: SocketAddr,
    lmtp: SocketAddr,
    lmtp_socket: PathBuf,
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
        assert!(
            candidate.exists(),
            "mailroomd not found at {}",
            candidate.display()
        );
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

    /// Starts a server with extra TOML appended to the generated config
    /// (after the `[auth]` table: bare keys there are `[auth]` keys).
    ///
    /// Every listener is on: IMAP, IMAPS, POP3, POP3S and LMTP on free
    /// loopback ports, and the LMTP Unix socket `<dir>/lmtp.sock`. The
    /// scratch directory is made 0755 so that Postfix's `lmtp` client
    /// (user `postfix`) reaches the socket; the data directory inside stays 0700.
    pub fn start_with(store: Store, extra_config: &str) -> Server {
        let store_config = match store {
            Store::Postgres => {
                let url = mailroom_testkit::postgres::PgCluster::shared().create_database("e2e");
                postgres_table(&url)
            }
            other => format!("store = \"{}\"\n", other.config_name()),
        };
        Server::start_config(&store_config, extra_config)
    }

    /// Starts a server on the PostgreSQL database at `url` (several
    /// servers on one URL are frontends of one store), with `extra_config`
    /// as in [`Server::start_with`].
    pub fn start_on_postgres(url: &str, extra_config: &str) -> Server {
        Server::start_config(&postgres_table(url), extra_config)
    }

    fn start_config(store_config: &str, extra_config: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod the scratch directory");
        }
        let data = dir.path().join("data");
        let config = dir.path().join("mailroomd.toml");
        let log = dir.path().join("server.log");
        let lmtp_socket = dir.path().join("lmtp.sock");
        let text = format!(
            "data_dir = \"{}\"\nlog_level = \"info\"\n{}\n[imap]\nlisten = \"127.0.0.1:0\"\n\n[imaps]\nlisten = \"127.0.0.1:0\"\n\n\
             [pop3]\nlisten = \"127.0.0.1:0\"\n\n[pop3s]\nlisten = \"127.0.0.1:0\"\n\n\
             [lmtp]\nlisten = \"127.0.0.1:0\"\nsocket = \"{}\"\n\n[auth]\nallow_plaintext = false\n{}\n",
            data.display(),
            store_config,
            lmtp_socket.display(),
            extra_config
        );
        std::fs::write(&config, text).expect("write config");
        let unset: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut server = Server {
            child: None,
            dir,
            config,
            imap: unset,
            imaps: unset,
            pop3: unset,
            pop3s: unset,
            lmtp: unset,
            lmtp_socket,
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
        let (mut imap, mut imaps, mut pop3, mut pop3s, mut lmtp) = (None, None, None, None, None);
        let mut lmtp_socket = None;
        loop {
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
            if line == "mailroomd: ready" {
                break;
            }
            // "mailroomd: lmtp-unix listening on /tmp/.../lmtp.sock"
            if let Some(path) = line.strip_prefix("mailroomd: lmtp-unix listening on ") {
                lmtp_socket = Some(PathBuf::from(path));
            }
            // "mailroomd: imap listening on 127.0.0.1:1143"
            if let Some((proto, addr)) = parse_listen_line(&line) {
                match proto.as_str() {
                    "imap" => imap = Some(addr),
                    "imaps" => imaps = Some(addr),
                    "pop3" => pop3 = Some(addr),
                    "pop3s" => pop3s = Some(addr),
                    "lmtp" => lmtp = Some(addr),
                    _ => {}
                }
            }
        }
        let missing = |what: &str| -> ! {
            panic!(
                "mailroomd printed no `{what} listening` line; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        };
        self.imap = imap.unwrap_or_else(|| missing("imap"));
        self.imaps = imaps.unwrap_or_else(|| missing("imaps"));
        self.pop3 = pop3.unwrap_or_else(|| missing("pop3"));
        self.pop3s = pop3s.unwrap_or_else(|| missing("pop3s"));
        self.lmtp = lmtp.unwrap_or_else(|| missing("lmtp"));
        let lmtp_socket = lmtp_socket.unwrap_or_else(|| missing("lmtp-unix"));
        assert_eq!(lmtp_socket, self.lmtp_socket, "the configured LMTP socket");
        self.child = Some(child);
    }

    /// Stops the server with SIGTERM and waits for it; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
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

    /// The plain (STLS) POP3 address.
    pub fn pop3_addr(&self) -> SocketAddr {
        self.pop3
    }

    /// The implicit-TLS POP3 address.
    pub fn pop3s_addr(&self) -> SocketAddr {
        self.pop3s
    }

    /// The LMTP TCP address.
    pub fn lmtp_addr(&self) -> SocketAddr {
        self.lmtp
    }

    /// The LMTP Unix socket (reachable by Postfix's `lmtp` client).
    pub fn lmtp_socket(&self) -> &Path {
        &self.lmtp_socket
    }

    /// The generated config file (for `mailroomd --config`).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Sets `user`'s storage quota (KiB) with `mailroomd quota set`, which
    /// reaches the running server through its admin socket.
    pub fn quota_set(&self, user: &str, storage_kib: u64) {
        let kib = storage_kib.to_string();
        let out = self.admin(&["quota", "set", user, "--storage", &kib], "");
        assert!(
            out.status.success(),
            "quota set failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The environment every client script gets: the addresses of every
    /// listener, the certificate, the scratch directory, and a command
    /// template that sets a quota (`MR_QUOTA_SET`, with `{user}` and `{kib}`).
    fn client_env(&self) -> Vec<(String, String)> {
        let quota_set = format!(
            "'{}' --config '{}' quota set {{user}} --storage {{kib}}",
            mailroomd_bin().display(),
            self.config.display()
        );
        [
            ("MR_HOST", "127.0.0.1".to_owned()),
            ("MR_IMAP_PORT", self.imap.port().to_string()),
            ("MR_IMAPS_PORT", self.imaps.port().to_string()),
            ("MR_POP3_PORT", self.pop3.port().to_string()),
            ("MR_POP3S_PORT", self.pop3s.port().to_string()),
            ("MR_LMTP_HOST", "127.0.0.1".to_owned()),
            ("MR_LMTP_PORT", self.lmtp.port().to_string()),
            ("MR_LMTP_SOCKET", self.lmtp_socket.display().to_string()),
            ("MR_CERT", self.cert_path().display().to_string()),
            ("MR_WORKDIR", self.dir.path().display().to_string()),
            ("MR_QUOTA_SET", quota_set),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Runs a bash script (path relative to the workspace root) with the
    /// [`Server::run_python`] environment plus `MR_POP3_TLS=stls` and
    /// `MR_CAFILE` (the server's certificate) and `env`; fails the test with
    /// its output and the server log unless it exits 0. Returns its output.
    pub fn run_script(&self, script: &str, env: &[(&str, &str)]) -> String {
        require_program("bash");
        let path = workspace_root().join(script);
        assert!(path.is_file(), "no script {}", path.display());
        let mut cmd = Command::new("bash");
        cmd.arg(&path)
            .envs(self.client_env())
            .env("MR_POP3_TLS", "stls")
            .env("MR_CAFILE", self.cert_path());
        self.run_client(script, cmd, env)
    }

    /// Runs a client command with extra `env`; fails the test with its
    /// output and the server log unless it exits 0. Returns its output.
    fn run_client(&self, what: &str, mut cmd: Command, env: &[(&str, &str)]) -> String {
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{what} failed:\n{text}\n--- server log ---\n{}",
            self.log()
        );
        text
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
        let out = self.admin(
            &["user", "add", user, "--password-stdin"],
            &format!("{password}\n"),
        );
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
    /// addresses in the environment (`MR_HOST`, `MR_IMAP_PORT`,
    /// `MR_IMAPS_PORT`, `MR_POP3_PORT`, `MR_POP3S_PORT`, `MR_LMTP_PORT`,
    /// `MR_LMTP_SOCKET`, `MR_CERT`, `MR_WORKDIR`, `MR_QUOTA_SET`); fails the
    /// test with its output on error.
    pub fn run_python(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        require_program("python3");
        let path = workspace_root().join("tests").join("clients").join(script);
        let mut cmd = Command::new("python3");
        cmd.arg(&path).args(args).envs(self.client_env());
        self.run_client(script, cmd, env)
    }
}

/// The `[store]` table of a PostgreSQL-backed server (a small pool: many
/// test servers share one private cluster).
fn postgres_table(url: &str) -> String {
    format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 8\n")
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
