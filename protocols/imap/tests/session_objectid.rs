//! OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) over a real socket:
//! MAILBOXID on CREATE, SELECT and STATUS, kept by RENAME and new for a
//! mailbox made again; EMAILID (the GUID, equal for a copy) and THREADID
//! (NIL) in FETCH and SEARCH; SAVEDATE in FETCH (set anew by COPY, unlike
//! INTERNALDATE) and the SAVED* search keys; bad input.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::*;

/// The value in parentheses after `word` in `r` (`MAILBOXID (x)` -> x).
fn paren_after<'a>(r: &'a str, word: &str) -> &'a str {
    let at = r
        .find(&format!("{word} ("))
        .unwrap_or_else(|| panic!("no {word} in {r}"));
    let rest = &r[at + word.len() + 2..];
    &rest[..rest.find(')').unwrap()]
}

#[tokio::test]
async fn object_ids_and_save_dates() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let caps = c.ok("CAPABILITY").await;
    assert!(
        caps.contains(" OBJECTID") && caps.contains(" SAVEDATE"),
        "{caps}"
    );

    // MAILBOXID: on CREATE, SELECT and STATUS, the same; RENAME keeps it.
    let r = c.ok("CREATE Work").await;
    let id = paren_after(&r, "MAILBOXID").to_owned();
    assert_eq!(id.len(), 32, "{r}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let r = c.ok("STATUS Work (MESSAGES MAILBOXID)").await;
    assert!(r.contains(&format!("MESSAGES 0 MAILBOXID ({id})")), "{r}");
    c.ok("RENAME Work Play").await;
    let r = c.ok("STATUS Play (MAILBOXID)").await;
    assert_eq!(paren_after(&r, "MAILBOXID"), id, "{r}");
    // A mailbox made again under the old name is another mailbox.
    let r = c.ok("CREATE Work").await;
    assert_ne!(paren_after(&r, "MAILBOXID"), id, "{r}");
    let inbox = paren_after(&c.ok("STATUS INBOX (MAILBOXID)").await, "MAILBOXID").to_owned();
    assert_ne!(inbox, id);

    c.append("INBOX", "", &message("one", "first")).await;
    c.append("INBOX", "", &message("two", "second")).await;
    let r = c.ok("SELECT INBOX").await;
    assert!(r.contains(&format!("* OK [MAILBOXID ({inbox})]")), "{r}");

    // EMAILID is the GUID; THREADID is NIL; SAVEDATE is a date-time.
    let r = c
        .ok("FETCH 1:2 (EMAILID THREADID SAVEDATE INTERNALDATE)")
        .await;
    assert!(r.contains("THREADID NIL"), "{r}");
    assert!(r.contains("SAVEDATE \""), "{r}");
    let first = r.lines().find(|l| l.starts_with("* 1 FETCH")).unwrap();
    let email = paren_after(first, "EMAILID").to_owned();
    assert_eq!(email.len(), 40, "{first}");
    let second = r.lines().find(|l| l.starts_with("* 2 FETCH")).unwrap();
    assert_ne!(paren_after(second, "EMAILID"), email, "{r}");
    // SEARCH EMAILID finds it; THREADID finds nothing.
    assert_eq!(
        search_ids(&c.ok(&format!("SEARCH EMAILID {email}")).await),
        [1]
    );
    assert!(search_ids(&c.ok("SEARCH THREADID T1").await).is_empty());
    // A copy keeps its EMAILID and gets a new SAVEDATE (the date of the
    // copy, which is today, as for the original here).
    c.ok("COPY 1 Play").await;
    c.ok("SELECT Play").await;
    let r = c.ok("FETCH 1 (EMAILID SAVEDATE)").await;
    assert_eq!(paren_after(&r, "EMAILID"), email, "{r}");
    // SAVED* keys: saved today, not before today.
    let today = r.split("SAVEDATE \"").nth(1).unwrap()[..11]
        .trim()
        .to_owned();
    assert_eq!(
        search_ids(&c.ok(&format!("SEARCH SAVEDON {today}")).await),
        [1]
    );
    assert_eq!(
        search_ids(&c.ok(&format!("SEARCH SAVEDSINCE {today}")).await),
        [1]
    );
    assert!(search_ids(&c.ok(&format!("SEARCH SAVEDBEFORE {today}")).await).is_empty());
    assert_eq!(search_ids(&c.ok("SEARCH SAVEDATESUPPORTED").await), [1]);
    assert!(search_ids(&c.ok("SEARCH SAVEDBEFORE 1-Jan-2000").await).is_empty());

    // PREVIEW (RFC 8970): the body text, LAZY the same.
    let r = c.ok("FETCH 1 (PREVIEW)").await;
    assert!(r.contains("PREVIEW \"first\""), "{r}");
    let r = c.ok("FETCH 1 (UID PREVIEW (LAZY))").await;
    assert!(r.contains("PREVIEW \"first\""), "{r}");
    let r = c.ok("FETCH 1 PREVIEW (LAZY)").await;
    assert!(r.contains("PREVIEW \"first\""), "{r}");
    let r = c.cmd("FETCH 1 (PREVIEW (BOGUS))").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");

    // Bad input: an object id is letters, digits, `_` and `-`.
    for bad in [
        "SEARCH EMAILID a.b",
        "SEARCH EMAILID",
        "SEARCH THREADID (x)",
        "SEARCH SAVEDON 32-Jan-2020",
    ] {
        let r = c.cmd(bad).await;
        assert_eq!(Client::status(&r), "BAD", "{bad}: {r}");
    }
    srv.shutdown().await.unwrap();
}
