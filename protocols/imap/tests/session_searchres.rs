//! SEARCHRES (RFC 5182) over a real socket: `RETURN (SAVE)` in SEARCH and
//! SORT, and `$` in FETCH, STORE, COPY, MOVE, UID EXPUNGE and as a SEARCH
//! key; the saved result follows expunges, is empty after SELECT and after
//! a failed SEARCH; MIN/MAX alone save only what they name; the capability.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::*;

/// The sequence numbers of the `* n FETCH` lines of `r`.
fn fetched(r: &str) -> Vec<u32> {
    r.lines()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

async fn mailbox(c: &mut Client) {
    for i in 1..=6 {
        let subject = if i % 2 == 1 { "odd" } else { "even" };
        c.append("INBOX", "", &message(&format!("{subject} {i}"), "body"))
            .await;
    }
    c.ok("CREATE Other").await;
    c.ok("SELECT INBOX").await;
}

#[tokio::test]
async fn saved_result_in_every_command() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps.contains(" SEARCHRES"), "{caps}");
    mailbox(&mut c).await;

    // SAVE alone: no ESEARCH (nor SEARCH) response.
    let r = c.ok("SEARCH RETURN (SAVE) SUBJECT odd").await;
    assert!(untagged(&r, "SEARCH").is_empty(), "{r}");
    let r = c.ok("FETCH $ (UID)").await;
    assert_eq!(fetched(&r), [1, 3, 5], "{r}");
    let r = c.ok("UID FETCH $ (FLAGS)").await;
    assert_eq!(fetched(&r), [1, 3, 5], "{r}");
    // As a search key, alone, negated and as `UID $`.
    assert_eq!(search_ids(&c.ok("SEARCH $").await), [1, 3, 5]);
    assert_eq!(search_ids(&c.ok("SEARCH NOT $").await), [2, 4, 6]);
    assert_eq!(search_ids(&c.ok("SEARCH UID $ SUBJECT 5").await), [5]);
    assert_eq!(search_ids(&c.ok("SEARCH OR $ 2").await), [1, 2, 3, 5]);
    // STORE.
    c.ok("STORE $ +FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(search_ids(&c.ok("SEARCH FLAGGED").await), [1, 3, 5]);
    // COPY, with the UIDs it copied.
    let r = c.ok("COPY $ Other").await;
    assert!(r.contains("[COPYUID "), "{r}");
    assert!(r.contains(" 1,3,5 1:3]"), "{r}");

    // SAVE with other options: they are answered, ALL is saved.
    let r = c.ok("SEARCH RETURN (SAVE COUNT) SUBJECT even").await;
    assert!(r.contains("COUNT 3"), "{r}");
    assert_eq!(search_ids(&c.ok("SEARCH $").await), [2, 4, 6]);
    // MIN and MAX alone save only those messages.
    let r = c.ok("SEARCH RETURN (SAVE MIN MAX) SUBJECT even").await;
    assert!(r.contains("MIN 2 MAX 6"), "{r}");
    assert_eq!(search_ids(&c.ok("SEARCH $").await), [2, 6]);
    let r = c.ok("SEARCH RETURN (MAX SAVE) SUBJECT odd").await;
    assert!(r.contains("MAX 5") && !r.contains("MIN"), "{r}");
    assert_eq!(search_ids(&c.ok("SEARCH $").await), [5]);

    // SORT: MIN is the first in sort order.
    let r = c
        .ok("SORT RETURN (SAVE MIN) (REVERSE SUBJECT) UTF-8 ALL")
        .await;
    assert!(r.contains("MIN 5"), "{r}");
    assert_eq!(search_ids(&c.ok("SEARCH $").await), [5]);
    let r = c.ok("SORT RETURN (SAVE) (SUBJECT) UTF-8 SUBJECT odd").await;
    assert!(untagged(&r, "ESEARCH").is_empty(), "{r}");
    assert_eq!(search_ids(&c.ok("SEARCH $").await), [1, 3, 5]);

    // An expunge takes the message out; `$` stands for the new numbers.
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("EXPUNGE").await;
    let r = c.ok("FETCH $ (UID)").await;
    assert_eq!(fetched(&r), [2, 4], "{r}");
    assert!(r.contains("UID 3") && r.contains("UID 5"), "{r}");
    // MOVE, then UID EXPUNGE $ has nothing left to remove.
    c.ok("SEARCH RETURN (SAVE) SUBJECT 6").await;
    let r = c.ok("MOVE $ Other").await;
    assert!(r.contains("* 5 EXPUNGE"), "{r}");
    let r = c.ok("UID EXPUNGE $").await;
    assert!(untagged(&r, "EXPUNGE").is_empty(), "{r}");
    // UID EXPUNGE $ removes exactly the saved messages.
    c.ok("SEARCH RETURN (SAVE) SUBJECT 2").await;
    c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)").await;
    let r = c.ok("UID EXPUNGE $").await;
    assert_eq!(untagged(&r, "EXPUNGE"), ["* 1 EXPUNGE"], "{r}");
    let r = c.ok("STATUS Other (MESSAGES)").await;
    assert!(r.contains("MESSAGES 4"), "{r}");

    // A failed SEARCH with SAVE empties the result; `$` then names nothing
    // and is no error anywhere.
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    let r = c.cmd("SEARCH RETURN (SAVE) CHARSET X-UNKNOWN ALL").await;
    assert_eq!(Client::status(&r), "NO", "{r}");
    assert!(search_ids(&c.ok("SEARCH $").await).is_empty());
    for cmd in [
        "FETCH $ FLAGS",
        "STORE $ +FLAGS (\\Seen)",
        "COPY $ Other",
        "MOVE $ Other",
        "UID EXPUNGE $",
    ] {
        let r = c.ok(cmd).await;
        assert!(
            fetched(&r).is_empty() && untagged(&r, "EXPUNGE").is_empty(),
            "{cmd}: {r}"
        );
    }

    // A new selection starts with an empty result.
    c.ok("SEARCH RETURN (SAVE) ALL").await;
    c.ok("SELECT INBOX").await;
    assert!(fetched(&c.ok("FETCH $ (UID)").await).is_empty());

    // `$` must stand alone as the set; outside a selection it is refused.
    for bad in ["FETCH $:3 FLAGS", "FETCH $,1 FLAGS", "COPY $$ Other"] {
        let r = c.cmd(bad).await;
        assert_eq!(Client::status(&r), "BAD", "{bad}: {r}");
    }
    c.ok("UNSELECT").await;
    let r = c.cmd("FETCH $ FLAGS").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    srv.shutdown().await.unwrap();
}
