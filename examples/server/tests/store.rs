//! The store as mailroomd runs it, through the built binary: the CRC store
//! by default (data survives a restart byte for byte), one server per data
//! directory, the store commands (`reconstruct`, `verify`, `quota`) through
//! the admin socket and offline, quota enforced over IMAP, and automatic
//! repair of a corrupt mailbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, add_user, plain, run, stderr, stdout, write_config};

const ALICE: &str = "alice@example.com";
const ONLINE: &str = "mailroomd: through the running server (admin socket ";
const OFFLINE: &str = "mailroomd: no server running; opened the crc store in ";

fn message(n: usize, filler: usize) -> Vec<u8> {
    let mut m = format!(
        "From: bob@example.com\r\nTo: {ALICE}\r\nSubject: message {n} \u{e9}t\u{e9}\r\n\
         Message-ID: <{n}@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    for i in 0..filler {
        m.extend_from_slice(format!("line {i} of message {n}: caf\u{e9} \u{2603}\r\n").as_bytes());
    }
    m
}

fn sigterm(server: &mut Server) {
    let status = server
        .signal_and_wait("TERM", Duration::from_secs(15))
        .expect("exits within 15 s of SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
}

/// Logs in as alice (plaintext is allowed in these configs).
fn login(server: &Server) -> common::Imap<std::net::TcpStream> {
    let mut c = plain(server.imap.unwrap());
    c.line();
    let (_, status) = c.command(&format!("LOGIN {ALICE} pw"));
    assert!(status.starts_with("OK"), "{status}");
    c
}

/// The UID from an `OK [APPENDUID v uid]` status.
fn appended_uid(status: &str) -> u32 {
    assert!(status.starts_with("OK"), "{status}");
    let code = status.split("APPENDUID ").nth(1).expect("APPENDUID");
    code.split([' ', ']']).nth(1).unwrap().parse().unwrap()
}

/// Runs a store command with `cfg`; returns (success, stdout, stderr).
fn admin(dir: &Path, cfg: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["-c", cfg];
    all.extend_from_slice(args);
    let out = run(dir, &all, "");
    (out.status.success(), stdout(&out), stderr(&out))
}

fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}

#[test]
fn crc_is_the_default_and_survives_a_restart_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[auth]\nallow_plaintext = true\n");
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, ALICE, "pw");

    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let socket = server.admin_socket.clone().expect("admin socket line");
    assert_eq!(socket, dir.path().join("data/admin.sock"));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the admin socket is private");
    assert!(
        dir.path().join("data/store").is_dir(),
        "the CRC store is the default"
    );

    let m1 = message(1, 3);
    let m2 = message(2, 500);
    let mut c = login(&server);
    let (_, status) = c.command("CREATE \"Archive/2024 old\"");
    assert!(status.starts_with("OK"), "{status}");
    let uid1 = appended_uid(&c.append("INBOX", &m1));
    let uid2 = appended_uid(&c.append("\"Archive/2024 old\"", &m2));
    let (_, status) = c.command("LOGOUT");
    assert!(status.starts_with("OK"), "{status}");
    sigterm(&mut server);
    drop(server);
    assert!(!socket.exists(), "the admin socket is removed at exit");

    let server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let mut c = login(&server);
    let (untagged, status) = c.command("SELECT INBOX");
    assert!(status.starts_with("OK"), "{status}");
    assert!(
        untagged.iter().any(|l| l.trim_end() == "* 1 EXISTS"),
        "{untagged:?}"
    );
    assert_eq!(c.fetch_body(uid1), m1);
    let (_, status) = c.command("SELECT \"Archive/2024 old\"");
    assert!(status.starts_with("OK"), "{status}");
    assert_eq!(c.fetch_body(uid2), m2);
}

#[test]
fn second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let cfg = cfg.to_str().unwrap();
    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);

    let out = run(dir.path(), &["-c", cfg, "serve"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let pid = server.child.id();
    assert!(
        err.contains(&format!(
            "mailroomd: error: another mailroomd (pid {pid}) is already serving the data directory"
        )),
        "{err}"
    );
    assert!(!stdout(&out).contains("ready"));
    // the first server is unharmed
    let mut c = plain(server.imap.unwrap());
    assert!(c.line().starts_with("* OK"));
    sigterm(&mut server);
    drop(server);

    // Another process holding the CRC store (not a server): refused too,
    // naming the store and the lock file.
    let held = mailroom_store_crc::CrcStore::open(
        dir.path().join("data/store"),
        mailroom_store_crc::CrcOptions::default(),
    )
    .unwrap();
    let out = run(dir.path(), &["-c", cfg, "serve"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the crc store in") && err.contains("is in use by another process"),
        "{err}"
    );
    assert!(err.contains("lock"), "{err}");
    drop(held);
}

#[test]
fn reconstruct_and_verify_through_the_socket_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[auth]\nallow_plaintext = true\n");
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, ALICE, "pw");
    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);

    let (m1, m2) = (message(1, 10), message(2, 40));
    let total = m1.len() + m2.len();
    let mut c = login(&server);
    let uid1 = appended_uid(&c.append("INBOX", &m1));
    let uid2 = appended_uid(&c.append("INBOX", &m2));
    let (_, status) = c.command("SELECT INBOX");
    assert!(status.starts_with("OK"), "{status}");

    for target in [ALICE.to_owned(), format!("{ALICE}/INBOX")] {
        let (ok, out, err) = admin(dir.path(), cfg, &["reconstruct", &target]);
        assert!(ok, "{err}");
        assert!(out.starts_with(ONLINE), "{out}");
        assert!(
            out.contains(&format!(
                "reconstructed {ALICE}/INBOX: 2 messages, {total} bytes (kept 2, recovered 0, \
                 quarantined 0, lost 0, skipped 0)"
            )),
            "{out}"
        );
        // recomputed, not added to the old figure
        assert_eq!(
            value(&out, "storage_used_bytes"),
            total.to_string(),
            "{out}"
        );
        assert_eq!(value(&out, "messages_used"), "2");
    }
    // the selected session goes on with the same UIDs and bytes
    assert_eq!(c.fetch_body(uid1), m1);
    assert_eq!(c.fetch_body(uid2), m2);

    let (ok, out, err) = admin(dir.path(), cfg, &["verify", ALICE]);
    assert!(ok, "{err}");
    assert!(out.starts_with(ONLINE), "{out}");
    assert!(
        out.contains(&format!("verified {ALICE}/INBOX: ok, 2 messages")),
        "{out}"
    );
    assert!(
        out.contains(&format!("verified {ALICE}/Trash: ok, 0 messages")),
        "{out}"
    );

    let (ok, _, err) = admin(dir.path(), cfg, &["reconstruct", "nobody@example.com"]);
    assert!(!ok);
    assert!(err.contains("no mailboxes for nobody@example.com"), "{err}");
    let (ok, _, err) = admin(dir.path(), cfg, &["verify", &format!("{ALICE}/Nope")]);
    assert!(!ok);
    assert!(err.contains("failed verification"), "{err}");
    let (ok, _, err) = admin(dir.path(), cfg, &["reconstruct", "not a user"]);
    assert!(!ok);
    assert!(err.contains("invalid user name"), "{err}");

    sigterm(&mut server);
    drop(server);

    // Offline: the same commands open the store themselves.
    for _ in 0..2 {
        let (ok, out, err) = admin(dir.path(), cfg, &["reconstruct", ALICE]);
        assert!(ok, "{err}");
        assert!(out.starts_with(OFFLINE), "{out}");
        assert!(
            out.contains(&format!(
                "reconstructed {ALICE}/INBOX: 2 messages, {total} bytes"
            )),
            "{out}"
        );
        assert_eq!(
            value(&out, "storage_used_bytes"),
            total.to_string(),
            "{out}"
        );
    }
    let (ok, out, err) = admin(dir.path(), cfg, &["verify", &format!("{ALICE}/INBOX")]);
    assert!(ok, "{err}");
    assert!(out.starts_with(OFFLINE), "{out}");
    assert!(out.contains("ok, 2 messages"), "{out}");

    // A server killed with SIGKILL leaves a stale socket: it is recognised
    // as "not running", and the next server replaces it.
    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(dir.path().join("data/admin.sock").exists());
    let (ok, out, err) = admin(dir.path(), cfg, &["quota", "show", ALICE]);
    assert!(ok, "{err}");
    assert!(out.starts_with(OFFLINE), "{out}");
    assert_eq!(value(&out, "storage_used_bytes"), total.to_string());
    let server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let (ok, out, _) = admin(dir.path(), cfg, &["quota", "show", ALICE]);
    assert!(ok && out.starts_with(ONLINE), "{out}");
    drop(server);
}

#[test]
fn admin_socket_protocol_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, ALICE, "pw");
    let server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let path: PathBuf = server.admin_socket.clone().unwrap();

    let stream = UnixStream::connect(&path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    let mut next = |r: &mut BufReader<UnixStream>| {
        line.clear();
        r.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    };
    assert_eq!(next(&mut r), "mailroomd-admin 1");

    // several requests on one connection; errors do not end it
    w.write_all(b"2 quota-show alice@example.com\n").unwrap();
    assert!(next(&mut r).starts_with("NO bad request: unsupported protocol version"));
    w.write_all(b"1 format-disk\n").unwrap();
    assert!(next(&mut r).starts_with("NO bad request: unknown verb"));
    w.write_all(b"1 quota-show alice@example.com\n").unwrap();
    assert_eq!(next(&mut r), "* quota_root alice@example.com");
    let mut last = next(&mut r);
    while last.starts_with("* ") {
        last = next(&mut r);
    }
    assert_eq!(last, "OK");

    // an over-long line is refused and the connection closed
    w.write_all(&vec![b'x'; 10_000]).unwrap();
    assert!(next(&mut r).starts_with("NO request line longer than"));
    assert_eq!(next(&mut r), "", "closed");
    drop(server);
}

fn quota_round_trip(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("[store]\nbackend = \"{store}\"\n[auth]\nallow_plaintext = true\n"),
    );
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, ALICE, "pw");
    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);

    let (ok, out, err) = admin(
        dir.path(),
        cfg,
        &["quota", "set", ALICE, "--storage", "2", "--messages", "100"],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with(ONLINE), "{out}");
    assert!(out.contains(&format!("quota of {ALICE} set")), "{out}");
    let (ok, out, err) = admin(dir.path(), cfg, &["quota", "show", "alice@EXAMPLE.com"]);
    assert!(ok, "{err}");
    assert_eq!(value(&out, "quota_root"), ALICE);
    assert_eq!(value(&out, "storage_limit_kib"), "2");
    assert_eq!(value(&out, "messages_limit"), "100");
    assert_eq!(value(&out, "storage_used_bytes"), "0");

    // IMAP enforces the limits set a moment ago
    let mut c = login(&server);
    let big = message(1, 200);
    assert!(big.len() > 2048);
    let status = c.append("INBOX", &big);
    assert!(status.starts_with("NO [OVERQUOTA]"), "{status}");
    let small = message(2, 1);
    appended_uid(&c.append("INBOX", &small));
    let (ok, out, _) = admin(dir.path(), cfg, &["quota", "show", ALICE]);
    assert!(ok);
    assert_eq!(value(&out, "storage_used_bytes"), small.len().to_string());
    assert_eq!(value(&out, "messages_used"), "1");

    // raising the quota lets the same message in
    let (ok, _, err) = admin(
        dir.path(),
        cfg,
        &["quota", "set", ALICE, "--storage", "unlimited"],
    );
    assert!(ok, "{err}");
    appended_uid(&c.append("INBOX", &big));
    let (ok, out, _) = admin(dir.path(), cfg, &["quota", "show", ALICE]);
    assert!(ok);
    assert_eq!(value(&out, "storage_limit_kib"), "unlimited");
    assert_eq!(
        value(&out, "messages_limit"),
        "unlimited",
        "a limit left out is unlimited"
    );

    let (ok, _, err) = admin(dir.path(), cfg, &["quota", "show", "mallory@example.com"]);
    assert!(!ok);
    assert!(err.contains("no such user: mallory@example.com"), "{err}");

    let (ok, _, err) = admin(
        dir.path(),
        cfg,
        &["quota", "set", ALICE, "--storage", "1", "--messages", "2"],
    );
    assert!(ok, "{err}");
    sigterm(&mut server);
    drop(server);

    match store {
        "crc" => {
            // limits persist: offline, and in the next server
            let (ok, out, err) = admin(dir.path(), cfg, &["quota", "show", ALICE]);
            assert!(ok, "{err}");
            assert!(out.starts_with(OFFLINE), "{out}");
            assert_eq!(value(&out, "storage_limit_kib"), "1");
            assert_eq!(value(&out, "messages_limit"), "2");
            let server = Server::start(dir.path(), &["-c", cfg, "serve"]);
            let mut c = login(&server);
            let status = c.append("INBOX", &small);
            assert!(status.starts_with("NO [OVERQUOTA]"), "{status}");
        }
        _ => {
            let (ok, out, err) = admin(dir.path(), cfg, &["quota", "show", ALICE]);
            assert!(!ok, "{out}");
            assert!(
                err.contains("the memory store exists only inside a running server"),
                "{err}"
            );
        }
    }
}

#[test]
fn quota_set_show_and_overquota_crc() {
    quota_round_trip("crc");
}

#[test]
fn quota_set_show_and_overquota_memory() {
    quota_round_trip("memory");
}

#[test]
fn store_commands_on_the_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[store]\nbackend = \"memory\"\n");
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, ALICE, "pw");
    let server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    assert!(
        !dir.path().join("data/store").exists(),
        "no CRC store created"
    );
    let (ok, out, err) = admin(dir.path(), cfg, &["reconstruct", ALICE]);
    assert!(!ok);
    assert!(out.starts_with(ONLINE), "{out}");
    assert!(err.contains("reconstruct needs the crc store"), "{err}");
    drop(server);
}

/// Index records whose CRC no longer holds: the server answers
/// `NO [CORRUPTION]` instead of serving them, and repairs the mailbox by
/// itself within seconds, keeping every message.
#[test]
fn corruption_is_repaired_without_an_operator() {
    use mailroom_store_crc::layout::{HEADER_SIZE, RECORD_SIZE, hdr, rec};

    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[auth]\nallow_plaintext = true\n");
    let cfg = cfg.to_str().unwrap();
    add_user(dir.path(), cfg, ALICE, "pw");
    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let messages: Vec<Vec<u8>> = (0..3).map(|n| message(n, 5 + n * 20)).collect();
    let mut c = login(&server);
    let uids: Vec<u32> = messages
        .iter()
        .map(|m| appended_uid(&c.append("INBOX", m)))
        .collect();
    drop(c);
    sigterm(&mut server);
    drop(server);

    // the INBOX index: the only one with 3 messages
    let users = dir.path().join("data/store/users");
    let mut index = None;
    for user in std::fs::read_dir(&users).unwrap() {
        for mailbox in std::fs::read_dir(user.unwrap().path().join("mailboxes")).unwrap() {
            let path = mailbox.unwrap().path().join("index");
            let data = std::fs::read(&path).unwrap();
            if hdr::EXISTS.read_uint(&data) == 3 {
                index = Some(path);
            }
        }
    }
    let index = index.expect("INBOX index");
    let mut data = std::fs::read(&index).unwrap();
    let at = HEADER_SIZE + RECORD_SIZE + rec::SYSTEM_FLAGS.offset;
    data[at] ^= 0x10;
    std::fs::write(&index, &data).unwrap();

    let server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let mut c = login(&server);
    let (_, status) = c.command("SELECT INBOX");
    if status.starts_with("OK") {
        let (_, status) = c.command("FETCH 1:* (UID FLAGS)");
        assert!(status.starts_with("NO [CORRUPTION]"), "{status}");
    } else {
        assert!(status.starts_with("NO [CORRUPTION]"), "{status}");
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = login(&server);
        let (untagged, status) = c.command("SELECT INBOX");
        if status.starts_with("OK") {
            let (_, fetched) = c.command("FETCH 1:* (UID FLAGS)");
            if fetched.starts_with("OK") {
                assert!(
                    untagged.iter().any(|l| l.trim_end() == "* 3 EXISTS"),
                    "{untagged:?}"
                );
                for (uid, m) in uids.iter().zip(&messages) {
                    assert_eq!(&c.fetch_body(*uid), m, "UID {uid}");
                }
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not repaired within 20 s: {status}\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = server.stderr();
    assert!(log.contains("mailbox reconstructed"), "{log}");
}
