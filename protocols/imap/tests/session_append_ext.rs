//! The APPEND-side extensions and BINARY and COMPRESS over a real socket:
//! MULTIAPPEND (RFC 3502, all or nothing), CATENATE (RFC 4469, with IMAP
//! URLs), REPLACE (RFC 8508), BINARY (RFC 3516: FETCH BINARY, BINARY.SIZE,
//! UNKNOWN-CTE, APPEND of a literal8) and COMPRESS=DEFLATE (RFC 4978).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use bytes::BytesMut;
use common::*;
use mailroom_core::{Quota, QuotaLimits};
use mailroom_imap::extension::compress::DeflateStream;
use tokio::io::AsyncWriteExt;

/// Sends `head` (ending in a literal announcement) and each of `rest`
/// (literal bytes followed by more command text) with synchronising
/// literals, waiting for each `+`; returns the response.
async fn with_literals(c: &mut Client, head: &str, rest: &[(&[u8], &str)]) -> String {
    let tag = c.tag();
    c.send_raw(format!("{tag} {head}\r\n").as_bytes()).await;
    for (literal, after) in rest {
        let cont = c.read_response().await.unwrap();
        assert!(cont.starts_with('+'), "expected +, got {cont}");
        c.send_raw(literal).await;
        c.send_raw(format!("{after}\r\n").as_bytes()).await;
    }
    c.until_tagged(&tag).await
}

fn messages_in(r: &str) -> u32 {
    let at = r.find("MESSAGES ").unwrap() + "MESSAGES ".len();
    r[at..]
        .split(|ch: char| !ch.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn capabilities_are_advertised_after_login_only() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    let r = c.ok("CAPABILITY").await;
    for cap in [
        "MULTIAPPEND",
        "CATENATE",
        "BINARY",
        "REPLACE",
        "COMPRESS=DEFLATE",
    ] {
        assert!(!r.contains(cap), "{cap} before login: {r}");
    }
    c.ok(&format!("LOGIN alice@example.com {PASSWORD}")).await;
    let r = c.ok("CAPABILITY").await;
    for cap in [
        " MULTIAPPEND",
        " CATENATE",
        " BINARY",
        " REPLACE",
        " COMPRESS=DEFLATE",
    ] {
        assert!(r.contains(cap), "{cap} missing: {r}");
    }
}

#[tokio::test]
async fn multiappend_stores_every_message_with_consecutive_uids() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let (a, b, d) = (
        message("one", "first"),
        message("two", "second"),
        message("three", "third"),
    );
    let r = with_literals(
        &mut c,
        &format!("APPEND INBOX (\\Seen) {{{}}}", a.len()),
        &[
            (&a, &format!(" {{{}}}", b.len())),
            (
                &b,
                &format!(
                    " (\\Flagged $Work) \"05-Dec-2026 10:00:00 +0000\" {{{}}}",
                    d.len()
                ),
            ),
            (&d, ""),
        ],
    )
    .await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    assert!(r.contains(" 1:3] "), "{r}");
    c.ok("SELECT INBOX").await;
    let r = c
        .ok("FETCH 1:3 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert!(r.contains("* 1 FETCH (FLAGS (\\Seen \\Recent)"), "{r}");
    assert!(r.contains("* 2 FETCH (FLAGS (\\Recent)"), "{r}");
    assert!(r.contains("* 3 FETCH (FLAGS (\\Flagged $Work \\Recent) INTERNALDATE \"05-Dec-2026 10:00:00 +0000\""), "{r}");
    let subjects: Vec<&str> = ["one", "two", "three"]
        .into_iter()
        .filter(|s| r.contains(&format!("Subject: {s}\r\n")))
        .collect();
    assert_eq!(subjects.len(), 3, "{r}");
}

#[tokio::test]
async fn multiappend_over_quota_stores_nothing() {
    let srv = start().await;
    srv.store
        .set_limits(
            "alice@example.com",
            QuotaLimits {
                storage_bytes: None,
                messages: Some(2),
            },
        )
        .await
        .unwrap();
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let m = message("q", "quota");
    let three = with_literals(
        &mut c,
        &format!("APPEND INBOX {{{}}}", m.len()),
        &[
            (&m, &format!(" {{{}}}", m.len())),
            (&m, &format!(" {{{}}}", m.len())),
            (&m, ""),
        ],
    )
    .await;
    assert!(three.contains("NO [OVERQUOTA]"), "{three}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert_eq!(messages_in(&r), 0, "{r}");
    // two fit
    let two = with_literals(
        &mut c,
        &format!("APPEND INBOX {{{}}}", m.len()),
        &[(&m, &format!(" {{{}}}", m.len())), (&m, "")],
    )
    .await;
    assert!(two.contains("OK [APPENDUID "), "{two}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert_eq!(messages_in(&r), 2, "{r}");
}

#[tokio::test]
async fn multiappend_with_one_bad_message_stores_nothing() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let m = message("x", "y");
    // an empty second message
    let r = with_literals(
        &mut c,
        &format!("APPEND INBOX {{{}}}", m.len()),
        &[(&m, " {0}"), (b"", "")],
    )
    .await;
    assert_eq!(Client::status(&r), "NO", "{r}");
    // a CATENATE whose URL names nothing
    let r = with_literals(
        &mut c,
        &format!("APPEND INBOX {{{}}}", m.len()),
        &[(&m, " CATENATE (URL \"/INBOX/;UID=77\")")],
    )
    .await;
    assert!(r.contains("NO [BADURL /INBOX/;UID=77]"), "{r}");
    // into a mailbox that does not exist
    let r = with_literals(
        &mut c,
        &format!("APPEND Nowhere {{{}}}", m.len()),
        &[(&m, &format!(" {{{}}}", m.len())), (&m, "")],
    )
    .await;
    assert!(r.contains("NO [TRYCREATE]"), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert_eq!(messages_in(&r), 0, "{r}");
    // bad syntax after a good message: BAD, nothing stored
    let r = with_literals(
        &mut c,
        &format!("APPEND INBOX {{{}}}", m.len()),
        &[(&m, " (\\Seen")],
    )
    .await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert_eq!(messages_in(&r), 0, "{r}");
}

const FORWARDED: &str = "From: Bob <bob@example.com>\r\nTo: Alice <alice@example.com>\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b1--\r\n";

#[tokio::test]
async fn catenate_joins_text_and_parts_of_stored_messages() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", FORWARDED.as_bytes()).await;
    let r = c.ok("STATUS INBOX (UIDVALIDITY)").await;
    let uv: u32 = r
        .split("UIDVALIDITY ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let head = "From: Alice <alice@example.com>\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"n\"\r\n\r\n--n\r\n";
    let tail = "\r\n--n--\r\n";
    let r = with_literals(
        &mut c,
        &format!("APPEND Drafts (\\Draft) CATENATE (TEXT {{{}}}", head.len()),
        &[
            (
                head.as_bytes(),
                &format!(
                    " URL \"/INBOX;UIDVALIDITY={uv}/;UID=1/;SECTION=2.MIME\" URL \"imap://alice%40example.com@localhost/INBOX/;UID=1/;SECTION=2\" TEXT {{{}}}",
                    tail.len()
                ),
            ),
            (tail.as_bytes(), ")"),
        ],
    )
    .await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    c.ok("SELECT Drafts").await;
    let r = c.ok("FETCH 1 (BODY.PEEK[] BINARY.PEEK[1])").await;
    let expected = format!(
        "{head}Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ=={tail}"
    );
    assert!(r.contains(&expected), "{r}");
    assert!(
        r.contains("BINARY[1] ~{10}\r\n\u{0}\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\t"),
        "{r}"
    );
    // a relative URL names a message of the selected mailbox; PARTIAL cuts
    let r = with_literals(
        &mut c,
        "APPEND INBOX CATENATE (URL \";UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)\" TEXT {4}",
        &[(b"body", ")")],
    )
    .await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    c.ok("SELECT INBOX").await;
    let r = c.ok("FETCH 2 BODY.PEEK[]").await;
    assert!(r.contains("{20}\r\nSubject: Fwd\r\n\r\nbody)"), "{r}");
}

#[tokio::test]
async fn catenate_refuses_urls_the_user_cannot_read() {
    let srv = start().await;
    let mut bob = Client::login(srv.addr, "bob@example.com").await;
    bob.append("INBOX", "", &message("secret", "bob's")).await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", &message("mine", "alice's")).await;
    for url in [
        "/Other Users/bob@example.com/INBOX/;UID=1",
        "imap://bob%40example.com@localhost/INBOX/;UID=1",
        "/INBOX;UIDVALIDITY=3999999999/;UID=1",
        "/INBOX/;UID=1/;SECTION=7",
        "/INBOX/;UID=1/;URLAUTH=anonymous:internal:00",
        ";UID=1",
    ] {
        let r = c
            .cmd(&format!("APPEND INBOX CATENATE (URL \"{url}\")"))
            .await;
        assert!(r.contains(&format!("NO [BADURL {url}]")), "{url}: {r}");
    }
    // bob shares his INBOX read-only: now it works
    bob.ok("SETACL INBOX alice@example.com lr").await;
    let r = c
        .cmd("APPEND INBOX CATENATE (URL \"/Other Users/bob@example.com/INBOX/;UID=1\")")
        .await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert_eq!(messages_in(&r), 2, "{r}");
}

#[tokio::test]
async fn replace_appends_the_new_version_and_expunges_the_old() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    for s in ["a", "b", "c"] {
        c.append("Drafts", "\\Draft", &message(s, "draft")).await;
    }
    c.ok("SELECT Drafts").await;
    let new = message("b2", "edited");
    let r = with_literals(
        &mut c,
        &format!("REPLACE 2 Drafts (\\Draft) {{{}}}", new.len()),
        &[(&new, "")],
    )
    .await;
    let ok = r.find("* OK [APPENDUID ").unwrap();
    let expunge = r.find("* 2 EXPUNGE").unwrap();
    assert!(ok < expunge, "{r}");
    assert!(r.contains("* 3 EXISTS"), "{r}");
    assert!(r.lines().last().unwrap().contains("OK"), "{r}");
    let r = c
        .ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert!(!r.contains("Subject: b\r\n"), "{r}");
    assert!(r.contains("UID 4 "), "{r}");
    // UID REPLACE into another mailbox; VANISHED under QRESYNC
    c.ok("ENABLE QRESYNC").await;
    let r = with_literals(
        &mut c,
        &format!("UID REPLACE 4 INBOX {{{}}}", new.len()),
        &[(&new, "")],
    )
    .await;
    assert!(r.contains("* VANISHED 4"), "{r}");
    assert_eq!(Client::status(&r), "OK", "{r}");
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert_eq!(messages_in(&r), 1, "{r}");
    // a UID that is not there: NO; a sequence number beyond: BAD
    let r = with_literals(&mut c, "UID REPLACE 99 INBOX {1}", &[(b"x", "")]).await;
    assert_eq!(Client::status(&r), "NO", "{r}");
    let r = c.cmd("REPLACE 99 INBOX {1+}\r\nx").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    // a failed append leaves the old message
    let r = with_literals(
        &mut c,
        &format!("REPLACE 1 Nowhere {{{}}}", new.len()),
        &[(&new, "")],
    )
    .await;
    assert!(r.contains("NO [TRYCREATE]"), "{r}");
    let r = c.ok("STATUS Drafts (MESSAGES)").await;
    assert_eq!(messages_in(&r), 2, "{r}");
    // read-only: NO
    c.ok("EXAMINE Drafts").await;
    let r = with_literals(&mut c, "REPLACE 1 Drafts {1}", &[(b"x", "")]).await;
    assert_eq!(Client::status(&r), "NO", "{r}");
    // not selected: BAD
    c.ok("UNSELECT").await;
    let r = c.cmd("REPLACE 1 Drafts {1+}\r\nx").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

const ENCODED: &str = "From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait, a long line that is=\r\n folded softly\r\n--zz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAP8AAQ==\r\n--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nwhat\r\n--zz--\r\n";

#[tokio::test]
async fn fetch_binary_decodes_parts() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", ENCODED.as_bytes()).await;
    c.ok("SELECT INBOX").await;
    let r = c
        .ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[2])")
        .await;
    let text = "café au lait, a long line that is folded softly";
    assert!(
        r.contains(&format!("BINARY[1] {{{}}}\r\n{text}", text.len())),
        "{r}"
    );
    assert!(r.contains(&format!("BINARY.SIZE[1] {}", text.len())), "{r}");
    assert!(r.contains("BINARY.SIZE[2] 4"), "{r}");
    assert!(!r.contains("\\Seen"), "{r}");
    let r = c.ok("FETCH 1 (BINARY.PEEK[2]<1.2>)").await;
    assert!(r.contains("BINARY[2]<1> ~{2}\r\n\u{FFFD}\u{0})"), "{r}");
    // a part that does not exist
    let r = c.ok("FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])").await;
    assert!(r.contains("BINARY[9] {0}\r\n BINARY.SIZE[9] 0"), "{r}");
    // an unknown encoding fails the command
    let r = c.cmd("FETCH 1 (BINARY.PEEK[3])").await;
    assert!(r.contains("NO [UNKNOWN-CTE]"), "{r}");
    // BINARY without PEEK sets \Seen
    let r = c.ok("FETCH 1 (BINARY[1])").await;
    assert!(r.contains("\\Seen"), "{r}");
    // bad syntax
    let r = c.cmd("FETCH 1 (BINARY[1.TEXT])").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

#[tokio::test]
async fn append_of_a_literal8_keeps_nul_bytes() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let msg = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n";
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX ~{{{}}}\r\n", msg.len()).as_bytes())
        .await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(msg).await;
    c.send_raw(b"\r\n").await;
    let r = c.until_tagged(&tag).await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    // MULTIAPPEND with a non-synchronising literal8 too
    let r = c
        .cmd(&format!(
            "APPEND INBOX ~{{{}+}}\r\n{} {{2+}}\r\nhi",
            msg.len(),
            String::from_utf8_lossy(msg)
        ))
        .await;
    assert!(r.contains(" 2:3] "), "{r}");
    c.ok("SELECT INBOX").await;
    let r = c
        .ok("FETCH 1 (BINARY.PEEK[] BINARY.SIZE[] BINARY.PEEK[1])")
        .await;
    assert!(
        r.contains(&format!("BINARY[] ~{{{}}}\r\n", msg.len())),
        "{r}"
    );
    assert!(r.contains(&format!("BINARY.SIZE[] {}", msg.len())), "{r}");
    assert!(r.contains("BINARY[1] ~{5}\r\n\u{0}\u{1}\u{2}\r\n"), "{r}");
}

/// A client talking DEFLATE after `COMPRESS DEFLATE`.
async fn compressed_client(srv: &TestServer) -> Client {
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("COMPRESS DEFLATE").await;
    assert!(r.contains("OK"), "{r}");
    let io = c.io.into_inner();
    Client::without_greeting(Box::new(DeflateStream::new(io, BytesMut::new())))
}

#[tokio::test]
async fn compress_deflate_carries_the_session() {
    let srv = start().await;
    let mut c = compressed_client(&srv).await;
    let r = c.ok("CAPABILITY").await;
    assert!(!r.contains("COMPRESS=DEFLATE"), "{r}");
    let r = c.cmd("COMPRESS DEFLATE").await;
    assert!(r.contains("NO [COMPRESSIONACTIVE]"), "{r}");
    let big = message("big", &"compressible text ".repeat(5000));
    let r = c.append("INBOX", "", &big).await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    c.ok("SELECT INBOX").await;
    let r = c.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[])").await;
    assert!(
        r.contains(&String::from_utf8_lossy(&big).into_owned()),
        "{r}"
    );
    // IDLE's updates arrive compressed (flushed) too
    let tag = c.tag();
    c.send_raw(format!("{tag} IDLE\r\n").as_bytes()).await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    other.append("INBOX", "", &message("new", "mail")).await;
    let r = c.read_response().await.unwrap();
    assert!(r.contains("* 2 EXISTS"), "{r}");
    c.send_raw(b"DONE\r\n").await;
    let r = c.until_tagged(&tag).await;
    assert!(r.contains("OK"), "{r}");
    let r = c.ok("LOGOUT").await;
    assert!(r.contains("* BYE"), "{r}");
}

#[tokio::test]
async fn compress_refuses_unknown_mechanisms_and_unauthenticated_use() {
    let srv = start().await;
    let mut c = Client::connect(srv.addr).await;
    let r = c.cmd("COMPRESS DEFLATE").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    c.ok(&format!("LOGIN alice@example.com {PASSWORD}")).await;
    let r = c.cmd("COMPRESS GZIP").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    // still uncompressed
    c.ok("NOOP").await;
}

#[tokio::test]
async fn a_client_sending_garbage_after_compress_is_dropped_cleanly() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("COMPRESS DEFLATE").await;
    let mut io = c.io.into_inner();
    io.write_all(&[0xff; 256]).await.unwrap();
    io.flush().await.unwrap();
    let mut c = Client::without_greeting(io);
    // the server closes the connection (nothing it could say is readable)
    assert!(c.read_response().await.is_none());
    // and goes on serving others
    let mut d = Client::login(srv.addr, "alice@example.com").await;
    d.ok("NOOP").await;
}
