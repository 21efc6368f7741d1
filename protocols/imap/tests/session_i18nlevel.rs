//! I18NLEVEL=1 (RFC 5255) over a real socket: the capability, SEARCH
//! substring matches and SORT order under `i;unicode-casemap` (RFC 5051:
//! simple titlecase, then NFKD) on non-ASCII subjects, addresses and
//! bodies, encoded words and raw UTF-8 alike.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::*;

/// `tag SEARCH ... {n}` with the last argument sent as a literal (UTF-8).
async fn with_literal(c: &mut Client, command: &str, arg: &str) -> String {
    let tag = c.tag();
    c.send_raw(format!("{tag} {command} {{{}}}\r\n", arg.len()).as_bytes())
        .await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(arg.as_bytes()).await;
    c.send_raw(b"\r\n").await;
    c.until_tagged(&tag).await
}

fn msg(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: bob@example.com\r\nSubject: {subject}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// 1..=6: subjects and senders in several scripts and spellings.
async fn fixture(c: &mut Client) {
    for m in [
        // 1: Zebra
        msg("zed@example.com", "Zebra", "nothing here"),
        // 2: école, precomposed é, as an encoded word.
        msg(
            "=?utf-8?q?J=C3=BCrgen?= <j@example.com>",
            "=?utf-8?q?=C3=A9cole?=",
            "Gr\u{fc}\u{df}e aus der STRA\u{df}E",
        ),
        // 3: apple
        msg("anna@example.com", "apple", "plain"),
        // 4: Éclair, E + combining acute, raw UTF-8.
        msg(
            "\"JU\u{308}RGEN\" <jj@example.com>",
            "E\u{301}clair",
            "strasse",
        ),
        // 5: ecrit (no accent)
        msg(
            "ben@example.com",
            "ecrit",
            "\u{3a3}\u{39f}\u{3a6}\u{399}\u{391}",
        ),
        // 6: Cyrillic
        msg(
            "ivan@example.com",
            "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}",
            "x",
        ),
    ] {
        let r = c.append("INBOX", "", &m).await;
        assert_eq!(Client::status(&r), "OK", "{r}");
    }
    c.ok("SELECT INBOX").await;
}

#[tokio::test]
async fn i18nlevel_1_is_advertised() {
    let server = start().await;
    let mut c = Client::login(server.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(
        r.lines()
            .any(|l| l.starts_with("* CAPABILITY") && l.contains(" I18NLEVEL=1")),
        "{r}"
    );
    c.ok("LOGOUT").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn search_matches_under_unicode_casemap() {
    let server = start().await;
    let mut c = Client::login(server.addr, "alice@example.com").await;
    fixture(&mut c).await;
    let search = |k: &'static str| format!("SEARCH CHARSET UTF-8 {k}");
    // Case: É and é, in either spelling, find both écoles and Éclair's É.
    let r = with_literal(&mut c, &search("SUBJECT"), "\u{c9}COLE").await;
    assert_eq!(search_ids(&r), vec![2], "{r}");
    // Precomposed in the key, decomposed in the message (and back).
    let r = with_literal(&mut c, &search("SUBJECT"), "\u{e9}clair").await;
    assert_eq!(search_ids(&r), vec![4], "{r}");
    let r = with_literal(&mut c, &search("SUBJECT"), "E\u{301}COLE").await;
    assert_eq!(search_ids(&r), vec![2], "{r}");
    // NFKD keeps the accent (as a combining mark after the E): "ecole"
    // is not a substring of "E\u{301}COLE", while the accent alone is.
    let r = c.ok("SEARCH SUBJECT ecole").await;
    assert_eq!(search_ids(&r), Vec::<u32>::new(), "{r}");
    let r = with_literal(&mut c, &search("SUBJECT"), "\u{301}c").await;
    assert_eq!(search_ids(&r), vec![2, 4], "{r}");
    // Decoded display names, either case and spelling.
    let r = with_literal(&mut c, &search("FROM"), "j\u{fc}rgen").await;
    assert_eq!(search_ids(&r), vec![2, 4], "{r}");
    // Bodies: ß has no one-character titlecase, so it matches ß in any
    // case but not "ss".
    let r = with_literal(&mut c, &search("BODY"), "stra\u{df}e").await;
    assert_eq!(search_ids(&r), vec![2], "{r}");
    let r = with_literal(&mut c, &search("TEXT"), "\u{3c3}\u{3bf}\u{3c6}").await;
    assert_eq!(search_ids(&r), vec![5], "{r}");
    let r = with_literal(&mut c, &search("SUBJECT"), "\u{43f}\u{440}\u{438}\u{432}").await;
    assert_eq!(search_ids(&r), vec![6], "{r}");
    c.ok("LOGOUT").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sort_orders_under_unicode_casemap() {
    let server = start().await;
    let mut c = Client::login(server.addr, "alice@example.com").await;
    fixture(&mut c).await;
    // Forms: ZEBRA, E\u301COLE, APPLE, E\u301CLAIR, ECRIT, ПРИВЕТ. By code
    // point: APPLE < ECRIT < E\u301CLAIR < E\u301COLE < ZEBRA < ПРИВЕТ
    // (under i;ascii-casemap the UTF-8 octets of é would sort after Z).
    let r = c.ok("SORT (SUBJECT) UTF-8 ALL").await;
    let line = r.lines().find(|l| l.starts_with("* SORT")).unwrap();
    assert_eq!(line, "* SORT 3 5 4 2 1 6", "{r}");
    let r = c.ok("SORT (REVERSE SUBJECT) UTF-8 ALL").await;
    let line = r.lines().find(|l| l.starts_with("* SORT")).unwrap();
    assert_eq!(line, "* SORT 6 1 2 4 5 3", "{r}");
    // DISPLAYFROM: Jürgen (2) and JÜRGEN (4) are equal; ties by number.
    let r = c.ok("SORT (DISPLAYFROM) UTF-8 ALL").await;
    let line = r.lines().find(|l| l.starts_with("* SORT")).unwrap();
    assert_eq!(line, "* SORT 3 5 6 2 4 1", "{r}");
    c.ok("LOGOUT").await;
    server.shutdown().await.unwrap();
}
