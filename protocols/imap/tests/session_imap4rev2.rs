//! IMAP4rev2 (RFC 9051) over a socket: advertised beside IMAP4rev1, and
//! each difference that changes the wire, in a session that sent
//! `ENABLE IMAP4rev2` next to one that did not (see the list in
//! `extension/imap4rev2.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

async fn rev2(addr: std::net::SocketAddr, user: &str) -> Client {
    let mut c = Client::login(addr, user).await;
    let r = c.ok("ENABLE IMAP4rev2").await;
    assert!(r.contains("* ENABLED IMAP4rev2\r\n"), "{r}");
    c
}

#[tokio::test]
async fn advertised_beside_imap4rev1_before_and_after_login() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    assert!(
        c.greeting
            .starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{}",
        c.greeting
    );
    c.ok(&format!("LOGIN alice@example.com {PASSWORD}")).await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.starts_with("* CAPABILITY IMAP4rev1 IMAP4rev2 "), "{r}");
    // Enabled once; a second ENABLE names nothing new.
    let r = c.ok("ENABLE IMAP4rev2").await;
    assert!(r.contains("* ENABLED IMAP4rev2\r\n"), "{r}");
    let r = c.ok("ENABLE IMAP4rev2").await;
    assert!(r.starts_with("* ENABLED\r\n"), "{r}");
}

#[tokio::test]
async fn search_answers_esearch_only_after_enable() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    for s in ["a", "b", "c"] {
        c.append(
            "INBOX",
            if s == "b" { "\\Seen" } else { "" },
            &message(s, "x"),
        )
        .await;
    }
    c.ok("SELECT INBOX").await;
    let r = c.cmd("SEARCH UNSEEN").await;
    assert!(r.starts_with("* SEARCH 1 3\r\n"), "{r}");
    c.ok("ENABLE IMAP4rev2").await;
    let tag = c.tag();
    c.send_raw(format!("{tag} SEARCH UNSEEN\r\n").as_bytes())
        .await;
    let r = c.until_tagged(&tag).await;
    assert_eq!(
        r,
        format!("* ESEARCH (TAG \"{tag}\") ALL 1,3\r\n{tag} OK SEARCH completed\r\n")
    );
    let tag = c.tag();
    c.send_raw(format!("{tag} UID SEARCH ALL\r\n").as_bytes())
        .await;
    let r = c.until_tagged(&tag).await;
    assert!(
        r.starts_with(&format!("* ESEARCH (TAG \"{tag}\") UID ALL 1:3\r\n")),
        "{r}"
    );
    // Nothing found: the ESEARCH has no ALL.
    let tag = c.tag();
    c.send_raw(format!("{tag} SEARCH DELETED\r\n").as_bytes())
        .await;
    let r = c.until_tagged(&tag).await;
    assert!(
        r.starts_with(&format!("* ESEARCH (TAG \"{tag}\")\r\n")),
        "{r}"
    );
    assert!(!r.contains("* SEARCH"), "{r}");
    // An explicit RETURN is answered as before.
    let r = c.ok("SEARCH RETURN (COUNT) ALL").await;
    assert!(r.contains(") COUNT 3\r\n"), "{r}");
}

#[tokio::test]
async fn no_recent_responses_or_flag() {
    let srv = start().await;
    let mut old = Client::login(srv.addr, "alice@example.com").await;
    let mut new = rev2(srv.addr, "alice@example.com").await;
    old.append("INBOX", "", &message("one", "x")).await;

    // The IMAP4rev2 session selects first and claims the message as recent
    // without saying so: no RECENT, no \Recent.
    let r = new.ok("SELECT INBOX").await;
    assert!(r.contains("* 1 EXISTS\r\n"), "{r}");
    assert!(untagged(&r, "RECENT").is_empty(), "{r}");
    let r = new.ok("FETCH 1 FLAGS").await;
    assert!(r.starts_with("* 1 FETCH (FLAGS ())\r\n"), "{r}");
    let r = new.ok("SEARCH RETURN (COUNT) RECENT").await;
    assert!(r.contains(") COUNT 0\r\n"), "{r}");

    // A new message: EXISTS without RECENT, here and in IDLE.
    new.send_raw(b"i1 IDLE\r\n").await;
    assert!(new.read_response().await.unwrap().starts_with('+'));
    old.append("INBOX", "", &message("two", "y")).await;
    assert_eq!(new.read_response().await.unwrap(), "* 2 EXISTS\r\n");
    new.send_raw(b"DONE\r\n").await;
    let r = new.until_tagged("i1").await;
    assert_eq!(r, "i1 OK IDLE terminated\r\n");

    // The IMAP4rev1 session still hears RECENT (for what nobody claimed).
    old.append("INBOX", "", &message("three", "z")).await;
    let r = old.ok("EXAMINE INBOX").await;
    assert!(r.contains("* 3 EXISTS\r\n"), "{r}");
    assert!(r.contains(" RECENT\r\n"), "{r}");
    let r = new.ok("NOOP").await;
    assert!(r.contains("* 3 EXISTS\r\n"), "{r}");
    assert!(untagged(&r, "RECENT").is_empty(), "{r}");
}

#[tokio::test]
async fn select_sends_list_and_closed_but_not_unseen() {
    let srv = start().await;
    let mut old = Client::login(srv.addr, "alice@example.com").await;
    old.ok("CREATE Work").await;
    old.append("INBOX", "\\Seen", &message("read", "x")).await;
    old.append("INBOX", "", &message("unread", "x")).await;
    let r = old.ok("SELECT INBOX").await;
    assert!(r.contains("* OK [UNSEEN 2]"), "{r}");
    assert!(untagged(&r, "LIST").is_empty(), "{r}");
    let r = old.ok("SELECT Work").await;
    assert!(!r.contains("[CLOSED]"), "{r}");

    let mut c = rev2(srv.addr, "alice@example.com").await;
    let r = c.ok("SELECT inbox").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"),
        "{r}"
    );
    assert!(!r.contains("[UNSEEN"), "{r}");
    assert!(!r.contains("[CLOSED]"), "{r}");
    let r = c.ok("EXAMINE Work").await;
    let closed = r.find("* OK [CLOSED]").expect("CLOSED");
    let list = r
        .find("* LIST (\\HasNoChildren) \"/\" \"Work\"\r\n")
        .expect("LIST");
    assert!(closed < list, "{r}");
    assert!(r.contains("[READ-ONLY]"), "{r}");
}

#[tokio::test]
async fn list_marks_hierarchy_only_parents_nonexistent() {
    let srv = start().await;
    let mut bob = Client::login(srv.addr, "bob@example.com").await;
    bob.ok("SETACL INBOX alice@example.com lr").await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("LIST \"\" *").await;
    assert!(
        r.contains("* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users\"\r\n"),
        "{r}"
    );
    c.ok("ENABLE IMAP4rev2").await;
    let r = c.ok("LIST \"\" *").await;
    for parent in ["Other Users", "Other Users/bob@example.com"] {
        assert!(
            r.contains(&format!(
                "* LIST (\\NonExistent \\HasChildren) \"/\" \"{parent}\"\r\n"
            )),
            "{r}"
        );
    }
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" \"Other Users/bob@example.com/INBOX\"\r\n"),
        "{r}"
    );
}

#[tokio::test]
async fn mailbox_names_are_utf8_after_enable() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("CREATE R&AOk-sum&AOk-").await;
    let r = c.ok("LIST \"\" R*").await;
    assert!(r.contains("\"/\" \"R&AOk-sum&AOk-\"\r\n"), "{r}");
    c.ok("ENABLE IMAP4rev2").await;
    let r = c.ok("LIST \"\" R*").await;
    assert!(r.contains("\"/\" \"Résumé\"\r\n"), "{r}");
    let r = c.ok("STATUS \"Résumé\" (MESSAGES)").await;
    assert!(r.starts_with("* STATUS \"Résumé\" (MESSAGES 0)\r\n"), "{r}");
    // SEARCH still takes a CHARSET (unlike after UTF8=ACCEPT).
    c.ok("SELECT \"Résumé\"").await;
    c.ok("SEARCH CHARSET UTF-8 ALL").await;
}

/// RFC 9051 Appendix E item 21 (§7.5.2): an unsolicited FETCH (a flag
/// change told after a command or during IDLE) carries UID, after any
/// command, not only UID ones. IMAP4rev1 sessions keep RFC 3501's form.
#[tokio::test]
async fn unsolicited_fetch_includes_uid() {
    let srv = start().await;
    let mut old = Client::login(srv.addr, "alice@example.com").await;
    let mut new = rev2(srv.addr, "alice@example.com").await;
    for s in ["a", "b"] {
        old.append("INBOX", "", &message(s, "x")).await;
    }
    old.ok("SELECT INBOX").await;
    new.ok("SELECT INBOX").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    other.ok("SELECT INBOX").await;

    other.ok("STORE 2 +FLAGS (\\Flagged)").await;
    let r = new.ok("NOOP").await;
    assert!(r.contains("* 2 FETCH (FLAGS (\\Flagged) UID 2)\r\n"), "{r}");
    // After a FETCH (not a UID command) too.
    other.ok("STORE 1 +FLAGS (\\Answered)").await;
    let r = new.ok("FETCH 2 (FLAGS)").await;
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Answered) UID 1)\r\n"),
        "{r}"
    );
    // And during IDLE.
    new.send_raw(b"i1 IDLE\r\n").await;
    assert!(new.read_response().await.unwrap().starts_with('+'));
    other.ok("STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(
        new.read_response().await.unwrap(),
        "* 1 FETCH (FLAGS (\\Seen \\Answered) UID 1)\r\n"
    );
    new.send_raw(b"DONE\r\n").await;
    new.until_tagged("i1").await;

    // The IMAP4rev1 session: RFC 3501's unsolicited FETCH, no UID.
    let r = old.ok("NOOP").await;
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n"),
        "{r}"
    );
    assert!(!r.contains("UID"), "{r}");
}

/// RFC 9051 Appendix E item 1: `partial` takes `number64`, so an origin
/// past 4 GiB is an empty string (the message is shorter), not `BAD`, for
/// BODY and BINARY alike, and a length past 4 GiB is the rest. (The parser
/// is shared: an IMAP4rev1 session gets the same.)
#[tokio::test]
async fn partials_take_64_bit_numbers() {
    let srv = start().await;
    let mut c = rev2(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", &message("a", "hello")).await;
    c.ok("SELECT INBOX").await;
    let r = c
        .ok("FETCH 1 (BODY.PEEK[]<5000000000.10> BINARY.PEEK[1]<4294967296.5> BODY.PEEK[TEXT]<2.5000000000>)")
        .await;
    assert!(r.contains("BODY[]<5000000000> {0}\r\n"), "{r}");
    assert!(r.contains("BINARY[1]<4294967296> {0}\r\n"), "{r}");
    let whole = c.ok("FETCH 1 (BODY.PEEK[TEXT])").await;
    let text = whole.split("BODY[TEXT] {").nth(1).unwrap();
    let (len, rest) = text.split_once("}\r\n").unwrap();
    let len: usize = len.parse().unwrap();
    assert!(
        r.contains(&format!(
            "BODY[TEXT]<2> {{{}}}\r\n{}",
            len - 2,
            &rest[2..len]
        )),
        "{r}"
    );
    srv.shutdown().await.unwrap();
}

/// RFC 9051 Appendix E items 7 and 8 (§6.4.7, §6.4.8): MOVE answers
/// COPYUID as UID MOVE does, and neither COPY nor MOVE creates a missing
/// target; both answer `NO [TRYCREATE]` and leave the messages alone.
#[tokio::test]
async fn move_answers_copyuid_and_a_missing_target_is_trycreate() {
    let srv = start().await;
    let mut c = rev2(srv.addr, "alice@example.com").await;
    for s in ["a", "b", "c"] {
        c.append("INBOX", "", &message(s, "x")).await;
    }
    c.ok("CREATE Archive").await;
    c.ok("SELECT INBOX").await;
    let r = c.ok("MOVE 2 Archive").await;
    assert!(r.contains("* OK [COPYUID "), "{r}");
    assert!(r.contains(" 2 1] "), "{r}");
    let r = c.ok("UID MOVE 3 Archive").await;
    assert!(r.contains(" 3 2] "), "{r}");
    for cmd in ["COPY 1 Nowhere", "MOVE 1 Nowhere", "UID MOVE 1 Nowhere"] {
        let r = c.cmd(cmd).await;
        assert!(
            r.lines().last().unwrap().contains(" NO [TRYCREATE]"),
            "{cmd}: {r}"
        );
    }
    let r = c.ok("LIST \"\" Nowhere").await;
    assert!(untagged(&r, "LIST").is_empty(), "{r}");
    let r = c.ok("STATUS Archive (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 2)"), "{r}");
    let r = c.ok("NOOP").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
}
