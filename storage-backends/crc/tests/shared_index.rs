//! The reverse ACL index (`<data>/shared`) behind LIST's other-users
//! namespace: kept in step by SETACL, DELETE and RENAME, read back after a
//! restart, rebuilt when missing or corrupt, and never trusted beyond the
//! real ACLs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::open;
use mailroom_core::access::{ListEntry, MailAccess};
use mailroom_core::{Principal, Rights, Storage};
use mailroom_store_crc::{ACCOUNT_FILE, CrcStore, SHARED_FILE};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const SHARED_INBOX: &str = "Other Users/alice@example.com/INBOX";

fn access(store: &CrcStore, user: &str) -> MailAccess {
    let storage: Arc<dyn Storage> = Arc::new(store.clone());
    MailAccess::new(storage, None, Principal::user(user))
}

async fn setup(dir: &Path) -> CrcStore {
    let store = open(dir, false);
    for u in [ALICE, BOB, "carol@example.com"] {
        store.ensure_account(u).await.unwrap();
    }
    store
}

/// Alice grants bob `lr` on her INBOX.
async fn share_inbox_with_bob(store: &CrcStore) {
    access(store, ALICE)
        .set_acl("INBOX", BOB, Rights::parse("lr"))
        .await
        .unwrap();
}

/// What bob's `LIST "" *` shows of the other-users namespace.
async fn bob_sees(store: &CrcStore) -> Vec<ListEntry> {
    access(store, BOB)
        .list("", "*")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.name.starts_with("Other Users"))
        .collect()
}

async fn bob_names(store: &CrcStore) -> Vec<String> {
    bob_sees(store)
        .await
        .into_iter()
        .filter(|e| !e.non_existent)
        .map(|e| e.name)
        .collect()
}

fn index_text(dir: &Path) -> String {
    String::from_utf8(std::fs::read(dir.join(SHARED_FILE)).unwrap()).unwrap()
}

/// A `shared` file with the given grant lines and a correct CRC.
fn write_index(dir: &Path, grants: &[&str]) {
    let mut body = String::from("mailroom-crc-shared 1\n");
    for g in grants {
        body.push_str(g);
        body.push('\n');
    }
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!("crc {crc:08x}\n"));
    std::fs::write(dir.join(SHARED_FILE), body).unwrap();
}

#[tokio::test]
async fn grant_listed_with_placeholders_and_kept_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    assert!(bob_sees(&store).await.is_empty());
    share_inbox_with_bob(&store).await;
    let seen = bob_sees(&store).await;
    let names: Vec<(&str, bool, bool)> = seen
        .iter()
        .map(|e| (e.name.as_str(), e.non_existent, e.has_children))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Other Users", true, true),
            ("Other Users/alice@example.com", true, true),
            (SHARED_INBOX, false, false),
        ]
    );
    let text = index_text(dir.path());
    assert!(
        text.contains("grant bob@example.com alice@example.com 1\n"),
        "{text}"
    );
    drop(store);

    let store = open(dir.path(), false);
    assert_eq!(bob_names(&store).await, vec![SHARED_INBOX]);
    // the listed name selects
    let sel = access(&store, BOB)
        .select(SHARED_INBOX, true)
        .await
        .unwrap();
    assert!(!sel.rights().contains(mailroom_core::Right::Insert));
    // revoked: gone from the file and from LIST, also after a restart
    access(&store, ALICE)
        .set_acl("INBOX", BOB, None)
        .await
        .unwrap();
    assert!(bob_names(&store).await.is_empty());
    assert!(!index_text(dir.path()).contains("grant bob@"));
    drop(sel);
    drop(store);
    let store = open(dir.path(), false);
    assert!(bob_names(&store).await.is_empty());
}

#[tokio::test]
async fn missing_index_is_rebuilt_from_the_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    let alice = access(&store, ALICE);
    alice.create("Team", None).await.unwrap();
    alice
        .set_acl("Team", "anyone", Rights::parse("lr"))
        .await
        .unwrap();
    alice
        .set_acl("INBOX", BOB, Rights::parse("lr"))
        .await
        .unwrap();
    let before = index_text(dir.path());
    drop((alice, store));
    std::fs::remove_file(dir.path().join(SHARED_FILE)).unwrap();

    let store = open(dir.path(), false);
    assert_eq!(
        bob_names(&store).await,
        vec![SHARED_INBOX, "Other Users/alice@example.com/Team"]
    );
    assert_eq!(index_text(dir.path()), before, "rebuilt file, same bytes");
}

#[tokio::test]
async fn corrupt_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    share_inbox_with_bob(&store).await;
    let good = std::fs::read(dir.path().join(SHARED_FILE)).unwrap();
    drop(store);
    // flip one bit of the grant line: "bob" becomes "cob"
    let at = String::from_utf8_lossy(&good).find("grant b").unwrap() + 6;
    let mut bad = good.clone();
    bad[at] ^= 0x01;
    std::fs::write(dir.path().join(SHARED_FILE), &bad).unwrap();

    let store = open(dir.path(), false);
    assert_eq!(bob_names(&store).await, vec![SHARED_INBOX]);
    assert_eq!(std::fs::read(dir.path().join(SHARED_FILE)).unwrap(), good);
}

#[tokio::test]
async fn rebuild_falls_back_to_mailbox_files_of_a_broken_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    share_inbox_with_bob(&store).await;
    drop(store);
    std::fs::remove_file(dir.path().join(SHARED_FILE)).unwrap();
    let account = dir
        .path()
        .join("users")
        .join("alice@example%2Ecom")
        .join(ACCOUNT_FILE);
    let mut data = std::fs::read(&account).unwrap();
    data[3] ^= 0x20;
    std::fs::write(&account, data).unwrap();

    let store = open(dir.path(), false);
    assert_eq!(bob_names(&store).await, vec![SHARED_INBOX]);
    // alice's account was recovered along the way, with the ACL
    let acl = store
        .acl(&mailroom_core::MailboxRef::new(
            ALICE,
            mailroom_core::MailboxName::inbox(),
        ))
        .await
        .unwrap();
    assert_eq!(acl.rights_of(BOB).to_string(), "lr");
}

#[tokio::test]
async fn rename_and_delete_of_a_shared_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    let alice = access(&store, ALICE);
    alice.create("Team/Minutes", None).await.unwrap();
    alice
        .set_acl("Team/Minutes", BOB, Rights::parse("lr"))
        .await
        .unwrap();
    assert_eq!(
        bob_names(&store).await,
        vec!["Other Users/alice@example.com/Team/Minutes"]
    );
    let placeholders: Vec<String> = bob_sees(&store)
        .await
        .into_iter()
        .filter(|e| e.non_existent)
        .map(|e| e.name)
        .collect();
    assert_eq!(
        placeholders,
        vec![
            "Other Users",
            "Other Users/alice@example.com",
            "Other Users/alice@example.com/Team"
        ]
    );
    alice.rename("Team", "Club").await.unwrap();
    assert_eq!(
        bob_names(&store).await,
        vec!["Other Users/alice@example.com/Club/Minutes"]
    );
    let text = index_text(dir.path());
    assert!(
        text.contains("grant bob@example.com alice@example.com"),
        "{text}"
    );
    alice.delete("Club/Minutes").await.unwrap();
    assert!(bob_names(&store).await.is_empty());
    assert!(bob_sees(&store).await.is_empty(), "no placeholders left");
    assert!(!index_text(dir.path()).contains("grant bob@"));
    // a new mailbox of the same name is not shared
    alice.create("Club/Minutes", None).await.unwrap();
    assert!(bob_names(&store).await.is_empty());
}

#[tokio::test]
async fn stale_entries_are_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = setup(dir.path()).await;
    drop(store);
    // what a crash could leave: an entry the ACL does not have, and one for
    // a directory that names no mailbox
    write_index(
        dir.path(),
        &[
            "grant bob@example.com alice@example.com 1",
            "grant bob@example.com alice@example.com 999",
        ],
    );
    let store = open(dir.path(), false);
    assert!(bob_sees(&store).await.is_empty());
    // with `r` but no `l` it stays hidden too
    access(&store, ALICE)
        .set_acl("INBOX", BOB, Rights::parse("r"))
        .await
        .unwrap();
    assert!(bob_sees(&store).await.is_empty());
    share_inbox_with_bob(&store).await;
    assert_eq!(bob_names(&store).await, vec![SHARED_INBOX]);
}
