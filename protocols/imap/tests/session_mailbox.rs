//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
//! (with LIST-EXTENDED and LIST-STATUS), LSUB, XLIST, NAMESPACE, STATUS,
//! APPEND, ENABLE, ID, the ACL and QUOTA commands.

mod common;

use common::*;

#[tokio::test]
async fn create_list_rename_delete_with_hierarchy_and_non_ascii_names() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("LIST \"\" *").await;
    for name in ["INBOX", "Drafts", "Sent", "Trash", "Junk"] {
        assert!(r.contains(&format!("\"/\" \"{name}\"")), "{name} in {r}");
    }
    assert!(r.contains("(\\HasNoChildren \\Sent)"), "{r}");
    // Non-ASCII names arrive and leave as modified UTF-7.
    c.ok("CREATE \"Entw&APw-rfe/2026\"").await;
    let r = c.ok("LIST \"\" \"Entw&APw-rfe*\"").await;
    assert!(r.contains("(\\HasChildren) \"/\" \"Entw&APw-rfe\""), "{r}");
    assert!(
        r.contains("(\\HasNoChildren) \"/\" \"Entw&APw-rfe/2026\""),
        "{r}"
    );
    let r = c.ok("LIST \"\" %").await;
    assert!(r.contains("Entw&APw-rfe\"") && !r.contains("2026"), "{r}");
    let r = c.cmd("CREATE INBOX").await;
    assert!(r.contains("NO [ALREADYEXISTS]"), "{r}");
    let r = c.cmd("CREATE \"Entw&APw-rfe\"").await;
    assert!(r.contains("NO [ALREADYEXISTS]"), "{r}");
    // Parent that only exists through a child.
    c.ok("CREATE a/b/c").await;
    c.ok("DELETE a/b/c").await;
    c.ok("DELETE a/b").await;
    let r = c.cmd("DELETE nonexistent").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    c.ok("CREATE x/y").await;
    // RFC 9051 §6.3.5: a server that will not delete a name with inferior
    // names answers NO [HASCHILDREN]; the mailbox and its child stay.
    let r = c.cmd("DELETE x").await;
    assert!(r.contains("NO [HASCHILDREN]"), "children first: {r}");
    let r = c.ok("LIST () \"\" x*").await;
    assert!(r.contains("* LIST (\\HasChildren) \"/\" \"x\""), "{r}");
    // RENAME with children.
    c.ok("RENAME \"Entw&APw-rfe\" Drafts2").await;
    let r = c.ok("LIST \"\" *").await;
    assert!(r.contains("Drafts2/2026") && !r.contains("Entw"), "{r}");
    let r = c.cmd("RENAME nothere other").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    let r = c.cmd("RENAME Drafts2 Sent").await;
    assert!(r.contains("NO [ALREADYEXISTS]"), "{r}");
    // Empty pattern gives the delimiter.
    let r = c.ok("LIST \"\" \"\"").await;
    assert!(r.contains("* LIST (\\Noselect) \"/\" \"\""), "{r}");
    let r = c.cmd("DELETE INBOX").await;
    assert_eq!(Client::status(&r), "NO", "{r}");
}

#[tokio::test]
async fn rename_inbox_moves_messages_and_leaves_it_empty() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "", &message("one", "1")).await;
    c.append("INBOX", "", &message("two", "2")).await;
    c.ok("RENAME INBOX Old").await;
    let r = c.ok("STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("* STATUS \"INBOX\" (MESSAGES 0)"), "{r}");
    let r = c.ok("STATUS Old (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 2)"), "{r}");
}

#[tokio::test]
async fn subscribe_lsub_and_list_extended() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("CREATE Work/Projects").await;
    c.ok("SUBSCRIBE Work/Projects").await;
    c.ok("SUBSCRIBE INBOX").await;
    let r = c.cmd("SUBSCRIBE Nowhere").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    let r = c.ok("LSUB \"\" *").await;
    assert!(r.contains("* LSUB () \"/\" \"Work/Projects\""), "{r}");
    assert!(r.contains("* LSUB () \"/\" \"INBOX\""), "{r}");
    assert!(!r.contains("\"Work\""), "parent not subscribed: {r}");
    let r = c.ok("LSUB \"\" %").await;
    assert!(r.contains("* LSUB (\\Noselect) \"/\" \"Work\""), "{r}");
    assert!(!r.contains("Work/Projects"), "{r}");
    let r = c.ok("LIST (SUBSCRIBED) \"\" *").await;
    assert!(r.contains("\\Subscribed) \"/\" \"Work/Projects\""), "{r}");
    assert!(!r.contains("\"Work\""), "{r}");
    let r = c.ok("LIST \"\" * RETURN (SUBSCRIBED CHILDREN)").await;
    assert!(
        r.contains("(\\HasNoChildren \\Subscribed) \"/\" \"INBOX\""),
        "{r}"
    );
    assert!(r.contains("(\\HasChildren) \"/\" \"Work\""), "{r}");
    let r = c.ok("LIST (SPECIAL-USE) \"\" *").await;
    assert!(r.contains("\\Sent") && !r.contains("\"INBOX\""), "{r}");
    let r = c.ok("LIST \"\" (INBOX Sent)").await;
    assert_eq!(untagged(&r, "* LIST").len(), 2, "{r}");
    c.ok("UNSUBSCRIBE Work/Projects").await;
    let r = c.ok("LSUB \"\" *").await;
    assert!(!r.contains("Work/Projects"), "{r}");
    let r = c.cmd("LIST (BOGUS) \"\" *").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}

/// RFC 5258 §3.1 and §3.5: with RECURSIVEMATCH a mailbox that matches the
/// pattern but is not subscribed, and has a subscribed descendant the
/// pattern does not reach, is listed with CHILDINFO; every listed mailbox
/// with a subscribed descendant carries CHILDINFO. Without RECURSIVEMATCH
/// there is never CHILDINFO and never such a parent. The expected rows are
/// the ones Dovecot 2.3 (Debian) gives for the same mailboxes and commands.
#[tokio::test]
async fn list_recursivematch_reports_childinfo() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    for m in [
        "Fruit/Apple",
        "Fruit/Banana",
        "Fruit/Peach",
        "Tofu",
        "Vegetable/Broccoli",
    ] {
        c.ok(&format!("CREATE {m}")).await;
    }
    for m in [
        "INBOX",
        "Fruit/Banana",
        "Fruit/Peach",
        "Vegetable",
        "Vegetable/Broccoli",
    ] {
        c.ok(&format!("SUBSCRIBE {m}")).await;
    }
    c.ok("DELETE Fruit/Peach").await;

    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    // INBOX, Fruit, Vegetable and the four special-use mailboxes every
    // account starts with (subscribed).
    assert_eq!(untagged(&r, "* LIST").len(), 7, "{r}");
    assert!(
        r.contains("* LIST (\\HasChildren) \"/\" \"Fruit\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "Fruit exists, is not subscribed, has subscribed children: {r}"
    );
    assert!(
        r.contains(
            "* LIST (\\HasChildren \\Subscribed) \"/\" \"Vegetable\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
        ),
        "{r}"
    );
    assert!(
        r.contains("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"\r\n"),
        "{r}"
    );
    assert!(!r.contains("Tofu"), "{r}");

    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *").await;
    assert!(
        r.contains("(\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Fruit/Peach\"\r\n"),
        "{r}"
    );
    assert!(r.contains("\"Fruit/Banana\"\r\n"), "{r}");
    assert!(
        !r.contains("\"Fruit\""),
        "Fruit/Banana is listed itself, so Fruit is not: {r}"
    );
    assert!(r.contains("\"Vegetable\" (\"CHILDINFO\""), "{r}");
    assert!(!r.contains("Apple") && !r.contains("Tofu"), "{r}");

    // A parent that does not exist at all (nor anything under it but a
    // subscription left behind by DELETE) is \NonExistent.
    c.ok("CREATE Gone/Deep/Child").await;
    c.ok("SUBSCRIBE Gone/Deep/Child").await;
    for m in ["Gone/Deep/Child", "Gone/Deep", "Gone"] {
        c.ok(&format!("DELETE {m}")).await;
    }
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" Gone/%").await;
    assert!(
        r.contains("* LIST (\\NonExistent \\HasChildren) \"/\" \"Gone/Deep\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{r}"
    );
    assert_eq!(untagged(&r, "* LIST").len(), 1, "{r}");

    let r = c.ok("LIST (SUBSCRIBED) \"\" %").await;
    assert!(!r.contains("CHILDINFO") && !r.contains("\"Fruit\""), "{r}");
    for bad in [
        "LIST (RECURSIVEMATCH) \"\" *",
        "LIST (REMOTE RECURSIVEMATCH) \"\" *",
        "LIST (SPECIAL-USE RECURSIVEMATCH) \"\" *",
    ] {
        let r = c.cmd(bad).await;
        assert_eq!(Client::status(&r), "BAD", "{bad}: {r}");
    }
}

#[tokio::test]
async fn list_status_xlist_namespace_create_special_use() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "\\Seen", &message("a", "1")).await;
    c.append("INBOX", "", &message("b", "2")).await;
    let r = c
        .ok("LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))")
        .await;
    assert!(
        r.contains("* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1 UIDNEXT 3)"),
        "{r}"
    );
    let r = c.ok("XLIST \"\" *").await;
    assert!(
        r.contains("* XLIST (\\HasNoChildren \\Inbox) \"/\" \"INBOX\""),
        "{r}"
    );
    assert!(r.contains("\\Spam) \"/\" \"Junk\""), "{r}");
    let r = c.ok("NAMESPACE").await;
    assert!(
        r.contains("* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL"),
        "{r}"
    );
    c.ok("CREATE Everything (USE (\\All))").await;
    let r = c.ok("LIST \"\" Everything").await;
    assert!(r.contains("\\All"), "{r}");
}

#[tokio::test]
async fn status_counts_unread_messages_regression() {
    // Regression: STATUS (UNSEEN) must count unread messages, not read ones.
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.append("INBOX", "\\Seen", &message("read", "1")).await;
    c.append("INBOX", "", &message("unread1", "2")).await;
    c.append("INBOX", "\\Flagged", &message("unread2", "3"))
        .await;
    let r = c
        .ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE DELETED)")
        .await;
    let line = untagged(&r, "STATUS")[0];
    assert!(line.contains("MESSAGES 3"), "{line}");
    assert!(line.contains("UNSEEN 2"), "{line}");
    assert!(
        line.contains("UIDNEXT 4") && line.contains("DELETED 0"),
        "{line}"
    );
    assert!(
        line.contains("RECENT 3") && line.contains("HIGHESTMODSEQ"),
        "{line}"
    );
    let r = c.cmd("STATUS Nowhere (MESSAGES)").await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
}

#[tokio::test]
async fn append_uidplus_trycreate_flags_and_literal_plus() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c
        .append("INBOX", "\\Seen $Forwarded", &message("x", "y"))
        .await;
    assert!(r.contains("OK [APPENDUID "), "{r}");
    assert!(r.contains(" 1] "), "{r}");
    let r = c.append("Missing", "", &message("x", "y")).await;
    assert!(r.contains("NO [TRYCREATE]"), "{r}");
    // LITERAL+: no continuation.
    let msg = message("plus", "body");
    let mut cmd = format!(
        "p1 APPEND INBOX (\\Draft) \"07-Feb-1994 21:52:25 -0800\" {{{}+}}\r\n",
        msg.len()
    )
    .into_bytes();
    cmd.extend_from_slice(&msg);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd).await;
    let r = c.until_tagged("p1").await;
    assert!(r.contains("p1 OK [APPENDUID") && r.contains(" 2]"), "{r}");
    c.ok("SELECT INBOX").await;
    let r = c.ok("FETCH 2 (FLAGS INTERNALDATE RFC822.SIZE)").await;
    assert!(r.contains("\\Draft"), "{r}");
    assert!(
        r.contains("INTERNALDATE \"07-Feb-1994 21:52:25 -0800\""),
        "{r}"
    );
    assert!(r.contains(&format!("RFC822.SIZE {}", msg.len())), "{r}");
    let r = c.ok("FETCH 1 FLAGS").await;
    assert!(r.contains("\\Seen") && r.contains("$Forwarded"), "{r}");
}

#[tokio::test]
async fn enable_and_id() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("ENABLE CONDSTORE X-UNKNOWN").await;
    assert!(r.contains("* ENABLED CONDSTORE"), "{r}");
    let r = c.ok("ENABLE QRESYNC CONDSTORE").await;
    assert!(r.contains("* ENABLED QRESYNC\r\n"), "{r}");
    let r = c
        .ok("ID (\"name\" \"test-client\" \"version\" \"1.0\")")
        .await;
    assert!(r.contains("* ID (\"name\" \"Mailroom\""), "{r}");
    let r = c.ok("ID NIL").await;
    assert!(r.contains("* ID ("), "{r}");
}

#[tokio::test]
async fn acl_commands_share_a_mailbox() {
    let srv = start().await;
    let mut alice = Client::login(srv.addr, "alice@example.com").await;
    alice
        .append("INBOX", "", &message("shared", "hello bob"))
        .await;
    let r = alice.ok("GETACL INBOX").await;
    assert!(
        r.contains("* ACL \"INBOX\" alice@example.com lrswipkxtea"),
        "{r}"
    );
    let r = alice.ok("MYRIGHTS INBOX").await;
    assert!(r.contains("* MYRIGHTS \"INBOX\" lrswipkxtea"), "{r}");
    let r = alice.ok("LISTRIGHTS INBOX bob@example.com").await;
    assert!(
        r.contains("* LISTRIGHTS \"INBOX\" bob@example.com \"\" l r s w i p k x t e a"),
        "{r}"
    );

    let mut bob = Client::login(srv.addr, "bob@example.com").await;
    let r = bob
        .cmd("SELECT \"Other Users/alice@example.com/INBOX\"")
        .await;
    assert!(r.contains("NO [NONEXISTENT]"), "no rights yet: {r}");

    alice.ok("SETACL INBOX bob@example.com lr").await;
    alice.ok("SETACL INBOX bob@example.com +s").await;
    let r = alice.ok("GETACL INBOX").await;
    assert!(r.contains("bob@example.com lrs"), "{r}");
    let r = bob
        .ok("EXAMINE \"Other Users/alice@example.com/INBOX\"")
        .await;
    assert!(r.contains("* 1 EXISTS") && r.contains("[READ-ONLY]"), "{r}");
    let r = bob.ok("FETCH 1 BODY.PEEK[TEXT]").await;
    assert!(r.contains("hello bob"), "{r}");
    let r = bob
        .ok("MYRIGHTS \"Other Users/alice@example.com/INBOX\"")
        .await;
    assert!(r.contains("lrs"), "{r}");
    // Bob may not administer.
    let r = bob
        .cmd("SETACL \"Other Users/alice@example.com/INBOX\" carol@example.com lr")
        .await;
    assert!(r.contains("NO [NOPERM]"), "{r}");
    let r = bob
        .cmd("GETACL \"Other Users/alice@example.com/INBOX\"")
        .await;
    assert!(r.contains("NO [NOPERM]"), "{r}");
    // Bob cannot append without `i`.
    let r = bob
        .append(
            "\"Other Users/alice@example.com/INBOX\"",
            "",
            &message("x", "y"),
        )
        .await;
    assert!(r.contains("NO [NOPERM]"), "{r}");
    alice.ok("SETACL INBOX bob@example.com -s").await;
    let r = alice.ok("GETACL INBOX").await;
    assert!(r.contains("bob@example.com lr\r\n"), "{r}");
    alice.ok("DELETEACL INBOX bob@example.com").await;
    let r = alice.ok("GETACL INBOX").await;
    assert!(!r.contains("bob@"), "{r}");
    let r = alice.cmd("SETACL INBOX alice@example.com lr").await;
    assert!(r.contains("NO [CANNOT]"), "{r}");
}

#[tokio::test]
async fn quota_commands() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("GETQUOTAROOT INBOX").await;
    assert!(r.contains("* QUOTAROOT \"INBOX\" alice@example.com"), "{r}");
    let r = c.cmd("SETQUOTA alice@example.com (STORAGE 1)").await;
    assert!(r.contains("NO [NOPERM]"), "{r}");
    let r = c.cmd("GETQUOTA bob@example.com").await;
    assert!(r.contains("NO [NOPERM]"), "{r}");

    let mut admin = Client::login(srv.addr, "admin@example.com").await;
    let r = admin
        .ok("SETQUOTA alice@example.com (STORAGE 1 MESSAGE 2)")
        .await;
    assert!(
        r.contains("* QUOTA alice@example.com (STORAGE 0 1 MESSAGE 0 2)"),
        "{r}"
    );
    let r = admin.cmd("SETQUOTA alice@example.com (FROBS 1)").await;
    assert_eq!(Client::status(&r), "NO", "{r}");

    c.append("INBOX", "", &message("a", "small")).await;
    let r = c.ok("GETQUOTA alice@example.com").await;
    assert!(r.contains("(STORAGE 1 1 MESSAGE 1 2)"), "{r}");
    let big = message("big", &"x".repeat(2000));
    let r = c.append("INBOX", "", &big).await;
    assert!(r.contains("NO [OVERQUOTA]"), "{r}");
    c.append("INBOX", "", &message("b", "s")).await;
    let r = c.append("INBOX", "", &message("c", "s")).await;
    assert!(r.contains("NO [OVERQUOTA]"), "message limit: {r}");
}

/// RFC 6855: after ENABLE UTF8=ACCEPT, mailbox names go both ways as UTF-8
/// (not modified UTF-7), ENVELOPE strings carry the raw UTF-8 (as literals,
/// which RFC 6855 allows; quoting them is a MAY), APPEND takes
/// `UTF8 (~{n})` (and the `UTF8 ({n}` Python's imaplib sends), and a SEARCH
/// naming a charset is BAD. Before it, names are modified UTF-7 as always.
#[tokio::test]
async fn utf8_accept() {
    let srv = start().await;
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    let r = c.ok("CAPABILITY").await;
    assert!(r.contains(" UTF8=ACCEPT"), "{r}");
    c.ok("CREATE \"Entw&APw-rfe\"").await;
    let r = c.ok("LIST \"\" \"Entw*\"").await;
    assert!(r.contains("\"Entw&APw-rfe\""), "{r}");

    let r = c.ok("ENABLE UTF8=ACCEPT").await;
    assert!(r.contains("* ENABLED UTF8=ACCEPT\r\n"), "{r}");
    let r = c.ok("ENABLE UTF8=ACCEPT").await;
    assert!(!r.contains("* ENABLED UTF8"), "announced once: {r}");
    let r = c.ok("LIST \"\" \"Entw*\"").await;
    assert!(r.contains("\"Entwürfe\""), "{r}");
    c.ok("CREATE \"日本語\"").await;
    let r = c.ok("STATUS \"日本語\" (MESSAGES)").await;
    assert!(r.contains("* STATUS \"日本語\" (MESSAGES 0)"), "{r}");

    let message = "From: Jürgen <jürgen@example.org>\r\nSubject: Grüße\r\n\r\nHallo\r\n";
    for form in ["~{%}", "{%}"] {
        let tag = c.tag();
        let literal = form.replace('%', &message.len().to_string());
        c.send_raw(format!("{tag} APPEND \"日本語\" UTF8 ({literal}\r\n").as_bytes())
            .await;
        let cont = c.read_response().await.unwrap();
        assert!(cont.starts_with('+'), "{form}: {cont}");
        c.send_raw(message.as_bytes()).await;
        c.send_raw(b")\r\n").await;
        let r = c.until_tagged(&tag).await;
        assert_eq!(Client::status(&r), "OK", "{form}: {r}");
    }
    c.ok("SELECT \"日本語\"").await;
    let r = c.ok("FETCH 1:2 (BODY.PEEK[] ENVELOPE)").await;
    assert_eq!(r.matches(message).count(), 2, "stored byte for byte: {r}");
    assert!(
        r.contains("ENVELOPE (NIL {7}\r\nGrüße ("),
        "raw UTF-8 subject: {r}"
    );
    let r = c.ok("SEARCH SUBJECT \"Grüße\"").await;
    assert!(r.contains("* SEARCH 1 2\r\n"), "{r}");
    let r = c.cmd("SEARCH CHARSET UTF-8 SUBJECT x").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
}
