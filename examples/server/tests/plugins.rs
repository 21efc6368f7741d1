//! `[[plugin]]` as `mailroomd serve` runs it, with plugins built as cdylibs
//! by the workspace: logins over IMAP and POP3 (our socket client and
//! Python's imaplib and poplib) and LMTP delivery through the SQLite auth
//! plugin, which replaces the users file; a plugin of another ABI version
//! stops the start with both versions named; a plugin that panics fails
//! that login and the server keeps serving. SCRAM-SHA-256 through the
//! plugin's SCRAM extension (scramp over imaplib and poplib), and no SCRAM
//! offered by a plugin without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, plain, run, stderr, write_config};
use mailroom_auth_sqlite::{Role, add_domain, add_user as add_db_user, create_database};
use mailroom_testkit::cdylib;

/// A config with IMAP, POP3 and LMTP on free ports, plaintext logins
/// allowed (loopback tests), and one `[[plugin]]`.
fn plugin_config(dir: &Path, plugin: &Path, kind: &str, settings: &str) -> String {
    let cfg = write_config(
        dir,
        &format!(
            "[pop3]\nlisten = \"127.0.0.1:0\"\n\n[lmtp]\nlisten = \"127.0.0.1:0\"\n\n\
             [auth]\nallow_plaintext = true\n\n\
             [[plugin]]\npath = {:?}\nkind = \"{kind}\"\n[plugin.settings]\n{settings}\n",
            plugin.display().to_string()
        ),
    );
    cfg.to_str().unwrap().to_owned()
}

fn users_db(dir: &Path) -> PathBuf {
    let db = dir.join("users.sqlite");
    create_database(&db).unwrap();
    add_domain(&db, "example.com").unwrap();
    add_db_user(&db, "alice@example.com", "alice-pw", Role::User).unwrap();
    add_db_user(&db, "boss@example.com", "boss-pw", Role::DomainAdmin).unwrap();
    db
}

fn imap_login(addr: SocketAddr, user: &str, password: &str) -> String {
    let mut c = plain(addr);
    assert!(c.line().starts_with("* OK"));
    let (_, status) = c.command(&format!("LOGIN {user} {password}"));
    if status.starts_with("OK") {
        let (_, s) = c.command("SELECT INBOX");
        assert!(s.starts_with("OK"), "{s}");
        c.command("LOGOUT");
    }
    status
}

fn pop3_login(addr: SocketAddr, user: &str, password: &str) -> (String, Option<String>) {
    let mut p = plain(addr);
    assert!(p.line().starts_with("+OK"));
    assert!(p.raw(&format!("USER {user}")).starts_with("+OK"));
    let pass = p.raw(&format!("PASS {password}"));
    let stat = pass
        .starts_with("+OK")
        .then(|| p.raw("STAT").trim_end().to_owned());
    p.raw("QUIT");
    (pass.trim_end().to_owned(), stat)
}

/// One LMTP transaction; returns the RCPT reply and, if accepted, the DATA reply.
fn lmtp_deliver(addr: SocketAddr, rcpt: &str) -> (String, Option<String>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut r = BufReader::new(stream);
    let read = |r: &mut BufReader<TcpStream>| {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        line
    };
    assert!(read(&mut r).starts_with("220 "));
    write!(r.get_mut(), "LHLO test\r\n").unwrap();
    while read(&mut r).starts_with("250-") {}
    write!(r.get_mut(), "MAIL FROM:<sender@example.org>\r\n").unwrap();
    assert!(read(&mut r).starts_with("250"));
    write!(r.get_mut(), "RCPT TO:<{rcpt}>\r\n").unwrap();
    let rcpt_reply = read(&mut r).trim_end().to_owned();
    if !rcpt_reply.starts_with("250") {
        return (rcpt_reply, None);
    }
    write!(r.get_mut(), "DATA\r\n").unwrap();
    assert!(read(&mut r).starts_with("354"));
    write!(
        r.get_mut(),
        "From: sender@example.org\r\nTo: {rcpt}\r\nSubject: through the plugin\r\n\r\nhello\r\n.\r\n"
    )
    .unwrap();
    let data = read(&mut r).trim_end().to_owned();
    write!(r.get_mut(), "QUIT\r\n").unwrap();
    (rcpt_reply, Some(data))
}

#[test]
fn logins_and_delivery_through_the_sqlite_auth_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = cdylib::build("mailroom-auth-sqlite");
    let db = users_db(dir.path());
    let cfg = plugin_config(
        dir.path(),
        &plugin,
        "auth",
        &format!("database = {:?}", db.display().to_string()),
    );
    // A users-file user: with an auth plugin configured, it cannot log in.
    let out = run(
        dir.path(),
        &[
            "-c",
            &cfg,
            "user",
            "add",
            "file@example.com",
            "--password-stdin",
        ],
        "file-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("an auth plugin is configured")
            && stderr(&out).contains("do not use the users file"),
        "{}",
        stderr(&out)
    );
    let server = Server::start(dir.path(), &["-c", &cfg]);
    let (imap, pop3, lmtp) = (
        server.imap.unwrap(),
        server.pop3.unwrap(),
        server.lmtp.unwrap(),
    );

    // Successes first: failed logins slow every later login from the same
    // IP down (the shared failed-login throttle).
    assert!(imap_login(imap, "alice@example.com", "alice-pw").starts_with("OK"));
    assert!(imap_login(imap, "boss@EXAMPLE.com", "boss-pw").starts_with("OK"));

    // LMTP looks recipients up through the plugin.
    let (rcpt, data) = lmtp_deliver(lmtp, "alice@example.com");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(
        data.as_deref().is_some_and(|d| d.starts_with("250")),
        "{data:?}"
    );
    let (rcpt, _) = lmtp_deliver(lmtp, "ghost@example.com");
    assert!(rcpt.starts_with("550"), "{rcpt}");

    // POP3 sees the delivered message.
    let (pass, stat) = pop3_login(pop3, "alice@example.com", "alice-pw");
    assert!(pass.starts_with("+OK"), "{pass}");
    let stat = stat.unwrap_or_default();
    let size = stat
        .strip_prefix("+OK 1 ")
        .unwrap_or_else(|| panic!("{stat}"));

    // Real clients: Python's imaplib (LOGIN, then AUTHENTICATE PLAIN) and poplib.
    let script = format!(
        r#"
import imaplib, poplib
m = imaplib.IMAP4("127.0.0.1", {imap_port})
print("imap login", m.login("alice@example.com", "alice-pw")[0])
typ, data = m.select("INBOX")
print("imap select", typ, data[0].decode())
m.logout()
m = imaplib.IMAP4("127.0.0.1", {imap_port})
print("imap plain", m.authenticate("PLAIN", lambda _: b"\0boss@example.com\0boss-pw")[0])
m.logout()
p = poplib.POP3("127.0.0.1", {pop3_port})
p.user("alice@example.com")
print("pop3 pass", p.pass_("alice-pw").decode().split()[0])
print("pop3 stat", p.stat())
p.quit()
"#,
        imap_port = imap.port(),
        pop3_port = pop3.port()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "imap login OK",
            "imap select OK 1",
            "imap plain OK",
            "pop3 pass +OK",
            &format!("pop3 stat (1, {size})"),
        ],
        "{text}"
    );

    // Failures: a wrong password, and a users-file user (the plugin
    // replaced the file).
    assert!(imap_login(imap, "alice@example.com", "boss-pw").starts_with("NO"));
    assert!(imap_login(imap, "file@example.com", "file-pw").starts_with("NO"));
    let (pass, _) = pop3_login(pop3, "file@example.com", "file-pw");
    assert!(pass.starts_with("-ERR"), "{pass}");
    assert!(
        server.stderr().contains("plugin loaded"),
        "{}",
        server.stderr()
    );
}

/// The `AUTH=` capabilities of a plain IMAP connection.
fn imap_auth_caps(addr: SocketAddr) -> Vec<String> {
    let mut c = plain(addr);
    assert!(c.line().starts_with("* OK"));
    let (lines, status) = c.command("CAPABILITY");
    assert!(status.starts_with("OK"), "{status}");
    c.command("LOGOUT");
    lines
        .iter()
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.starts_with("AUTH="))
        .map(str::to_owned)
        .collect()
}

/// SCRAM-SHA-256 through the SQLite auth plugin, which hands mailroomd its
/// users' verifiers through the plugin ABI's SCRAM extension: scramp logs
/// in over imaplib and poplib (a non-ASCII password too, typed in another
/// Unicode form than it was set in); a wrong proof is refused on both, and
/// both refusals are counted by the failed-login table IMAP and POP3 share
/// (the second is throttled as the second failure: its logged delay is
/// twice the first's).
#[test]
fn scram_logins_through_the_sqlite_auth_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = cdylib::build("mailroom-auth-sqlite");
    let db = users_db(dir.path());
    add_db_user(&db, "nina@example.com", "pa\u{308}sswort", Role::User).unwrap();
    let cfg = plugin_config(
        dir.path(),
        &plugin,
        "auth",
        &format!("database = {:?}", db.display().to_string()),
    );
    let server = Server::start(dir.path(), &["-c", &cfg]);
    let (imap, pop3) = (server.imap.unwrap(), server.pop3.unwrap());
    assert_eq!(
        imap_auth_caps(imap),
        ["AUTH=PLAIN", "AUTH=LOGIN", "AUTH=SCRAM-SHA-256"],
        "-PLUS needs TLS 1.3"
    );

    let attempts = [
        ["alice", "SCRAM-SHA-256", "alice@example.com", "alice-pw"],
        ["boss", "SCRAM-SHA-256", "boss@EXAMPLE.com", "boss-pw"],
        ["nina", "SCRAM-SHA-256", "nina@example.com", "p\u{e4}sswort"],
        ["wrong", "SCRAM-SHA-256", "alice@example.com", "boss-pw"],
    ];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scram_logins.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(imap.port().to_string())
        .arg(pop3.port().to_string())
        .arg(serde_json::to_string(&attempts).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "alice imap OK",
            "alice pop3 +OK",
            "boss imap OK",
            "boss pop3 +OK",
            "nina imap OK",
            "nina pop3 +OK",
            "wrong imap NO",
            "wrong pop3 -ERR",
        ],
        "{text}"
    );
    let log = server.stderr();
    let throttled: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed login throttled"))
        .collect();
    assert_eq!(throttled.len(), 2, "{log}");
    assert!(throttled[0].contains("delay_ms=1000"), "{log}");
    assert!(throttled[1].contains("delay_ms=2000"), "{log}");
}

#[test]
fn a_plugin_of_another_abi_version_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = cdylib::build("mailroom-plugin-test-other-abi");
    let cfg = plugin_config(dir.path(), &plugin, "auth", "");
    let out = run(dir.path(), &["-c", &cfg], "");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("was built for plugin ABI version 2")
            && err.contains("this server speaks ABI version 1")
            && err.contains("libmailroom_plugin_test_other_abi"),
        "{err}"
    );
    assert!(
        !err.contains("init of a plugin of another ABI version was called"),
        "{err}"
    );
}

#[test]
fn a_panicking_plugin_does_not_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = cdylib::build("mailroom-plugin-test-panics");
    let cfg = plugin_config(dir.path(), &plugin, "auth", "");
    let mut server = Server::start(dir.path(), &["-c", &cfg]);
    let (imap, pop3) = (server.imap.unwrap(), server.pop3.unwrap());
    // Built without the SCRAM extension (as every plugin built before it
    // existed): it loads, and SCRAM is not offered.
    assert_eq!(imap_auth_caps(imap), ["AUTH=PLAIN", "AUTH=LOGIN"]);
    for _ in 0..3 {
        assert!(imap_login(imap, "panic@x.org", "secret").starts_with("NO"));
        let (pass, _) = pop3_login(pop3, "panic@x.org", "secret");
        assert!(pass.starts_with("-ERR"), "{pass}");
        assert!(imap_login(imap, "alice@x.org", "secret").starts_with("OK"));
        let (pass, stat) = pop3_login(pop3, "alice@x.org", "secret");
        assert!(pass.starts_with("+OK") && stat.is_some(), "{pass}");
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    assert!(server.stderr().contains("panicked"), "{}", server.stderr());
}
