//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY (RFC 5957) and ESORT
//! (RFC 5267) over a real socket: every sort key, REVERSE, multiple
//! criteria, ties by sequence number, the search criteria, RETURN options,
//! the capability, and bad input.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::*;

/// APPEND with an INTERNALDATE.
async fn append_at(c: &mut Client, date: &str, message: &[u8]) {
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX () \"{date}\" {{{}}}\r\n", message.len()).as_bytes())
        .await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(message).await;
    c.send_raw(b"\r\n").await;
    let r = c.until_tagged(&tag).await;
    assert_eq!(Client::status(&r), "OK", "{r}");
}

fn msg(
    from: &str,
    to: &str,
    cc: Option<&str>,
    subject: &str,
    date: Option<&str>,
    body: &str,
) -> Vec<u8> {
    let mut m = format!("From: {from}\r\nTo: {to}\r\n");
    if let Some(cc) = cc {
        m.push_str(&format!("Cc: {cc}\r\n"));
    }
    m.push_str(&format!("Subject: {subject}\r\n"));
    if let Some(d) = date {
        m.push_str(&format!("Date: {d}\r\n"));
    }
    m.push_str(&format!("\r\n{body}\r\n"));
    m.into_bytes()
}

fn sort_ids(r: &str) -> Vec<u32> {
    let line = r
        .lines()
        .find(|l| l.starts_with("* SORT"))
        .unwrap_or_else(|| panic!("no * SORT in {r}"));
    line["* SORT".len()..]
        .split_whitespace()
        .take_while(|w| !w.starts_with('('))
        .map(|w| w.parse().unwrap())
        .collect()
}

/// Five messages whose keys all order differently.
async fn fixture(c: &mut Client) {
    // 1: arrival 3rd, sent 2nd, 2nd smallest.
    append_at(
        c,
        "03-Mar-2021 10:00:00 +0000",
        &msg(
            "\"Zed Zimmer\" <zed@example.com>",
            "bob@example.com",
            Some("carol@example.com"),
            "Re: Beta",
            Some("Tue, 2 Feb 2021 10:00:00 +0000"),
            &"x".repeat(1000),
        ),
    )
    .await;
    // 2: arrival 1st, no Date (DATE falls back to arrival), big.
    append_at(
        c,
        "01-Mar-2021 10:00:00 +0000",
        &msg(
            "anna@example.com",
            "\"Yolanda\" <yolanda@example.com>",
            None,
            "alpha",
            None,
            &"y".repeat(5000),
        ),
    )
    .await;
    // 3: arrival 5th, sent 1st (zone +0100 is earlier in UTC), smallest.
    append_at(
        c,
        "05-Mar-2021 10:00:00 +0000",
        &msg(
            "=?utf-8?q?Mats?= <BEN@example.com>",
            "Alice <alice@example.com>",
            Some("Adam <adam@example.com>"),
            "[list] Fwd: gamma (fwd)",
            Some("Mon, 1 Feb 2021 10:30:00 +0100"),
            "",
        ),
    )
    .await;
    // 4: arrival 2nd, sent 4th.
    append_at(
        c,
        "02-Mar-2021 10:00:00 +0000",
        &msg(
            "carl@example.com",
            "dora@example.com",
            Some("zoe@example.com"),
            "BETA",
            Some("Thu, 4 Feb 2021 10:00:00 +0000"),
            &"z".repeat(2000),
        ),
    )
    .await;
    // 5: arrival 4th, sent 3rd.
    append_at(
        c,
        "04-Mar-2021 10:00:00 +0000",
        &msg(
            "\"Anders\" <dan@example.com>",
            "Cyd <cyd@example.com>",
            None,
            "Delta",
            Some("Wed, 3 Feb 2021 10:00:00 +0000"),
            &"z".repeat(3000),
        ),
    )
    .await;
}

#[tokio::test]
async fn sort_keys_reverse_ties_and_uid_sort() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    let sort = |r: String| sort_ids(&r);
    assert_eq!(
        sort(c.ok("SORT (ARRIVAL) UTF-8 ALL").await),
        [2, 4, 1, 5, 3]
    );
    assert_eq!(
        sort(c.ok("SORT (REVERSE ARRIVAL) UTF-8 ALL").await),
        [3, 5, 1, 4, 2]
    );
    // Message 2 has no Date: its INTERNALDATE (1 March) sorts it last.
    assert_eq!(sort(c.ok("SORT (DATE) UTF-8 ALL").await), [3, 1, 5, 4, 2]);
    // Sizes: 3 < 1 < 4 < 5 < 2 (bodies of 0, 1000, 2000, 3000 and 5000
    // bytes; the headers differ by far less).
    assert_eq!(sort(c.ok("SORT (SIZE) UTF-8 ALL").await), [3, 1, 4, 5, 2]);
    // Base subjects: alpha, Beta, BETA, Delta, gamma; the two betas tie
    // (ascii-casemap) and keep sequence order.
    assert_eq!(
        sort(c.ok("SORT (SUBJECT) UTF-8 ALL").await),
        [2, 1, 4, 5, 3]
    );
    // REVERSE applies to its key only; ties still by ascending sequence.
    assert_eq!(
        sort(c.ok("SORT (REVERSE SUBJECT) UTF-8 ALL").await),
        [3, 5, 1, 4, 2]
    );
    assert_eq!(
        sort(c.ok("SORT (SUBJECT REVERSE SIZE) UTF-8 ALL").await),
        [2, 4, 1, 5, 3]
    );
    // FROM compares the local part, case-insensitively: anna, BEN, carl, dan, zed.
    assert_eq!(sort(c.ok("SORT (FROM) UTF-8 ALL").await), [2, 3, 4, 5, 1]);
    // TO: alice, bob, cyd, dora, yolanda.
    assert_eq!(sort(c.ok("SORT (TO) UTF-8 ALL").await), [3, 1, 5, 4, 2]);
    // CC: none (2, 5) first, then adam, carol, zoe.
    assert_eq!(sort(c.ok("SORT (CC) UTF-8 ALL").await), [2, 5, 3, 1, 4]);
    // DISPLAYFROM: Anders, anna@example.com, carl@example.com, Mats
    // (decoded), Zed Zimmer.
    assert_eq!(
        sort(c.ok("SORT (DISPLAYFROM) UTF-8 ALL").await),
        [5, 2, 4, 3, 1]
    );
    // DISPLAYTO: Alice, bob@example.com, Cyd, dora@example.com, Yolanda.
    assert_eq!(
        sort(c.ok("SORT (DISPLAYTO) UTF-8 ALL").await),
        [3, 1, 5, 4, 2]
    );
    // Search criteria narrow the set; UID SORT answers UIDs.
    assert_eq!(sort(c.ok("SORT (ARRIVAL) US-ASCII 2:4").await), [2, 4, 3]);
    c.ok("STORE 1 +FLAGS (\\Deleted)").await;
    c.ok("EXPUNGE").await;
    // Sequence numbers shift; UIDs do not.
    assert_eq!(sort(c.ok("SORT (ARRIVAL) UTF-8 ALL").await), [1, 3, 4, 2]);
    assert_eq!(
        sort(c.ok("UID SORT (ARRIVAL) UTF-8 ALL").await),
        [2, 4, 5, 3]
    );
    assert_eq!(
        sort(c.ok("UID SORT (SUBJECT) UTF-8 SUBJECT beta").await),
        [4]
    );
    // Nothing matches: an empty `* SORT`.
    let r = c.ok("SORT (DATE) UTF-8 SUBJECT nowhere").await;
    assert!(r.contains("* SORT\r\n"), "{r}");
    // With MODSEQ in the criteria the answer carries the highest MODSEQ.
    let r = c.ok("SORT (ARRIVAL) UTF-8 MODSEQ 1").await;
    let line = untagged(&r, "SORT")[0];
    assert!(line.contains("(MODSEQ "), "{r}");
}

#[tokio::test]
async fn esort_returns_min_max_count_and_all_in_sort_order() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    fixture(&mut c).await;
    c.ok("SELECT INBOX").await;
    // ARRIVAL order is 2, 4, 1, 5, 3: MIN and MAX are the first and last
    // in that order, ALL keeps it (ascending runs joined).
    let r = c
        .ok("SORT RETURN (MIN MAX COUNT ALL) (ARRIVAL) UTF-8 ALL")
        .await;
    let tag = r.lines().last().unwrap().split(' ').next().unwrap();
    assert!(
        r.contains(&format!(
            "* ESEARCH (TAG \"{tag}\") MIN 2 MAX 3 COUNT 5 ALL 2,4,1,5,3\r\n"
        )),
        "{r}"
    );
    // SUBJECT order is 2, 1, 4, 5, 3: "1,4:5" is a run.
    let r = c.ok("UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL").await;
    assert!(r.contains(") UID ALL 2,1,4:5,3\r\n"), "{r}");
    // RETURN () is RETURN (ALL); COUNT alone; nothing matched.
    let r = c.ok("SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL").await;
    assert!(r.contains(") ALL 3,5,1,4,2\r\n"), "{r}");
    let r = c.ok("SORT RETURN (COUNT) (SIZE) UTF-8 LARGER 1500").await;
    assert!(r.contains(") COUNT 3\r\n"), "{r}");
    let r = c
        .ok("SORT RETURN (MIN MAX ALL) (SIZE) UTF-8 SUBJECT nothing")
        .await;
    let line = untagged(&r, "ESEARCH")[0];
    assert!(
        line.ends_with(&format!("(TAG \"{}\")", line.split('"').nth(1).unwrap())),
        "{r}"
    );
    // SAVE is SEARCHRES (session_searchres.rs): no ESEARCH for it alone.
    let r = c.ok("SORT RETURN (SAVE) (SIZE) UTF-8 ALL").await;
    assert!(untagged(&r, "ESEARCH").is_empty(), "{r}");
    let r = c.cmd("SORT RETURN (BOGUS) (SIZE) UTF-8 ALL").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

#[tokio::test]
async fn sort_is_advertised_and_bad_input_is_refused() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains(" SORT ") && r.contains(" SORT=DISPLAY"), "{r}");
    let r = c.cmd("SORT (ARRIVAL) UTF-8 ALL").await;
    assert_eq!(Client::status(&r), "BAD", "not selected: {r}");
    c.append("INBOX", "", &message("a", "1")).await;
    c.ok("SELECT INBOX").await;
    for bad in [
        "SORT () UTF-8 ALL",
        "SORT (BOGUS) UTF-8 ALL",
        "SORT (REVERSE) UTF-8 ALL",
        "SORT (ARRIVAL) ALL",
        "SORT (ARRIVAL) UTF-8",
        "SORT ARRIVAL UTF-8 ALL",
        "UID SORT (ARRIVAL UTF-8 ALL",
    ] {
        let r = c.cmd(bad).await;
        assert_eq!(Client::status(&r), "BAD", "{bad}: {r}");
    }
    let r = c.cmd("SORT (ARRIVAL) KOI8-R ALL").await;
    assert!(r.contains("NO [BADCHARSET"), "{r}");
    // The connection survives and still sorts.
    assert_eq!(sort_ids(&c.ok("SORT (ARRIVAL) UTF-8 ALL").await), [1]);
}
