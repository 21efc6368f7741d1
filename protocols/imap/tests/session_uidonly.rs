//! UIDONLY (RFC 9586) over a socket: advertised and enabled; every command
//! and argument that takes sequence numbers refused with `BAD
//! [UIDREQUIRED]` and nothing changed by it; FETCH responses as
//! `* uid UIDFETCH` (a `UID` item only when asked for), expunges as
//! VANISHED, in command answers, after
//! other sessions' changes, during IDLE, with CONDSTORE/QRESYNC, NOTIFY,
//! CONTEXT UPDATE, SEARCHRES and IMAP4rev2 (see `extension/uidonly.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// A session of `user` with UIDONLY enabled.
async fn uidonly(addr: std::net::SocketAddr, user: &str) -> Client {
    let mut c = Client::login(addr, user).await;
    let r = c.ok("ENABLE UIDONLY").await;
    assert!(r.starts_with("* ENABLED UIDONLY\r\n"), "{r}");
    c
}

/// Five messages in INBOX, the first two expunged: UIDs 3, 4, 5 at
/// sequence numbers 1, 2, 3 (so a number in an answer tells which it is).
async fn fixture(c: &mut Client) {
    for s in ["a", "b", "c", "d", "e"] {
        c.append("INBOX", "", &message(s, "x")).await;
    }
    c.ok("SELECT INBOX").await;
    c.ok("UID STORE 1:2 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXPUNGE").await;
    c.ok("UNSELECT").await;
}

/// Lines that are `* n FETCH` or `* n EXPUNGE`: what a UIDONLY session
/// must never be sent.
fn sequence_numbered(r: &str) -> Vec<&str> {
    r.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("*")
                && w.next().is_some_and(|n| n.parse::<u32>().is_ok())
                && matches!(w.next(), Some("FETCH" | "EXPUNGE"))
        })
        .collect()
}

/// Reads responses until one starts with `prefix`; returns them all.
async fn until_line(c: &mut Client, prefix: &str) -> String {
    let mut all = String::new();
    loop {
        let r = c
            .read_response()
            .await
            .unwrap_or_else(|| panic!("EOF; got {all}"));
        all.push_str(&r);
        if r.starts_with(prefix) {
            return all;
        }
    }
}

#[tokio::test]
async fn advertised_after_login_and_enabled_once() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    assert!(!c.greeting.contains("UIDONLY"), "{}", c.greeting);
    c.ok(&format!("LOGIN alice@example.com {PASSWORD}")).await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.lines().next().unwrap().contains(" UIDONLY"), "{r}");
    let r = c.ok("ENABLE UIDONLY").await;
    assert!(r.starts_with("* ENABLED UIDONLY\r\n"), "{r}");
    let r = c.ok("ENABLE UIDONLY").await;
    assert!(r.starts_with("* ENABLED\r\n"), "{r}");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn sequence_numbers_are_refused_with_uidrequired_and_change_nothing() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("CREATE Other").await;
    c.ok("SELECT INBOX").await;
    // Before ENABLE the same commands are fine.
    c.ok("FETCH 1 (FLAGS)").await;
    c.ok("SEARCH 1:2").await;
    c.ok("ENABLE UIDONLY").await;
    c.ok("ENABLE QRESYNC").await;
    c.ok("UID SEARCH RETURN (SAVE) ALL").await;
    for cmd in [
        "FETCH 1 (FLAGS)",
        "FETCH * (FLAGS)",
        "FETCH 1:* (UID)",
        "FETCH $ (FLAGS)",
        "STORE 1 +FLAGS (\\Flagged)",
        "STORE 1:* FLAGS (\\Deleted)",
        "COPY 1 Other",
        "MOVE 1:* Other",
        "SEARCH ALL",
        "SEARCH RETURN (COUNT) UNSEEN",
        "SORT (DATE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        // A sequence set as a search key, in UID commands too.
        "UID SEARCH 1:2",
        "UID SEARCH UNSEEN 2",
        "UID SEARCH NOT 1",
        "UID SEARCH OR SEEN (DELETED 1:*)",
        "UID SORT (ARRIVAL) UTF-8 1",
        "UID THREAD ORDEREDSUBJECT UTF-8 *",
        // QRESYNC's sequence match data holds sequence numbers.
        "SELECT INBOX (QRESYNC (1 1 3:5 (1:3 3:5)))",
        "EXAMINE INBOX (QRESYNC (1 1 3:5 (1 3)))",
        "REPLACE 1 INBOX {1+}\r\nx",
    ] {
        let r = c.cmd(cmd).await;
        let last = r.lines().last().unwrap();
        assert!(
            last.split_whitespace().nth(1) == Some("BAD") && last.contains("[UIDREQUIRED]"),
            "{cmd}: {r}"
        );
        assert!(sequence_numbered(&r).is_empty(), "{cmd}: {r}");
    }
    // Nothing changed: no flags, nothing copied or moved, no replacement;
    // the connection and the selection survive.
    let r = c.ok("UID FETCH 1:* (FLAGS)").await;
    assert_eq!(
        untagged(&r, "UIDFETCH"),
        vec![
            "* 3 UIDFETCH (FLAGS ())",
            "* 4 UIDFETCH (FLAGS ())",
            "* 5 UIDFETCH (FLAGS ())",
        ],
        "{r}"
    );
    let r = c.ok("STATUS Other (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES UIDNEXT)").await;
    assert!(r.contains("(MESSAGES 3 UIDNEXT 6)"), "{r}");
    // UID forms, `*` as the highest UID, `$` and UID set keys are fine.
    c.ok("UID FETCH * (FLAGS)").await;
    c.ok("UID FETCH $ (FLAGS)").await;
    c.ok("UID SEARCH UID 3:* $").await;
    c.ok("UID SORT (ARRIVAL) UTF-8 UID 4:*").await;
    c.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    c.ok("SELECT INBOX (QRESYNC (1 1 3:5))").await;
    c.ok("LOGOUT").await;
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_state_is_checked_before_uidonly() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    let r = c.cmd("FETCH 1 (FLAGS)").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    assert!(!r.contains("UIDREQUIRED"), "{r}");
    assert!(r.contains("no mailbox selected"), "{r}");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn uid_fetch_and_uid_store_answer_uidfetch() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    let r = c.ok("SELECT INBOX").await;
    assert!(r.contains("* 3 EXISTS\r\n"), "{r}");
    let r = c
        .ok("UID FETCH 4:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert_eq!(
        untagged(&r, "UIDFETCH"),
        vec![
            "* 4 UIDFETCH (FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {14}",
            "* 5 UIDFETCH (FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {14}",
        ],
        "{r}"
    );
    assert!(r.contains("Subject: d\r\n\r\n)\r\n"), "{r}");
    let r = c.ok("UID STORE 3,5 +FLAGS (\\Flagged)").await;
    assert_eq!(
        untagged(&r, "UIDFETCH"),
        vec![
            "* 3 UIDFETCH (FLAGS (\\Flagged))",
            "* 5 UIDFETCH (FLAGS (\\Flagged))",
        ],
        "{r}"
    );
    // A body fetch without PEEK reports the new \Seen in the same response.
    let r = c.ok("UID FETCH 4 (BODY[TEXT])").await;
    let line = untagged(&r, "UIDFETCH");
    assert!(line[0].starts_with("* 4 UIDFETCH (BODY[TEXT] "), "{r}");
    assert!(r.contains("FLAGS (\\Seen)"), "{r}");
    // CONDSTORE: MODSEQ in the items.
    let r = c.ok("UID FETCH 3 (FLAGS MODSEQ)").await;
    assert!(
        untagged(&r, "UIDFETCH")[0].starts_with("* 3 UIDFETCH (FLAGS (\\Flagged) MODSEQ ("),
        "{r}"
    );
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    // The UID item only when asked for (see `extension/uidonly.rs`), where it goes.
    let r = c.ok("UID FETCH 3:4 (FLAGS UID)").await;
    assert_eq!(
        untagged(&r, "UIDFETCH"),
        vec![
            "* 3 UIDFETCH (FLAGS (\\Flagged) UID 3)",
            "* 4 UIDFETCH (FLAGS (\\Seen) UID 4)",
        ],
        "{r}"
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn expunges_are_reported_as_vanished() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    for s in ["f", "g"] {
        c.append("INBOX", "", &message(s, "x")).await;
    }
    c.ok("CREATE Other").await;
    c.ok("SELECT INBOX").await;
    // EXPUNGE
    c.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("EXPUNGE").await;
    assert!(r.starts_with("* VANISHED 3\r\n"), "{r}");
    // UID EXPUNGE
    c.ok("UID STORE 4:5 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("UID EXPUNGE 5").await;
    assert!(r.starts_with("* VANISHED 5\r\n"), "{r}");
    // UID MOVE
    let r = c.ok("UID MOVE 4 Other").await;
    assert!(r.contains("* OK [COPYUID "), "{r}");
    assert!(r.contains("* VANISHED 4\r\n"), "{r}");
    // Another session's expunge, told after any command.
    other.ok("SELECT INBOX").await;
    other.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("EXPUNGE").await;
    let r = c.ok("UID FETCH 7 (UID)").await;
    assert!(r.contains("* VANISHED 6\r\n"), "{r}");
    assert!(r.contains("* 7 UIDFETCH (UID 7)\r\n"), "{r}");
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    let r = c.ok("STATUS Other (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 1)"), "{r}");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_sessions_changes_and_idle_use_uids() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    other.ok("SELECT INBOX").await;
    // After a command: the flag change as UIDFETCH (with its UID), a new
    // message as EXISTS.
    other.ok("STORE 2 +FLAGS (\\Answered)").await;
    other.append("INBOX", "", &message("f", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(r.contains("* 4 UIDFETCH (FLAGS (\\Answered))\r\n"), "{r}");
    assert!(r.contains("* 4 EXISTS\r\n"), "{r}");
    // With CONDSTORE the MODSEQ comes along.
    c.ok("ENABLE CONDSTORE").await;
    other.ok("UID STORE 5 +FLAGS (\\Seen)").await;
    let r = c.ok("NOOP").await;
    let line = untagged(&r, "UIDFETCH");
    assert!(
        line[0].starts_with("* 5 UIDFETCH (FLAGS (\\Seen) MODSEQ ("),
        "{r}"
    );
    // During IDLE: flag changes, new messages and expunges, pushed.
    c.send_raw(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    other.ok("UID STORE 3 +FLAGS (\\Flagged)").await;
    let r = until_line(&mut c, "* 3 UIDFETCH").await;
    assert!(
        r.contains("* 3 UIDFETCH (FLAGS (\\Flagged) MODSEQ ("),
        "{r}"
    );
    other.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("EXPUNGE").await;
    let r = until_line(&mut c, "* VANISHED").await;
    assert!(r.contains("* VANISHED 4\r\n"), "{r}");
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    c.send_raw(b"DONE\r\n").await;
    let r = c.until_tagged("i1").await;
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn select_without_unseen_and_qresync_by_uids() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    let r = c.ok("SELECT INBOX").await;
    assert!(!r.contains("[UNSEEN"), "{r}");
    assert!(r.contains("* 3 EXISTS\r\n"), "{r}");
    let validity: u32 = r
        .split("[UIDVALIDITY ")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    c.ok("UID STORE 4 +FLAGS (\\Seen)").await;
    c.ok("ENABLE QRESYNC").await;
    let r = c
        .ok(&format!("SELECT INBOX (QRESYNC ({validity} 1 1:5))"))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 1:2\r\n"), "{r}");
    assert!(r.contains("* 4 UIDFETCH (FLAGS (\\Seen) MODSEQ ("), "{r}");
    assert!(!r.contains("[UNSEEN"), "{r}");
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    // UID FETCH ... (CHANGEDSINCE m VANISHED)
    let r = c
        .ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 1:2\r\n"), "{r}");
    assert!(r.contains("* 4 UIDFETCH (FLAGS (\\Seen) MODSEQ ("), "{r}");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn searches_answer_uids_with_searchres_and_context_update() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    c.ok("UID STORE 4 +FLAGS (\\Seen)").await;
    let r = c.ok("UID SEARCH UNSEEN").await;
    assert!(r.starts_with("* SEARCH 3 5\r\n"), "{r}");
    let tag = c.tag();
    c.send_raw(format!("{tag} UID SEARCH RETURN (MIN COUNT ALL) UNSEEN\r\n").as_bytes())
        .await;
    let r = c.until_tagged(&tag).await;
    assert!(
        r.starts_with(&format!(
            "* ESEARCH (TAG \"{tag}\") UID MIN 3 COUNT 2 ALL 3,5\r\n"
        )),
        "{r}"
    );
    let r = c.ok("UID SORT (REVERSE SUBJECT) UTF-8 ALL").await;
    assert!(r.starts_with("* SORT 5 4 3\r\n"), "{r}");
    let r = c.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert!(r.starts_with("* THREAD (3)(4)(5)\r\n"), "{r}");
    // SEARCHRES: the saved UIDs in a UID command.
    c.ok("UID SEARCH RETURN (SAVE) UNSEEN").await;
    let r = c.ok("UID FETCH $ (FLAGS)").await;
    assert_eq!(
        untagged(&r, "UIDFETCH"),
        vec!["* 3 UIDFETCH (FLAGS ())", "* 5 UIDFETCH (FLAGS ())"],
        "{r}"
    );
    // CONTEXT=SEARCH UPDATE: positions and UIDs.
    c.send_raw(b"u1 UID SEARCH RETURN (UPDATE) UNSEEN\r\n")
        .await;
    c.until_tagged("u1").await;
    other.ok("SELECT INBOX").await;
    other.ok("UID STORE 3 +FLAGS (\\Seen)").await;
    other.append("INBOX", "", &message("f", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(
        r.contains("* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 3) ADDTO (0 6)"),
        "{r}"
    );
    assert!(r.contains("* 3 UIDFETCH (FLAGS (\\Seen))"), "{r}");
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn notify_message_new_fetch_is_uidfetch() {
    let srv = start().await;
    let mut c = uidonly(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    c.ok("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))")
        .await;
    other.append("INBOX", "\\Flagged", &message("f", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(r.contains("* 4 EXISTS\r\n"), "{r}");
    // (`\Recent` too: this session claimed the new message.)
    assert!(r.contains("* 6 UIDFETCH (UID 6 FLAGS (\\Flagged"), "{r}");
    c.send_raw(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    other.append("INBOX", "", &message("g", "y")).await;
    let r = until_line(&mut c, "* 7 UIDFETCH").await;
    assert!(r.contains("* 5 EXISTS\r\n"), "{r}");
    other.ok("SELECT INBOX").await;
    other.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("EXPUNGE").await;
    let r = until_line(&mut c, "* VANISHED 6").await;
    assert!(sequence_numbered(&r).is_empty(), "{r}");
    c.send_raw(b"DONE\r\n").await;
    c.until_tagged("i1").await;
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_imap4rev2_searches_answer_esearch_with_uids() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("ENABLE IMAP4rev2 UIDONLY").await;
    assert!(r.starts_with("* ENABLED IMAP4rev2 UIDONLY\r\n"), "{r}");
    fixture(&mut c).await;
    let r = c.ok("SELECT INBOX").await;
    assert!(!r.contains("RECENT"), "{r}");
    assert!(!r.contains("[UNSEEN"), "{r}");
    let tag = c.tag();
    c.send_raw(format!("{tag} UID SEARCH ALL\r\n").as_bytes())
        .await;
    let r = c.until_tagged(&tag).await;
    assert!(
        r.starts_with(&format!("* ESEARCH (TAG \"{tag}\") UID ALL 3:5\r\n")),
        "{r}"
    );
    let r = c.cmd("SEARCH ALL").await;
    assert!(r.contains("BAD [UIDREQUIRED]"), "{r}");
    // IMAP4rev2's UID item in flag changes (RFC 9051 §7.5.2) is the
    // UIDFETCH's leading number here.
    let r = c.ok("UID STORE 4 +FLAGS (\\Seen)").await;
    assert_eq!(
        untagged(&r, "UIDFETCH"),
        vec!["* 4 UIDFETCH (FLAGS (\\Seen))"],
        "{r}"
    );
    c.ok("UID STORE 5 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("EXPUNGE").await;
    assert!(r.starts_with("* VANISHED 5\r\n"), "{r}");
    srv.shutdown().await.unwrap();
}
