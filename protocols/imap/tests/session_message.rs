//! Selected-state commands: SELECT, EXAMINE, FETCH, STORE, SEARCH, COPY,
//! MOVE, EXPUNGE, CLOSE, UNSELECT and their UID forms.

mod common;

use common::*;

const MULTIPART: &[u8] = b"From: Carol <carol@example.com>\r\n\
To: alice@example.com\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= with attachment\r\n\
Date: Tue, 8 Feb 1994 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Sch=C3=B6ne Gr=C3=BC=C3=9Fe aus Z=C3=BCrich\r\n\
--XX\r\n\
Content-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\n\
\r\n\
AAECAwQF\r\n\
--XX--\r\n";

async fn mailbox_with(c: &mut Client, n: usize) {
    for i in 1..=n {
        c.append(
            "INBOX",
            "",
            &message(&format!("msg{i}"), &format!("body number {i}")),
        )
        .await;
    }
}

#[tokio::test]
async fn select_and_examine_report_the_mailbox() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "\\Seen", &message("a", "1")).await;
    c.append("INBOX", "", &message("b", "2")).await;
    let r = c.ok("SELECT INBOX").await;
    assert!(
        r.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"),
        "{r}"
    );
    assert!(r.contains("* 2 EXISTS") && r.contains("* 2 RECENT"), "{r}");
    assert!(r.contains("[UNSEEN 2]"), "{r}");
    assert!(
        r.contains("[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"),
        "{r}"
    );
    assert!(
        r.contains("[UIDVALIDITY ") && r.contains("[UIDNEXT 3]"),
        "{r}"
    );
    assert!(r.contains("[HIGHESTMODSEQ "), "{r}");
    assert!(r.contains("OK [READ-WRITE] SELECT"), "{r}");
    // \Recent belongs to the first session that saw the messages.
    let mut d = Client::login(srv.addr, "alice@example.com").await;
    let r = d.ok("EXAMINE INBOX").await;
    assert!(r.contains("* 0 RECENT") && r.contains("[READ-ONLY]"), "{r}");
    assert!(r.contains("[PERMANENTFLAGS ()]"), "{r}");
    let r = d.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    assert_eq!(Client::status(&r), "NO", "read-only: {r}");
    let r = d.cmd("EXPUNGE").await;
    assert_eq!(Client::status(&r), "NO", "read-only: {r}");
    let r = d.cmd("SELECT Nowhere").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    let r = d.cmd("FETCH 1 FLAGS").await;
    assert_eq!(
        Client::status(&r),
        "BAD",
        "failed SELECT leaves the selected state: {r}"
    );
    let r = c.ok("FETCH 1:* FLAGS").await;
    assert!(r.contains("* 1 FETCH (FLAGS (\\Seen \\Recent))"), "{r}");
    c.ok("CHECK").await;
    // An empty mailbox: `1:*` matches nothing, `1` is out of range.
    c.ok("CREATE Empty").await;
    let r = c.ok("SELECT Empty").await;
    assert!(r.contains("* 0 EXISTS") && !r.contains("[UNSEEN"), "{r}");
    let r = c.ok("FETCH 1:* FLAGS").await;
    assert!(!r.contains("FETCH ("), "{r}");
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    assert!(search_ids(&c.ok("SEARCH ALL").await).is_empty());
    c.ok("UID FETCH 1:* FLAGS").await;
}

#[tokio::test]
async fn fetch_items_sections_and_partials() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let plain = message("hello", "line one\r\nline two");
    c.append("INBOX", "", &plain).await;
    c.append("INBOX", "", MULTIPART).await;
    c.ok("SELECT INBOX").await;

    let r = c.ok("FETCH 1 (UID RFC822.SIZE INTERNALDATE FLAGS)").await;
    assert!(
        r.contains("UID 1") && r.contains(&format!("RFC822.SIZE {}", plain.len())),
        "{r}"
    );
    let r = c.ok("FETCH 1 BODY.PEEK[]").await;
    assert!(
        r.contains(&String::from_utf8_lossy(&plain).into_owned()),
        "{r}"
    );
    assert!(!r.contains("\\Seen"), "PEEK does not set \\Seen: {r}");
    let r = c
        .ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject FROM)]")
        .await;
    assert!(
        r.contains("Subject: hello\r\n") && r.contains("From: Alice"),
        "{r}"
    );
    assert!(!r.contains("To: Bob"), "{r}");
    let r = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject)]").await;
    assert!(
        !r.contains("Subject: hello") && r.contains("To: Bob"),
        "{r}"
    );
    let r = c.ok("FETCH 1 BODY.PEEK[TEXT]<5.8>").await;
    assert!(r.contains("BODY[TEXT]<5> {8}\r\none\r\nlin"), "{r}");
    let r = c.ok("FETCH 1 BODY.PEEK[]<100000.10>").await;
    assert!(
        r.contains("BODY[]<100000> \"\"") || r.contains("BODY[]<100000> {0}"),
        "{r}"
    );
    let r = c.ok("FETCH 1 (RFC822.HEADER RFC822.TEXT)").await;
    assert!(
        r.contains("RFC822.HEADER {") && r.contains("RFC822.TEXT {"),
        "{r}"
    );
    assert!(
        r.contains("FLAGS (\\Seen"),
        "RFC822.TEXT sets \\Seen and reports it: {r}"
    );

    // Nested parts of the multipart message.
    let r = c.ok("FETCH 2 BODY.PEEK[1]").await;
    assert!(r.contains("Sch=C3=B6ne"), "{r}");
    let r = c.ok("FETCH 2 BODY.PEEK[1.MIME]").await;
    assert!(
        r.contains("Content-Transfer-Encoding: quoted-printable"),
        "{r}"
    );
    let r = c.ok("FETCH 2 BODY.PEEK[2]").await;
    assert!(r.contains("AAECAwQF"), "{r}");
    // A part the message does not have is an empty string, as Dovecot
    // answers (and BINARY here), not NIL.
    for item in ["BODY.PEEK[7]", "BODY.PEEK[7.MIME]", "BODY.PEEK[1.3]"] {
        let r = c.ok(&format!("FETCH 2 {item}")).await;
        assert!(!r.contains(" NIL"), "{item}: {r}");
        assert!(r.contains("] \"\"") || r.contains("] {0}"), "{item}: {r}");
    }
    let r = c.ok("FETCH 1 BODY.PEEK[2]<0.5>").await;
    assert!(
        r.contains("BODY[2]<0> \"\"") || r.contains("BODY[2]<0> {0}"),
        "{r}"
    );
    let r = c.ok("FETCH 2 (BODYSTRUCTURE ENVELOPE BODY)").await;
    assert!(
        r.contains("BODYSTRUCTURE (") && r.contains("ENVELOPE (") && r.contains(" BODY ("),
        "{r}"
    );
    // Non-PEEK body fetch sets \Seen once and reports FLAGS.
    let r = c.ok("FETCH 2 BODY[1]").await;
    assert!(r.contains("\\Seen"), "{r}");
    let r = c.ok("FETCH 2 BODY[1]").await;
    assert!(!r.contains("FLAGS"), "already seen, nothing to report: {r}");
    // Macros.
    let r = c.ok("FETCH 1:2 FAST").await;
    assert_eq!(untagged(&r, "FETCH").len(), 2, "{r}");
    assert!(
        r.contains("RFC822.SIZE") && r.contains("INTERNALDATE"),
        "{r}"
    );
    let r = c.ok("FETCH 1 ALL").await;
    assert!(r.contains("ENVELOPE"), "{r}");
    let r = c.ok("FETCH 1 FULL").await;
    assert!(r.contains("BODY ("), "{r}");
    // UID FETCH adds UID; out-of-range sequence numbers are BAD.
    let r = c.ok("UID FETCH 2 FLAGS").await;
    assert!(
        r.contains("* 2 FETCH (UID 2 FLAGS") || r.contains("UID 2"),
        "{r}"
    );
    let r = c.ok("UID FETCH 99 FLAGS").await;
    assert!(!r.contains("FETCH ("), "{r}");
    let r = c.cmd("FETCH 9 FLAGS").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

#[tokio::test]
async fn store_keeps_seen_regression_and_reports_flags() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "\\Seen", &message("a", "1")).await;
    c.append("INBOX", "", &message("b", "2")).await;
    c.ok("SELECT INBOX").await;
    // Regression: +FLAGS (\Seen \Deleted) on a \Seen message keeps \Seen.
    let r = c.ok("STORE 1 +FLAGS (\\Seen \\Deleted)").await;
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Seen \\Deleted \\Recent))"),
        "{r}"
    );
    let r = c.ok("FETCH 1 FLAGS").await;
    assert!(r.contains("\\Seen") && r.contains("\\Deleted"), "{r}");
    let r = c.ok("STORE 2 +FLAGS.SILENT ($Label1)").await;
    assert!(!r.contains("FETCH"), "{r}");
    let r = c.ok("STORE 2 -FLAGS ($Label1)").await;
    assert!(r.contains("* 2 FETCH (FLAGS (\\Recent))"), "{r}");
    let r = c.ok("UID STORE 2 FLAGS (\\Answered)").await;
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Answered \\Recent) UID 2)"),
        "{r}"
    );
    let r = c.ok("STORE 1:* -FLAGS (\\Deleted)").await;
    assert_eq!(untagged(&r, "FETCH").len(), 1, "only changed messages: {r}");
    let r = c.cmd("STORE 5 +FLAGS (\\Seen)").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

#[tokio::test]
async fn search_keys() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "\\Seen", &message("alpha", "the quick brown fox"))
        .await; // 1
    c.append("INBOX", "\\Flagged", &message("beta", "lazy dog"))
        .await; // 2
    c.append("INBOX", "\\Deleted $Work", MULTIPART).await; // 3
    let mut big = message("gamma", &"z".repeat(5000));
    big.extend_from_slice(b"");
    let tag = c.tag();
    let mut cmd = format!(
        "{tag} APPEND INBOX (\\Answered) \"15-Mar-2020 23:30:00 -0500\" {{{}+}}\r\n",
        big.len()
    )
    .into_bytes();
    cmd.extend_from_slice(&big);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd).await;
    c.until_tagged(&tag).await; // 4
    c.ok("SELECT INBOX").await;
    let ids = |r: String| search_ids(&r);
    assert_eq!(ids(c.ok("SEARCH ALL").await), vec![1, 2, 3, 4]);
    assert_eq!(ids(c.ok("SEARCH SEEN").await), vec![1]);
    assert_eq!(ids(c.ok("SEARCH UNSEEN").await), vec![2, 3, 4]);
    assert_eq!(ids(c.ok("SEARCH FLAGGED").await), vec![2]);
    assert_eq!(ids(c.ok("SEARCH DELETED").await), vec![3]);
    assert_eq!(ids(c.ok("SEARCH UNDELETED UNANSWERED").await), vec![1, 2]);
    assert_eq!(ids(c.ok("SEARCH KEYWORD $Work").await), vec![3]);
    assert_eq!(ids(c.ok("SEARCH UNKEYWORD $Work").await), vec![1, 2, 4]);
    assert_eq!(ids(c.ok("SEARCH SUBJECT BETA").await), vec![2]);
    assert_eq!(
        ids(c.ok("SEARCH SUBJECT \"grüße\"").await),
        vec![3],
        "decoded RFC 2047 subject"
    );
    let literal = format!(
        "SEARCH CHARSET UTF-8 SUBJECT {{{}+}}\r\ngrüße",
        "grüße".len()
    );
    assert_eq!(ids(c.ok(&literal).await), vec![3]);
    assert_eq!(ids(c.ok("SEARCH FROM carol").await), vec![3]);
    assert_eq!(ids(c.ok("SEARCH TO bob@example.com").await), vec![1, 2, 4]);
    assert_eq!(ids(c.ok("SEARCH HEADER Message-ID alpha@").await), vec![1]);
    assert_eq!(ids(c.ok("SEARCH HEADER MIME-Version \"\"").await), vec![3]);
    assert_eq!(ids(c.ok("SEARCH BODY \"BROWN FOX\"").await), vec![1]);
    assert_eq!(
        ids(c.ok("SEARCH BODY \"zürich\"").await),
        vec![3],
        "decoded quoted-printable body"
    );
    assert_eq!(ids(c.ok("SEARCH TEXT carol").await), vec![3]);
    assert_eq!(ids(c.ok("SEARCH TEXT lazy").await), vec![2]);
    assert_eq!(ids(c.ok("SEARCH LARGER 4000").await), vec![4]);
    assert_eq!(
        ids(c.ok("SEARCH SMALLER 4000 NOT DELETED").await),
        vec![1, 2]
    );
    assert_eq!(ids(c.ok("SEARCH OR FLAGGED SEEN").await), vec![1, 2]);
    assert_eq!(ids(c.ok("SEARCH NOT (OR FLAGGED SEEN)").await), vec![3, 4]);
    assert_eq!(ids(c.ok("SEARCH (SEEN) (BODY fox)").await), vec![1]);
    assert_eq!(ids(c.ok("SEARCH 2:3").await), vec![2, 3]);
    assert_eq!(ids(c.ok("SEARCH UID 1,4").await), vec![1, 4]);
    assert_eq!(ids(c.ok("UID SEARCH 4:*").await), vec![4]);
    assert_eq!(ids(c.ok("SEARCH NEW").await), vec![2, 3, 4]);
    assert_eq!(ids(c.ok("SEARCH RECENT").await), vec![1, 2, 3, 4]);
    assert_eq!(ids(c.ok("SEARCH OLD").await), Vec::<u32>::new());
    assert_eq!(ids(c.ok("SEARCH ANSWERED").await), vec![4]);
    assert_eq!(ids(c.ok("SEARCH DRAFT").await), Vec::<u32>::new());
    // INTERNALDATE by day in its own zone, ignoring time.
    assert_eq!(ids(c.ok("SEARCH ON 15-Mar-2020").await), vec![4]);
    assert_eq!(ids(c.ok("SEARCH BEFORE 16-Mar-2020").await), vec![4]);
    assert_eq!(
        ids(c.ok("SEARCH BEFORE 15-Mar-2020").await),
        Vec::<u32>::new()
    );
    assert_eq!(ids(c.ok("SEARCH SINCE 16-Mar-2020").await), vec![1, 2, 3]);
    // Date: header.
    assert_eq!(ids(c.ok("SEARCH SENTON 8-Feb-1994").await), vec![3]);
    assert_eq!(
        ids(c.ok("SEARCH SENTBEFORE 8-Feb-1994").await),
        vec![1, 2, 4]
    );
    assert_eq!(ids(c.ok("SEARCH SENTSINCE 8-Feb-1994").await), vec![3]);
    // Unknown charset.
    let r = c.cmd("SEARCH CHARSET KOI8-R ALL").await;
    assert!(r.contains("NO [BADCHARSET"), "{r}");
    // ESEARCH.
    let r = c.ok("SEARCH RETURN (MIN MAX COUNT) UNSEEN").await;
    assert!(
        r.contains("* ESEARCH (TAG \"") && r.contains("MIN 2 MAX 4 COUNT 3"),
        "{r}"
    );
    let r = c.ok("UID SEARCH RETURN () ALL").await;
    assert!(r.contains("UID ALL 1:4"), "{r}");
    let r = c.ok("SEARCH RETURN (COUNT) SUBJECT nothing-matches").await;
    assert!(r.contains("COUNT 0") && !r.contains("MIN"), "{r}");
}

#[tokio::test]
async fn copy_move_expunge_close_unselect() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    mailbox_with(&mut c, 5).await;
    c.ok("CREATE Archive").await;
    let r = c.ok("SELECT INBOX").await;
    assert!(r.contains("* 5 EXISTS"), "{r}");
    let r = c.ok("COPY 1:2 Archive").await;
    assert!(r.contains("OK [COPYUID ") && r.contains(" 1:2 1:2]"), "{r}");
    let r = c.cmd("COPY 1 Nowhere").await;
    assert!(r.contains("NO [TRYCREATE]"), "{r}");
    let r = c.ok("UID COPY 5 Archive").await;
    assert!(r.contains(" 5 3]"), "{r}");
    // MOVE: COPYUID untagged, then EXPUNGE, then OK.
    let r = c.ok("MOVE 2 Archive").await;
    let copyuid = r.find("* OK [COPYUID").expect("untagged COPYUID");
    let expunge = r.find("* 2 EXPUNGE").expect("EXPUNGE");
    assert!(copyuid < expunge, "{r}");
    let r = c.ok("UID MOVE 4 Archive").await;
    assert!(r.contains("* 3 EXPUNGE"), "{r}");
    // Now INBOX holds UIDs 1, 3, 5.
    let r = c.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)").await;
    assert!(!r.contains("FETCH"), "{r}");
    let r = c.ok("UID EXPUNGE 5").await;
    assert!(
        r.contains("* 3 EXPUNGE"),
        "UID EXPUNGE only touches UID 5: {r}"
    );
    let r = c.ok("EXPUNGE").await;
    assert!(r.contains("* 1 EXPUNGE"), "{r}");
    let r = c.ok("FETCH 1:* UID").await;
    assert!(r.contains("* 1 FETCH (UID 3)"), "{r}");
    c.ok("STORE 1 +FLAGS (\\Deleted)").await;
    c.ok("UNSELECT").await;
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("MESSAGES 1"), "UNSELECT does not expunge: {r}");
    c.ok("SELECT INBOX").await;
    c.ok("CLOSE").await;
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("MESSAGES 0"), "CLOSE expunges silently: {r}");
    let r = c.ok("STATUS Archive (MESSAGES UIDNEXT)").await;
    assert!(r.contains("MESSAGES 5") && r.contains("UIDNEXT 6"), "{r}");
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert_eq!(Client::status(&r), "BAD", "not selected after CLOSE: {r}");
}
