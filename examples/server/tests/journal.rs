//! The CRC store's delivery journal as mailroomd runs it (`[store]
//! journal`, on by default): a server killed with SIGKILL in the middle of
//! LMTP deliveries to several mailboxes loses no message it answered `250`
//! for, and brings back none that a client had expunged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, add_user, plain, try_lmtp, write_config};

const USERS: [&str; 2] = ["ann@example.com", "bob@example.com"];
const PASSWORD: &str = "journal-pw";

fn message(token: &str) -> String {
    format!(
        "From: sender@example.org\r\nSubject: {token}\r\nMessage-ID: <{token}@example.org>\r\n\r\n\
         token {token}\r\n{}\r\n",
        "z".repeat(700)
    )
}

/// The tokens of every message in the user's INBOX, over IMAP.
fn tokens(imap: SocketAddr, user: &str) -> BTreeSet<String> {
    let mut c = plain(imap);
    c.line();
    let (_, ok) = c.command(&format!("LOGIN {user} {PASSWORD}"));
    assert!(ok.starts_with("OK"), "{ok}");
    let (_, ok) = c.command("SELECT INBOX");
    assert!(ok.starts_with("OK"), "{ok}");
    let (lines, ok) = c.command("UID SEARCH ALL");
    assert!(ok.starts_with("OK"), "{ok}");
    let uids: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| {
            l.split_whitespace()
                .map(|u| u.parse().unwrap())
                .collect::<Vec<u32>>()
        })
        .collect();
    let mut out = BTreeSet::new();
    for uid in uids {
        let body = String::from_utf8(c.fetch_body(uid)).unwrap();
        let token = body
            .lines()
            .find_map(|l| l.strip_prefix("token "))
            .unwrap_or_else(|| panic!("UID {uid} without a token: {body:?}"));
        assert!(out.insert(token.to_owned()), "{user}: {token} stored twice");
    }
    c.command("LOGOUT");
    out
}

#[test]
fn kill_9_during_journaled_lmtp_load_loses_nothing_acknowledged_and_resurrects_no_expunged_message()
{
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[lmtp]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nallow_plaintext = true\n",
    );
    let cfg = cfg.to_str().unwrap();
    for u in USERS {
        add_user(dir.path(), cfg, u, PASSWORD);
    }
    let mut server = Server::start(dir.path(), &["-c", cfg]);
    let (lmtp, imap) = (server.lmtp.unwrap(), server.imap.unwrap());
    assert!(
        dir.path().join("data/store/journal").is_dir(),
        "mailroomd did not turn the delivery journal on"
    );
    // some deliveries, then half of them expunged by a client
    let mut acked: BTreeSet<String> = BTreeSet::new();
    for i in 0..10 {
        let t = format!("first{i}");
        let reply = try_lmtp(lmtp, USERS[0], &message(&t)).unwrap();
        assert!(reply.starts_with("250"), "{reply}");
        acked.insert(t);
    }
    let mut expunged = BTreeSet::new();
    {
        let mut c = plain(imap);
        c.line();
        let (_, ok) = c.command(&format!("LOGIN {} {PASSWORD}", USERS[0]));
        assert!(ok.starts_with("OK"), "{ok}");
        c.command("SELECT INBOX");
        let (_, ok) = c.command("UID STORE 2:6 +FLAGS.SILENT (\\Deleted)");
        assert!(ok.starts_with("OK"), "{ok}");
        let (lines, ok) = c.command("EXPUNGE");
        assert!(ok.starts_with("OK"), "{ok}");
        assert_eq!(lines.iter().filter(|l| l.contains("EXPUNGE")).count(), 5);
        c.command("LOGOUT");
        for i in 1..6 {
            let t = format!("first{i}");
            acked.remove(&t);
            expunged.insert(t);
        }
    }
    // then four connections deliver to both users until the kill
    let confirmed = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let senders: Vec<_> = (0..4)
        .map(|c| {
            let confirmed = confirmed.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let t = format!("load{c}x{i}");
                    let rcpt = USERS[(c + i) % 2];
                    match try_lmtp(lmtp, rcpt, &message(&t)) {
                        Some(r) if r.starts_with("250") => {
                            confirmed.lock().unwrap().insert(format!("{rcpt} {t}"));
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while confirmed.lock().unwrap().len() < 60 {
        assert!(Instant::now() < deadline, "no LMTP traffic");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for s in senders {
        s.join().unwrap();
    }
    let server = Server::start(dir.path(), &["-c", cfg]);
    let imap = server.imap.unwrap();
    let confirmed = confirmed.lock().unwrap();
    for user in USERS {
        let have = tokens(imap, user);
        let mut want: BTreeSet<String> = confirmed
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{user} ")).map(str::to_owned))
            .collect();
        if user == USERS[0] {
            want.extend(acked.iter().cloned());
            for t in &expunged {
                assert!(!have.contains(t), "expunged {t} came back");
            }
        }
        let lost: Vec<_> = want.difference(&have).collect();
        assert!(lost.is_empty(), "{user}: acknowledged and lost: {lost:?}");
    }
}
