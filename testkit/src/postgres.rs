//! A private PostgreSQL cluster for tests: `initdb` into a fresh folder under
//! the system's temporary directory, `postgres` on a free loopback port with
//! its Unix socket in that folder, trust authentication, nothing shared with
//! a system service.
//!
//! PostgreSQL refuses to run as root, so when the test runs as root (CI) the
//! cluster's folder is handed to the `postgres` user that Debian's package
//! creates and the server runs as that user (`runuser`); otherwise it runs
//! as the current user. The binaries are looked up in `$PG_BIN`, then
//! `/usr/lib/postgresql/<newest>/bin`, then `$PATH`.
//!
//! A [`PgCluster`] stops its server and removes its folder when dropped. A
//! cluster shared by a whole test binary ([`PgCluster::shared`]) is never
//! dropped (statics are not), so it is stopped by a small guard process
//! instead: the guard waits for end of file on a pipe whose writing end only
//! the test process holds, which the kernel closes when that process ends
//! for any reason, a panic or `kill -9` included; then it stops the server
//! and removes the folder.
//!
//! ```no_run
//! let cluster = mailroom_testkit::postgres::PgCluster::start();
//! let url = cluster.create_database("example");
//! assert!(url.starts_with("postgresql://"));
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// One private cluster (see the [module documentation](self)).
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    user: String,
    as_postgres: bool,
    bin: PathBuf,
    /// The guard process (its stdin is the pipe it waits on).
    guard: Option<Child>,
    /// `fsync=on` rather than off.
    durable: bool,
}

/// Numbers the databases of one process.
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn bin_dir() -> PathBuf {
    if let Some(b) = std::env::var_os("PG_BIN") {
        return PathBuf::from(b);
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_unstable();
    match versions.last() {
        Some(v) => root.join(v.to_string()).join("bin"),
        None => PathBuf::new(),
    }
}

fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("no free loopback port for PostgreSQL: {e}"),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl PgCluster {
    /// Creates and starts a cluster with `fsync=off` (tests: a crash of
    /// the machine is not what they test); panics (saying why) if
    /// PostgreSQL is not installed or does not start within 60 s.
    pub fn start() -> PgCluster {
        PgCluster::start_with(false)
    }

    /// A cluster that syncs its write-ahead log as a production one does
    /// (`fsync=on`, `synchronous_commit=on`): for benchmarks.
    pub fn start_durable() -> PgCluster {
        PgCluster::start_with(true)
    }

    fn start_with(durable: bool) -> PgCluster {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = match tempfile::Builder::new()
            .prefix("mailroom-pg-")
            .tempdir_in(std::env::temp_dir())
        {
            Ok(d) => d.keep(),
            Err(e) => panic!("temporary folder for PostgreSQL: {e}"),
        };
        let user = if as_postgres {
            "postgres".to_owned()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned())
        };
        let mut cluster = PgCluster {
            dir,
            port: free_port(),
            user,
            as_postgres,
            bin,
            guard: None,
            durable,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&cluster.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", cluster.dir.display());
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                &cluster.user.clone(),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = cluster.server_options();
        let log = format!("{}/log", cluster.dir.display());
        cluster.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start",
            ],
        );
        cluster.guard = Some(cluster.spawn_guard());
        cluster
    }

    /// One cluster for the whole test binary, started on first use and
    /// stopped by its guard process when the binary exits.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(PgCluster::start)
    }

    fn server_options(&self) -> String {
        format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync={} -c max_connections=200",
            self.port,
            self.dir.display(),
            if self.durable { "on" } else { "off" }
        )
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.display())
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).stdin(Stdio::null()).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "{tool} {args:?} failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "{tool} could not run ({e}): is Debian's postgresql installed? (looked in {})",
                self.bin.display()
            ),
        }
    }

    /// The guard: stops the server and removes the folder once stdin ends.
    fn spawn_guard(&self) -> Child {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                self.data()
            )
        } else {
            format!("{} -D {} -m immediate stop", pg_ctl.display(), self.data())
        };
        let script = format!(
            "cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf {}",
            self.dir.display()
        );
        match Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("guard process for PostgreSQL: {e}"),
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{}/{database}",
            self.user, self.port
        )
    }

    /// Creates a new, empty database named after `prefix` and a number
    /// unique in this process, and returns its URL.
    pub fn create_database(&self, prefix: &str) -> String {
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", &self.user, &name],
        );
        self.url(&name)
    }

    /// Stops the server (fast shutdown), leaving the folder, so a test can
    /// see what clients do while the database is down.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again after [`PgCluster::stop`], on the same port.
    pub fn restart(&self) {
        let opts = self.server_options();
        let log = format!("{}/log", self.dir.display());
        let data = self.data();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .command("pg_ctl")
                .args(["-D", &data, "-o", &opts, "-l", &log, "-w", "start"])
                .stdin(Stdio::null())
                .output();
            if out.as_ref().is_ok_and(|o| o.status.success()) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Closing the guard's stdin makes it stop the server and clean up.
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }
}
