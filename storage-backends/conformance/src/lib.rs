//! The backend conformance suite: the checks every [`Storage`] + [`Quota`]
//! implementation must pass, so that the protocols behave the same on every
//! backend.
//!
//! A backend's tests depend on it (it is never a dependency of a backend
//! itself):
//!
//! ```toml
//! [dev-dependencies]
//! mailroom-conformance.workspace = true
//! tokio.workspace = true   # with "rt-multi-thread" and "macros"
//! ```
//!
//! Then, in a test file of the backend (`tests/conformance.rs`), one line
//! makes one `#[tokio::test]` per check, so a failure names the check:
//!
//! ```ignore
//! use std::sync::Arc;
//! mailroom_conformance::conformance_tests!(Arc::new(my_backend::Store::new()));
//! ```
//!
//! The expression is evaluated afresh for every check and must give an
//! `Arc<S>` where `S: Storage + Quota + 'static`. A backend on disk can keep
//! its temporary directory alive by making it part of the store, or by
//! calling a helper function that builds the store in a directory it leaks
//! on purpose (`tempfile::TempDir::keep`).
//!
//! Alternatively call [`run_all`] from a single test, or the individual
//! `pub async fn` checks (each takes a fresh, empty store):
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! use std::sync::Arc;
//! use mailroom_store_memory::MemoryStore;
//!
//! mailroom_conformance::rename_inbox(Arc::new(MemoryStore::new())).await;
//! assert!(mailroom_conformance::CHECKS.contains(&"rename_inbox"));
//! # }
//! ```
//!
//! Every check panics with a message that says what was expected and what
//! the backend did. The checks use the users `alice@example.com`,
//! `bob@example.com` and `carol@example.com`, and never rely on timing except
//! for generous timeouts (10 s) that turn a missing wake-up or a deadlock
//! into a failure instead of a hang.
//!
//! What the suite fixes, beyond the trait documentation:
//!
//! - a new mailbox has UIDNEXT 1 and a non-zero HIGHESTMODSEQ; a deleted and
//!   re-created mailbox has a new UIDVALIDITY;
//! - every change (append, a STORE that changes flags, an expunge, a copy or
//!   move in) raises HIGHESTMODSEQ; a STORE or EXPUNGE that changes nothing
//!   leaves it alone; HIGHESTMODSEQ is the largest modseq of any message or
//!   remembered expunge;
//! - expunges are remembered (`expunged_complete` is true in a mailbox that
//!   was never repacked);
//! - `\Seen` of a viewer other than the owner is theirs alone; other flags
//!   are shared; COPY carries the flags as the copying viewer sees them;
//! - RENAME of INBOX leaves INBOX empty (open INBOX handles see the
//!   messages expunged) without reusing its UIDs;
//! - quota usage is exact after append, copy, move, expunge and delete;
//! - SAVEDATE (RFC 8514): APPEND, COPY and MOVE set a message's save date
//!   to the time it was saved in that mailbox (the store's clock, Unix
//!   seconds), and every way of reading a message's metadata shows it;
//! - [`Storage::watch_namespace`] wakes after every change of the user's
//!   mailbox names, special uses and subscriptions (a store of this
//!   workspace may not keep the default that never fires), and a store
//!   that says its watch is complete
//!   ([`Storage::namespace_watch_is_complete`]) has woken it by the time
//!   the change returns;
//! - [`Storage::poll_changes`] leaves the watch of every handle it is
//!   given (of any owner) at its mailbox's HIGHESTMODSEQ, skipping a
//!   mailbox deleted since it was opened;
//! - [`Storage::shared_mailboxes`] finds every mailbox of another owner
//!   with an ACL entry for the user or `anyone`, under its current name,
//!   and forgets it once the entry, or the mailbox, is gone.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use mailroom_core::acl::{ANYONE, Rights};
use mailroom_core::error::{Error, Result};
use mailroom_core::flags::{Flag, Flags, StoreOp};
use mailroom_core::guid::MessageGuid;
use mailroom_core::mailbox::{DEFAULT_MAILBOXES, MailboxName, MailboxRef, SpecialUse};
use mailroom_core::message::{InternalDate, MessageMeta, NewMessage};
use mailroom_core::mime::{MessageSummary, SortFields, SortKeys, SortText};
use mailroom_core::quota::{Quota, QuotaLimits};
use mailroom_core::storage::{Mailbox, MailboxWatch, NamespaceWatch, Storage};
use mailroom_core::types::{ModSeq, Uid};

/// The owner of most mailboxes in the checks.
pub const ALICE: &str = "alice@example.com";
/// A second user, who views Alice's mailboxes (shared `\Seen` checks).
pub const BOB: &str = "bob@example.com";
/// A third user.
pub const CAROL: &str = "carol@example.com";

/// How long a check waits for a wake-up or a concurrent task before failing.
const WAIT: Duration = Duration::from_secs(10);

/// The one list of checks. Everything else is generated from it: the
/// [`CHECKS`] names, [`run_all`] and the tests of [`conformance_tests!`], so
/// a check added here runs on every store at once.
///
/// It calls back `$crate::__conformance_expand!` with the given mode (a
/// bracketed token list) followed by the check names.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_checks {
    ($($mode:tt)*) => {
        $crate::__conformance_expand!([$($mode)*]
            account_defaults, namespace, rename, rename_inbox, append_and_fetch,
            append_all, store_flags, unchanged_since, modseq_monotonic, changes_since, expunge,
            per_user_seen, copy_and_move, recent, quota, quota_concurrent, watch, namespace_watch,
            poll_changes, shared_mailboxes, maildrop_lock, concurrent_access, save_date);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_expand {
    ([tests $make:expr] $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::$check($make).await;
            }
        )*
    };
    ([library] $($check:ident),* $(,)?) => {
        /// The names of every check, in the order [`run_all`] runs them
        /// (the names of the tests [`conformance_tests!`] makes).
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];

        /// Runs every check, each on a fresh store from `make`.
        pub async fn run_all<S, F>(make: F)
        where
            S: Storage + Quota + 'static,
            F: Fn() -> Arc<S>,
        {
            $( $check(make()).await; )*
        }
    };
}

__conformance_checks!(library);

/// Makes one `#[tokio::test]` per conformance check, each on a fresh store
/// from `$make` (an expression evaluated inside the test's `async fn`, so it
/// may `.await`).
///
/// The calling crate needs `tokio` with `macros` and `rt-multi-thread` among
/// its dev-dependencies. See the [crate documentation](crate).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_checks!(tests $make);
    };
}

/// The POP3 maildrop lock ([`Storage::lock_maildrop`]): one holder per
/// user, [`Error::Busy`] for a second, released when the guard is dropped
/// (on another task too); it does not stop appends to the maildrop.
pub async fn maildrop_lock<S: Storage + ?Sized + 'static>(store: Arc<S>) {
    account(&*store, ALICE).await;
    account(&*store, BOB).await;
    let held = ok(store.lock_maildrop(ALICE).await, "first lock");
    expect_err(
        store.lock_maildrop(ALICE).await,
        "second lock",
        "Busy",
        |e| matches!(e, Error::Busy(_)),
    );
    let bob = ok(store.lock_maildrop(BOB).await, "another user's lock");
    append(&*store, &inbox(ALICE), 1, &[]).await;
    let released = tokio::spawn(async move { drop(held) });
    ok(
        released.await.map_err(|e| Error::Backend(e.to_string())),
        "dropping on another task",
    );
    let again = ok(store.lock_maildrop(ALICE).await, "lock after release");
    drop((again, bob));
}

// ---------------------------------------------------------------- helpers

fn ok<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e} ({e:?})"),
    }
}

fn expect_err<T: Debug>(r: Result<T>, what: &str, expected: &str, pred: fn(&Error) -> bool) {
    match r {
        Err(e) if pred(&e) => {}
        Err(e) => panic!("{what}: expected {expected}, got error {e:?}"),
        Ok(v) => panic!("{what}: expected {expected}, got Ok({v:?})"),
    }
}

fn no_such_mailbox(e: &Error) -> bool {
    matches!(e, Error::NoSuchMailbox(_))
}

fn name(s: &str) -> MailboxName {
    match MailboxName::new(s) {
        Ok(n) => n,
        Err(e) => panic!("bad mailbox name in the conformance suite: {s}: {e}"),
    }
}

fn mbox(owner: &str, n: &str) -> MailboxRef {
    MailboxRef::new(owner, name(n))
}

fn inbox(owner: &str) -> MailboxRef {
    MailboxRef::new(owner, MailboxName::inbox())
}

fn flags(list: &[Flag]) -> Flags {
    list.iter().cloned().collect()
}

fn kw(k: &str) -> Flag {
    Flag::Keyword(k.to_owned())
}

fn date(n: u32) -> InternalDate {
    InternalDate {
        timestamp: 1_700_000_000 + i64::from(n) * 3_600,
        offset_minutes: if n.is_multiple_of(2) { 120 } else { -300 },
    }
}

/// The bytes of test message `n` (distinct for every `n`, varied lengths).
fn body(n: u32) -> Bytes {
    let mut s = format!(
        "From: Sender {n} <sender{n}@example.net>\r\n\
         To: alice@example.com\r\n\
         Subject: conformance message {n}\r\n\
         Message-ID: <{n}.conformance@example.net>\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
         \r\n\
         Body of message {n}.\r\n"
    );
    for i in 0..(n % 7) {
        s.push_str(&format!("Line {i} of padding.\r\n"));
    }
    Bytes::from(s)
}

fn message(n: u32, f: &[Flag]) -> NewMessage {
    NewMessage {
        flags: flags(f),
        internal_date: Some(date(n)),
        content: body(n),
    }
}

async fn append<S: Storage + ?Sized>(
    store: &S,
    mailbox: &MailboxRef,
    n: u32,
    f: &[Flag],
) -> mailroom_core::message::Appended {
    ok(
        store.append(mailbox, message(n, f)).await,
        &format!("append message {n} to {mailbox}"),
    )
}

async fn account<S: Storage + ?Sized>(store: &S, user: &str) {
    ok(
        store.ensure_account(user).await,
        &format!("ensure_account({user})"),
    );
}

async fn open<S: Storage + ?Sized>(
    store: &S,
    mailbox: &MailboxRef,
    viewer: &str,
) -> Arc<dyn Mailbox> {
    ok(
        store.open(mailbox, viewer).await,
        &format!("open {mailbox} as {viewer}"),
    )
}

async fn highest<S: Storage + ?Sized>(store: &S, mailbox: &MailboxRef) -> ModSeq {
    ok(store.status(mailbox, &mailbox.owner).await, "status").highest_modseq
}

async fn meta(mailbox: &Arc<dyn Mailbox>, uid: Uid) -> MessageMeta {
    let mut v = ok(mailbox.fetch_meta(&[uid]).await, "fetch_meta");
    match v.pop() {
        Some(m) if v.is_empty() && m.uid == uid => m,
        other => {
            panic!("fetch_meta([{uid}]) should give exactly UID {uid}, got {other:?} and {v:?}")
        }
    }
}

fn uids_of(metas: &[MessageMeta]) -> Vec<Uid> {
    metas.iter().map(|m| m.uid).collect()
}

/// The UIDs of a list of pairs.
fn uids_of_pairs<T>(pairs: &[(Uid, T)]) -> Vec<Uid> {
    pairs.iter().map(|(u, _)| *u).collect()
}

/// Checks the invariant HIGHESTMODSEQ = max(message modseqs, expunge modseqs).
async fn check_highest_is_max(mailbox: &Arc<dyn Mailbox>, what: &str) {
    let snap = ok(mailbox.snapshot().await, "snapshot");
    let changes = ok(mailbox.changes_since(ModSeq(0)).await, "changes_since(0)");
    let max = snap
        .messages
        .iter()
        .map(|m| m.modseq)
        .chain(changes.expunged.iter().map(|(_, m)| *m))
        .max();
    if let Some(max) = max {
        assert_eq!(
            snap.highest_modseq, max,
            "{what}: HIGHESTMODSEQ must be the largest modseq of any message or remembered expunge"
        );
    }
    assert_eq!(
        changes.highest_modseq, snap.highest_modseq,
        "{what}: changes_since and snapshot disagree on HIGHESTMODSEQ"
    );
}

async fn wait_changed(watch: &mut MailboxWatch, what: &str) -> Option<ModSeq> {
    match tokio::time::timeout(WAIT, watch.changed()).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: the watch did not wake within {WAIT:?}"),
    }
}

async fn wait_namespace(watch: &mut NamespaceWatch, what: &str) {
    if tokio::time::timeout(WAIT, watch.changed()).await.is_err() {
        panic!("{what}: the namespace watch did not wake within {WAIT:?}");
    }
}

// ----------------------------------------------------------------- checks

/// `ensure_account` creates the default mailboxes with their special uses,
/// subscribes them, gives each its own UIDVALIDITY, and is idempotent.
pub async fn account_defaults<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    assert!(
        ok(store.list(ALICE).await, "list of an unknown user").is_empty(),
        "list of a user without an account must be empty"
    );
    account(store, ALICE).await;
    let mut list = ok(store.list(ALICE).await, "list");
    list.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        list.len(),
        DEFAULT_MAILBOXES.len(),
        "a new account has exactly the default mailboxes, got {list:?}"
    );
    let mut validities = Vec::new();
    for (n, special_use) in DEFAULT_MAILBOXES {
        let info = list
            .iter()
            .find(|i| i.name.as_str() == n)
            .unwrap_or_else(|| panic!("default mailbox {n} missing from {list:?}"));
        assert_eq!(info.special_use, special_use, "special use of {n}");
        let st = ok(store.status(&mbox(ALICE, n), ALICE).await, "status");
        assert_eq!(st.messages, 0, "{n} starts empty");
        assert_eq!(st.uid_next, Uid(1), "{n} starts with UIDNEXT 1");
        assert!(
            st.highest_modseq > ModSeq(0),
            "HIGHESTMODSEQ of {n} must be non-zero"
        );
        assert!(st.uid_validity.0 > 0, "UIDVALIDITY of {n} must be non-zero");
        validities.push(st.uid_validity);
    }
    let mut unique = validities.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        validities.len(),
        "each mailbox gets its own UIDVALIDITY: {validities:?}"
    );
    let mut subs = ok(store.subscriptions(ALICE).await, "subscriptions");
    subs.sort();
    for (n, _) in DEFAULT_MAILBOXES {
        assert!(
            subs.contains(&name(n)),
            "default mailbox {n} must be subscribed: {subs:?}"
        );
    }

    // Idempotent: nothing changes, nothing is duplicated.
    let inbox_status = ok(store.status(&inbox(ALICE), ALICE).await, "status");
    append(store, &inbox(ALICE), 1, &[]).await;
    account(store, ALICE).await;
    let mut again = ok(store.list(ALICE).await, "list");
    again.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        again, list,
        "a second ensure_account must not change the mailboxes"
    );
    let mut subs_again = ok(store.subscriptions(ALICE).await, "subscriptions");
    subs_again.sort();
    assert_eq!(
        subs_again, subs,
        "a second ensure_account must not change subscriptions"
    );
    let st = ok(store.status(&inbox(ALICE), ALICE).await, "status");
    assert_eq!(
        st.uid_validity, inbox_status.uid_validity,
        "ensure_account must not recreate INBOX"
    );
    assert_eq!(st.messages, 1, "ensure_account must keep INBOX's messages");
    assert!(
        ok(store.list(BOB).await, "list").is_empty(),
        "one user's account must not create another's"
    );
}

/// CREATE, DELETE, special use, subscriptions, ACLs, and the errors for
/// mailboxes that do not exist or already exist.
pub async fn namespace<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let projects = mbox(ALICE, "Projects");
    let year = mbox(ALICE, "Projects/2026");
    ok(store.create(&projects, None).await, "create Projects");
    ok(
        store.create(&year, Some(SpecialUse::Archive)).await,
        "create Projects/2026",
    );
    let list = ok(store.list(ALICE).await, "list");
    let find = |n: &str| list.iter().find(|i| i.name.as_str() == n).cloned();
    assert_eq!(
        find("Projects").map(|i| i.special_use),
        Some(None),
        "Projects listed: {list:?}"
    );
    assert_eq!(
        find("Projects/2026").map(|i| i.special_use),
        Some(Some(SpecialUse::Archive)),
        "Projects/2026 listed with \\Archive: {list:?}"
    );
    expect_err(
        store.create(&projects, None).await,
        "create an existing mailbox",
        "MailboxExists",
        |e| matches!(e, Error::MailboxExists(_)),
    );
    expect_err(
        store.create(&inbox(ALICE), None).await,
        "create INBOX again",
        "MailboxExists",
        |e| matches!(e, Error::MailboxExists(_)),
    );

    // Special use.
    ok(
        store
            .set_special_use(&projects, Some(SpecialUse::Flagged))
            .await,
        "set_special_use",
    );
    let su = |l: Vec<mailroom_core::mailbox::MailboxInfo>| {
        l.into_iter()
            .find(|i| i.name.as_str() == "Projects")
            .and_then(|i| i.special_use)
    };
    assert_eq!(
        su(ok(store.list(ALICE).await, "list")),
        Some(SpecialUse::Flagged),
        "special use set"
    );
    ok(
        store.set_special_use(&projects, None).await,
        "clear special use",
    );
    assert_eq!(
        su(ok(store.list(ALICE).await, "list")),
        None,
        "special use cleared"
    );
    expect_err(
        store
            .set_special_use(&mbox(ALICE, "Ghost"), Some(SpecialUse::Junk))
            .await,
        "set_special_use on a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );

    // Subscriptions (which may name mailboxes that do not exist).
    ok(
        store.set_subscribed(ALICE, &name("Projects"), true).await,
        "subscribe",
    );
    ok(
        store.set_subscribed(ALICE, &name("Ghost"), true).await,
        "subscribe to a missing mailbox",
    );
    let subs = ok(store.subscriptions(ALICE).await, "subscriptions");
    assert!(
        subs.contains(&name("Projects")) && subs.contains(&name("Ghost")),
        "subscribed: {subs:?}"
    );
    ok(
        store.set_subscribed(ALICE, &name("Projects"), false).await,
        "unsubscribe",
    );
    ok(
        store.set_subscribed(ALICE, &name("Projects"), false).await,
        "unsubscribe twice",
    );
    let subs = ok(store.subscriptions(ALICE).await, "subscriptions");
    assert!(!subs.contains(&name("Projects")), "unsubscribed: {subs:?}");
    assert!(
        subs.contains(&name("Ghost")),
        "other subscriptions stay: {subs:?}"
    );
    assert!(
        !ok(store.subscriptions(BOB).await, "subscriptions").contains(&name("Ghost")),
        "subscriptions are per user"
    );

    // ACL.
    assert!(
        ok(store.acl(&projects).await, "acl").entries.is_empty(),
        "a new mailbox has an empty ACL"
    );
    let lr = Rights::parse("lr");
    ok(store.set_acl(&projects, BOB, lr).await, "set_acl");
    ok(
        store.set_acl(&projects, "anyone", Rights::parse("l")).await,
        "set_acl anyone",
    );
    let acl = ok(store.acl(&projects).await, "acl");
    assert_eq!(
        acl.rights_of(BOB),
        Rights::parse("lr").unwrap_or_default(),
        "bob's rights: {acl:?}"
    );
    assert_eq!(acl.entries.len(), 2, "two entries: {acl:?}");
    ok(
        store.set_acl(&projects, BOB, Rights::parse("lrsw")).await,
        "replace rights",
    );
    let acl = ok(store.acl(&projects).await, "acl");
    assert_eq!(
        acl.entries.len(),
        2,
        "replacing rights must not add an entry: {acl:?}"
    );
    ok(store.set_acl(&projects, BOB, None).await, "remove rights");
    let acl = ok(store.acl(&projects).await, "acl");
    assert!(
        !acl.entries.iter().any(|(id, _)| id == BOB),
        "bob removed: {acl:?}"
    );
    assert!(
        ok(store.acl(&year).await, "acl").entries.is_empty(),
        "ACLs are per mailbox, not inherited by storing"
    );
    let ghost = mbox(ALICE, "Ghost");
    expect_err(
        store.acl(&ghost).await,
        "acl of a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.set_acl(&ghost, BOB, lr).await,
        "set_acl on a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.status(&ghost, ALICE).await,
        "status of a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.open(&ghost, ALICE).await,
        "open a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.append(&ghost, message(1, &[])).await,
        "append to a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.append(&mbox(CAROL, "INBOX"), message(1, &[])).await,
        "append to a user without an account",
        "NoSuchMailbox",
        no_such_mailbox,
    );

    // Delete: messages go, children stay, the name can be reused with a new UIDVALIDITY.
    append(store, &year, 1, &[]).await;
    append(store, &year, 2, &[Flag::Seen]).await;
    let before = ok(store.status(&year, ALICE).await, "status");
    let handle = open(store, &year, ALICE).await;
    ok(store.delete(&year).await, "delete Projects/2026");
    assert!(
        !ok(store.list(ALICE).await, "list")
            .iter()
            .any(|i| i.name == year.name),
        "a deleted mailbox is not listed"
    );
    expect_err(
        store.status(&year, ALICE).await,
        "status of a deleted mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.delete(&year).await,
        "delete twice",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        handle.snapshot().await,
        "snapshot through a handle on a deleted mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    expect_err(
        store.delete(&mbox(ALICE, "Never")).await,
        "delete a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    ok(store.create(&year, None).await, "re-create Projects/2026");
    let after = ok(store.status(&year, ALICE).await, "status");
    assert_ne!(
        after.uid_validity, before.uid_validity,
        "a re-created mailbox needs a new UIDVALIDITY"
    );
    assert_eq!(after.messages, 0, "a re-created mailbox is empty");
    assert_eq!(
        after.uid_next,
        Uid(1),
        "a re-created mailbox starts at UID 1"
    );
    assert!(
        ok(open(store, &year, ALICE).await.snapshot().await, "snapshot")
            .messages
            .is_empty(),
        "no message survives a delete"
    );
    ok(store.delete(&projects).await, "delete a parent");
    assert!(
        ok(store.list(ALICE).await, "list")
            .iter()
            .any(|i| i.name == year.name),
        "deleting a parent leaves its children alone"
    );
}

/// RENAME of a mailbox other than INBOX keeps UIDVALIDITY, UIDs, flags and
/// messages; renaming onto an existing name or from a missing one fails.
pub async fn rename<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let work = mbox(ALICE, "Work");
    ok(
        store.create(&work, Some(SpecialUse::Archive)).await,
        "create Work",
    );
    ok(
        store.create(&mbox(ALICE, "Archive"), None).await,
        "create Archive",
    );
    append(store, &work, 1, &[Flag::Seen]).await;
    append(store, &work, 2, &[Flag::Flagged, kw("$Label1")]).await;
    append(store, &work, 3, &[]).await;
    let handle = open(store, &work, ALICE).await;
    ok(
        handle
            .store(&[Uid(3)], &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await,
        "store",
    );
    ok(handle.expunge(None).await, "expunge");
    let before_status = ok(store.status(&work, ALICE).await, "status");
    let before = ok(handle.snapshot().await, "snapshot");

    let target = name("Archive/Work");
    ok(
        store.rename(&work, &target).await,
        "rename Work to Archive/Work",
    );
    let list = ok(store.list(ALICE).await, "list");
    assert!(
        !list.iter().any(|i| i.name == work.name),
        "old name gone: {list:?}"
    );
    let moved = list
        .iter()
        .find(|i| i.name == target)
        .unwrap_or_else(|| panic!("new name listed: {list:?}"));
    assert_eq!(
        moved.special_use,
        Some(SpecialUse::Archive),
        "special use follows a rename"
    );
    expect_err(
        store.status(&work, ALICE).await,
        "status of the old name",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    let renamed = MailboxRef::new(ALICE, target.clone());
    let after_status = ok(store.status(&renamed, ALICE).await, "status");
    assert_eq!(
        after_status.uid_validity, before_status.uid_validity,
        "RENAME keeps UIDVALIDITY"
    );
    assert_eq!(
        after_status.uid_next, before_status.uid_next,
        "RENAME keeps UIDNEXT"
    );
    assert_eq!(after_status.messages, 2, "RENAME keeps the messages");
    let after = ok(
        open(store, &renamed, ALICE).await.snapshot().await,
        "snapshot",
    );
    assert_eq!(
        after.messages, before.messages,
        "RENAME keeps UIDs, flags, modseqs and sizes"
    );
    let mailbox = open(store, &renamed, ALICE).await;
    assert_eq!(
        ok(mailbox.content(Uid(2)).await, "content"),
        body(2),
        "RENAME keeps the message bytes"
    );
    let appended = append(store, &renamed, 4, &[]).await;
    assert_eq!(
        appended.uid, before_status.uid_next,
        "UIDs continue after a rename"
    );

    ok(
        store.create(&mbox(ALICE, "Other"), None).await,
        "create Other",
    );
    expect_err(
        store.rename(&renamed, &name("Other")).await,
        "rename onto an existing mailbox",
        "MailboxExists",
        |e| matches!(e, Error::MailboxExists(_)),
    );
    expect_err(
        store.rename(&mbox(ALICE, "Ghost"), &name("Ghost2")).await,
        "rename a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    assert_eq!(
        ok(store.status(&renamed, ALICE).await, "status").messages,
        3,
        "a failed rename changes nothing"
    );
}

/// RENAME of INBOX moves every message into the new mailbox and leaves
/// INBOX in place and empty, without reusing its UIDs.
pub async fn rename_inbox<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    append(store, &ib, 1, &[Flag::Seen]).await;
    let a2 = append(store, &ib, 2, &[Flag::Flagged, kw("$Work")]).await;
    let before_status = ok(store.status(&ib, ALICE).await, "status");
    let handle = open(store, &ib, ALICE).await;
    let before = ok(handle.snapshot().await, "snapshot");
    let m0 = before.highest_modseq;

    let old = MailboxRef::new(ALICE, name("Old Inbox"));
    ok(store.rename(&ib, &old.name).await, "rename INBOX");
    let list = ok(store.list(ALICE).await, "list");
    assert!(
        list.iter().any(|i| i.name.is_inbox()),
        "INBOX still exists after RENAME INBOX"
    );
    assert!(
        list.iter().any(|i| i.name == old.name),
        "the target exists: {list:?}"
    );
    let inbox_after = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(inbox_after.messages, 0, "INBOX is empty after RENAME INBOX");
    let target = ok(
        open(store, &old, ALICE).await.snapshot().await,
        "snapshot of the target",
    );
    let key = |m: &MessageMeta| (m.guid, m.size, m.internal_date, m.flags.to_string());
    let mut want: Vec<_> = before.messages.iter().map(key).collect();
    let mut got: Vec<_> = target.messages.iter().map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "the target holds INBOX's messages with their flags and dates"
    );
    let changes = ok(
        handle.changes_since(m0).await,
        "changes_since on the open INBOX handle",
    );
    let gone: Vec<Uid> = changes.expunged.iter().map(|(u, _)| *u).collect();
    assert_eq!(
        gone,
        uids_of(&before.messages),
        "a session with INBOX open must see its messages expunged"
    );
    let fresh = append(store, &ib, 3, &[]).await;
    assert!(
        fresh.uid > a2.uid || fresh.uid_validity != before_status.uid_validity,
        "a UID of INBOX must not be reused within one UIDVALIDITY (got {} after {})",
        fresh.uid,
        a2.uid
    );
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").messages,
        1,
        "INBOX usable after the rename"
    );
}

/// APPEND assigns ascending UIDs and increasing modseqs; metadata, content
/// and summaries come back exactly.
pub async fn append_and_fetch<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    let st0 = ok(store.status(&ib, ALICE).await, "status");
    let a1 = append(store, &ib, 1, &[Flag::Seen, kw("$Label1")]).await;
    let a2 = append(store, &ib, 2, &[]).await;
    let mut m3 = message(3, &[Flag::Draft]);
    m3.internal_date = None;
    let a3 = ok(store.append(&ib, m3).await, "append without a date");
    assert_eq!(a1.uid, st0.uid_next, "the first append takes UIDNEXT");
    assert!(
        a1.uid < a2.uid && a2.uid < a3.uid,
        "UIDs ascend: {a1:?} {a2:?} {a3:?}"
    );
    assert!(
        st0.highest_modseq < a1.modseq && a1.modseq < a2.modseq && a2.modseq < a3.modseq,
        "each append takes a higher modseq: {st0:?} {a1:?} {a2:?} {a3:?}"
    );
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(
        a1.uid_validity, st.uid_validity,
        "Appended carries the mailbox's UIDVALIDITY"
    );
    assert_eq!(st.messages, 3, "STATUS MESSAGES");
    assert_eq!(st.uid_next, Uid(a3.uid.0 + 1), "STATUS UIDNEXT");
    assert_eq!(st.highest_modseq, a3.modseq, "HIGHESTMODSEQ after appends");
    assert_eq!(st.unseen, 2, "STATUS UNSEEN");
    assert_eq!(st.deleted, 0, "STATUS DELETED");
    let total: u64 = [1, 2, 3].iter().map(|&n| body(n).len() as u64).sum();
    assert_eq!(
        st.size, total,
        "STATUS SIZE is the exact sum of message sizes"
    );

    let mailbox = open(store, &ib, ALICE).await;
    let snap = ok(mailbox.snapshot().await, "snapshot");
    assert_eq!(snap.uid_validity, st.uid_validity, "snapshot UIDVALIDITY");
    assert_eq!(snap.uid_next, st.uid_next, "snapshot UIDNEXT");
    assert_eq!(
        snap.highest_modseq, st.highest_modseq,
        "snapshot HIGHESTMODSEQ"
    );
    assert_eq!(
        uids_of(&snap.messages),
        vec![a1.uid, a2.uid, a3.uid],
        "snapshot in UID order"
    );
    let expected = [
        (a1, 1, flags(&[Flag::Seen, kw("$Label1")])),
        (a2, 2, Flags::default()),
        (a3, 3, flags(&[Flag::Draft])),
    ];
    for ((a, n, f), m) in expected.iter().zip(&snap.messages) {
        assert_eq!(m.flags, *f, "flags of message {n}");
        assert_eq!(
            m.modseq, a.modseq,
            "modseq of message {n} is the one append returned"
        );
        assert_eq!(m.size, body(*n).len() as u64, "RFC822.SIZE of message {n}");
        assert_eq!(
            m.guid,
            MessageGuid::of(&body(*n)),
            "GUID of message {n} is the SHA-1 of its bytes"
        );
        assert_eq!(
            ok(mailbox.content(a.uid).await, "content"),
            body(*n),
            "content of message {n}"
        );
    }
    assert_eq!(
        snap.messages[0].internal_date,
        date(1),
        "INTERNALDATE kept with its zone"
    );
    assert_eq!(
        snap.messages[1].internal_date,
        date(2),
        "INTERNALDATE kept with its zone"
    );
    let now = InternalDate::now().timestamp;
    assert!(
        (snap.messages[2].internal_date.timestamp - now).abs() < 600,
        "an append without a date is dated now"
    );

    let sums = ok(
        mailbox.summaries(&[a3.uid, Uid(9_999), a1.uid]).await,
        "summaries",
    );
    assert_eq!(
        sums.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        vec![a3.uid, a1.uid],
        "summaries in the order asked, missing UIDs left out"
    );
    assert_eq!(
        *sums[0].1,
        MessageSummary::parse(&body(3)),
        "summary of message 3"
    );
    assert_eq!(
        *sums[1].1,
        MessageSummary::parse(&body(1)),
        "summary of message 1"
    );
    let fields = ok(
        mailbox
            .sort_fields(&[a3.uid, Uid(9_999), a2.uid, a1.uid])
            .await,
        "sort_fields",
    );
    assert_eq!(
        fields,
        vec![
            (a3.uid, SortFields::of(&MessageSummary::parse(&body(3)))),
            (a2.uid, SortFields::of(&MessageSummary::parse(&body(2)))),
            (a1.uid, SortFields::of(&MessageSummary::parse(&body(1)))),
        ],
        "sort fields those of the summaries, in the order asked, missing UIDs left out"
    );
    let want_keys: Vec<(Uid, SortKeys)> = [(a3.uid, 3), (a2.uid, 2), (a1.uid, 1)]
        .into_iter()
        .map(|(u, n)| {
            let f = SortFields::of(&MessageSummary::parse(&body(n)));
            (u, SortKeys::of(Some(&f)))
        })
        .collect();
    // Twice: a store that keeps the keys answers the second from them.
    for round in ["computed", "again"] {
        let keys = ok(
            mailbox
                .sort_keys(&[a3.uid, Uid(9_999), a2.uid, a1.uid])
                .await,
            "sort_keys",
        );
        let keys: Vec<(Uid, SortKeys)> = keys.into_iter().map(|(u, k)| (u, (*k).clone())).collect();
        assert_eq!(
            keys, want_keys,
            "sort keys ({round}) those of the sort fields, in the order asked, missing UIDs left out"
        );
    }
    // Ranks order as the strings do (twice: a store may keep them).
    for text in [SortText::Subject, SortText::From, SortText::DisplayTo] {
        for round in ["computed", "again"] {
            let ranks = ok(
                mailbox
                    .sort_ranks(&[a3.uid, Uid(9_999), a2.uid, a1.uid], text)
                    .await,
                "sort_ranks",
            );
            assert_eq!(
                uids_of_pairs(&ranks),
                uids_of_pairs(&want_keys),
                "sort ranks ({round}) in the order asked, missing UIDs left out"
            );
            for ((_, ra), (_, ka)) in ranks.iter().zip(&want_keys) {
                for ((_, rb), (_, kb)) in ranks.iter().zip(&want_keys) {
                    assert_eq!(
                        ra.cmp(rb),
                        ka.text(text).cmp(kb.text(text)),
                        "sort ranks ({round}, {text:?}) order as the strings"
                    );
                }
            }
        }
    }
    let metas = ok(
        mailbox.fetch_meta(&[a2.uid, Uid(9_999)]).await,
        "fetch_meta",
    );
    assert_eq!(
        uids_of(&metas),
        vec![a2.uid],
        "fetch_meta leaves out missing UIDs"
    );
    assert_eq!(
        metas[0], snap.messages[1],
        "fetch_meta agrees with the snapshot"
    );
    expect_err(
        mailbox.content(Uid(9_999)).await,
        "content of a missing UID",
        "NoSuchMessage",
        |e| matches!(e, Error::NoSuchMessage(_)),
    );
    let other = open(store, &ib, ALICE).await;
    assert_eq!(
        ok(other.snapshot().await, "snapshot"),
        snap,
        "two handles see the same mailbox"
    );
    assert_eq!(mailbox.reference(), &ib, "a handle knows its mailbox");
}

/// MULTIAPPEND ([`Storage::append_all`]): the messages take consecutive
/// UIDs and ascending modseqs and are all readable; over the quota limits
/// given, or into a missing mailbox, none is stored.
pub async fn append_all<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    let st0 = ok(store.status(&ib, ALICE).await, "status");
    let all = ok(
        store
            .append_all(
                &ib,
                vec![message(1, &[Flag::Seen]), message(2, &[]), message(3, &[])],
                None,
            )
            .await,
        "append_all",
    );
    assert_eq!(all.len(), 3, "one Appended per message: {all:?}");
    for (i, a) in all.iter().enumerate() {
        assert_eq!(
            a.uid,
            Uid(st0.uid_next.0 + i as u32),
            "consecutive UIDs: {all:?}"
        );
        assert_eq!(a.uid_validity, st0.uid_validity, "UIDVALIDITY: {all:?}");
    }
    assert!(
        st0.highest_modseq < all[0].modseq
            && all[0].modseq < all[1].modseq
            && all[1].modseq < all[2].modseq,
        "ascending modseqs: {st0:?} {all:?}"
    );
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(st.messages, 3, "all three stored");
    assert_eq!(st.highest_modseq, all[2].modseq, "HIGHESTMODSEQ");
    let mailbox = open(store, &ib, ALICE).await;
    for (a, n) in all.iter().zip(1..) {
        let content = ok(mailbox.content(a.uid).await, "content");
        assert_eq!(content, body(n), "the message stored as given");
    }
    assert!(
        meta(&mailbox, all[0].uid).await.flags.contains(&Flag::Seen),
        "flags kept"
    );

    let limits = QuotaLimits {
        storage_bytes: None,
        messages: Some(4),
    };
    expect_err(
        store
            .append_all(&ib, vec![message(4, &[]), message(5, &[])], Some(limits))
            .await,
        "two messages over a limit of one more",
        "OverQuota",
        |e| matches!(e, Error::OverQuota),
    );
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(st.messages, 3, "nothing of a refused append_all is stored");
    assert_eq!(st.uid_next, Uid(all[2].uid.0 + 1), "no UID taken");
    let one = ok(
        store
            .append_all(&ib, vec![message(4, &[])], Some(limits))
            .await,
        "one fits",
    );
    assert_eq!(one.len(), 1, "one Appended");
    expect_err(
        store
            .append_all(
                &mbox(ALICE, "Missing"),
                vec![message(6, &[]), message(7, &[])],
                None,
            )
            .await,
        "append_all into a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(st.messages, 4, "four in the end");
}

/// STORE with `+FLAGS`, `-FLAGS` and `FLAGS`: only real changes are
/// reported and take a new modseq; missing UIDs are ignored.
pub async fn store_flags<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    for n in 1..=3 {
        append(store, &ib, n, &[]).await;
    }
    let mb = open(store, &ib, ALICE).await;
    let h0 = highest(store, &ib).await;
    let r = ok(
        mb.store(
            &[Uid(2), Uid(1)],
            &StoreOp::Add(flags(&[Flag::Flagged])),
            None,
        )
        .await,
        "store +FLAGS",
    );
    assert!(
        r.modified.is_empty(),
        "no UNCHANGEDSINCE, nothing modified: {r:?}"
    );
    assert_eq!(
        uids_of(&r.changed),
        vec![Uid(1), Uid(2)],
        "changed records in UID order: {r:?}"
    );
    let h1 = highest(store, &ib).await;
    assert!(h1 > h0, "a flag change raises HIGHESTMODSEQ");
    for m in &r.changed {
        assert!(
            m.flags.contains(&Flag::Flagged),
            "changed record carries new flags: {m:?}"
        );
        assert!(
            m.modseq > h0 && m.modseq <= h1,
            "changed record carries its new modseq: {m:?}"
        );
        assert_eq!(
            meta(&mb, m.uid).await,
            *m,
            "the reported record is the stored one"
        );
    }
    let u3_before = meta(&mb, Uid(3)).await;

    let r = ok(
        mb.store(&[Uid(1)], &StoreOp::Add(flags(&[Flag::Flagged])), None)
            .await,
        "store again",
    );
    assert!(
        r.changed.is_empty(),
        "setting a flag that is set changes nothing: {r:?}"
    );
    assert_eq!(
        highest(store, &ib).await,
        h1,
        "a no-op STORE must not raise HIGHESTMODSEQ"
    );
    let r = ok(
        mb.store(&[Uid(3)], &StoreOp::Remove(flags(&[Flag::Seen])), None)
            .await,
        "store -FLAGS no-op",
    );
    assert!(
        r.changed.is_empty(),
        "clearing a clear flag changes nothing: {r:?}"
    );
    assert_eq!(
        meta(&mb, Uid(3)).await,
        u3_before,
        "an unchanged message keeps its modseq"
    );

    let r = ok(
        mb.store(&[Uid(2)], &StoreOp::Remove(flags(&[Flag::Flagged])), None)
            .await,
        "store -FLAGS",
    );
    assert_eq!(
        uids_of(&r.changed),
        vec![Uid(2)],
        "-FLAGS changed UID 2: {r:?}"
    );
    assert!(
        r.changed[0].flags.is_empty(),
        "UID 2 has no flags left: {r:?}"
    );
    let replace = flags(&[Flag::Answered, kw("$Forwarded")]);
    let r = ok(
        mb.store(&[Uid(3)], &StoreOp::Replace(replace.clone()), None)
            .await,
        "store FLAGS",
    );
    assert_eq!(r.changed.len(), 1, "FLAGS changed UID 3: {r:?}");
    assert_eq!(
        meta(&mb, Uid(3)).await.flags,
        replace,
        "FLAGS replaces all flags"
    );
    let r = ok(
        mb.store(&[Uid(3)], &StoreOp::Replace(replace), None).await,
        "same FLAGS again",
    );
    assert!(
        r.changed.is_empty(),
        "replacing flags with the same flags changes nothing: {r:?}"
    );
    let r = ok(
        mb.store(
            &[Uid(1)],
            &StoreOp::Add(flags(&[Flag::Seen, Flag::Deleted])),
            None,
        )
        .await,
        "store",
    );
    assert_eq!(
        meta(&mb, Uid(1)).await.flags,
        flags(&[Flag::Seen, Flag::Deleted, Flag::Flagged]),
        "+FLAGS keeps flags already set: {r:?}"
    );
    let h = highest(store, &ib).await;
    let r = ok(
        mb.store(&[Uid(9_999)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await,
        "store a missing UID",
    );
    assert!(
        r.changed.is_empty() && r.modified.is_empty(),
        "missing UIDs are ignored: {r:?}"
    );
    assert_eq!(
        highest(store, &ib).await,
        h,
        "storing to a missing UID changes nothing"
    );
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(
        (st.unseen, st.deleted),
        (2, 1),
        "STATUS UNSEEN and DELETED follow flags"
    );
    check_highest_is_max(&mb, "after STOREs").await;
}

/// STORE ... UNCHANGEDSINCE (RFC 7162 §3.1.3): messages changed after the
/// given modseq are left alone and reported as modified.
pub async fn unchanged_since<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    for n in 1..=4 {
        append(store, &ib, n, &[]).await;
    }
    let mb = open(store, &ib, ALICE).await;
    let seen = StoreOp::Add(flags(&[Flag::Seen]));
    ok(mb.store(&[Uid(1)], &seen, None).await, "store");
    let a = meta(&mb, Uid(1)).await.modseq;
    ok(
        mb.store(&[Uid(2)], &StoreOp::Add(flags(&[Flag::Flagged])), None)
            .await,
        "store",
    );
    ok(
        mb.store(&[Uid(3)], &StoreOp::Add(flags(&[Flag::Answered])), None)
            .await,
        "store",
    );
    let u2 = meta(&mb, Uid(2)).await;
    let u3 = meta(&mb, Uid(3)).await;
    assert!(
        a < u2.modseq && u2.modseq < u3.modseq,
        "each STORE takes a higher modseq"
    );

    let draft = StoreOp::Add(flags(&[Flag::Draft]));
    let r = ok(
        mb.store(&[Uid(1), Uid(2), Uid(3)], &draft, Some(a)).await,
        "store UNCHANGEDSINCE",
    );
    assert_eq!(
        uids_of(&r.changed),
        vec![Uid(1)],
        "only UID 1 is unchanged since {a}: {r:?}"
    );
    assert_eq!(
        r.modified,
        vec![Uid(2), Uid(3)],
        "UIDs 2 and 3 changed after {a}: {r:?}"
    );
    assert_eq!(
        meta(&mb, Uid(2)).await,
        u2,
        "a modified message is left alone"
    );
    assert_eq!(
        meta(&mb, Uid(3)).await,
        u3,
        "a modified message is left alone"
    );
    assert!(
        meta(&mb, Uid(1)).await.flags.contains(&Flag::Draft),
        "UID 1 got \\Draft"
    );

    let h = highest(store, &ib).await;
    let r = ok(
        mb.store(&[Uid(4)], &draft, Some(ModSeq(0))).await,
        "UNCHANGEDSINCE 0",
    );
    assert!(
        r.changed.is_empty() && r.modified == vec![Uid(4)],
        "UNCHANGEDSINCE 0 fails every message: {r:?}"
    );
    assert_eq!(
        highest(store, &ib).await,
        h,
        "a refused STORE changes nothing"
    );

    let r = ok(
        mb.store(&[Uid(1), Uid(2), Uid(3), Uid(4)], &draft, Some(h))
            .await,
        "UNCHANGEDSINCE highest",
    );
    assert!(
        r.modified.is_empty(),
        "nothing changed after HIGHESTMODSEQ: {r:?}"
    );
    assert_eq!(
        uids_of(&r.changed),
        vec![Uid(2), Uid(3), Uid(4)],
        "UID 1 had \\Draft already: {r:?}"
    );

    let h = highest(store, &ib).await;
    let r = ok(
        mb.store(&[Uid(1)], &draft, Some(h)).await,
        "no-op with UNCHANGEDSINCE",
    );
    assert!(
        r.changed.is_empty() && r.modified.is_empty(),
        "a no-op passes the test silently: {r:?}"
    );
    check_highest_is_max(&mb, "after UNCHANGEDSINCE").await;
}

/// HIGHESTMODSEQ rises with every change and only then, and always equals
/// the largest modseq of any message or remembered expunge.
pub async fn modseq_monotonic<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    let sent = mbox(ALICE, "Sent");
    let mb = open(store, &ib, ALICE).await;
    let mut seen = vec![highest(store, &ib).await];
    macro_rules! step {
        ($what:expr, $changed:expr) => {{
            let now = highest(store, &ib).await;
            let last = seen[seen.len() - 1];
            if $changed {
                assert!(
                    now > last,
                    "{} must raise HIGHESTMODSEQ ({last} -> {now})",
                    $what
                );
            } else {
                assert_eq!(now, last, "{} must not change HIGHESTMODSEQ", $what);
            }
            seen.push(now);
        }};
    }
    append(store, &ib, 1, &[]).await;
    step!("append", true);
    append(store, &ib, 2, &[]).await;
    step!("append", true);
    ok(
        mb.store(&[Uid(1)], &StoreOp::Add(flags(&[kw("$A")])), None)
            .await,
        "store",
    );
    step!("store", true);
    ok(
        mb.store(&[Uid(1)], &StoreOp::Add(flags(&[kw("$A")])), None)
            .await,
        "store",
    );
    step!("no-op store", false);
    assert!(
        ok(mb.expunge(None).await, "expunge").is_empty(),
        "nothing is \\Deleted"
    );
    step!("no-op expunge", false);
    ok(mb.claim_recent().await, "claim_recent");
    seen.push(highest(store, &ib).await);
    ok(
        mb.store(&[Uid(2)], &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await,
        "store",
    );
    step!("store \\Deleted", true);
    assert_eq!(
        ok(mb.expunge(None).await, "expunge"),
        vec![Uid(2)],
        "expunge UID 2"
    );
    step!("expunge", true);
    check_highest_is_max(&mb, "after an expunge of the newest message").await;
    let sent_before = highest(store, &sent).await;
    ok(mb.copy_to(&[Uid(1)], &sent).await, "copy");
    step!("copy out (source unchanged)", false);
    assert!(
        highest(store, &sent).await > sent_before,
        "a copy in raises the destination's HIGHESTMODSEQ"
    );
    ok(mb.move_to(&[Uid(1)], &sent).await, "move");
    step!("move out", true);
    check_highest_is_max(&mb, "after a move").await;
    let sent_box = open(store, &sent, ALICE).await;
    check_highest_is_max(&sent_box, "destination after copy and move").await;
    let snap = ok(sent_box.snapshot().await, "snapshot");
    for w in snap.messages.windows(2) {
        assert!(w[0].uid < w[1].uid, "snapshot in ascending UID order");
    }
}

/// `changes_since` reports exactly the new and changed records and the
/// expunges after the given modseq.
pub async fn changes_since<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    for n in 1..=4 {
        append(store, &ib, n, &[]).await;
    }
    let mb = open(store, &ib, ALICE).await;
    let m0 = highest(store, &ib).await;
    let c = ok(mb.changes_since(m0).await, "changes_since(HIGHESTMODSEQ)");
    assert!(
        c.changed.is_empty() && c.expunged.is_empty(),
        "nothing after HIGHESTMODSEQ: {c:?}"
    );
    assert_eq!(c.highest_modseq, m0, "changes_since reports HIGHESTMODSEQ");

    ok(
        mb.store(&[Uid(2)], &StoreOp::Add(flags(&[Flag::Flagged])), None)
            .await,
        "store",
    );
    let m1 = highest(store, &ib).await;
    ok(
        mb.store(&[Uid(3)], &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await,
        "store",
    );
    assert_eq!(
        ok(mb.expunge(None).await, "expunge"),
        vec![Uid(3)],
        "expunge UID 3"
    );
    let m2 = highest(store, &ib).await;
    let a5 = append(store, &ib, 5, &[]).await;

    let c = ok(mb.changes_since(m0).await, "changes_since");
    assert_eq!(
        uids_of(&c.changed),
        vec![Uid(2), a5.uid],
        "changed and new records, UID order: {c:?}"
    );
    for m in &c.changed {
        assert_eq!(*m, meta(&mb, m.uid).await, "changes carry current records");
    }
    assert_eq!(c.expunged.len(), 1, "one expunge: {c:?}");
    let (uid, modseq) = c.expunged[0];
    assert_eq!(uid, Uid(3), "the expunged UID");
    assert!(
        modseq > m1 && modseq <= m2,
        "the expunge's modseq lies between the surrounding changes: {c:?}"
    );
    assert!(
        c.expunged_complete,
        "a never-repacked mailbox remembers every expunge"
    );
    assert_eq!(c.highest_modseq, a5.modseq, "HIGHESTMODSEQ in changes");

    let c = ok(mb.changes_since(m1).await, "changes_since(m1)");
    assert_eq!(
        uids_of(&c.changed),
        vec![a5.uid],
        "UID 2 changed at m1, not after: {c:?}"
    );
    assert_eq!(
        c.expunged,
        vec![(Uid(3), modseq)],
        "the expunge is after m1"
    );
    let c = ok(mb.changes_since(m2).await, "changes_since(m2)");
    assert!(
        c.expunged.is_empty(),
        "the expunge is not after its own modseq: {c:?}"
    );
    assert_eq!(
        uids_of(&c.changed),
        vec![a5.uid],
        "only the append after m2: {c:?}"
    );
    let c = ok(mb.changes_since(ModSeq(0)).await, "changes_since(0)");
    assert_eq!(
        uids_of(&c.changed),
        vec![Uid(1), Uid(2), Uid(4), a5.uid],
        "every present message changed after 0: {c:?}"
    );
    assert_eq!(c.expunged, vec![(Uid(3), modseq)], "every expunge after 0");

    ok(
        mb.store(
            &[Uid(1), Uid(4)],
            &StoreOp::Add(flags(&[Flag::Deleted])),
            None,
        )
        .await,
        "store",
    );
    let m3 = highest(store, &ib).await;
    ok(mb.expunge(None).await, "expunge");
    let c = ok(mb.changes_since(m3).await, "changes_since");
    assert_eq!(
        c.expunged.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        vec![Uid(1), Uid(4)],
        "expunged UIDs in ascending order: {c:?}"
    );
    assert!(
        c.changed.is_empty(),
        "expunged messages are not changed records: {c:?}"
    );
    let c = ok(mb.changes_since(ModSeq(0)).await, "changes_since(0)");
    let gone: Vec<Uid> = c.expunged.iter().map(|(u, _)| *u).collect();
    assert_eq!(
        gone,
        vec![Uid(1), Uid(3), Uid(4)],
        "all expunges, ascending UID: {c:?}"
    );
}

/// EXPUNGE removes only `\Deleted` messages, only among the given UIDs if
/// any, and never reuses their UIDs.
pub async fn expunge<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    for n in 1..=5 {
        append(store, &ib, n, &[]).await;
    }
    let mb = open(store, &ib, ALICE).await;
    let del = StoreOp::Add(flags(&[Flag::Deleted]));
    ok(
        mb.store(&[Uid(1), Uid(2), Uid(4)], &del, None).await,
        "store \\Deleted",
    );
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").deleted,
        3,
        "STATUS DELETED"
    );
    let m0 = highest(store, &ib).await;
    let all: Vec<Uid> = (1..=5).map(Uid).collect();
    assert_eq!(
        ok(mb.sort_keys(&all).await, "sort_keys").len(),
        5,
        "sort keys of every message"
    );
    let gone = ok(
        mb.expunge(Some(&[Uid(5), Uid(4), Uid(3), Uid(2)])).await,
        "UID EXPUNGE",
    );
    let keyed: Vec<Uid> = ok(mb.sort_keys(&all).await, "sort_keys")
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(
        keyed,
        vec![Uid(1), Uid(3), Uid(5)],
        "no sort keys for expunged messages (even once computed)"
    );
    assert_eq!(
        gone,
        vec![Uid(2), Uid(4)],
        "UID EXPUNGE removes the \\Deleted among the UIDs, ascending"
    );
    let snap = ok(mb.snapshot().await, "snapshot");
    assert_eq!(
        uids_of(&snap.messages),
        vec![Uid(1), Uid(3), Uid(5)],
        "remaining messages"
    );
    assert_eq!(
        ok(mb.expunge(None).await, "expunge"),
        vec![Uid(1)],
        "EXPUNGE removes the rest"
    );
    let h = highest(store, &ib).await;
    assert!(
        ok(mb.expunge(None).await, "expunge").is_empty(),
        "nothing left to expunge"
    );
    assert_eq!(
        highest(store, &ib).await,
        h,
        "an empty expunge changes nothing"
    );
    let c = ok(mb.changes_since(m0).await, "changes_since");
    let remembered: Vec<Uid> = c.expunged.iter().map(|(u, _)| *u).collect();
    assert_eq!(
        remembered,
        vec![Uid(1), Uid(2), Uid(4)],
        "expunges are remembered"
    );
    assert!(
        ok(mb.fetch_meta(&[Uid(1), Uid(2)]).await, "fetch_meta").is_empty(),
        "expunged: no metadata"
    );
    expect_err(
        mb.content(Uid(2)).await,
        "content of an expunged UID",
        "NoSuchMessage",
        |e| matches!(e, Error::NoSuchMessage(_)),
    );
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!((st.messages, st.deleted), (2, 0), "STATUS after expunge");
    assert_eq!(
        st.size,
        body(3).len() as u64 + body(5).len() as u64,
        "STATUS SIZE after expunge"
    );
    let a = append(store, &ib, 6, &[]).await;
    assert_eq!(a.uid, Uid(6), "UIDs are never reused after an expunge");
}

/// `\Seen` is per user on a shared mailbox; other flags are shared.
pub async fn per_user_seen<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    account(store, BOB).await;
    let ib = inbox(ALICE);
    append(store, &ib, 1, &[Flag::Seen]).await;
    append(store, &ib, 2, &[]).await;
    let alice = open(store, &ib, ALICE).await;
    let bob = open(store, &ib, BOB).await;
    let seen_by = |metas: &[MessageMeta]| -> Vec<bool> {
        metas
            .iter()
            .map(|m| m.flags.contains(&Flag::Seen))
            .collect()
    };
    assert_eq!(
        seen_by(&ok(alice.snapshot().await, "snapshot").messages),
        vec![true, false],
        "alice's view"
    );
    assert_eq!(
        seen_by(&ok(bob.snapshot().await, "snapshot").messages),
        vec![false, false],
        "bob's view"
    );
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").unseen,
        1,
        "alice's UNSEEN"
    );
    assert_eq!(
        ok(store.status(&ib, BOB).await, "status").unseen,
        2,
        "bob's UNSEEN"
    );

    let before = meta(&alice, Uid(2)).await.modseq;
    let r = ok(
        bob.store(&[Uid(2)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await,
        "bob +\\Seen",
    );
    assert_eq!(
        uids_of(&r.changed),
        vec![Uid(2)],
        "bob's \\Seen changed: {r:?}"
    );
    assert!(
        r.changed[0].flags.contains(&Flag::Seen),
        "reported as bob sees it: {r:?}"
    );
    assert!(
        r.changed[0].modseq > before,
        "bob's \\Seen change takes a new modseq: {r:?}"
    );
    let a2 = meta(&alice, Uid(2)).await;
    assert!(
        !a2.flags.contains(&Flag::Seen),
        "bob's \\Seen is not alice's"
    );
    assert_eq!(
        a2.modseq, r.changed[0].modseq,
        "one modseq per message for every viewer"
    );
    assert!(
        meta(&bob, Uid(2)).await.flags.contains(&Flag::Seen),
        "bob sees his \\Seen"
    );
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").unseen,
        1,
        "alice's UNSEEN unchanged"
    );
    assert_eq!(
        ok(store.status(&ib, BOB).await, "status").unseen,
        1,
        "bob's UNSEEN"
    );
    assert_eq!(
        ok(store.status(&ib, CAROL).await, "status").unseen,
        2,
        "carol has seen nothing"
    );
    let c = ok(bob.changes_since(before).await, "changes_since");
    assert_eq!(
        seen_by(&c.changed),
        vec![true],
        "changes are reported as the viewer sees them"
    );
    let c = ok(alice.changes_since(before).await, "changes_since");
    assert_eq!(
        seen_by(&c.changed),
        vec![false],
        "changes are reported as the viewer sees them"
    );

    ok(
        bob.store(&[Uid(1)], &StoreOp::Add(flags(&[Flag::Flagged])), None)
            .await,
        "bob +\\Flagged",
    );
    let a1 = meta(&alice, Uid(1)).await;
    assert_eq!(
        a1.flags,
        flags(&[Flag::Seen, Flag::Flagged]),
        "other flags are shared; alice's \\Seen stays"
    );
    assert_eq!(
        meta(&bob, Uid(1)).await.flags,
        flags(&[Flag::Flagged]),
        "bob sees the shared flag, not alice's \\Seen"
    );
    ok(
        bob.store(&[Uid(1)], &StoreOp::Replace(flags(&[Flag::Answered])), None)
            .await,
        "bob FLAGS",
    );
    assert_eq!(
        meta(&bob, Uid(1)).await.flags,
        flags(&[Flag::Answered]),
        "bob's FLAGS"
    );
    assert_eq!(
        meta(&alice, Uid(1)).await.flags,
        flags(&[Flag::Seen, Flag::Answered]),
        "bob's FLAGS replaces shared flags but not alice's \\Seen"
    );
    let r = ok(
        bob.store(&[Uid(1)], &StoreOp::Remove(flags(&[Flag::Seen])), None)
            .await,
        "bob -\\Seen no-op",
    );
    assert!(
        r.changed.is_empty(),
        "bob has not seen UID 1, so -\\Seen changes nothing for him: {r:?}"
    );

    ok(
        alice
            .store(&[Uid(2)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await,
        "alice +\\Seen",
    );
    ok(
        bob.store(&[Uid(2)], &StoreOp::Remove(flags(&[Flag::Seen])), None)
            .await,
        "bob -\\Seen",
    );
    assert!(
        meta(&alice, Uid(2)).await.flags.contains(&Flag::Seen),
        "bob's -\\Seen leaves alice's"
    );
    assert!(
        !meta(&bob, Uid(2)).await.flags.contains(&Flag::Seen),
        "bob's -\\Seen"
    );
    let bob_again = open(store, &ib, BOB).await;
    ok(
        bob.store(&[Uid(1)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await,
        "bob +\\Seen",
    );
    assert!(
        meta(&bob_again, Uid(1)).await.flags.contains(&Flag::Seen),
        "a viewer's \\Seen persists across handles"
    );
}

/// COPY and MOVE: new UIDs in source order, flags (as the copier sees them)
/// and dates kept, the UID mapping, MOVE's expunge, missing destinations.
pub async fn copy_and_move<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    let dest = mbox(ALICE, "Dest");
    append(store, &ib, 1, &[Flag::Seen]).await;
    append(store, &ib, 2, &[Flag::Flagged, kw("$Work")]).await;
    append(store, &ib, 3, &[]).await;
    ok(store.create(&dest, None).await, "create Dest");
    append(store, &dest, 10, &[]).await;
    let d0 = ok(store.status(&dest, ALICE).await, "status");
    let src = open(store, &ib, ALICE).await;
    let src_before = ok(src.snapshot().await, "snapshot");

    let r = ok(
        src.copy_to(&[Uid(3), Uid(9_999), Uid(1)], &dest).await,
        "copy",
    );
    assert_eq!(
        r.uid_validity, d0.uid_validity,
        "COPYUID carries the destination's UIDVALIDITY"
    );
    assert_eq!(r.mapping.len(), 2, "missing UIDs are skipped: {r:?}");
    assert_eq!(
        (r.mapping[0].0, r.mapping[1].0),
        (Uid(1), Uid(3)),
        "mapping in source UID order: {r:?}"
    );
    assert!(
        r.mapping[0].1 >= d0.uid_next,
        "new UIDs start at the destination's UIDNEXT: {r:?}"
    );
    assert!(
        r.mapping[0].1 < r.mapping[1].1,
        "new UIDs ascend with source UIDs: {r:?}"
    );
    let dst = open(store, &dest, ALICE).await;
    for (from, to) in &r.mapping {
        let s = meta(&src, *from).await;
        let d = meta(&dst, *to).await;
        assert_eq!(d.flags, s.flags, "COPY keeps flags ({from} -> {to})");
        assert_eq!(d.internal_date, s.internal_date, "COPY keeps INTERNALDATE");
        assert_eq!((d.size, d.guid), (s.size, s.guid), "COPY keeps the message");
        assert!(
            d.modseq > d0.highest_modseq,
            "copies take new modseqs in the destination"
        );
        assert_eq!(
            ok(dst.content(*to).await, "content"),
            ok(src.content(*from).await, "content"),
            "COPY keeps the bytes"
        );
    }
    assert_eq!(
        ok(src.snapshot().await, "snapshot"),
        src_before,
        "COPY leaves the source alone"
    );
    expect_err(
        src.copy_to(&[Uid(1)], &mbox(ALICE, "Ghost")).await,
        "copy to a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );

    let m0 = src_before.highest_modseq;
    let r = ok(src.move_to(&[Uid(2)], &dest).await, "move");
    assert_eq!(r.mapping.len(), 1, "one message moved: {r:?}");
    let (from, to) = r.mapping[0];
    assert_eq!(from, Uid(2), "mapping source");
    let d = meta(&dst, to).await;
    assert_eq!(
        d.flags,
        flags(&[Flag::Flagged, kw("$Work")]),
        "MOVE keeps flags"
    );
    assert_eq!(d.internal_date, date(2), "MOVE keeps INTERNALDATE");
    assert_eq!(
        uids_of(&ok(src.snapshot().await, "snapshot").messages),
        vec![Uid(1), Uid(3)],
        "MOVE removes from the source"
    );
    let c = ok(src.changes_since(m0).await, "changes_since");
    assert_eq!(
        c.expunged.len(),
        1,
        "MOVE is remembered as an expunge: {c:?}"
    );
    assert_eq!(c.expunged[0].0, Uid(2), "the moved UID is expunged");
    assert!(c.expunged[0].1 > m0, "with a new modseq");
    expect_err(
        src.move_to(&[Uid(1)], &mbox(ALICE, "Ghost")).await,
        "move to a missing mailbox",
        "NoSuchMailbox",
        no_such_mailbox,
    );
    assert_eq!(
        ok(src.snapshot().await, "snapshot").messages.len(),
        2,
        "a failed MOVE changes nothing"
    );
    let st = ok(store.status(&dest, ALICE).await, "status");
    assert_eq!(
        st.messages, 4,
        "Dest holds its message, two copies and one moved"
    );

    // Copy into the same mailbox gives new UIDs there.
    let r = ok(
        src.copy_to(&[Uid(1)], &ib).await,
        "copy into the same mailbox",
    );
    assert_eq!(r.mapping.len(), 1, "copied: {r:?}");
    assert!(r.mapping[0].1 > Uid(3), "a new UID: {r:?}");
    assert_eq!(
        meta(&src, r.mapping[0].1).await.flags,
        flags(&[Flag::Seen]),
        "flags copied"
    );

    // A viewer copies the flags they see: bob's \Seen, not alice's.
    account(store, BOB).await;
    let bob_view = open(store, &ib, BOB).await;
    ok(
        bob_view
            .store(&[Uid(3)], &StoreOp::Add(flags(&[Flag::Seen])), None)
            .await,
        "bob +\\Seen",
    );
    let r = ok(
        bob_view.copy_to(&[Uid(1), Uid(3)], &inbox(BOB)).await,
        "bob copies to his INBOX",
    );
    let bob_inbox = open(store, &inbox(BOB), BOB).await;
    let seen: Vec<bool> = ok(
        bob_inbox
            .fetch_meta(&[r.mapping[0].1, r.mapping[1].1])
            .await,
        "fetch_meta",
    )
    .iter()
    .map(|m| m.flags.contains(&Flag::Seen))
    .collect();
    assert_eq!(
        seen,
        vec![false, true],
        "COPY carries \\Seen as the copying user sees it"
    );

    // MOVE into the same mailbox (RFC 6851 allows it): the message gets a
    // new UID above every other and the old one is expunged.
    let before = ok(src.snapshot().await, "snapshot");
    let old = before
        .messages
        .iter()
        .find(|m| m.uid == Uid(3))
        .cloned()
        .unwrap_or_else(|| panic!("UID 3 is in INBOX: {before:?}"));
    let top = before
        .messages
        .iter()
        .map(|m| m.uid)
        .max()
        .unwrap_or(Uid(0));
    let r = ok(
        src.move_to(&[Uid(3)], &ib).await,
        "move into the same mailbox",
    );
    assert_eq!(r.mapping.len(), 1, "moved: {r:?}");
    let (from, to) = r.mapping[0];
    assert_eq!(from, Uid(3), "mapping source");
    assert!(to > top, "a new UID above every other: {r:?}");
    assert_eq!(r.uid_validity, before.uid_validity, "same UIDVALIDITY");
    let after = ok(src.snapshot().await, "snapshot");
    let mut expected: Vec<Uid> = uids_of(&before.messages)
        .into_iter()
        .filter(|u| *u != Uid(3))
        .collect();
    expected.push(to);
    assert_eq!(
        uids_of(&after.messages),
        expected,
        "the old UID is gone, the new one is there"
    );
    let moved = meta(&src, to).await;
    assert_eq!(moved.flags, old.flags, "MOVE keeps flags");
    assert_eq!(moved.guid, old.guid, "the same message");
    let c = ok(
        src.changes_since(before.highest_modseq).await,
        "changes_since",
    );
    assert_eq!(
        c.expunged.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        vec![Uid(3)],
        "the old UID is an expunge: {c:?}"
    );
    assert!(
        c.changed.iter().any(|m| m.uid == to),
        "the new UID is a change: {c:?}"
    );
}

/// `\Recent`: the first claim gets the new messages, later claims do not;
/// STATUS RECENT counts the unclaimed ones.
pub async fn recent<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    let a1 = append(store, &ib, 1, &[]).await;
    let a2 = append(store, &ib, 2, &[]).await;
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").recent,
        2,
        "unclaimed messages are recent"
    );
    let first = open(store, &ib, ALICE).await;
    let from = ok(first.claim_recent().await, "claim_recent");
    assert!(
        from <= a1.uid,
        "the first claim gets every message as recent (got {from})"
    );
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").recent,
        0,
        "claimed messages are no longer recent"
    );
    let second = open(store, &ib, ALICE).await;
    let from2 = ok(second.claim_recent().await, "claim_recent");
    assert!(
        from2 > a2.uid,
        "a later claim gets nothing already claimed (got {from2})"
    );
    let a3 = append(store, &ib, 3, &[]).await;
    assert_eq!(
        ok(store.status(&ib, ALICE).await, "status").recent,
        1,
        "a new message is recent"
    );
    let from3 = ok(second.claim_recent().await, "claim_recent");
    assert!(
        from3 > a2.uid && from3 <= a3.uid,
        "the new message is recent for this claim (got {from3})"
    );
    let from4 = ok(first.claim_recent().await, "claim_recent");
    assert!(from4 > a3.uid, "and for no other (got {from4})");
    let sent = mbox(ALICE, "Sent");
    let sent_box = open(store, &sent, ALICE).await;
    ok(sent_box.claim_recent().await, "claim_recent");
    ok(first.copy_to(&[a1.uid], &sent).await, "copy");
    assert_eq!(
        ok(store.status(&sent, ALICE).await, "status").recent,
        1,
        "a copy is recent in its destination"
    );
}

/// Quota usage is exact (bytes and messages over all the user's mailboxes)
/// and limits are enforced by `check`.
pub async fn quota<S: Storage + Quota + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    account(store, BOB).await;
    let root = store.root_of(ALICE);
    let usage = |u: mailroom_core::quota::QuotaUsage| (u.storage_bytes, u.messages);
    let u0 = ok(store.usage(&root).await, "usage");
    assert_eq!(usage(u0.clone()), (0, 0), "a new account uses nothing");
    assert_eq!(u0.limits, QuotaLimits::default(), "unlimited by default");
    assert_eq!(u0.root, root, "usage names its root");
    let size = |n: u32| body(n).len() as u64;
    let ib = inbox(ALICE);
    let sent = mbox(ALICE, "Sent");
    let trash = mbox(ALICE, "Trash");
    append(store, &ib, 1, &[]).await;
    append(store, &ib, 2, &[]).await;
    append(store, &sent, 3, &[]).await;
    let mut want = (size(1) + size(2) + size(3), 3);
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "usage counts every mailbox"
    );
    let mb = open(store, &ib, ALICE).await;
    ok(mb.copy_to(&[Uid(1)], &trash).await, "copy");
    want = (want.0 + size(1), 4);
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "a copy adds"
    );
    ok(mb.move_to(&[Uid(2)], &trash).await, "move");
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "a move within the user changes nothing"
    );
    ok(
        mb.store(&[Uid(1)], &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await,
        "store",
    );
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "\\Deleted alone frees nothing"
    );
    ok(mb.expunge(None).await, "expunge");
    want = (want.0 - size(1), 3);
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "an expunge frees"
    );
    let tmp = mbox(ALICE, "Tmp");
    ok(store.create(&tmp, None).await, "create");
    append(store, &tmp, 4, &[]).await;
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        (want.0 + size(4), 4),
        "usage of a new mailbox"
    );
    ok(store.delete(&tmp).await, "delete");
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "a delete frees"
    );
    ok(store.rename(&ib, &name("Moved")).await, "rename INBOX");
    assert_eq!(
        usage(ok(store.usage(&root).await, "usage")),
        want,
        "RENAME INBOX neither adds nor frees"
    );
    let bob_root = store.root_of(BOB);
    assert_ne!(bob_root, root, "each user has their own root");
    assert_eq!(
        usage(ok(store.usage(&bob_root).await, "usage")),
        (0, 0),
        "bob uses nothing"
    );

    let limits = QuotaLimits {
        storage_bytes: Some(want.0 + 10),
        messages: None,
    };
    ok(store.set_limits(&root, limits).await, "set_limits");
    let u = ok(store.usage(&root).await, "usage");
    assert_eq!(u.limits, limits, "limits are kept");
    ok(
        store.check(ALICE, 10, 1).await,
        "exactly at the limit is allowed",
    );
    expect_err(
        store.check(ALICE, 11, 1).await,
        "one byte over",
        "OverQuota",
        |e| matches!(e, Error::OverQuota),
    );
    ok(store.check(BOB, 1_000_000, 1).await, "limits are per root");
    ok(
        store
            .set_limits(
                &root,
                QuotaLimits {
                    storage_bytes: None,
                    messages: Some(want.1),
                },
            )
            .await,
        "set_limits",
    );
    expect_err(
        store.check(ALICE, 0, 1).await,
        "one message over",
        "OverQuota",
        |e| matches!(e, Error::OverQuota),
    );
    ok(
        store.set_limits(&root, QuotaLimits::default()).await,
        "clear limits",
    );
    ok(
        store.check(ALICE, u64::MAX / 2, 1_000_000).await,
        "unlimited again",
    );
}

/// [`Storage::watch_namespace`] wakes after CREATE, RENAME, DELETE, a
/// special-use change, SUBSCRIBE and UNSUBSCRIBE of the user's mailboxes,
/// including a change made before the wait began, and every watch on the
/// user wakes (NOTIFY's MailboxName and SubscriptionChange wait on it).
/// A store whose watch is complete
/// ([`Storage::namespace_watch_is_complete`]) has woken it before the
/// change returns.
pub async fn namespace_watch<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let mut w = store.watch_namespace(ALICE);
    let mut w2 = store.watch_namespace(ALICE);
    let work = mbox(ALICE, "Work");
    ok(store.create(&work, None).await, "create Work");
    if store.namespace_watch_is_complete() {
        assert!(
            w.has_changed() && w2.has_changed(),
            "a complete namespace watch has fired by the time CREATE returns"
        );
    }
    wait_namespace(&mut w, "after CREATE").await;
    wait_namespace(&mut w2, "a second watch, after CREATE").await;
    let play = MailboxName::new("Play").unwrap_or_else(|e| panic!("name: {e}"));
    ok(store.rename(&work, &play).await, "rename Work to Play");
    wait_namespace(&mut w, "after RENAME").await;
    let play = mbox(ALICE, "Play");
    ok(
        store
            .set_special_use(&play, Some(SpecialUse::Archive))
            .await,
        "set_special_use",
    );
    wait_namespace(&mut w, "after a special-use change").await;
    ok(
        store.set_subscribed(ALICE, &play.name, true).await,
        "subscribe",
    );
    wait_namespace(&mut w, "after SUBSCRIBE").await;
    ok(
        store.set_subscribed(ALICE, &play.name, false).await,
        "unsubscribe",
    );
    wait_namespace(&mut w, "after UNSUBSCRIBE").await;
    ok(store.delete(&play).await, "delete Play");
    wait_namespace(&mut w, "after DELETE").await;
    // A change made before anyone waits is not lost.
    let mut late = store.watch_namespace(ALICE);
    ok(
        store.create(&mbox(ALICE, "Late"), None).await,
        "create Late",
    );
    wait_namespace(&mut late, "a change made before the wait").await;
    // A user whose account the first change creates.
    let mut carol = store.watch_namespace(CAROL);
    ok(
        store.create(&mbox(CAROL, "First"), None).await,
        "create in a new account",
    );
    wait_namespace(&mut carol, "the first mailbox of an account").await;
}

/// [`Storage::poll_changes`]: no handles is no work; after it, the watch of
/// every handle given (two of one mailbox, another owner's mailbox) is at
/// its mailbox's HIGHESTMODSEQ, changes made before the call included; a
/// mailbox deleted since it was opened is skipped without failing the call.
pub async fn poll_changes<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    account(store, BOB).await;
    ok(store.poll_changes(&[]).await, "poll_changes of no mailbox");
    let tmp = mbox(ALICE, "Tmp");
    ok(store.create(&tmp, None).await, "create Tmp");
    let polled = [inbox(ALICE), inbox(ALICE), mbox(ALICE, "Sent"), inbox(BOB)];
    let mut handles = Vec::new();
    for r in &polled {
        handles.push(open(store, r, ALICE).await);
    }
    handles.push(open(store, &tmp, ALICE).await);
    for (n, r) in (1..).zip(&polled[1..]) {
        append(store, r, n, &[]).await;
    }
    ok(store.delete(&tmp).await, "delete Tmp");
    ok(
        store.poll_changes(&handles).await,
        "poll_changes with a deleted mailbox among the handles",
    );
    for (h, r) in handles.iter().zip(&polled) {
        assert_eq!(
            h.watch().current(),
            highest(store, r).await,
            "after poll_changes, the watch of a handle on {r} is at its HIGHESTMODSEQ"
        );
    }
}

/// Watches wake on every change, whichever handle or store call made it,
/// report the new HIGHESTMODSEQ, and end when the mailbox is deleted.
pub async fn watch<S: Storage + ?Sized + 'static>(store: Arc<S>) {
    account(&*store, ALICE).await;
    let ib = inbox(ALICE);
    let h1 = open(&*store, &ib, ALICE).await;
    let h2 = open(&*store, &ib, ALICE).await;
    let mut w1 = h1.watch();
    let mut w2 = h2.watch();

    // A task waiting on a watch is woken by an append through the store.
    let waiter = tokio::spawn(async move {
        let v = wait_changed(&mut w1, "watch woken by an append").await;
        (w1, v)
    });
    tokio::task::yield_now().await;
    let a = append(&*store, &ib, 1, &[]).await;
    let (mut w1, v) = match tokio::time::timeout(WAIT, waiter).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => panic!("watch task failed: {e}"),
        Err(_) => panic!("the watch did not wake within {WAIT:?} after an append"),
    };
    assert_eq!(v, Some(a.modseq), "the watch reports the new HIGHESTMODSEQ");
    assert_eq!(
        wait_changed(&mut w2, "second handle's watch").await,
        Some(a.modseq),
        "every handle's watch wakes"
    );
    assert_eq!(
        w1.current(),
        a.modseq,
        "current() is the last published HIGHESTMODSEQ"
    );

    ok(
        h2.store(&[a.uid], &StoreOp::Add(flags(&[Flag::Deleted])), None)
            .await,
        "store",
    );
    let v = wait_changed(&mut w1, "watch woken by a STORE on another handle").await;
    assert_eq!(v, Some(highest(&*store, &ib).await), "after STORE");
    ok(h1.expunge(None).await, "expunge");
    let v = wait_changed(&mut w1, "watch woken by an expunge").await;
    assert_eq!(v, Some(highest(&*store, &ib).await), "after EXPUNGE");
    let sent = mbox(ALICE, "Sent");
    append(&*store, &sent, 2, &[]).await;
    let s = open(&*store, &sent, ALICE).await;
    ok(s.copy_to(&[Uid(1)], &ib).await, "copy into INBOX");
    let v = wait_changed(&mut w1, "watch woken by a copy into the mailbox").await;
    assert_eq!(v, Some(highest(&*store, &ib).await), "after COPY in");
    let mut sw = s.watch();
    ok(h1.move_to(&[Uid(2)], &sent).await, "move out of INBOX");
    assert!(
        wait_changed(&mut w1, "source watch woken by a move")
            .await
            .is_some(),
        "source woken"
    );
    assert!(
        wait_changed(&mut sw, "destination watch woken by a move")
            .await
            .is_some(),
        "destination woken"
    );
    let late = h2.watch();
    assert_eq!(
        late.current(),
        highest(&*store, &ib).await,
        "a new watch starts at HIGHESTMODSEQ"
    );

    let tmp = mbox(ALICE, "Tmp");
    ok(store.create(&tmp, None).await, "create");
    let t = open(&*store, &tmp, ALICE).await;
    let mut tw = t.watch();
    ok(store.delete(&tmp).await, "delete");
    assert_eq!(
        wait_changed(&mut tw, "watch on a deleted mailbox").await,
        None,
        "a watch ends (None) when its mailbox is deleted"
    );
}

/// Concurrent appends, stores and opposite copies: no lost update, no
/// duplicate UID, no deadlock.
pub async fn concurrent_access<S: Storage + ?Sized + 'static>(store: Arc<S>) {
    const TASKS: u32 = 6;
    const PER_TASK: u32 = 25;
    account(&*store, ALICE).await;
    let ib = inbox(ALICE);
    let sent = mbox(ALICE, "Sent");
    append(&*store, &ib, 0, &[]).await;
    append(&*store, &sent, 0, &[]).await;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        let (ib, sent) = (ib.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            let here = open(&*store, &ib, ALICE).await;
            for i in 0..PER_TASK {
                let n = 1 + t * PER_TASK + i;
                appended.push(append(&*store, &ib, n, &[]).await);
                let op = StoreOp::Add(flags(&[kw(&format!("$T{t}"))]));
                ok(here.store(&[Uid(1)], &op, None).await, "concurrent store");
                // Opposite copies between two mailboxes must not deadlock.
                let (from, to) = if t.is_multiple_of(2) {
                    (&ib, &sent)
                } else {
                    (&sent, &ib)
                };
                let src = open(&*store, from, ALICE).await;
                ok(src.copy_to(&[Uid(1)], to).await, "concurrent copy");
                tokio::task::yield_now().await;
            }
            appended
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        match tokio::time::timeout(WAIT * 3, task).await {
            Ok(Ok(v)) => all.extend(v),
            Ok(Err(e)) => panic!("a concurrent task failed: {e}"),
            Err(_) => panic!("concurrent operations did not finish: deadlock?"),
        }
    }
    let mut uids: Vec<Uid> = all.iter().map(|a| a.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(
        uids.len(),
        all.len(),
        "concurrent appends got distinct UIDs"
    );
    let mut modseqs: Vec<ModSeq> = all.iter().map(|a| a.modseq).collect();
    modseqs.sort_unstable();
    modseqs.dedup();
    assert_eq!(
        modseqs.len(),
        all.len(),
        "concurrent appends got distinct modseqs"
    );
    let copies_in = TASKS / 2 * PER_TASK;
    let st = ok(store.status(&ib, ALICE).await, "status");
    assert_eq!(
        st.messages,
        1 + TASKS * PER_TASK + copies_in,
        "no message lost in INBOX"
    );
    let st = ok(store.status(&sent, ALICE).await, "status");
    assert_eq!(
        st.messages,
        1 + (TASKS - TASKS / 2) * PER_TASK,
        "no message lost in Sent"
    );
    let mb = open(&*store, &ib, ALICE).await;
    let m1 = meta(&mb, Uid(1)).await;
    for t in 0..TASKS {
        assert!(
            m1.flags.contains(&kw(&format!("$T{t}"))),
            "no STORE lost: {m1:?}"
        );
    }
    check_highest_is_max(&mb, "after concurrent changes").await;
}

/// The user's shared-mailbox candidates, sorted.
async fn shared<S: Storage + ?Sized>(store: &S, user: &str) -> Vec<MailboxRef> {
    let mut v = ok(
        store.shared_mailboxes(user).await,
        &format!("shared_mailboxes({user})"),
    );
    v.sort();
    v
}

/// `shared_mailboxes` proposes exactly the mailboxes of other owners whose
/// ACL names the user or `anyone`, under their current names: a grant adds
/// one, a rename is followed, removing the entry or deleting the mailbox
/// drops it, and nobody's own mailboxes are proposed to them.
pub async fn shared_mailboxes<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    for u in [ALICE, BOB, CAROL] {
        account(store, u).await;
    }
    assert_eq!(shared(store, BOB).await, vec![], "nothing shared yet");
    let projects = mbox(ALICE, "Projects/2026");
    ok(store.create(&mbox(ALICE, "Projects"), None).await, "create");
    ok(store.create(&projects, None).await, "create");
    let grant = |m: &MailboxRef, who: &str, r: Option<&str>| {
        let (m, who) = (m.clone(), who.to_owned());
        let rights = r.map(|r| Rights::parse(r).unwrap_or_default());
        async move {
            ok(
                store.set_acl(&m, &who, rights).await,
                &format!("set_acl {m} {who} {rights:?}"),
            )
        }
    };
    grant(&inbox(ALICE), BOB, Some("lr")).await;
    grant(&projects, ANYONE, Some("l")).await;
    // carol's entry on bob's own mailbox, and `anyone` on it, propose
    // nothing to bob himself
    grant(&inbox(BOB), CAROL, Some("lr")).await;
    grant(&mbox(BOB, "Sent"), ANYONE, Some("lr")).await;
    assert_eq!(
        shared(store, BOB).await,
        vec![inbox(ALICE), projects.clone()],
        "bob: alice's INBOX (his entry) and Projects/2026 (anyone)"
    );
    assert_eq!(
        shared(store, CAROL).await,
        vec![projects.clone(), inbox(BOB), mbox(BOB, "Sent")],
        "carol: anyone's and her own entries, not bob's"
    );
    assert_eq!(
        shared(store, ALICE).await,
        vec![mbox(BOB, "Sent")],
        "alice: only bob's mailbox open to anyone"
    );
    // a change of rights keeps the candidate
    grant(&inbox(ALICE), BOB, Some("r")).await;
    assert!(
        shared(store, BOB).await.contains(&inbox(ALICE)),
        "an entry without `l` is still a candidate (core decides)"
    );
    // rename is followed
    let renamed = mbox(ALICE, "Archive/2026");
    ok(store.create(&mbox(ALICE, "Archive"), None).await, "create");
    ok(store.rename(&projects, &renamed.name).await, "rename");
    assert_eq!(
        shared(store, BOB).await,
        vec![renamed.clone(), inbox(ALICE)],
        "renamed mailbox under its new name"
    );
    // removing the entry and deleting the mailbox drop candidates
    grant(&inbox(ALICE), BOB, None).await;
    assert_eq!(
        shared(store, BOB).await,
        vec![renamed.clone()],
        "entry removed"
    );
    ok(store.delete(&renamed).await, "delete");
    assert_eq!(shared(store, BOB).await, vec![], "mailbox deleted");
    assert_eq!(
        shared(store, CAROL).await,
        vec![inbox(BOB), mbox(BOB, "Sent")],
        "carol after the delete"
    );
    // a mailbox created in place of a deleted one starts without entries
    ok(store.create(&renamed, None).await, "re-create");
    assert_eq!(shared(store, BOB).await, vec![], "new incarnation unshared");
}

/// Concurrent charged appends never take usage past a limit: many tasks at
/// once (LMTP-style deliveries through the standard [`Pipeline`] steps into INBOX,
/// IMAP-style APPENDs through [`MailAccess`] into other mailboxes, COPYs
/// through a selected mailbox) race for the last bytes, then for the last
/// messages, of one account. Exactly as many succeed as fit; the others fail
/// with [`Error::OverQuota`] (a temporary failure for LMTP), and usage ends
/// at the limit, never above it.
///
/// [`Pipeline`]: mailroom_core::delivery::Pipeline
/// [`MailAccess`]: mailroom_core::access::MailAccess
pub async fn quota_concurrent<S: Storage + Quota + 'static>(store: Arc<S>) {
    use mailroom_core::acl::Principal;
    use mailroom_core::delivery::{
        Delivery, DeliveryOutcome, DeliveryRequest, Pipeline, Recipient,
    };

    const TASKS: u32 = 48;
    account(&*store, ALICE).await;
    let root = store.root_of(ALICE);
    let sent = mbox(ALICE, "Sent");
    // a message to copy, the same size as every other one
    let seed = append(&*store, &sent, same_size(0, 0), &[]).await;
    let size = body(same_size(0, 0)).len() as u64;
    let storage: Arc<dyn Storage> = store.clone();
    let quota: Arc<dyn Quota> = store.clone();
    // The standard steps, with one more between the quota step and filing
    // that lets other tasks run (as any step that does I/O does: mailroomd
    // journals to the archive there), so a quota checked in one step and
    // charged in another would let every task past the check first.
    #[derive(Debug)]
    struct Yield;
    #[async_trait::async_trait]
    impl mailroom_core::delivery::DeliveryStep for Yield {
        async fn run(
            &self,
            _: &mut mailroom_core::delivery::DeliveryContext,
        ) -> Result<mailroom_core::delivery::StepOutcome> {
            tokio::task::yield_now().await;
            Ok(mailroom_core::delivery::StepOutcome::Continue)
        }
    }
    let pipeline = Arc::new(
        Pipeline::new()
            .step(mailroom_core::delivery::QuotaCheck::new(quota.clone()))
            .step(Yield)
            .step(mailroom_core::delivery::FileInto::new(storage.clone())),
    );
    let access = mailroom_core::access::MailAccess::new(
        storage.clone(),
        Some(quota.clone()),
        Principal::user(ALICE),
    );

    // Test message numbers whose bodies all have the same length: four
    // digits, and the same padding (`n % 7 == 4`).
    fn same_size(round_no: u32, t: u32) -> u32 {
        1005 + 7 * (100 * round_no + t)
    }

    // One round: every task tries to add one message of `size` bytes at
    // once; returns how many succeeded.
    async fn round(
        pipeline: &Arc<Pipeline>,
        access: &mailroom_core::access::MailAccess,
        seed: Uid,
        round_no: u32,
    ) -> u32 {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (pipeline, access, barrier) = (pipeline.clone(), access.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let content = body(same_size(round_no, t));
                barrier.wait().await;
                match t % 3 {
                    0 => {
                        let req = DeliveryRequest {
                            return_path: None,
                            recipients: vec![Recipient {
                                user: ALICE.into(),
                                detail: None,
                            }],
                            message: content,
                        };
                        let out = pipeline.deliver(&req).await;
                        match out.as_slice() {
                            [DeliveryOutcome::Delivered { .. }] => true,
                            [DeliveryOutcome::TemporaryFailure(Error::OverQuota)] => false,
                            other => {
                                panic!("delivery: expected delivered or over quota, got {other:?}")
                            }
                        }
                    }
                    1 => {
                        let msg = NewMessage {
                            flags: Flags::default(),
                            internal_date: None,
                            content,
                        };
                        match access.append("Trash", msg).await {
                            Ok(_) => true,
                            Err(Error::OverQuota) => false,
                            Err(e) => panic!("APPEND: expected success or OverQuota, got {e:?}"),
                        }
                    }
                    _ => {
                        let sel = ok(access.select("Sent", false).await, "select Sent");
                        match sel.copy_to(&[seed], "Drafts").await {
                            Ok(r) if r.mapping.len() == 1 => true,
                            Ok(r) => panic!("COPY of one message copied {:?}", r.mapping),
                            Err(Error::OverQuota) => false,
                            Err(e) => panic!("COPY: expected success or OverQuota, got {e:?}"),
                        }
                    }
                }
            }));
        }
        let mut stored = 0;
        for task in tasks {
            match tokio::time::timeout(WAIT * 3, task).await {
                Ok(Ok(true)) => stored += 1,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => panic!("a concurrent task failed: {e}"),
                Err(_) => panic!("concurrent appends did not finish: deadlock?"),
            }
        }
        stored
    }

    // STORAGE: room for exactly 10 more messages
    let used = ok(store.usage(&root).await, "usage");
    assert_eq!(used.messages, 1);
    let limit = used.storage_bytes + 10 * size;
    ok(
        store
            .set_limits(
                &root,
                QuotaLimits {
                    storage_bytes: Some(limit),
                    messages: None,
                },
            )
            .await,
        "set_limits",
    );
    let stored = round(&pipeline, &access, seed.uid, 1).await;
    let u = ok(store.usage(&root).await, "usage");
    assert!(
        u.storage_bytes <= limit,
        "STORAGE overshot: {} bytes used, limit {limit} ({stored} of {TASKS} concurrent appends succeeded)",
        u.storage_bytes
    );
    assert_eq!(
        (stored, u.storage_bytes),
        (10, limit),
        "exactly the 10 messages that fit are stored"
    );

    // MESSAGE: room for exactly 7 more messages
    let max = u.messages + 7;
    ok(
        store
            .set_limits(
                &root,
                QuotaLimits {
                    storage_bytes: None,
                    messages: Some(max),
                },
            )
            .await,
        "set_limits",
    );
    let stored = round(&pipeline, &access, seed.uid, 2).await;
    let u = ok(store.usage(&root).await, "usage");
    assert!(
        u.messages <= max,
        "MESSAGE overshot: {} messages, limit {max} ({stored} of {TASKS} concurrent appends succeeded)",
        u.messages
    );
    assert_eq!(
        (stored, u.messages),
        (7, max),
        "exactly the 7 messages that fit are stored"
    );
}

/// SAVEDATE (RFC 8514): APPEND, COPY and MOVE give the message the time it
/// was saved there (the store's clock, so only checked against a wide
/// window around the caller's), shown alike by snapshot, `fetch_meta` and
/// `changes_since`; a STORE keeps it.
pub async fn save_date<S: Storage + ?Sized>(store: Arc<S>) {
    let store = &*store;
    account(store, ALICE).await;
    let ib = inbox(ALICE);
    let dest = mbox(ALICE, "Saved");
    ok(store.create(&dest, None).await, "create Saved");
    let before = InternalDate::now().timestamp;
    append(store, &ib, 1, &[]).await;
    append(store, &ib, 2, &[]).await;
    let after = InternalDate::now().timestamp;
    let window = (before - 300)..=(after + 300);
    let src = open(store, &ib, ALICE).await;
    let snap = ok(src.snapshot().await, "snapshot");
    for m in &snap.messages {
        let saved = m
            .save_date
            .unwrap_or_else(|| panic!("APPEND sets SAVEDATE: {m:?}"));
        assert!(
            window.contains(&saved),
            "SAVEDATE {saved} is the time of the APPEND ({before}..{after}), not INTERNALDATE {}",
            m.internal_date.timestamp
        );
        assert_eq!(
            meta(&src, m.uid).await.save_date,
            m.save_date,
            "fetch_meta shows the snapshot's SAVEDATE"
        );
    }
    let changes = ok(src.changes_since(ModSeq(0)).await, "changes_since");
    for m in &changes.changed {
        let s = snap.messages.iter().find(|x| x.uid == m.uid);
        assert_eq!(
            Some(m.save_date),
            s.map(|x| x.save_date),
            "changes_since shows SAVEDATE"
        );
    }
    ok(
        src.store(&[Uid(1)], &StoreOp::Add(flags(&[Flag::Flagged])), None)
            .await,
        "store",
    );
    assert_eq!(
        meta(&src, Uid(1)).await.save_date,
        snap.messages[0].save_date,
        "STORE keeps SAVEDATE"
    );
    let copied = ok(src.copy_to(&[Uid(1)], &dest).await, "copy");
    let moved = ok(src.move_to(&[Uid(2)], &dest).await, "move");
    let dst = open(store, &dest, ALICE).await;
    for (what, uid) in [("COPY", copied.mapping[0].1), ("MOVE", moved.mapping[0].1)] {
        let saved = meta(&dst, uid)
            .await
            .save_date
            .unwrap_or_else(|| panic!("{what} sets SAVEDATE in the destination"));
        assert!(
            (before - 300..=InternalDate::now().timestamp + 300).contains(&saved),
            "{what} sets SAVEDATE to the time of the {what}: {saved}"
        );
    }
}
