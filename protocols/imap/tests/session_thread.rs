//! THREAD and UID THREAD (RFC 5256) over a real socket: ORDEREDSUBJECT and
//! REFERENCES on a small mailbox with replies, a missing parent, a reply
//! found only by subject and a loop; the wire form of nested threads; the
//! capability; bad input.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::*;

fn msg(
    id: &str,
    refs: Option<&str>,
    in_reply_to: Option<&str>,
    subject: &str,
    date: &str,
) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.com\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}>\r\n"
    );
    if let Some(r) = refs {
        m.push_str(&format!("References: {r}\r\n"));
    }
    if let Some(r) = in_reply_to {
        m.push_str(&format!("In-Reply-To: {r}\r\n"));
    }
    m.push_str("\r\nbody\r\n");
    m.into_bytes()
}

fn thread_line(r: &str) -> &str {
    r.lines()
        .find(|l| l.starts_with("* THREAD"))
        .unwrap_or_else(|| panic!("no * THREAD in {r}"))
}

#[tokio::test]
async fn references_and_ordered_subject() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let d = |day: u32| format!("{day} Jan 2021 10:00:00 +0000");
    for m in [
        // 1: a thread start.
        msg("1@x", None, None, "hello", &d(1)),
        // 2: reply to 1 through In-Reply-To only.
        msg("2@x", None, Some("<1@x>"), "Re: hello", &d(2)),
        // 3: another thread.
        msg("3@x", None, None, "other", &d(3)),
        // 4: reply to 2, whose References also name a message not here.
        msg(
            "4@x",
            Some("<1@x> <2@x> <missing@x>"),
            None,
            "Re: hello",
            &d(4),
        ),
        // 5: a second reply to 1 (a fork).
        msg("5@x", Some("<1@x>"), None, "Re: hello", &d(5)),
        // 6 and 7: replies to a message that is not in the mailbox.
        msg("6@x", Some("<gone@x>"), None, "Re: gone", &d(6)),
        msg("7@x", Some("<gone@x>"), None, "Re: gone", &d(7)),
        // 8: no references, same base subject as 3: merged under it.
        msg("8@x", None, None, "Re: other", &d(8)),
        // 9: refers to itself (a loop that must not be made).
        msg("9@x", Some("<9@x>"), None, "loop", &d(9)),
    ] {
        c.append("INBOX", "", &m).await;
    }
    c.ok("SELECT INBOX").await;
    let r = c.ok("THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(
        thread_line(&r),
        "* THREAD (1 (2 4)(5))(3 8)((6)(7))(9)",
        "{r}"
    );
    // REFS: the same links, no merging by subject (8 stays apart from 3),
    // threads in the order of their newest message.
    let r = c.ok("THREAD REFS UTF-8 ALL").await;
    assert_eq!(
        thread_line(&r),
        "* THREAD (3)(1 (2 4)(5))((6)(7))(8)(9)",
        "{r}"
    );
    let r = c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(
        thread_line(&r),
        "* THREAD (1 (2)(4)(5))(3 8)(6 7)(9)",
        "{r}"
    );
    // Search criteria narrow the set: without 2, 4 hangs under 1 through
    // its References.
    let r = c.ok("THREAD REFERENCES US-ASCII NOT 2").await;
    assert_eq!(
        thread_line(&r),
        "* THREAD (1 (4)(5))(3 8)((6)(7))(9)",
        "{r}"
    );
    c.ok("STORE 1 +FLAGS (\\Deleted)").await;
    c.ok("EXPUNGE").await;
    // UIDs stay; without 1, its replies 2 and 5 hang from a dummy for
    // the missing <1@x> (a dummy at the root with two children is kept).
    let r = c.ok("UID THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(
        thread_line(&r),
        "* THREAD ((2 4)(5))(3 8)((6)(7))(9)",
        "{r}"
    );
    let r = c
        .ok("THREAD REFERENCES UTF-8 SUBJECT nothing-matches")
        .await;
    assert!(r.contains("* THREAD\r\n"), "{r}");
}

#[tokio::test]
async fn thread_is_advertised_and_bad_input_is_refused() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(
        r.contains(" THREAD=ORDEREDSUBJECT")
            && r.contains(" THREAD=REFERENCES")
            && r.contains(" THREAD=REFS"),
        "{r}"
    );
    let r = c.cmd("THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(Client::status(&r), "BAD", "not selected: {r}");
    c.append("INBOX", "", &message("a", "1")).await;
    c.ok("SELECT INBOX").await;
    for bad in [
        "THREAD BOGUS UTF-8 ALL",
        "THREAD REFERENCES ALL",
        "THREAD REFERENCES UTF-8",
        "THREAD (REFERENCES) UTF-8 ALL",
        "UID THREAD",
    ] {
        let r = c.cmd(bad).await;
        assert_eq!(Client::status(&r), "BAD", "{bad}: {r}");
    }
    let r = c.cmd("THREAD REFERENCES KOI8-R ALL").await;
    assert!(r.contains("NO [BADCHARSET"), "{r}");
    let r = c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(thread_line(&r), "* THREAD (1)", "{r}");
}
