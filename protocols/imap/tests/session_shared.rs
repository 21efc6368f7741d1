//! Mailboxes shared with RFC 4314 ACLs show up in LIST, LSUB and XLIST
//! under the other-users namespace (`Other Users/<owner>/<name>`), only with
//! the `l` right, and can be selected by the listed name.

mod common;

use common::*;

const SHARED_INBOX: &str = "Other Users/alice@example.com/INBOX";

/// The `* LIST` line naming exactly `name`, if any.
fn row<'a>(r: &'a str, word: &str, name: &str) -> Option<&'a str> {
    let quoted = format!(" \"{name}\"");
    untagged(r, word)
        .into_iter()
        .find(|l| l.trim_end().ends_with(&quoted))
}

#[tokio::test]
async fn list_shows_a_shared_mailbox_only_with_lookup() {
    let srv = start().await;
    let mut alice = Client::login(srv.addr, "alice@example.com").await;
    let mut bob = Client::login(srv.addr, "bob@example.com").await;
    alice.append("INBOX", "", &message("hi", "for bob")).await;

    let r = bob.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "nothing shared yet: {r}");

    alice.ok("SETACL INBOX bob@example.com lr").await;
    let r = bob.ok("LIST \"\" *").await;
    let line = row(&r, "* LIST", SHARED_INBOX).unwrap_or_else(|| panic!("{r}"));
    assert!(line.contains("(\\HasNoChildren)"), "{line}");
    let ns = row(&r, "* LIST", "Other Users").unwrap_or_else(|| panic!("{r}"));
    assert!(ns.contains("(\\Noselect \\HasChildren)"), "{ns}");
    let owner = row(&r, "* LIST", "Other Users/alice@example.com").unwrap_or_else(|| panic!("{r}"));
    assert!(owner.contains("(\\Noselect \\HasChildren)"), "{owner}");
    // bob's own mailboxes are still there
    assert!(row(&r, "* LIST", "INBOX").is_some(), "{r}");

    // `%` navigates level by level
    let r = bob.ok("LIST \"\" %").await;
    assert!(
        r.contains("* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users\""),
        "{r}"
    );
    assert!(!r.contains("alice@"), "{r}");
    let r = bob.ok("LIST \"\" \"Other Users/%\"").await;
    assert!(
        r.contains("* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users/alice@example.com\""),
        "{r}"
    );
    assert_eq!(untagged(&r, "* LIST").len(), 1, "{r}");
    let r = bob
        .ok("LIST \"Other Users/\" \"alice@example.com/%\"")
        .await;
    assert!(
        r.contains(&format!(
            "* LIST (\\HasNoChildren) \"/\" \"{SHARED_INBOX}\""
        )),
        "{r}"
    );
    // extended LIST says \NonExistent for the placeholders
    let r = bob.ok("LIST \"\" \"Other Users\" RETURN (CHILDREN)").await;
    assert!(
        r.contains("* LIST (\\NonExistent \\HasChildren) \"/\" \"Other Users\""),
        "{r}"
    );
    // XLIST too
    let r = bob.ok("XLIST \"\" *").await;
    assert!(row(&r, "* XLIST", SHARED_INBOX).is_some(), "{r}");
    // carol has no entry
    let mut carol = Client::login(srv.addr, "carol@example.com").await;
    let r = carol.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "{r}");

    // the listed name selects; EXAMINE/SELECT respect the missing `i`/`w`
    let r = bob.ok(&format!("SELECT \"{SHARED_INBOX}\"")).await;
    assert!(r.contains("* 1 EXISTS") && r.contains("[READ-ONLY]"), "{r}");
    let r = bob.ok(&format!("EXAMINE \"{SHARED_INBOX}\"")).await;
    assert!(r.contains("[READ-ONLY]"), "{r}");
    let r = bob.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    assert_eq!(Client::status(&r), "NO", "{r}");
    bob.ok("CLOSE").await;

    // rights without `l` hide it
    alice.ok("SETACL INBOX bob@example.com r").await;
    let r = bob.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "no `l`: {r}");
    // (still readable by its full name: `r` without `l` is allowed)
    bob.ok(&format!("EXAMINE \"{SHARED_INBOX}\"")).await;
    bob.ok("CLOSE").await;

    alice.ok("SETACL INBOX bob@example.com lrwi").await;
    let r = bob.ok(&format!("SELECT \"{SHARED_INBOX}\"")).await;
    assert!(r.contains("[READ-WRITE]"), "{r}");
    bob.ok("STORE 1 +FLAGS (\\Flagged)").await;
    bob.ok("CLOSE").await;

    // SETACL with no rights removes the entry
    alice.ok("SETACL INBOX bob@example.com \"\"").await;
    let r = bob.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "revoked: {r}");
    alice.ok("SETACL INBOX bob@example.com lr").await;
    let r = bob.ok("LIST \"\" *").await;
    assert!(row(&r, "* LIST", SHARED_INBOX).is_some(), "{r}");
    alice.ok("DELETEACL INBOX bob@example.com").await;
    let r = bob.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "DELETEACL: {r}");
}

#[tokio::test]
async fn anyone_subfolders_rename_and_delete() {
    let srv = start().await;
    let mut alice = Client::login(srv.addr, "alice@example.com").await;
    let mut bob = Client::login(srv.addr, "bob@example.com").await;
    let mut carol = Client::login(srv.addr, "carol@example.com").await;
    alice.ok("CREATE Team/Minutes").await;
    alice.ok("SETACL Team/Minutes anyone lr").await;
    for c in [&mut bob, &mut carol] {
        let r = c.ok("LIST \"\" \"Other Users/*\"").await;
        let m = row(&r, "* LIST", "Other Users/alice@example.com/Team/Minutes")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(m.contains("(\\HasNoChildren)"), "{m}");
        // Team itself is not shared: a placeholder
        let t = row(&r, "* LIST", "Other Users/alice@example.com/Team")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(t.contains("(\\Noselect \\HasChildren)"), "{t}");
        // `*` patterns keep matching the full name
        let r = c.ok("LIST \"\" \"*Minutes\"").await;
        assert_eq!(untagged(&r, "* LIST").len(), 1, "{r}");
        let r = c.ok("LIST \"\" \"Other Users/%/Team/%\"").await;
        assert_eq!(untagged(&r, "* LIST").len(), 1, "{r}");
    }
    // alice does not see her own mailbox twice
    let r = alice.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "{r}");

    alice.ok("RENAME Team Club").await;
    let r = bob.ok("LIST \"\" *").await;
    assert!(
        row(&r, "* LIST", "Other Users/alice@example.com/Club/Minutes").is_some()
            && !r.contains("Team"),
        "{r}"
    );
    alice.ok("DELETE Club/Minutes").await;
    let r = bob.ok("LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "deleted: {r}");
}

#[tokio::test]
async fn subscribe_and_lsub_shared_mailboxes() {
    let srv = start().await;
    let mut alice = Client::login(srv.addr, "alice@example.com").await;
    let mut bob = Client::login(srv.addr, "bob@example.com").await;
    // without `l` the mailbox does not exist for bob
    let r = bob.cmd(&format!("SUBSCRIBE \"{SHARED_INBOX}\"")).await;
    assert!(r.contains("NO [NONEXISTENT]"), "{r}");
    alice.ok("SETACL INBOX bob@example.com lr").await;
    bob.ok(&format!("SUBSCRIBE \"{SHARED_INBOX}\"")).await;
    let r = bob.ok("LSUB \"\" *").await;
    assert!(
        r.contains(&format!("* LSUB () \"/\" \"{SHARED_INBOX}\"")),
        "{r}"
    );
    // bob's own INBOX subscription is his, not alice's
    let inbox = row(&r, "* LSUB", "INBOX").unwrap_or_else(|| panic!("{r}"));
    assert!(inbox.starts_with("* LSUB () "), "{inbox}");
    let r = bob.ok("LSUB \"\" \"Other Users/%\"").await;
    assert!(
        r.contains("* LSUB (\\Noselect) \"/\" \"Other Users/alice@example.com\""),
        "{r}"
    );
    let r = bob.ok("LIST (SUBSCRIBED) \"\" \"Other Users/*\"").await;
    assert!(
        r.contains(&format!(
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"{SHARED_INBOX}\""
        )),
        "{r}"
    );
    bob.ok(&format!("UNSUBSCRIBE \"{SHARED_INBOX}\"")).await;
    let r = bob.ok("LSUB \"\" *").await;
    assert!(!r.contains("Other Users"), "{r}");
    // unsubscribing bob's own INBOX earlier did not happen behind his back
    assert!(row(&r, "* LSUB", "INBOX").is_some(), "{r}");
}
