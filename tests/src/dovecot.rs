//! A throw-away Dovecot (Debian's `dovecot-imapd`, and `dovecot-lmtpd` for
//! LMTP) on loopback, the reference implementation our answers and our
//! speed are compared with.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running Dovecot with its own config, state and mail in a temp dir;
/// stopped on drop. One user, password in plain text (test only).
#[derive(Debug)]
pub struct Dovecot {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    lmtp_port: Option<u16>,
}

/// What [`Dovecot::start_with`] runs besides IMAP.
#[derive(Debug, Clone, Default)]
pub struct DovecotOptions {
    /// Also an LMTP listener on a free loopback port (Debian's `dovecot-lmtpd`).
    pub lmtp: bool,
    /// Dovecot's `mail_fsync`: `optimized` (its default when `None`),
    /// `always` or `never`.
    pub mail_fsync: Option<String>,
    /// More users, with the same password as the first.
    pub extra_users: Vec<String>,
}

/// Where Debian installs the daemon.
pub(crate) const DOVECOT_BIN: &str = "/usr/sbin/dovecot";

impl Dovecot {
    /// Starts Dovecot with `user`/`password`, IMAP on a free loopback port,
    /// Maildir storage, running mail processes as `nobody`.
    pub fn start(user: &str, password: &str) -> Dovecot {
        Dovecot::start_with(user, password, &DovecotOptions::default())
    }

    /// Like [`Dovecot::start`], with LMTP and the fsync policy as `options` say.
    pub fn start_with(user: &str, password: &str, options: &DovecotOptions) -> Dovecot {
        Dovecot::start_with_config(user, password, options, "")
    }

    /// Like [`Dovecot::start_with`], with `extra_config` appended to
    /// `dovecot.conf` (process and connection limits for benchmarks).
    pub fn start_with_config(
        user: &str,
        password: &str,
        options: &DovecotOptions,
        extra_config: &str,
    ) -> Dovecot {
        assert!(
            Path::new(DOVECOT_BIN).exists(),
            "Dovecot is not installed (Debian package dovecot-imapd; .ci/run installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("mailroom-dovecot")
            .tempdir()
            .expect("temp dir");
        set_mode(dir.path(), 0o755);
        for d in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dir.path().join("home"))
            .status()
            .expect("chown");
        assert!(
            status.success(),
            "chown of the Dovecot home failed (tests run as root)"
        );
        let mut passwd = String::new();
        for name in std::iter::once(user).chain(options.extra_users.iter().map(String::as_str)) {
            passwd.push_str(&format!("{name}:{{PLAIN}}{password}\n"));
        }
        std::fs::write(dir.path().join("passwd"), passwd).expect("passwd");
        let port = free_port();
        let lmtp_port = options.lmtp.then(free_port);
        let d = dir.path().display();
        let mut protocols = "imap".to_owned();
        let mut extra = String::new();
        if let Some(lmtp) = lmtp_port {
            assert!(
                Path::new("/usr/lib/dovecot/lmtp").exists(),
                "Dovecot's LMTP server is not installed (Debian package dovecot-lmtpd; .ci/run installs it)"
            );
            protocols.push_str(" lmtp");
            extra.push_str(&format!(
                "service lmtp {{\n inet_listener lmtp {{\n  address = 127.0.0.1\n  port = {lmtp}\n }}\n}}\n"
            ));
        }
        if let Some(fsync) = &options.mail_fsync {
            extra.push_str(&format!("mail_fsync = {fsync}\n"));
        }
        extra.push_str(extra_config);
        let config = dir.path().join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                "protocols = {protocols}\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
                 ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain\nfirst_valid_uid = 1\n\
                 passdb {{\n driver = passwd-file\n args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
                 userdb {{\n driver = static\n args = uid=nobody gid=nogroup home={d}/home/%u\n}}\n\
                 mail_location = maildir:~/Maildir\nmail_plugins = \nimap_capability = +XLIST\n\
                 service imap-login {{\n inet_listener imap {{\n  port = {port}\n }}\n inet_listener imaps {{\n  port = 0\n }}\n}}\n{extra}"
            ),
        )
        .expect("dovecot.conf");
        let st = Command::new(DOVECOT_BIN)
            .arg("-c")
            .arg(&config)
            .status()
            .expect("run dovecot");
        assert!(st.success(), "dovecot failed to start");
        let dovecot = Dovecot {
            dir,
            config,
            port,
            lmtp_port,
        };
        for p in std::iter::once(port).chain(lmtp_port) {
            let mut up = false;
            for _ in 0..200 {
                if TcpStream::connect(("127.0.0.1", p)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                up,
                "dovecot is not listening on {p}; log:\n{}",
                dovecot.log()
            );
        }
        dovecot
    }

    /// The LMTP port, if [`DovecotOptions::lmtp`] asked for one.
    pub fn lmtp_port(&self) -> Option<u16> {
        self.lmtp_port
    }

    /// The number of messages in `user`'s `mailbox` (`doveadm mailbox status`).
    pub fn message_count(&self, user: &str, mailbox: &str) -> u64 {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(&self.config)
            .args(["mailbox", "status", "-u", user, "messages", mailbox])
            .output()
            .expect("run doveadm");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "doveadm mailbox status failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "INBOX messages=620" (the mailbox name comes first in 2.3)
        text.split_whitespace()
            .find_map(|t| t.strip_prefix("messages="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected doveadm output {text:?}"))
    }

    /// The plain IMAP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The home directory of `user` (mail is in `Maildir/` below it).
    pub fn home(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user)
    }

    /// The config file (for `doveadm -c`).
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Dovecot's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .status();
    }
}
