//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) over a real socket: PARTIAL
//! (with RFC 9394's ranges from the end), UPDATE notifications (ADDTO and
//! REMOVEFROM) caused by another session's STORE, APPEND and EXPUNGE,
//! after a command and during IDLE, positions in a sorted context,
//! CANCELUPDATE, the bound on contexts and the refusals.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::*;

fn esearch(r: &str) -> Vec<&str> {
    r.lines().filter(|l| l.starts_with("* ESEARCH")).collect()
}

/// Six messages, UIDs 1..=6, subjects in reverse order of arrival.
async fn fixture(c: &mut Client) {
    for (i, s) in ["f", "e", "d", "c", "b", "a"].iter().enumerate() {
        let flags = if i % 2 == 0 { "\\Seen" } else { "" };
        let r = c.append("INBOX", flags, &message(s, "body")).await;
        assert_eq!(Client::status(&r), "OK", "{r}");
    }
}

/// A server, and two sessions of alice's with the fixture in INBOX,
/// selected in both.
async fn two_sessions() -> (TestServer, Client, Client) {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut a).await;
    a.ok("SELECT INBOX").await;
    b.ok("SELECT INBOX").await;
    (srv, a, b)
}

/// Logs the sessions out and stops the server.
async fn finish(srv: TestServer, sessions: impl IntoIterator<Item = Client>) {
    for mut c in sessions {
        c.ok("LOGOUT").await;
    }
    srv.shutdown().await.unwrap();
}

/// Sends `command` under `tag` (the tag an UPDATE context is named by)
/// and reads up to its tagged answer.
async fn tagged(c: &mut Client, tag: &str, command: &str) -> String {
    c.send_raw(format!("{tag} {command}\r\n").as_bytes()).await;
    c.until_tagged(tag).await
}

/// Opens the sorted context `s1`: the UIDs of the messages matching
/// `criteria`, by subject, kept up to date.
async fn sorted_context(c: &mut Client, criteria: &str) -> String {
    let command = format!("UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 {criteria}");
    tagged(c, "s1", &command).await
}

#[tokio::test]
async fn context_is_advertised_and_partial_returns_windows() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(
        r.contains(" CONTEXT=SEARCH") && r.contains(" CONTEXT=SORT"),
        "{r}"
    );
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    let r = c.ok("UID SEARCH RETURN (PARTIAL 2:4) ALL").await;
    assert!(esearch(&r)[0].ends_with(" UID PARTIAL (2:4 2:4)"), "{r}");
    // Either order; past the end gives what there is, or NIL.
    let r = c.ok("UID SEARCH RETURN (PARTIAL 9:5 COUNT) ALL").await;
    assert!(esearch(&r)[0].contains(" PARTIAL (5:9 5:6)"), "{r}");
    assert!(esearch(&r)[0].contains(" COUNT 6"), "{r}");
    let r = c.ok("SEARCH RETURN (PARTIAL 7:9) ALL").await;
    assert!(esearch(&r)[0].ends_with(" PARTIAL (7:9 NIL)"), "{r}");
    // RFC 9394: from the end.
    let r = c.ok("UID SEARCH RETURN (PARTIAL -1:-2) UNSEEN").await;
    assert!(esearch(&r)[0].ends_with(" UID PARTIAL (-1:-2 4,6)"), "{r}");
    // SORT: positions in sort order, the set in that order.
    let r = c
        .ok("UID SORT RETURN (PARTIAL 1:3) (SUBJECT) UTF-8 ALL")
        .await;
    assert!(esearch(&r)[0].ends_with(" UID PARTIAL (1:3 6,5,4)"), "{r}");
    for bad in [
        "UID SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
        "UID SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        "UID SEARCH RETURN (PARTIAL 0:2) ALL",
        "UID SEARCH RETURN (PARTIAL 1:*) ALL",
        "UID SEARCH RETURN (PARTIAL -1:2) ALL",
        "CANCELUPDATE",
    ] {
        let r = c.cmd(bad).await;
        assert_eq!(Client::status(&r), "BAD", "{bad}: {r}");
    }
    finish(srv, [c]).await;
}

#[tokio::test]
async fn update_notifies_of_other_sessions_changes() {
    let (srv, mut a, mut b) = two_sessions().await;
    let r = tagged(&mut a, "u1", "UID SEARCH RETURN (UPDATE) UNSEEN").await;
    assert_eq!(esearch(&r), vec!["* ESEARCH (TAG \"u1\") UID"], "{r}");

    // Another session reads one (it leaves the result), a new unseen
    // message arrives (it joins it).
    b.ok("UID STORE 2 +FLAGS (\\Seen)").await;
    b.append("INBOX", "", &message("g", "new")).await;
    let r = a.ok("NOOP").await;
    let exists = r.find("* 7 EXISTS").unwrap();
    let update = r
        .find("* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 2) ADDTO (0 7)")
        .unwrap_or_else(|| panic!("{r}"));
    assert!(exists < update, "ADDTO after EXISTS: {r}");

    // During IDLE the update is pushed; an expunge removes from it.
    a.send_raw(b"i1 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with('+'));
    b.ok("UID STORE 4 +FLAGS (\\Deleted)").await;
    b.ok("EXPUNGE").await;
    let mut seen = String::new();
    while !seen.contains("REMOVEFROM") {
        seen.push_str(&a.read_response().await.unwrap());
    }
    assert!(
        seen.contains("* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 4)"),
        "{seen}"
    );
    a.send_raw(b"DONE\r\n").await;
    a.until_tagged("i1").await;

    // CANCELUPDATE: no more notifications for it.
    a.ok("CANCELUPDATE \"u1\"").await;
    b.append("INBOX", "", &message("h", "newer")).await;
    let r = a.ok("NOOP").await;
    assert!(r.contains("EXISTS") && !r.contains("ESEARCH"), "{r}");
    finish(srv, [a, b]).await;
}

#[tokio::test]
async fn sorted_context_updates_carry_positions() {
    let (srv, mut a, mut b) = two_sessions().await;
    // Subjects: uid 1 "f" ... uid 6 "a": sorted 6,5,4,3,2,1.
    let r = sorted_context(&mut a, "ALL").await;
    assert!(esearch(&r)[0].ends_with(" UID ALL 6,5,4,3,2,1"), "{r}");
    // "c2" (uid 7) sorts right after "c" (uid 4); "0" (uid 8) first.
    b.append("INBOX", "", &message("c2", "x")).await;
    b.append("INBOX", "", &message("0", "x")).await;
    b.ok("UID STORE 5 +FLAGS (\\Deleted)").await;
    b.ok("UID EXPUNGE 5").await;
    let r = a.ok("NOOP").await;
    // Old list 6,5,4,3,2,1: remove 5 at position 2 -> 6,4,3,2,1; then
    // insert 8 at 1 -> 8,6,4,3,2,1 and 7 at 4 -> 8,6,4,7,3,2,1.
    assert!(
        r.contains("* ESEARCH (TAG \"s1\") UID REMOVEFROM (2 5) ADDTO (1 8 4 7)"),
        "{r}"
    );
    let r = a.ok("UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL").await;
    assert!(esearch(&r)[0].ends_with(" UID ALL 8,6,4,7,3,2,1"), "{r}");
    finish(srv, [a, b]).await;
}

/// A sorted context on a flag: messages whose flags change leave it and
/// come back at their sorted place; a change that leaves the match as it
/// was sends nothing (updates re-match only the changed messages).
#[tokio::test]
async fn sorted_context_follows_flag_changes() {
    let (srv, mut a, mut b) = two_sessions().await;
    // Unseen: uids 2 "e", 4 "c", 6 "a": by subject 6,4,2.
    let r = sorted_context(&mut a, "UNSEEN").await;
    assert!(esearch(&r)[0].ends_with(" UID ALL 6,4,2"), "{r}");
    b.ok("UID STORE 4 +FLAGS (\\Seen)").await;
    let r = a.ok("NOOP").await;
    assert_eq!(
        esearch(&r),
        vec!["* ESEARCH (TAG \"s1\") UID REMOVEFROM (2 4)"],
        "{r}"
    );
    // "d" (uid 3) comes back between "a" and "e".
    b.ok("UID STORE 3 -FLAGS (\\Seen)").await;
    let r = a.ok("NOOP").await;
    assert_eq!(
        esearch(&r),
        vec!["* ESEARCH (TAG \"s1\") UID ADDTO (2 3)"],
        "{r}"
    );
    b.ok("UID STORE 6 +FLAGS (\\Flagged)").await;
    let r = a.ok("NOOP").await;
    assert!(r.contains("FETCH"), "the flag change is seen: {r}");
    assert!(esearch(&r).is_empty(), "the result did not change: {r}");
    let r = a.ok("UID SORT RETURN (ALL) (SUBJECT) UTF-8 UNSEEN").await;
    assert!(esearch(&r)[0].ends_with(" UID ALL 6,3,2"), "{r}");
    finish(srv, [a, b]).await;
}

#[tokio::test]
async fn contexts_are_bounded_and_refusals_are_noupdate() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    // Sequence-number forms: answered, not kept.
    let r = tagged(&mut c, "n1", "SEARCH RETURN (UPDATE COUNT) ALL").await;
    assert!(r.contains("* NO [NOUPDATE \"n1\"]"), "{r}");
    assert!(r.contains("COUNT 6") && r.contains("n1 OK"), "{r}");
    for i in 0..mailroom_imap::extension::context::MAX_UPDATE_CONTEXTS {
        let tag = format!("k{i}");
        let r = tagged(&mut c, &tag, "UID SEARCH RETURN (UPDATE) ALL").await;
        assert!(!r.contains("NOUPDATE") && r.contains(" OK"), "{r}");
    }
    let r = tagged(&mut c, "over", "UID SEARCH RETURN (UPDATE MIN) ALL").await;
    assert!(r.contains("* NO [NOUPDATE \"over\"]"), "{r}");
    assert!(r.contains("MIN 1") && r.contains("over OK"), "{r}");
    // UPDATE with the tag of a live context is BAD.
    let r = tagged(&mut c, "k0", "UID SEARCH RETURN (UPDATE) ALL").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    // A cancelled one frees its place; a new selection drops them all.
    c.ok("CANCELUPDATE \"k0\" \"k1\"").await;
    let r = tagged(&mut c, "again", "UID SEARCH RETURN (UPDATE) ALL").await;
    assert!(!r.contains("NOUPDATE"), "{r}");
    c.ok("SELECT INBOX").await;
    c.append("INBOX", "", &message("z", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(!r.contains("ESEARCH"), "{r}");
    finish(srv, [c]).await;
}
