//! Conformance faults found by Dovecot's imaptest (issue 10), each checked
//! over a socket: keywords announced before use, `\Recent` counts on
//! SELECT and EXAMINE, COPY and MOVE into the selected mailbox, the ESEARCH
//! MODSEQ of MIN/MAX, mailbox names that are not modified UTF-7, and the
//! IDLE keepalive.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use mailroom_imap::{ImapConfig, TlsMode};

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

/// Index of the first line of `r` that starts with `prefix` and contains `word`.
fn line_of(r: &str, prefix: &str, word: &str) -> Option<usize> {
    r.lines()
        .position(|l| l.starts_with(prefix) && l.contains(word))
}

/// `keyword` reaches the client as `* FLAGS` and `* OK [PERMANENTFLAGS`
/// before the first `FETCH` that shows it (which must be in `r`).
fn assert_announced_first(r: &str, keyword: &str) {
    let fetch = r
        .lines()
        .position(|l| l.contains(" FETCH (") && l.contains(keyword))
        .unwrap_or_else(|| panic!("no FETCH showing {keyword}: {r}"));
    let flags = line_of(r, "* FLAGS (", keyword)
        .unwrap_or_else(|| panic!("{keyword} never announced in FLAGS: {r}"));
    let permanent = line_of(r, "* OK [PERMANENTFLAGS (", keyword)
        .unwrap_or_else(|| panic!("{keyword} not in PERMANENTFLAGS: {r}"));
    assert!(
        flags < fetch && permanent < fetch,
        "announced too late: {r}"
    );
    let permanent = r.lines().nth(permanent).unwrap_or_default();
    assert!(permanent.contains(" \\*)]"), "still ends with \\*: {r}");
}

#[tokio::test]
async fn a_new_keyword_is_announced_to_every_session_before_a_fetch_shows_it() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    for i in 1..=3 {
        a.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    let r = a.ok("SELECT INBOX").await;
    assert!(!r.contains("$Work"), "{r}");
    b.ok("SELECT INBOX").await;

    // The session that stores the keyword hears of it first.
    let r = b.ok("STORE 1 +FLAGS ($Work)").await;
    assert_announced_first(&r, "$Work");
    // Another session, at its next command.
    let r = a.ok("NOOP").await;
    assert_announced_first(&r, "$Work");
    // Once known, it is not announced again.
    let r = b.ok("STORE 2 +FLAGS ($Work)").await;
    assert!(!r.contains("* FLAGS"), "{r}");
    let r = a.ok("NOOP").await;
    assert!(!r.contains("* FLAGS") && r.contains("$Work"), "{r}");

    // A FETCH of a message another session just gave a new keyword.
    b.ok("STORE 3 +FLAGS (Urgent)").await;
    let r = a.ok("FETCH 3 (FLAGS)").await;
    assert_announced_first(&r, "Urgent");

    // During IDLE.
    a.send_raw(b"i1 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with('+'));
    b.ok("STORE 2 +FLAGS (Later)").await;
    let mut pushed = String::new();
    while !pushed.contains(" FETCH (") {
        pushed.push_str(&a.read_response().await.unwrap());
    }
    assert_announced_first(&pushed, "Later");
    a.send_raw(b"DONE\r\n").await;
    a.until_tagged("i1").await;

    // A message appended with a keyword: announced with its arrival, so
    // before the client can fetch it.
    b.append("INBOX", "Fresh", &message("m4", "x")).await;
    let r = a.ok("NOOP").await;
    let flags = line_of(&r, "* FLAGS (", "Fresh").unwrap_or_else(|| panic!("{r}"));
    let exists = line_of(&r, "* 4 EXISTS", "").unwrap_or_else(|| panic!("{r}"));
    assert!(flags < exists, "{r}");
    let r = a.ok("FETCH 4 FLAGS").await;
    assert!(!r.contains("* FLAGS") && r.contains("Fresh"), "{r}");

    // A new SELECT lists every keyword in use.
    let r = a.ok("SELECT INBOX").await;
    assert!(
        r.contains(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Fresh Later Urgent)"
        ),
        "{r}"
    );
}

#[tokio::test]
async fn examine_reports_recent_messages_without_claiming_them() {
    let srv = start().await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    a.ok("CREATE Box").await;
    for i in 1..=2 {
        a.append("Box", "", &message(&format!("m{i}"), "x")).await;
    }
    // Nobody has seen them: EXAMINE reports both, and shows them \Recent,
    // as Dovecot does.
    let r = b.ok("EXAMINE Box").await;
    assert!(r.contains("* 2 EXISTS") && r.contains("* 2 RECENT"), "{r}");
    let r = b.ok("FETCH 1:* FLAGS").await;
    assert_eq!(untagged(&r, "FLAGS (\\Recent)").len(), 2, "{r}");
    // It claimed nothing: the first SELECT still gets them.
    let r = a.ok("SELECT Box").await;
    assert!(r.contains("* 2 RECENT"), "{r}");
    let r = b.ok("EXAMINE Box").await;
    assert!(r.contains("* 0 RECENT"), "claimed by the SELECT: {r}");
    // One more arrives (appended by a session that has it selected
    // read-only, so claims nothing); only it is recent for the next EXAMINE.
    a.ok("UNSELECT").await;
    b.append("Box", "", &message("m3", "x")).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("EXAMINE Box").await;
    assert!(r.contains("* 3 EXISTS") && r.contains("* 1 RECENT"), "{r}");
    let r = c.ok("FETCH 1:* FLAGS").await;
    assert!(r.contains("* 3 FETCH (FLAGS (\\Recent))"), "{r}");
    assert!(r.contains("* 1 FETCH (FLAGS ())"), "{r}");

    // While examining: a new message nobody claimed is recent here too
    // (Dovecot does the same), and stays so when a SELECT claims it later.
    b.append("Box", "", &message("m4", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(r.contains("* 4 EXISTS") && r.contains("* 2 RECENT"), "{r}");
    let r = a.ok("SELECT Box").await;
    assert!(r.contains("* 2 RECENT"), "claimed by the SELECT: {r}");
    let r = c.ok("FETCH 4 FLAGS").await;
    assert!(r.contains("* 4 FETCH (FLAGS (\\Recent))"), "{r}");
    // One that a selecting session claimed first is not.
    b.append("Box", "", &message("m5", "x")).await;
    let r = a.ok("NOOP").await;
    assert!(r.contains("* 5 EXISTS") && r.contains("* 3 RECENT"), "{r}");
    let r = c.ok("NOOP").await;
    assert!(r.contains("* 5 EXISTS") && r.contains("* 2 RECENT"), "{r}");
    let r = c.ok("FETCH 5 FLAGS").await;
    assert!(r.contains("* 5 FETCH (FLAGS ())"), "{r}");
}

#[tokio::test]
async fn esearch_min_max_report_the_modseq_of_the_messages_returned() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    for i in 1..=3 {
        c.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    c.ok("SELECT INBOX (CONDSTORE)").await;
    // Message 2 gets the highest modseq; 1 and 3 keep their own.
    c.ok("STORE 2 +FLAGS (\\Flagged)").await;
    let r = c.ok("FETCH 1:3 (MODSEQ)").await;
    let modseq = |seq: u32| {
        let line = r
            .lines()
            .find(|l| l.starts_with(&format!("* {seq} FETCH")))
            .unwrap();
        number_after(line, "MODSEQ")
    };
    let (m1, m2, m3) = (modseq(1), modseq(2), modseq(3));
    assert!(m2 > m1.max(m3), "{r}");

    let r = c.ok("SEARCH RETURN (MIN) MODSEQ 1").await;
    assert!(r.contains(&format!("MIN 1 MODSEQ {m1}\r\n")), "{r}");
    let r = c.ok("SEARCH RETURN (MAX) MODSEQ 1").await;
    assert!(r.contains(&format!("MAX 3 MODSEQ {m3}\r\n")), "{r}");
    let r = c.ok("UID SEARCH RETURN (MIN MAX) MODSEQ 1").await;
    assert!(
        r.contains(&format!("MIN 1 MAX 3 MODSEQ {}\r\n", m1.max(m3))),
        "{r}"
    );
    // With ALL or COUNT it is the highest of every match.
    let r = c.ok("SEARCH RETURN (MIN COUNT) MODSEQ 1").await;
    assert!(r.contains(&format!("MODSEQ {m2}\r\n")), "{r}");
    let r = c.ok("SEARCH RETURN (ALL) MODSEQ 1").await;
    assert!(r.contains(&format!("ALL 1:3 MODSEQ {m2}\r\n")), "{r}");
    // Nothing matched: no MODSEQ.
    let r = c
        .ok(&format!("SEARCH RETURN (MIN) MODSEQ {}", m2 + 1))
        .await;
    assert!(!r.contains("MODSEQ"), "{r}");
}

#[tokio::test]
async fn copy_and_move_into_the_selected_mailbox() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    for i in 1..=3 {
        c.append("INBOX", "", &message(&format!("m{i}"), "x")).await;
    }
    c.ok("SELECT INBOX").await;
    other.ok("SELECT INBOX").await;
    c.ok("STORE 2 +FLAGS (\\Flagged)").await;

    // COPY: new UIDs, announced in the same response.
    let r = c.ok("COPY 1 INBOX").await;
    assert!(r.contains(" 1 4]") && r.contains("OK [COPYUID "), "{r}");
    assert!(r.contains("* 4 EXISTS"), "{r}");

    // MOVE: COPYUID, the old message's EXPUNGE, the new one's EXISTS.
    let r = c.ok("MOVE 2 INBOX").await;
    let copyuid = line_of(&r, "* OK [COPYUID ", " 2 5]").unwrap_or_else(|| panic!("{r}"));
    let expunge = line_of(&r, "* 2 EXPUNGE", "").unwrap_or_else(|| panic!("{r}"));
    let exists = line_of(&r, "* 4 EXISTS", "").unwrap_or_else(|| panic!("{r}"));
    assert!(copyuid < expunge && expunge < exists, "{r}");
    let r = c.ok("FETCH 1:* (UID FLAGS)").await;
    assert!(r.contains("* 4 FETCH (UID 5 FLAGS (\\Flagged"), "{r}");
    assert_eq!(untagged(&r, "FETCH").len(), 4, "{r}");

    // UID MOVE of several, with QRESYNC: VANISHED instead of EXPUNGE.
    c.ok("ENABLE QRESYNC").await;
    let r = c.ok("UID MOVE 1,3 INBOX").await;
    assert!(r.contains(" 1,3 6:7]"), "{r}");
    assert!(r.contains("* VANISHED 1,3\r\n"), "{r}");
    let r = c.ok("UID SEARCH ALL").await;
    assert_eq!(search_ids(&r), vec![4, 5, 6, 7], "{r}");

    // Another session sees the expunges and the new messages.
    let r = other.ok("NOOP").await;
    assert_eq!(untagged(&r, "EXPUNGE").len(), 3, "{r}");
    assert!(r.contains("EXISTS"), "{r}");
    let r = other.ok("UID SEARCH ALL").await;
    assert_eq!(search_ids(&r), vec![4, 5, 6, 7], "{r}");

    // Read-only: MOVE needs to expunge, so it is refused; COPY is not.
    let mut ro = Client::login(srv.addr, "alice@example.com").await;
    ro.ok("EXAMINE INBOX").await;
    let r = ro.cmd("MOVE 1 INBOX").await;
    assert_eq!(Client::status(&r), "NO", "{r}");
}

#[tokio::test]
async fn idle_sends_keepalives_and_still_logs_out_a_silent_client() {
    let srv = start_with(
        ImapConfig {
            idle_keepalive: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(1500),
            ..test_config()
        },
        None,
        TlsMode::Plain,
    )
    .await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    a.ok("SELECT INBOX").await;

    // Keepalives while idling, and updates still come between them.
    a.send_raw(b"i1 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with("+ "));
    let started = Instant::now();
    for _ in 0..2 {
        assert_eq!(a.read_response().await.unwrap(), "* OK Still here\r\n");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "one per interval"
    );
    let mut b = Client::login(srv.addr, "alice@example.com").await;
    b.append("INBOX", "", &message("m1", "x")).await;
    let mut got = String::new();
    while !got.contains("* 1 EXISTS") {
        got.push_str(&a.read_response().await.unwrap());
    }
    a.send_raw(b"DONE\r\n").await;
    let r = a.until_tagged("i1").await;
    assert!(r.contains("i1 OK"), "{r}");
    // None outside IDLE.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = a.ok("NOOP").await;
    assert!(!r.contains("Still here"), "{r}");

    // Keepalives are not client activity: a client that says nothing for
    // the autologout time is logged out, in IDLE too.
    a.send_raw(b"i2 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with("+ "));
    let started = Instant::now();
    let mut keepalives = 0;
    let bye = loop {
        let line = a.read_response().await.expect("BYE before EOF");
        if line == "* OK Still here\r\n" {
            keepalives += 1;
            continue;
        }
        break line;
    };
    assert!(
        bye.starts_with("* BYE") && bye.contains("autologout"),
        "{bye}"
    );
    assert!(keepalives >= 4, "{keepalives} keepalives before the BYE");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "autologout after the idle timeout, not before: {waited:?}"
    );
    assert!(a.read_response().await.is_none(), "closed after the BYE");
}

#[tokio::test]
async fn idle_keepalive_zero_turns_it_off() {
    let srv = start_with(
        ImapConfig {
            idle_keepalive: Duration::ZERO,
            ..test_config()
        },
        None,
        TlsMode::Plain,
    )
    .await;
    let mut a = Client::login(srv.addr, "alice@example.com").await;
    a.ok("SELECT INBOX").await;
    a.send_raw(b"i1 IDLE\r\n").await;
    assert!(a.read_response().await.unwrap().starts_with("+ "));
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send_raw(b"DONE\r\n").await;
    let r = a.until_tagged("i1").await;
    assert!(!r.contains("Still here") && r.contains("i1 OK"), "{r}");
    assert_eq!(
        ImapConfig::default().idle_keepalive,
        Duration::from_secs(120)
    );
}

/// The answers Dovecot 2.3 gives to the same commands (checked by hand and
/// by `tests/clients/conformance.py` against a private Dovecot): `NO` for
/// every command naming such a mailbox, nothing listed for such a pattern.
#[tokio::test]
async fn names_that_are_not_modified_utf7_are_no_such_mailbox() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", &message("m1", "x")).await;
    c.ok("CREATE \"Entw&APw-rfe\"").await;
    c.ok("SELECT INBOX").await;
    for (command, code) in [
        ("SELECT \"&foo\"", "NONEXISTENT"),
        ("EXAMINE \"&Jjo!\"", "NONEXISTENT"),
        ("STATUS \"&foo\" (MESSAGES)", "NONEXISTENT"),
        ("CREATE \"&foo\"", "CANNOT"),
        ("DELETE \"&foo\"", "NONEXISTENT"),
        ("RENAME \"&foo\" x", "NONEXISTENT"),
        ("RENAME \"Entw&APw-rfe\" \"&foo\"", "CANNOT"),
        ("SUBSCRIBE \"&foo\"", "NONEXISTENT"),
        ("GETACL \"&foo\"", "NONEXISTENT"),
        ("MYRIGHTS AT&T", "NONEXISTENT"),
    ] {
        let r = c.cmd(command).await;
        assert!(
            r.lines().last().unwrap().contains(&format!("NO [{code}]")),
            "{command}: {r}"
        );
    }
    // The failed SELECT left INBOX, as any failed SELECT does.
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    c.ok("SELECT INBOX").await;
    let r = c.cmd("COPY 1 \"&foo\"").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    let r = c.cmd("UID MOVE 1 \"&foo\"").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    // APPEND: the literal is read (so the connection goes on) and refused.
    let r = c.append("\"&foo\"", "", &message("m2", "x")).await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("MESSAGES 1"), "{r}");
    // Nothing was created.
    let r = c.ok("LIST \"\" *").await;
    assert!(!r.contains("&foo") && !r.contains("AT&T"), "{r}");

    // As patterns they match nothing.
    for command in [
        "LIST \"\" \"&foo\"",
        "LIST \"\" \"&foo*\"",
        "LIST \"&foo\" *",
        "LSUB \"\" \"&foo*\"",
        "LIST (SUBSCRIBED) \"\" \"&foo\" RETURN (STATUS (MESSAGES))",
    ] {
        let r = c.ok(command).await;
        assert_eq!(r.lines().count(), 1, "{command}: {r}");
    }
    // Beside a valid pattern, only the valid one matches.
    let r = c.ok("LIST \"\" (\"&foo\" INBOX)").await;
    assert_eq!(untagged(&r, "LIST").len(), 1, "{r}");
    assert!(r.contains("\"INBOX\"") || r.contains(" INBOX\r\n"), "{r}");
    // Valid modified UTF-7 still works.
    let r = c.ok("LIST \"\" \"Entw&APw-*\"").await;
    assert!(r.contains("Entw&APw-rfe"), "{r}");
    // Bad syntax is still BAD.
    let r = c.cmd("SELECT \"&foo\" extra").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

/// APPENDLIMIT (RFC 7889): advertised with the largest literal the server
/// takes, reported by STATUS (and LIST-STATUS), and an APPEND over it is
/// `NO [TOOBIG]` before the client sends the message.
#[tokio::test]
async fn appendlimit_is_advertised_reported_and_enforced() {
    let mut config = test_config();
    config.limits.max_literal = 1000;
    let srv = start_with(config, None, TlsMode::Plain).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains(" APPENDLIMIT=1000"), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES APPENDLIMIT)").await;
    assert!(r.contains("(MESSAGES 0 APPENDLIMIT 1000)"), "{r}");
    let r = c.ok("LIST \"\" INBOX RETURN (STATUS (APPENDLIMIT))").await;
    assert!(r.contains("(APPENDLIMIT 1000)"), "{r}");

    // Over the limit: NO [TOOBIG] instead of the continuation.
    c.send_raw(b"a1 APPEND INBOX {1001}\r\n").await;
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("a1 NO [TOOBIG]"), "{r}");
    // The connection goes on; a message at the limit is taken.
    let mut body = message("big", "");
    body.resize(1000, b'x');
    let r = c.append("INBOX", "", &body).await;
    assert!(r.contains("OK [APPENDUID"), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("MESSAGES 1"), "{r}");
}

/// WITHIN (RFC 5032): OLDER and YOUNGER compare INTERNALDATE with the
/// time of the SEARCH, to the second.
#[tokio::test]
async fn within_older_and_younger() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains(" WITHIN"), "{r}");
    let body = message("old", "x");
    let tag = c.tag();
    c.send_raw(
        format!(
            "{tag} APPEND INBOX \"01-Jan-2000 00:00:00 +0000\" {{{}+}}\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    c.send_raw(&body).await;
    c.send_raw(b"\r\n").await;
    let r = c.until_tagged(&tag).await;
    assert!(r.contains(&format!("{tag} OK")), "{r}");
    c.append("INBOX", "", &message("new", "x")).await;
    c.ok("SELECT INBOX").await;

    assert_eq!(search_ids(&c.ok("SEARCH OLDER 3600").await), vec![1]);
    assert_eq!(search_ids(&c.ok("SEARCH YOUNGER 3600").await), vec![2]);
    assert_eq!(
        search_ids(&c.ok("UID SEARCH NOT YOUNGER 3600").await),
        vec![1]
    );
    assert_eq!(
        search_ids(&c.ok("SEARCH OR OLDER 3600 YOUNGER 3600").await),
        vec![1, 2]
    );
    // Twenty-seven years and more is still younger than u32::MAX seconds.
    assert_eq!(
        search_ids(&c.ok("SEARCH YOUNGER 4294967295").await),
        vec![1, 2]
    );
    let r = c.ok("SEARCH RETURN (COUNT) OLDER 100 YOUNGER 50").await;
    assert!(r.contains("COUNT 0"), "{r}");
    let r = c.cmd("SEARCH OLDER 0").await;
    assert_eq!(Client::status(&r), "BAD", "an interval is nz-number: {r}");
}

/// LITERAL- (RFC 7888), when configured: advertised instead of LITERAL+,
/// non-synchronizing literals up to 4096 octets, a larger one `BAD
/// [TOOBIG]` with the connection going on.
#[tokio::test]
async fn literal_minus_limits_non_synchronizing_literals() {
    let mut config = test_config();
    config.limits.literal_minus = true;
    let srv = start_with(config, None, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    assert!(
        c.greeting.contains(" LITERAL- ") && !c.greeting.contains("LITERAL+"),
        "{}",
        c.greeting
    );
    c.ok(&format!("LOGIN alice@example.com {PASSWORD}")).await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains(" LITERAL- ") && !r.contains("LITERAL+"), "{r}");

    let mut big = message("big", "");
    big.resize(5000, b'x');
    c.send_raw(format!("a1 APPEND INBOX {{{}+}}\r\n", big.len()).as_bytes())
        .await;
    c.send_raw(&big).await;
    c.send_raw(b"\r\n").await;
    let r = c.until_tagged("a1").await;
    assert!(r.starts_with("a1 BAD [TOOBIG]"), "{r}");
    c.ok("NOOP").await;
    // Small non-synchronizing literals, and large synchronizing ones, work.
    let small = message("small", "x");
    c.send_raw(format!("a2 APPEND INBOX {{{}+}}\r\n", small.len()).as_bytes())
        .await;
    c.send_raw(&small).await;
    c.send_raw(b"\r\n").await;
    let r = c.until_tagged("a2").await;
    assert!(r.contains("a2 OK [APPENDUID"), "{r}");
    let r = c.append("INBOX", "", &big).await;
    assert!(r.contains("OK [APPENDUID"), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("MESSAGES 2"), "{r}");

    // The default is LITERAL+.
    let srv = start().await;
    let c = Client::connect(srv.addr).await;
    assert!(
        c.greeting.contains(" LITERAL+ ") && !c.greeting.contains("LITERAL-"),
        "{}",
        c.greeting
    );
}
