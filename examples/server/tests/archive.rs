//! Archive journaling and billing end to end: `mailroomd serve` with the
//! CRC store and the archive billing plugin (built as a cdylib by the
//! workspace), messages over LMTP and IMAP on real sockets, the admin
//! commands through the admin socket, Python's imaplib as the domain
//! admin's client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;

use common::{Server, plain, run, stderr, stdout, try_lmtp, write_config};
use mailroom_core::InternalDate;
use mailroom_core::archive::year_month;
use mailroom_testkit::cdylib;

fn mailroomd(dir: &Path, cfg: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["-c", cfg];
    all.extend_from_slice(args);
    let out = run(dir, &all, "");
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn add_user(dir: &Path, cfg: &str, user: &str, role: Option<&str>) {
    let mut args = vec!["-c", cfg, "user", "add", user, "--password-stdin"];
    if let Some(r) = role {
        args.extend(["--role", r]);
    }
    let out = run(dir, &args, &format!("{user}-pw\n"));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// One LMTP transaction with one recipient: the RCPT reply and the DATA reply.
fn lmtp(addr: SocketAddr, rcpt: &str, message: &str) -> String {
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
    let reply = read(&mut r);
    assert!(reply.starts_with("250"), "{reply}");
    write!(r.get_mut(), "DATA\r\n").unwrap();
    assert!(read(&mut r).starts_with("354"));
    write!(r.get_mut(), "{message}.\r\n").unwrap();
    let data = read(&mut r).trim_end().to_owned();
    write!(r.get_mut(), "QUIT\r\n").unwrap();
    data
}

fn message(id: &str, to: &str) -> String {
    format!(
        "From: sender@example.org\r\nTo: {to}\r\nMessage-ID: <{id}@test>\r\nSubject: {id}\r\n\r\nbody of {id}\r\n"
    )
}

fn month() -> String {
    let (y, m) = year_month(InternalDate::now().timestamp);
    format!("{y:04}-{m:02}")
}

/// Runs a Python imaplib script; returns its stdout lines.
fn python(script: &str) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().map(str::to_owned).collect()
}

/// Python: log in as `user`, list everything, and print each archive
/// mailbox with its message count.
fn archive_view(imap: SocketAddr, user: &str) -> Vec<String> {
    python(&format!(
        r#"
import imaplib, re
m = imaplib.IMAP4("127.0.0.1", {port})
m.login("{user}", "{user}-pw")
typ, data = m.list('""', "*")
names = [re.match(rb'\(.*?\) "/" (.*)', d).group(1).decode().strip('"') for d in data]
total = 0
for n in sorted(names):
    if "archive@" in n and (n.endswith("/in") or n.endswith("/out")):
        typ, st = m.status('"%s"' % n, "(MESSAGES)")
        count = int(re.search(rb"MESSAGES (\d+)", st[0]).group(1))
        total += count
        print("mailbox", n, count)
print("total", total)
m.logout()
"#,
        port = imap.port()
    ))
}

#[test]
fn archive_journaling_visibility_delete_proofing_quota_and_billing() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = cdylib::build("mailroom-billing-archive");
    let ledger = dir.path().join("billing.sqlite");
    let cfg = write_config(
        dir.path(),
        &format!(
            "[lmtp]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nallow_plaintext = true\n\n\
             [[plugin]]\npath = {:?}\nkind = \"billing\"\n[plugin.settings]\nledger = {:?}\n\
             [plugin.settings.price]\ncurrency = \"EUR\"\nuser_day = \"0.05\"\nmessage = \"0.001\"\ngb_month = \"0.50\"\n",
            plugin.display().to_string(),
            ledger.display().to_string()
        ),
    );
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, "alice@x.org", None);
    add_user(dir.path(), cfg, "bob@x.org", None);
    add_user(dir.path(), cfg, "boss@x.org", Some("domain-admin"));
    add_user(dir.path(), cfg, "boss@y.org", Some("domain-admin"));
    add_user(dir.path(), cfg, "root@ops.example", Some("server-admin"));
    let mut server = Server::start(dir.path(), &["-c", cfg]);
    let (imap, lmtp_addr) = (server.imap.unwrap(), server.lmtp.unwrap());

    // roles: alice and another domain's admin may not; her domain admin may
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &["archive", "enable", "alice@x.org", "--as", "alice@x.org"],
    );
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &["archive", "enable", "alice@x.org", "--as", "boss@y.org"],
    );
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &["archive", "enable", "alice@x.org", "--as", "boss@x.org"],
    );
    assert!(ok && out.contains("archive alice@x.org on"), "{out}");
    assert!(out.contains("through the running server"), "{out}");
    let (ok, out) = mailroomd(dir.path(), cfg, &["archive", "status", "alice@x.org"]);
    assert!(ok && out.contains("archive alice@x.org on"), "{out}");
    let (ok, out) = mailroomd(dir.path(), cfg, &["domain", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("domain x.org users 3 archived 1 billing off"),
        "{out}"
    );
    assert!(
        out.contains("domain y.org users 1 archived 0 billing off"),
        "{out}"
    );

    // 20 delivered over LMTP
    for i in 0..20 {
        let reply = lmtp(
            lmtp_addr,
            "alice@x.org",
            &message(&format!("in{i}"), "alice@x.org"),
        );
        assert!(reply.starts_with("250"), "{reply}");
    }
    // 5 APPENDed to \Sent by alice
    let mut c = plain(imap);
    assert!(c.line().starts_with("* OK"));
    assert!(
        c.command("LOGIN alice@x.org alice@x.org-pw")
            .1
            .starts_with("OK")
    );
    for i in 0..5 {
        let st = c.append(
            "Sent",
            message(&format!("out{i}"), "someone@z.example").as_bytes(),
        );
        assert!(st.starts_with("OK"), "{st}");
    }
    // 3 journaled by the MTA, out0 among them (also in Sent)
    for id in ["out0", "mta1", "mta2"] {
        let m = format!(
            "Received: from submission by mta.x.org; Sat, 5 Dec 2026 10:00:00 +0000\r\n{}",
            message(id, "someone@z.example")
        );
        let reply = lmtp(lmtp_addr, "journal+alice@x.org", &m);
        assert!(reply.starts_with("250"), "{reply}");
    }
    let (lines, st) = c.command("STATUS INBOX (MESSAGES)");
    assert!(
        st.starts_with("OK") && lines[0].contains("MESSAGES 20"),
        "{lines:?}"
    );

    // the domain admin sees exactly 27; alice and y.org's admin see no archive
    let view = archive_view(imap, "boss@x.org");
    let m = month();
    assert!(
        view.contains(&format!(
            "mailbox Other Users/archive@x.org/alice/{m}/in 20"
        )),
        "{view:?}"
    );
    assert!(
        view.contains(&format!(
            "mailbox Other Users/archive@x.org/alice/{m}/out 7"
        )),
        "{view:?}"
    );
    assert_eq!(view.last().map(String::as_str), Some("total 27"));
    for who in ["alice@x.org", "boss@y.org"] {
        assert_eq!(archive_view(imap, who), ["total 0"], "{who}");
    }
    let (lines, st) = c.command(&format!(
        "SELECT \"Other Users/archive@x.org/alice/{m}/in\""
    ));
    assert!(st.starts_with("NO"), "{lines:?} {st}");

    // refused for everyone, admins included
    let in_box = format!("\"Other Users/archive@x.org/alice/{m}/in\"");
    for admin in ["boss@x.org", "root@ops.example"] {
        let mut a = plain(imap);
        assert!(a.line().starts_with("* OK"));
        assert!(
            a.command(&format!("LOGIN {admin} {admin}-pw"))
                .1
                .starts_with("OK")
        );
        let (_, st) = a.command(&format!("SELECT {in_box}"));
        assert!(st.starts_with("OK [READ-ONLY]"), "{admin}: {st}");
        let (_, st) = a.command("STORE 1 +FLAGS (\\Deleted)");
        assert!(st.starts_with("NO"), "{admin}: {st}");
        let (_, st) = a.command("EXPUNGE");
        assert!(st.starts_with("NO"), "{admin}: {st}");
        let (_, st) = a.command(&format!("DELETE {in_box}"));
        assert!(st.starts_with("NO"), "{admin}: {st}");
        let (_, st) = a.command(&format!(
            "RENAME {in_box} \"Other Users/archive@x.org/gone\""
        ));
        assert!(st.starts_with("NO"), "{admin}: {st}");
        a.command("LOGOUT");
    }
    // only a server admin grants the override
    let target = format!("archive@x.org/alice/{m}/in");
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &[
            "archive",
            "override",
            "grant",
            &target,
            "--reason",
            "retention test",
            "--as",
            "boss@x.org",
        ],
    );
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &[
            "archive",
            "override",
            "grant",
            &target,
            "--reason",
            "retention test",
            "--as",
            "root@ops.example",
        ],
    );
    assert!(ok && out.contains("granted"), "{out}");
    let mut a = plain(imap);
    assert!(a.line().starts_with("* OK"));
    assert!(
        a.command("LOGIN boss@x.org boss@x.org-pw")
            .1
            .starts_with("OK")
    );
    let (_, st) = a.command(&format!("SELECT {in_box}"));
    assert!(st.starts_with("OK [READ-WRITE]"), "{st}");
    let (_, st) = a.command("STORE 1:2 +FLAGS (\\Deleted)");
    assert!(st.starts_with("OK"), "{st}");
    let (lines, st) = a.command("EXPUNGE");
    assert!(st.starts_with("OK"), "{st}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.trim_end().ends_with("EXPUNGE"))
            .count(),
        2,
        "{lines:?}"
    );
    a.command("LOGOUT");
    let log = server.stderr();
    assert!(
        log.contains("archive retention deletion under override")
            && log.contains("boss@x.org")
            && log.contains("retention test"),
        "{log}"
    );
    assert!(log.contains("archive override granted") && log.contains("root@ops.example"));
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &[
            "archive",
            "override",
            "revoke",
            &target,
            "--as",
            "root@ops.example",
        ],
    );
    assert!(ok && out.contains("revoked"), "{out}");

    // over quota with archiving on: 452 and nothing archived; then once each
    let (ok, out) = mailroomd(dir.path(), cfg, &["archive", "enable", "bob@x.org"]);
    assert!(ok, "{out}");
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &[
            "quota",
            "set",
            "bob@x.org",
            "--storage",
            "0",
            "--messages",
            "0",
        ],
    );
    assert!(ok, "{out}");
    // the quota of a user, through the admin socket, as a domain admin:
    // its own domain only
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &["quota", "show", "bob@x.org", "--as", "boss@y.org"],
    );
    assert!(!ok && out.contains("does not administer"), "{out}");
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &["quota", "show", "bob@x.org", "--as", "boss@x.org"],
    );
    assert!(ok && out.contains("messages_limit 0"), "{out}");
    let reply = lmtp(lmtp_addr, "bob@x.org", &message("bob1", "bob@x.org"));
    assert!(reply.starts_with("452"), "{reply}");
    let view = archive_view(imap, "boss@x.org");
    assert!(
        !view
            .iter()
            .any(|l| l.contains("/bob/") && !l.ends_with(" 0")),
        "{view:?}"
    );
    let (ok, out) = mailroomd(
        dir.path(),
        cfg,
        &["quota", "set", "bob@x.org", "--storage", "unlimited"],
    );
    assert!(ok, "{out}");
    let reply = lmtp(lmtp_addr, "bob@x.org", &message("bob1", "bob@x.org"));
    assert!(reply.starts_with("250"), "{reply}");
    let view = archive_view(imap, "boss@x.org");
    assert!(
        view.contains(&format!("mailbox Other Users/archive@x.org/bob/{m}/in 1")),
        "{view:?}"
    );

    // billing: notices once per archived user, also when repeated
    let (ok, out) = mailroomd(dir.path(), cfg, &["billing", "enable", "x.org"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("notice alice@x.org sent") && out.contains("notice bob@x.org sent"),
        "{out}"
    );
    let (ok, out) = mailroomd(dir.path(), cfg, &["billing", "enable", "x.org"]);
    assert!(
        ok && out.contains("notice alice@x.org already sent"),
        "{out}"
    );
    let (lines, _) = c.command("STATUS INBOX (MESSAGES)");
    assert!(lines[0].contains("MESSAGES 21"), "{lines:?}");
    let (lines, _) = c.command("SELECT INBOX");
    assert!(!lines.is_empty());
    let (lines, st) = c.command("SEARCH HEADER Message-ID archive-billing-notice");
    assert!(st.starts_with("OK"), "{st}");
    assert_eq!(lines[0].split_whitespace().count(), 3, "{lines:?}"); // "* SEARCH n"
    let (ok, out) = mailroomd(dir.path(), cfg, &["domain", "list"]);
    assert!(
        ok && out.contains("domain x.org users 3 archived 2 billing on"),
        "{out}"
    );
    // the ledger was filled by the traffic: 27 + 1 (bob) + 2 notices archived
    let (ok, out) = mailroomd(dir.path(), cfg, &["billing", "report", "--month", &m]);
    assert!(ok, "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("x.org"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "2", "archived users: {row}");
    assert_eq!(cols[3], "30", "messages: {row}");
    assert_eq!(cols[5], "1", "overrides: {row}");
    c.command("LOGOUT");
    let _ = server.signal_and_wait("TERM", std::time::Duration::from_secs(20));
}

#[test]
fn kill_9_during_archive_traffic_loses_and_double_counts_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = cdylib::build("mailroom-billing-archive");
    let ledger = dir.path().join("billing.sqlite");
    let cfg = write_config(
        dir.path(),
        &format!(
            "[lmtp]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nallow_plaintext = true\n\n\
             [[plugin]]\npath = {:?}\nkind = \"billing\"\n[plugin.settings]\nledger = {:?}\n\
             [plugin.settings.price]\ncurrency = \"EUR\"\nuser_day = \"0\"\nmessage = \"0.01\"\ngb_month = \"0\"\n",
            plugin.display().to_string(),
            ledger.display().to_string()
        ),
    );
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, "alice@x.org", None);
    add_user(dir.path(), cfg, "boss@x.org", Some("domain-admin"));
    let mut server = Server::start(dir.path(), &["-c", cfg]);
    let (ok, out) = mailroomd(dir.path(), cfg, &["archive", "enable", "alice@x.org"]);
    assert!(ok, "{out}");
    const N: usize = 40;
    let lmtp_addr = server.lmtp.unwrap();
    let confirmed = std::sync::Arc::new(std::sync::Mutex::new(vec![false; N]));
    let sender = {
        let confirmed = confirmed.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                let reply = try_lmtp(
                    lmtp_addr,
                    "alice@x.org",
                    &message(&format!("k{i}"), "alice@x.org"),
                );
                match reply {
                    Some(r) if r.starts_with("250") => confirmed.lock().unwrap()[i] = true,
                    _ => break,
                }
            }
        })
    };
    // kill -9 in the middle of the traffic
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while confirmed.lock().unwrap().iter().filter(|c| **c).count() < 10 {
        assert!(std::time::Instant::now() < deadline, "no traffic");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    sender.join().unwrap();
    let done = confirmed.lock().unwrap().iter().filter(|c| **c).count();
    assert!(done < N, "the kill came too late: all {N} delivered");

    // the MTA retries everything it got no 250 for
    let server = Server::start(dir.path(), &["-c", cfg]);
    let lmtp_addr = server.lmtp.unwrap();
    for i in 0..N {
        if !confirmed.lock().unwrap()[i] {
            let reply = lmtp(
                lmtp_addr,
                "alice@x.org",
                &message(&format!("k{i}"), "alice@x.org"),
            );
            assert!(reply.starts_with("250"), "{reply}");
        }
    }
    let m = month();
    let view = archive_view(server.imap.unwrap(), "boss@x.org");
    assert!(
        view.contains(&format!(
            "mailbox Other Users/archive@x.org/alice/{m}/in {N}"
        )),
        "{view:?}"
    );
    let (ok, out) = mailroomd(dir.path(), cfg, &["billing", "report", "--month", &m]);
    assert!(ok, "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("x.org"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[3], N.to_string(), "messages: {row}");
    assert_eq!(cols[6], "0.40", "charge: {row}");
}
