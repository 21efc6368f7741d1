//! NOTIFY (RFC 5465) over a socket: STATUS for changes in mailboxes that
//! are not selected, LIST for mailbox names and subscriptions, each filter,
//! the selected mailbox's MessageNew fetch attributes, refusals, NOTIFY
//! NONE and the bound on watched mailboxes. Changes come from other
//! sessions; `tests/tests/notify.rs` adds LMTP deliveries and the CRC store.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// Reads responses until one starts with `prefix`; returns them all.
async fn until_line(c: &mut Client, prefix: &str) -> String {
    let mut all = String::new();
    loop {
        let r = c
            .read_response()
            .await
            .unwrap_or_else(|| panic!("EOF; got {all}"));
        all.push_str(&r);
        if r.starts_with(prefix) {
            return all;
        }
    }
}

/// The numbers in `* STATUS name (...)` for `name`.
fn status_of(r: &str, name: &str) -> Option<String> {
    let head = format!("* STATUS \"{name}\" (");
    r.lines()
        .find(|l| l.starts_with(&head))
        .map(|l| l[head.len()..].trim_end_matches(')').to_owned())
}

#[tokio::test]
async fn advertised_and_refusals() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains(" NOTIFY"), "{r}");
    let r = c
        .cmd("NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))")
        .await;
    assert!(
        r.contains(
            "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
        ),
        "{r}"
    );
    let r = c.cmd("NOTIFY SET (personal (MailboxMetadataChange))").await;
    assert!(r.contains("NO [BADEVENT"), "{r}");
    let r = c.cmd("NOTIFY SET (personal (MessageNew))").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let r = c.cmd("NOTIFY SET (personal (FlagChange))").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let r = c.cmd("NOTIFY SET (nowhere (MailboxName))").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let r = c.cmd("NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    let r = c.cmd("NOTIFY").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    // The session goes on after all of it.
    c.ok("NOTIFY SET (personal NONE)").await;
    c.ok("NOTIFY NONE").await;
}

#[tokio::test]
async fn status_for_new_expunged_and_flagged_messages_elsewhere() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    c.ok("CREATE Work").await;
    other.append("Work", "", &message("old", "x")).await;
    let r = c
        .ok("NOTIFY SET (STATUS) (personal (MessageNew MessageExpunge FlagChange))")
        .await;
    let work = status_of(&r, "Work").expect("STATUS Work from (STATUS)");
    assert!(work.starts_with("MESSAGES 1 UIDNEXT 2 UIDVALIDITY "), "{r}");
    assert!(work.ends_with(" UNSEEN 1"), "{r}");
    assert!(status_of(&r, "INBOX").is_some(), "{r}");

    // A new message in a mailbox that is not selected: STATUS after the next command.
    other.append("Work", "", &message("new", "y")).await;
    let r = c.ok("NOOP").await;
    let work = status_of(&r, "Work").expect("STATUS after APPEND");
    assert!(work.starts_with("MESSAGES 2 UIDNEXT 3 "), "{r}");
    assert!(status_of(&r, "INBOX").is_none(), "{r}");
    // Nothing new: nothing more.
    let r = c.ok("NOOP").await;
    assert!(!r.contains("* STATUS"), "{r}");

    // A flag change (FlagChange asked for).
    other.ok("SELECT Work").await;
    other.ok("STORE 1 +FLAGS (\\Seen)").await;
    let r = c.ok("NOOP").await;
    let work = status_of(&r, "Work").expect("STATUS after STORE");
    assert!(work.ends_with(" UNSEEN 1"), "{r}");

    // An expunge.
    other.ok("STORE 1 +FLAGS (\\Deleted)").await;
    other.ok("EXPUNGE").await;
    let r = c.ok("NOOP").await;
    let work = status_of(&r, "Work").expect("STATUS after EXPUNGE");
    assert!(work.starts_with("MESSAGES 1 UIDNEXT 3 "), "{r}");

    // During IDLE it comes at once.
    c.send_raw(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    other.append("Work", "", &message("idle", "z")).await;
    let r = until_line(&mut c, "* STATUS").await;
    assert!(
        status_of(&r, "Work").is_some_and(|s| s.starts_with("MESSAGES 2 UIDNEXT 4 ")),
        "{r}"
    );
    c.send_raw(b"DONE\r\n").await;
    c.until_tagged("i1").await;

    // NOTIFY NONE: no more of them.
    c.ok("NOTIFY NONE").await;
    other.append("Work", "", &message("quiet", "z")).await;
    let r = c.ok("NOOP").await;
    assert!(!r.contains("* STATUS"), "{r}");
}

#[tokio::test]
async fn flag_changes_are_told_only_when_asked_for() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    other.append("INBOX", "", &message("a", "x")).await;
    c.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge))")
        .await;
    other.ok("SELECT INBOX").await;
    other.ok("STORE 1 +FLAGS (\\Flagged)").await;
    let r = c.ok("NOOP").await;
    assert!(!r.contains("* STATUS"), "{r}");
    other.append("INBOX", "", &message("b", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(status_of(&r, "INBOX").is_some(), "{r}");
}

#[tokio::test]
async fn filters_pick_the_mailboxes() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    for m in [
        "Lists",
        "Lists/rust",
        "Lists/rust/users",
        "Listserv",
        "Work",
        "Sub",
    ] {
        c.ok(&format!("CREATE {m}")).await;
    }
    c.ok("SUBSCRIBE Sub").await;
    // Whatever the store subscribes by itself (INBOX) plus Sub.
    let lsub = c.ok("LSUB \"\" *").await;
    let subscribed: Vec<&str> = lsub
        .lines()
        .filter_map(|l| l.strip_prefix("* LSUB "))
        .map(|l| l.rsplit(' ').next().unwrap().trim_matches('"'))
        .collect();
    assert!(subscribed.contains(&"Sub"), "{lsub}");
    let everywhere = [
        "INBOX",
        "Lists",
        "Lists/rust",
        "Lists/rust/users",
        "Listserv",
        "Work",
        "Sub",
    ];
    // Only the mailboxes appended to below can be told of.
    let subscribed: Vec<&str> = subscribed
        .into_iter()
        .filter(|m| everywhere.contains(m))
        .collect();
    let cases: [(&str, &[&str]); 5] = [
        ("inboxes", &["INBOX"]),
        ("subtree Lists/rust", &["Lists/rust", "Lists/rust/users"]),
        ("mailboxes (Work inbox)", &["INBOX", "Work"]),
        ("subscribed", &subscribed),
        ("personal", &everywhere),
    ];
    for (filter, expected) in cases {
        c.ok(&format!(
            "NOTIFY SET ({filter} (MessageNew MessageExpunge))"
        ))
        .await;
        for m in everywhere {
            other.append(m, "", &message("m", "x")).await;
        }
        let r = c.ok("NOOP").await;
        let mut told: Vec<&str> = r
            .lines()
            .filter_map(|l| l.strip_prefix("* STATUS "))
            .map(|l| l.split(" (").next().unwrap().trim_matches('"'))
            .collect();
        told.sort_unstable();
        let mut want = expected.to_vec();
        want.sort_unstable();
        assert_eq!(told, want, "{filter}: {r}");
    }
    // The first group whose filter matches decides: INBOX is NONE here.
    c.ok("NOTIFY SET (inboxes NONE) (personal (MessageNew MessageExpunge))")
        .await;
    other.append("INBOX", "", &message("m", "x")).await;
    other.append("Work", "", &message("m", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(status_of(&r, "INBOX").is_none(), "{r}");
    assert!(status_of(&r, "Work").is_some(), "{r}");
}

#[tokio::test]
async fn the_selected_mailbox_gets_fetch_not_status() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    c.ok("SELECT INBOX").await;
    c.ok("NOTIFY SET (selected (MessageNew (UID FLAGS ENVELOPE) MessageExpunge)) (personal (MessageNew MessageExpunge))")
        .await;
    other
        .append("INBOX", "\\Flagged", &message("hello", "x"))
        .await;
    let r = c.ok("NOOP").await;
    assert!(status_of(&r, "INBOX").is_none(), "{r}");
    let exists = r.find("* 1 EXISTS\r\n").expect("EXISTS");
    let fetch = r.find("* 1 FETCH (").expect("FETCH of the new message");
    assert!(exists < fetch, "{r}");
    let line = r[fetch..].lines().next().unwrap();
    assert!(line.contains("UID 1"), "{r}");
    assert!(line.contains("FLAGS (\\Flagged"), "{r}");
    assert!(
        line.contains("ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"hello\""),
        "{r}"
    );

    // In IDLE too, right after the EXISTS.
    c.send_raw(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    other.append("INBOX", "", &message("again", "y")).await;
    let r = until_line(&mut c, "* 2 FETCH").await;
    assert!(r.contains("* 2 EXISTS\r\n"), "{r}");
    assert!(r.contains("\"again\""), "{r}");
    c.send_raw(b"DONE\r\n").await;
    c.until_tagged("i1").await;
}

#[tokio::test]
async fn mailbox_names_and_subscriptions() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    c.ok("CREATE Old").await;
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
        .await;

    // Woken in IDLE by another session's CREATE, RENAME, DELETE.
    c.send_raw(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    other.ok("CREATE Fresh").await;
    let r = until_line(&mut c, "* LIST").await;
    assert!(
        r.ends_with("* LIST (\\HasNoChildren) \"/\" \"Fresh\"\r\n"),
        "{r}"
    );
    other.ok("RENAME Old Newer").await;
    let r = until_line(&mut c, "* LIST").await;
    assert!(
        r.ends_with("* LIST (\\HasNoChildren) \"/\" \"Newer\" (\"OLDNAME\" (\"Old\"))\r\n"),
        "{r}"
    );
    other.ok("DELETE Fresh").await;
    let r = until_line(&mut c, "* LIST").await;
    assert!(
        r.ends_with("* LIST (\\NonExistent) \"/\" \"Fresh\"\r\n"),
        "{r}"
    );
    other.ok("SUBSCRIBE Newer").await;
    let r = until_line(&mut c, "* LIST").await;
    assert!(
        r.ends_with("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Newer\"\r\n"),
        "{r}"
    );
    other.ok("UNSUBSCRIBE Newer").await;
    let r = until_line(&mut c, "* LIST").await;
    assert!(
        r.ends_with("* LIST (\\HasNoChildren) \"/\" \"Newer\"\r\n"),
        "{r}"
    );
    c.send_raw(b"DONE\r\n").await;
    c.until_tagged("i1").await;

    // The renamed mailbox is still watched under its new name.
    other.append("Newer", "", &message("m", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(status_of(&r, "Newer").is_some(), "{r}");

    // Without MailboxName, no LIST.
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
        .await;
    other.ok("CREATE Quiet").await;
    let r = c.ok("NOOP").await;
    assert!(!r.contains("* LIST"), "{r}");
    // ...but a new mailbox is watched for messages.
    other.append("Quiet", "", &message("m", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(status_of(&r, "Quiet").is_some(), "{r}");
}

/// A rename another session makes is told with OLDNAME (RFC 5465 §5.4)
/// also for mailboxes watched for MailboxName alone, children included:
/// the names are matched by MAILBOXID. Before, only a mailbox watched for
/// message events was matched; these were told as a deletion and a
/// creation.
#[tokio::test]
async fn a_rename_is_told_with_oldname_without_message_events() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    c.ok("CREATE Old/Kid").await;
    c.ok("NOTIFY SET (personal (MailboxName))").await;
    other.ok("RENAME Old New").await;
    let r = c.ok("NOOP").await;
    let lists = untagged(&r, "* LIST");
    assert_eq!(
        lists,
        [
            "* LIST (\\HasChildren) \"/\" \"New\" (\"OLDNAME\" (\"Old\"))",
            "* LIST (\\HasNoChildren) \"/\" \"New/Kid\" (\"OLDNAME\" (\"Old/Kid\"))",
        ],
        "{r}"
    );
    // The new names are known by their ids: renamed again, the same.
    other.ok("RENAME New/Kid Kid").await;
    let r = c.ok("NOOP").await;
    assert_eq!(
        untagged(&r, "* LIST"),
        ["* LIST (\\HasNoChildren) \"/\" \"Kid\" (\"OLDNAME\" (\"New/Kid\"))"],
        "{r}"
    );
}

#[tokio::test]
async fn the_number_of_watched_mailboxes_is_bounded() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let limit = mailroom_imap::extension::notify::MAX_WATCHED;
    // INBOX and the default mailboxes count too.
    let have = untagged(&c.ok("LIST \"\" *").await, "* LIST").len();
    for i in have..limit {
        c.ok(&format!("CREATE m{i}")).await;
    }
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
        .await;
    // One more than the bound: SET is refused, the old SET stays.
    c.ok("CREATE one-too-many").await;
    let r = c
        .cmd("NOTIFY SET (personal (MessageNew MessageExpunge))")
        .await;
    assert!(r.contains(" NO [LIMIT]"), "{r}");
    c.ok("NOTIFY SET (subtree m1 (MessageNew MessageExpunge))")
        .await;
    // A SET that grows past it later turns NOTIFY off with an overflow.
    c.ok("NOTIFY NONE").await;
    c.ok("DELETE one-too-many").await;
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
        .await;
    let r = c.ok("CREATE one-too-many").await;
    assert!(r.contains("* OK [NOTIFICATIONOVERFLOW]"), "{r}");
    let mut other = Client::login(srv.addr, "alice@example.com").await;
    other.append("INBOX", "", &message("m", "x")).await;
    let r = c.ok("NOOP").await;
    assert!(!r.contains("* STATUS"), "{r}");
}

/// A namespace change made past every IMAP session (straight on the store,
/// as an admin command, replication or another frontend does) reaches a
/// NOTIFY session in IDLE through the store's namespace watch, not at a
/// periodic re-listing (which came every 60 s: the 10 s bound below, there
/// only to turn a missing wake-up into a failure rather than a hang, failed
/// before the watch).
#[tokio::test]
async fn namespace_changes_made_on_the_store_reach_idle() {
    use mailroom_core::{MailboxName, MailboxRef, Storage};
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("CREATE Old").await;
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
        .await;
    c.send_raw(b"i1 IDLE\r\n").await;
    assert!(c.read_response().await.unwrap().starts_with('+'));
    let within = std::time::Duration::from_secs(10);
    let name = |n: &str| MailboxName::new(n).unwrap();
    let mailbox = |n: &str| MailboxRef::new("alice@example.com", name(n));

    srv.store.create(&mailbox("Made"), None).await.unwrap();
    let r = tokio::time::timeout(within, until_line(&mut c, "* LIST"))
        .await
        .expect("a CREATE on the store wakes the IDLE");
    assert!(
        r.ends_with("* LIST (\\HasNoChildren) \"/\" \"Made\"\r\n"),
        "{r}"
    );
    srv.store
        .rename(&mailbox("Old"), &name("Moved"))
        .await
        .unwrap();
    let r = tokio::time::timeout(within, until_line(&mut c, "* LIST"))
        .await
        .expect("a RENAME on the store wakes the IDLE");
    assert!(
        r.ends_with("* LIST (\\HasNoChildren) \"/\" \"Moved\" (\"OLDNAME\" (\"Old\"))\r\n"),
        "{r}"
    );
    srv.store
        .set_subscribed("alice@example.com", &name("Made"), true)
        .await
        .unwrap();
    let r = tokio::time::timeout(within, until_line(&mut c, "* LIST"))
        .await
        .expect("a SUBSCRIBE on the store wakes the IDLE");
    assert!(
        r.ends_with("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Made\"\r\n"),
        "{r}"
    );
    c.send_raw(b"DONE\r\n").await;
    c.until_tagged("i1").await;
}

/// A memory store that counts what NOTIFY asks of it on a poll: namespace
/// listings and `Storage::poll_changes` calls (and the mailboxes in them),
/// and says its namespace watch is complete or not as told (the memory
/// store's is; the PostgreSQL store's is not).
#[derive(Debug)]
struct Counting {
    inner: std::sync::Arc<mailroom_store_memory::MemoryStore>,
    complete: bool,
    lists: std::sync::atomic::AtomicUsize,
    polls: std::sync::atomic::AtomicUsize,
    polled: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn take(&self) -> (usize, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.lists.swap(0, SeqCst),
            self.polls.swap(0, SeqCst),
            self.polled.swap(0, SeqCst),
        )
    }
}

#[async_trait::async_trait]
impl mailroom_core::storage::Delegate for Counting {
    fn inner(&self) -> &dyn mailroom_core::Storage {
        &*self.inner
    }
    async fn list(&self, owner: &str) -> mailroom_core::Result<Vec<mailroom_core::MailboxInfo>> {
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner().list(owner).await
    }
    fn namespace_watch_is_complete(&self) -> bool {
        self.complete
    }
    async fn poll_changes(
        &self,
        mailboxes: &[std::sync::Arc<dyn mailroom_core::Mailbox>],
    ) -> mailroom_core::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        self.polls.fetch_add(1, SeqCst);
        self.polled.fetch_add(mailboxes.len(), SeqCst);
        self.inner().poll_changes(mailboxes).await
    }
}

/// What a NOOP costs a NOTIFY session watching many mailboxes: the store
/// is asked to poll all of them in one call (on the PostgreSQL store one
/// statement, where each mailbox was one), and the namespace is listed
/// again only when the session asked for MailboxName/SubscriptionChange
/// and the store's namespace watch may miss a change, or when that watch
/// fired. Before: every NOOP listed the namespace and polled each mailbox
/// on its own.
#[tokio::test]
async fn a_noop_polls_in_one_call_and_lists_only_when_it_must() {
    use mailroom_core::{MailboxName, MailboxRef, Storage};
    for complete in [true, false] {
        let memory = std::sync::Arc::new(mailroom_store_memory::MemoryStore::new());
        let counting = std::sync::Arc::new(Counting {
            inner: memory.clone(),
            complete,
            lists: Default::default(),
            polls: Default::default(),
            polled: Default::default(),
        });
        let quota: std::sync::Arc<dyn mailroom_core::Quota> = memory.clone();
        let server = mailroom_imap::ImapServer::new(
            counting.clone(),
            Some(quota),
            std::sync::Arc::new(TestAuth),
            test_config(),
        );
        let srv = start_server(server, memory.clone(), mailroom_imap::TlsMode::Plain).await;
        let mut c = Client::login(srv.addr, "alice@example.com").await;
        for i in 0..12 {
            c.ok(&format!("CREATE Box{i}")).await;
        }
        let watched = c
            .ok("LIST \"\" *")
            .await
            .lines()
            .filter(|l| l.starts_with("* LIST"))
            .count();
        assert!(watched > 12, "watched {watched}");
        c.ok("SELECT Box0").await; // for CHECK; still watched

        // Message events only: never listed again on a poll.
        c.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
            .await;
        counting.take();
        for _ in 0..3 {
            c.ok("NOOP").await;
        }
        c.ok("CHECK").await;
        assert_eq!(
            counting.take(),
            (0, 4, 4 * watched),
            "complete={complete}: (listings, poll calls, mailboxes polled) for 3 NOOPs and a CHECK"
        );

        // Namespace events too: listed on a poll only if the watch may
        // miss a change.
        c.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
            .await;
        counting.take();
        for _ in 0..3 {
            c.ok("NOOP").await;
        }
        let lists = if complete { 0 } else { 3 };
        assert_eq!(
            counting.take(),
            (lists, 3, 3 * watched),
            "complete={complete}: with MailboxName"
        );

        // A change made on the store (not by this session) fires the
        // watch: listed once, and told.
        let made = MailboxRef::new("alice@example.com", MailboxName::new("Made").unwrap());
        counting.create(&made, None).await.unwrap();
        let r = c.ok("NOOP").await;
        assert!(r.contains("* LIST (\\HasNoChildren) \"/\" \"Made\""), "{r}");
        let (lists, polls, polled) = counting.take();
        assert_eq!(
            (lists, polls, polled),
            (1, 1, watched + 1),
            "complete={complete}: after a change on the store"
        );
        let r = c.ok("NOOP").await;
        assert!(!r.contains("* LIST"), "{r}");
        drop(c);
        srv.shutdown().await.unwrap();
    }
}
