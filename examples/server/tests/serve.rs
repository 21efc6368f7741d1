//! `mailroomd serve` through the built binary: demo mode (with the CRC
//! store), listeners on port 0, live user changes, TLS from files, graceful
//! shutdown.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Server, plain, run, stderr, tls, write_config};

const DEMO_LINE: &str = "mailroomd: demo user demo@localhost password ";

/// The only test that uses the fixed default ports (no config file at all).
#[test]
fn demo_mode_without_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    assert_eq!(server.imap.unwrap().to_string(), "127.0.0.1:1143");
    assert_eq!(server.imaps.unwrap().to_string(), "127.0.0.1:1993");
    assert_eq!(server.pop3.unwrap().to_string(), "127.0.0.1:1110");
    assert_eq!(server.pop3s.unwrap().to_string(), "127.0.0.1:1995");
    assert_eq!(server.lmtp.unwrap().to_string(), "127.0.0.1:2424");
    assert_eq!(server.lmtp_unix, None);
    let password_lines: Vec<&String> = server
        .seen
        .iter()
        .filter(|l| l.starts_with(DEMO_LINE))
        .collect();
    assert_eq!(password_lines.len(), 1, "{:?}", server.seen);
    let password = password_lines[0][DEMO_LINE.len()..].to_owned();
    assert!(password.len() >= 16, "{password:?}");

    // the password is stored only as a hash, in a private file
    let users = dir.path().join("data/users.toml");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(!text.contains(&password));
    assert!(text.contains("demo@localhost") && text.contains("$argon2id$"));
    assert_eq!(
        std::fs::metadata(&users).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // ...and never logged
    assert!(!server.stderr().contains(&password));

    // a self-signed certificate was generated, key private
    let cert = dir.path().join("data/tls/cert.pem");
    let key = dir.path().join("data/tls/key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cert_bytes = std::fs::read(&cert).unwrap();

    // plain IMAP greets; plaintext LOGIN is refused in demo mode
    let mut c = plain(server.imap.unwrap());
    let greeting = c.line();
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    let (_, status) = c.command(&format!("LOGIN demo@localhost {password}"));
    assert!(
        !status.starts_with("OK"),
        "plaintext login must be refused: {status}"
    );

    // IMAPS with the generated certificate, and the printed password works
    let mut c = tls(server.imaps.unwrap(), &cert);
    let greeting = c.line();
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    let (_, status) = c.command(&format!("LOGIN demo@localhost {password}"));
    assert!(status.starts_with("OK"), "{status}");
    // POP3 follows the same rule: no USER/PASS before STLS, even on loopback
    let mut p = plain(server.pop3.unwrap());
    assert!(p.line().starts_with("+OK"));
    let reply = p.raw("USER demo@localhost");
    assert!(reply.starts_with("-ERR [AUTH]"), "{reply:?}");
    let reply = p.raw("QUIT");
    assert!(reply.starts_with("+OK"), "{reply:?}");
    // ...and works on POP3S; the maildrop is empty so far
    let mut p = tls(server.pop3s.unwrap(), &cert);
    assert!(p.line().starts_with("+OK"));
    assert!(p.raw("USER demo@localhost").starts_with("+OK"));
    let reply = p.raw(&format!("PASS {password}"));
    assert!(reply.starts_with("+OK"), "{reply:?}");
    assert_eq!(p.raw("STAT").trim_end(), "+OK 0 0");
    assert!(p.raw("QUIT").starts_with("+OK"));
    // LMTP on loopback knows the demo user
    let mut l = plain(server.lmtp.unwrap());
    assert!(l.line().starts_with("220 "));
    let mut reply = l.raw("LHLO test");
    while reply.starts_with("250-") {
        reply = l.line();
    }
    assert!(reply.starts_with("250 "), "{reply:?}");
    assert!(l.raw("MAIL FROM:<a@example.org>").starts_with("250"));
    let reply = l.raw("RCPT TO:<nobody@localhost>");
    assert!(reply.starts_with("550 5.1.1"), "{reply:?}");
    assert!(l.raw("RCPT TO:<demo@localhost>").starts_with("250"));
    assert!(l.raw("RSET").starts_with("250"));
    assert!(l.raw("QUIT").starts_with("221"));

    // demo mode runs the CRC store in ./data/store: mail survives a restart
    let demo_message = b"Subject: demo\r\n\r\nkept across restarts\r\n";
    let status = c.append("INBOX", demo_message);
    assert!(status.starts_with("OK [APPENDUID"), "{status}");
    let (_, status) = c.command("LOGOUT");
    assert!(status.starts_with("OK"), "{status}");
    assert!(
        dir.path().join("data/store/lock").exists(),
        "CRC store in ./data/store"
    );
    assert!(
        dir.path().join("data/admin.sock").exists(),
        "admin socket in ./data"
    );
    let out = run(dir.path(), &["quota", "show", "demo@localhost"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = common::stdout(&out);
    assert!(
        text.starts_with("mailroomd: through the running server"),
        "{text}"
    );
    assert!(
        text.contains(&format!("storage_used_bytes {}", demo_message.len())),
        "{text}"
    );

    let status = server
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    drop(server);

    // second start: no new password, same certificate, old password still valid
    let mut server = Server::start(dir.path(), &[]);
    assert!(
        !server.seen.iter().any(|l| l.starts_with(DEMO_LINE)),
        "the password is printed only once: {:?}",
        server.seen
    );
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        cert_bytes,
        "certificate reused"
    );
    let mut c = tls(server.imaps.unwrap(), &cert);
    c.line();
    let (_, status) = c.command(&format!("LOGIN demo@localhost {password}"));
    assert!(status.starts_with("OK"), "{status}");
    let (untagged, status) = c.command("SELECT INBOX");
    assert!(status.starts_with("OK"), "{status}");
    assert!(
        untagged.iter().any(|l| l.trim_end() == "* 1 EXISTS"),
        "{untagged:?}"
    );
    assert_eq!(c.fetch_body(1), demo_message);
    let status = server
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exits within 10 s of SIGINT");
    assert!(status.success(), "{status:?}");
}

#[test]
fn live_user_changes_and_operator_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("pki/c.pem"), dir.path().join("pki/k.pem"));
    mailroomd::tls::ensure_self_signed(&cert, &key).unwrap();
    let cfg = write_config(
        dir.path(),
        "[tls]\ncert = \"pki/c.pem\"\nkey = \"pki/k.pem\"\n\n[auth]\nallow_plaintext = true\nauth_cache_ttl_secs = 300\n",
    );
    let cfg = cfg.to_str().unwrap();
    let mut server = Server::start(dir.path(), &["--config", cfg, "serve"]);
    assert!(
        !server.seen.iter().any(|l| l.contains("demo")),
        "{:?}",
        server.seen
    );
    assert!(
        !dir.path().join("data/tls").exists(),
        "no certificate generated when one is configured"
    );
    assert!(
        !dir.path().join("data/users.toml").exists(),
        "no demo user with a config file"
    );

    let add = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "add",
            "frank@example.org",
            "--password-stdin",
        ],
        "pw-one-7f3\n",
    );
    assert!(add.status.success(), "{}", stderr(&add));

    let imap = server.imap.unwrap();
    let login = |pw: &str| {
        let mut c = plain(imap);
        c.line();
        let (_, status) = c.command(&format!("LOGIN frank@EXAMPLE.org {pw}"));
        status
    };
    assert!(login("pw-one-7f3").starts_with("OK"));
    assert!(login("pw-one-7f3").starts_with("OK"), "cached login");

    let pw = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "passwd",
            "frank@example.org",
            "--password-stdin",
        ],
        "pw-two-9c1\n",
    );
    assert!(pw.status.success(), "{}", stderr(&pw));
    assert!(
        !login("pw-one-7f3").starts_with("OK"),
        "old password rejected at once despite the cache"
    );
    assert!(login("pw-two-9c1").starts_with("OK"));

    // the operator's certificate is served on IMAPS
    let mut c = tls(server.imaps.unwrap(), &cert);
    assert!(c.line().starts_with("* OK"));
    let (_, status) = c.command("LOGIN frank@example.org pw-two-9c1");
    assert!(status.starts_with("OK"), "{status}");

    let del = run(
        dir.path(),
        &["-c", cfg, "user", "del", "frank@example.org"],
        "",
    );
    assert!(del.status.success());
    assert!(
        !login("pw-two-9c1").starts_with("OK"),
        "deleted user rejected"
    );

    let log = server.stderr();
    assert!(
        !log.contains("pw-two") && !log.contains("pw-one"),
        "passwords never logged:\n{log}"
    );
    let status = server
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits");
    assert!(status.success());
}

#[test]
fn sigterm_says_bye_to_open_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[auth]\nallow_plaintext = true\n\n[shutdown]\ngrace_secs = 3\n",
    );
    let cfg = cfg.to_str().unwrap();
    let add = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "add",
            "gina@example.org",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert!(add.status.success(), "{}", stderr(&add));
    let mut server = Server::start(dir.path(), &["-c", cfg]);
    let mut c = plain(server.imap.unwrap());
    c.line();
    let (_, status) = c.command("LOGIN gina@example.org pw");
    assert!(status.starts_with("OK"), "{status}");
    let (_, status) = c.command("SELECT INBOX");
    assert!(status.starts_with("OK"), "{status}");

    let started = std::time::Instant::now();
    let status = server
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let bye = c.line();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
}

#[test]
fn port_in_use_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, format!("[imaps]\nlisten = \"{addr}\"\n")).unwrap();
    let out = run(dir.path(), &["-c", cfg.to_str().unwrap(), "serve"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("[imaps] cannot listen on {addr}")),
        "{err}"
    );
    assert!(!common::stdout(&out).contains("ready"));
}
