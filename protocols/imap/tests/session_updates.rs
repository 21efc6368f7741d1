//! Unsolicited updates between sessions: IDLE, EXISTS/EXPUNGE/FETCH at the
//! points RFC 3501 §7.4.1 allows, CONDSTORE and QRESYNC (RFC 7162).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

fn number_after(r: &str, key: &str) -> u64 {
    let at = r.find(key).unwrap_or_else(|| panic!("{key} not in {r}")) + key.len();
    r[at..]
        .trim_start_matches([' ', '('])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn idle_wakes_up_on_another_sessions_changes() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    a.ok("SELECT INBOX").await;
    a.send_raw(b"i1 IDLE\r\n").await;
    let cont = a.read_response().await.unwrap();
    assert!(cont.starts_with("+ "), "{cont}");

    b.append("INBOX", "", &message("new", "wake up")).await;
    let r = a.read_response().await.unwrap();
    assert_eq!(r, "* 1 EXISTS\r\n");
    let r = a.read_response().await.unwrap();
    assert_eq!(r, "* 1 RECENT\r\n");

    b.ok("SELECT INBOX").await;
    b.ok("STORE 1 +FLAGS (\\Flagged)").await;
    let r = a.read_response().await.unwrap();
    assert!(
        r.starts_with("* 1 FETCH (FLAGS (\\Flagged \\Recent))"),
        "{r}"
    );

    b.ok("STORE 1 +FLAGS (\\Deleted)").await;
    let _ = a.read_response().await.unwrap();
    b.ok("EXPUNGE").await;
    let r = a.read_response().await.unwrap();
    assert_eq!(r, "* 1 EXPUNGE\r\n");

    a.send_raw(b"DONE\r\n").await;
    let r = a.until_tagged("i1").await;
    assert!(r.contains("i1 OK"), "{r}");
    a.ok("NOOP").await;
    // IDLE ended by something other than DONE is a BAD, and the session goes on.
    a.send_raw(b"i2 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with('+'));
    a.send_raw(b"NOPE\r\n").await;
    let r = a.until_tagged("i2").await;
    assert!(r.contains("i2 BAD"), "{r}");
    a.ok("NOOP").await;
}

#[tokio::test]
async fn idle_in_authenticated_state_and_logout() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    a.send_raw(b"i1 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with('+'));
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.send_raw(b"done\r\n").await;
    let r = a.until_tagged("i1").await;
    assert!(r.contains("i1 OK"), "{r}");
}

#[tokio::test]
async fn expunge_waits_during_fetch_store_search_but_not_uid_commands() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    for i in 1..=3 {
        a.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    a.ok("SELECT INBOX").await;
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    b.ok("SELECT INBOX").await;
    b.ok("STORE 2 +FLAGS (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    b.append("INBOX", "", &message("m4", "x")).await;

    let r = a.ok("FETCH 1:* (UID)").await;
    assert!(!r.contains("EXPUNGE"), "no EXPUNGE during FETCH: {r}");
    assert!(r.contains("* 4 EXISTS"), "EXISTS is fine: {r}");
    assert!(
        r.contains("* 1 FETCH (UID 1)") && r.contains("* 3 FETCH (UID 3)"),
        "{r}"
    );
    assert!(!r.contains("UID 2)"), "expunged message is not served: {r}");
    let r = a.ok("SEARCH ALL").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    assert_eq!(
        search_ids(&r),
        vec![1, 3, 4],
        "sequence numbers unchanged until announced"
    );
    let r = a.ok("STORE 3 +FLAGS (\\Seen)").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    let r = a.ok("UID FETCH 1 FLAGS").await;
    assert!(
        r.contains("* 2 EXPUNGE"),
        "UID commands may carry EXPUNGE: {r}"
    );
    let r = a.ok("FETCH 1:* UID").await;
    assert!(
        r.contains("* 2 FETCH (UID 3)") && r.contains("* 3 FETCH (UID 4)"),
        "{r}"
    );

    // Flag changes by another session show up after NOOP.
    b.ok("STORE 1 +FLAGS (\\Answered)").await;
    let r = a.ok("NOOP").await;
    assert!(r.contains("* 1 FETCH (FLAGS (\\Answered"), "{r}");
    let r = a.ok("NOOP").await;
    assert!(!r.contains("FETCH"), "reported once: {r}");
}

#[tokio::test]
async fn condstore_flows() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    for i in 1..=3 {
        c.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    let r = c.ok("SELECT INBOX (CONDSTORE)").await;
    let highest = number_after(&r, "HIGHESTMODSEQ");
    let r = c.ok("FETCH 1:* (FLAGS MODSEQ)").await;
    assert_eq!(untagged(&r, "MODSEQ (").len(), 3, "{r}");
    c.ok("STORE 2 +FLAGS (\\Flagged)").await;
    let r = c
        .ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"))
        .await;
    assert_eq!(untagged(&r, "FETCH").len(), 1, "{r}");
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{r}"
    );
    let m2 = number_after(&r, "MODSEQ");
    // UNCHANGEDSINCE: message 2 changed after `highest`, so it is refused.
    let r = c
        .ok(&format!(
            "STORE 1:2 (UNCHANGEDSINCE {highest}) +FLAGS.SILENT (\\Seen)"
        ))
        .await;
    assert!(r.contains("OK [MODIFIED 2]"), "{r}");
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ ("),
        "sent even with .SILENT: {r}"
    );
    let r = c
        .ok(&format!(
            "UID STORE 2 (UNCHANGEDSINCE {m2}) +FLAGS (\\Seen)"
        ))
        .await;
    assert!(!r.contains("MODIFIED"), "{r}");
    assert!(r.contains("UID 2") && r.contains("MODSEQ"), "{r}");
    let r = c.ok(&format!("SEARCH MODSEQ {}", m2 + 1)).await;
    assert!(r.contains("(MODSEQ "), "{r}");
    assert_eq!(search_ids(&r), vec![1, 2]);
    let r = c.ok("STATUS INBOX (HIGHESTMODSEQ)").await;
    assert!(number_after(&r, "HIGHESTMODSEQ") > highest, "{r}");
}

#[tokio::test]
async fn qresync_flows() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    for i in 1..=4 {
        c.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    let r = c.cmd("SELECT INBOX (QRESYNC (1 1))").await;
    assert_eq!(Client::status(&r), "BAD", "needs ENABLE QRESYNC: {r}");
    c.ok("ENABLE QRESYNC").await;
    let r = c.ok("SELECT INBOX").await;
    let validity = number_after(&r, "UIDVALIDITY");
    let highest = number_after(&r, "HIGHESTMODSEQ");

    // Another session changes and expunges while we are away.
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    b.ok("SELECT INBOX").await;
    b.ok("STORE 1 +FLAGS (\\Flagged)").await;
    b.ok("STORE 3 +FLAGS (\\Deleted)").await;
    b.ok("EXPUNGE").await;

    let r = c.ok("SELECT Trash").await;
    assert!(r.contains("* OK [CLOSED]"), "{r}");
    let r = c
        .ok(&format!(
            "SELECT INBOX (QRESYNC ({validity} {highest} 1:4))"
        ))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 3"), "{r}");
    assert!(r.contains("* 1 FETCH (UID 1 FLAGS (\\Flagged"), "{r}");
    assert!(r.contains("[CLOSED]"), "{r}");
    // Wrong UIDVALIDITY: a plain SELECT.
    let r = c.ok("SELECT INBOX (QRESYNC (1 1))").await;
    assert!(!r.contains("VANISHED"), "{r}");

    // Live expunges are VANISHED, not EXPUNGE.
    b.ok("STORE 1 +FLAGS (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let r = c.ok("NOOP").await;
    assert!(r.contains("* VANISHED 1"), "{r}");
    assert!(!r.contains("EXPUNGE\r\n"), "{r}");
    let r = c
        .ok(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)"
        ))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 1,3"), "{r}");
    let r = c
        .cmd(&format!(
            "FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)"
        ))
        .await;
    assert_eq!(
        Client::status(&r),
        "BAD",
        "VANISHED only with UID FETCH: {r}"
    );
    // Our own EXPUNGE under QRESYNC.
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("EXPUNGE").await;
    assert!(r.contains("* VANISHED 2"), "{r}");
}

/// Regression (seen with imapclient in the e2e concurrency test): a flag
/// change reported during a UID command carries the UID. imapclient files
/// the FETCH responses of `UID FETCH` under their UID, and a UID-less
/// unsolicited `* 2 FETCH (FLAGS ...)` under the number 2, where it passed
/// for the answer about UID 2, without the data asked for.
#[tokio::test]
async fn flag_updates_during_uid_commands_carry_the_uid() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    for i in 0..3 {
        b.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    a.ok("SELECT INBOX").await;
    b.ok("SELECT INBOX").await;
    b.ok("STORE 2 +FLAGS (\\Flagged)").await;
    let r = a
        .ok("UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    let update = untagged(&r, "FETCH")
        .into_iter()
        .find(|l| l.starts_with("* 2 FETCH"))
        .unwrap_or_else(|| panic!("no update for message 2 in {r}"));
    assert!(update.contains("UID 2"), "{update}");
    assert!(update.contains("\\Flagged"), "{update}");
    // after a non-UID command nothing requires it (and RFC 3501's own
    // examples have none)
    b.ok("STORE 1 +FLAGS (\\Flagged)").await;
    let r = a.ok("FETCH 3 (FLAGS)").await;
    let update = untagged(&r, "FETCH")
        .into_iter()
        .find(|l| l.starts_with("* 1 FETCH"))
        .unwrap_or_else(|| panic!("no update for message 1 in {r}"));
    assert!(!update.contains("UID"), "{update}");
}
