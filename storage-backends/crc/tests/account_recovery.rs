//! Recovery of the per-user `account` file from the per-mailbox `mailbox`
//! metadata files: a flipped byte, a truncation, garbage or a deleted
//! account file (200 cases by default, `MAILROOM_CRC_ACCOUNT_CASES` to
//! change) must not lock the user out: on the next access the bad file is
//! moved aside (never deleted), the account is rebuilt with the same
//! mailbox names, special uses and ACLs, and every message is still there
//! with the same bytes, UIDs and flags.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Rng, inbox, open};
use mailroom_core::{
    Acl, Flag, Flags, MailboxName, MailboxRef, MessageMeta, NewMessage, Quota, QuotaLimits, Rights,
    SpecialUse, Storage, StoreOp,
};
use mailroom_store_crc::{ACCOUNT_FILE, CrcStore, MAILBOX_FILE, QUOTA_FILE, RECOVERED_PARENT};

const USER: &str = "alice";

/// Everything a user can see of their mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MailboxState {
    special_use: Option<SpecialUse>,
    acl: Acl,
    uid_validity: u32,
    messages: Vec<MessageMeta>,
    contents: BTreeMap<u32, Vec<u8>>,
}

type State = BTreeMap<MailboxName, MailboxState>;

fn name(s: &str) -> MailboxName {
    MailboxName::new(s).unwrap()
}

fn mref(s: &str) -> MailboxRef {
    MailboxRef::new(USER, name(s))
}

fn acl_sorted(mut a: Acl) -> Acl {
    a.entries.sort_by(|x, y| x.0.cmp(&y.0));
    a
}

async fn state(s: &CrcStore) -> State {
    let mut out = State::new();
    for info in s.list(USER).await.unwrap() {
        let m = MailboxRef::new(USER, info.name.clone());
        let mb = s.open(&m, USER).await.unwrap();
        let snap = mb.snapshot().await.unwrap();
        let mut contents = BTreeMap::new();
        for meta in &snap.messages {
            contents.insert(meta.uid.0, mb.content(meta.uid).await.unwrap().to_vec());
        }
        out.insert(
            info.name,
            MailboxState {
                special_use: info.special_use,
                acl: acl_sorted(s.acl(&m).await.unwrap()),
                uid_validity: snap.uid_validity.0,
                messages: snap.messages,
                contents,
            },
        );
    }
    out
}

async fn append(s: &CrcStore, m: &MailboxRef, n: u64, flags: &[&str]) {
    let mut f = Flags::default();
    for x in flags {
        f.insert(Flag::parse(x).unwrap());
    }
    s.append(
        m,
        NewMessage {
            flags: f,
            internal_date: None,
            content: common::message(n).into(),
        },
    )
    .await
    .unwrap();
}

/// Mailboxes with non-ASCII names, special uses, an ACL for another user,
/// subscriptions, a rename, messages with flags and keywords.
async fn populate(dir: &Path) -> (State, Vec<MailboxName>) {
    let s = open(dir, false);
    s.ensure_account(USER).await.unwrap();
    let drafts = mref("Entwürfe");
    let archive = mref("Архив/2024");
    let japanese = mref("日本語 テスト");
    let plain = mref("Projects/été");
    s.create(&drafts, Some(SpecialUse::Drafts)).await.unwrap();
    s.create(&archive, None).await.unwrap();
    s.create(&japanese, None).await.unwrap();
    s.create(&mref("to be renamed"), None).await.unwrap();
    s.rename(&mref("to be renamed"), &plain.name).await.unwrap();
    s.set_special_use(&archive, Some(SpecialUse::Archive))
        .await
        .unwrap();
    s.set_acl(&archive, "bob", Rights::parse("lrs"))
        .await
        .unwrap();
    s.set_acl(&japanese, "carol smith", Rights::parse("lrswi"))
        .await
        .unwrap();
    s.set_acl(&japanese, "anyone", Rights::parse("l"))
        .await
        .unwrap();
    s.set_subscribed(USER, &japanese.name, true).await.unwrap();
    s.set_subscribed(USER, &plain.name, true).await.unwrap();
    let mut n = 0;
    for (m, count) in [
        (inbox(USER), 4),
        (drafts.clone(), 2),
        (archive.clone(), 3),
        (japanese.clone(), 2),
        (plain.clone(), 1),
    ] {
        for i in 0..count {
            n += 1;
            let flags: &[&str] = match i % 3 {
                0 => &["\\Seen"],
                1 => &["\\Flagged", "$Label1"],
                _ => &[],
            };
            append(&s, &m, n, flags).await;
        }
    }
    // a flag change and an expunge, so UIDs have a hole and modseqs differ
    let mb = s.open(&inbox(USER), USER).await.unwrap();
    let uids: Vec<_> = mb
        .snapshot()
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid)
        .collect();
    let mut del = Flags::default();
    del.insert(Flag::Deleted);
    mb.store(&uids[1..2], &StoreOp::Add(del), None)
        .await
        .unwrap();
    mb.expunge(None).await.unwrap();
    let mut ans = Flags::default();
    ans.insert(Flag::Answered);
    mb.store(&uids[2..3], &StoreOp::Add(ans), None)
        .await
        .unwrap();
    let st = state(&s).await;
    assert_eq!(st.len(), 9, "{:?}", st.keys().collect::<Vec<_>>());
    assert_eq!(st[&archive.name].acl.entries.len(), 1);
    let subs = s.subscriptions(USER).await.unwrap();
    (st, subs)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else if e.file_name() != "lock" {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn user_dir(root: &Path) -> PathBuf {
    root.join("users").join(USER)
}

fn moved_aside(root: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(user_dir(root))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{prefix}.corrupt-"))
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Flip,
    Truncate,
    Garbage,
    Delete,
}

/// Damages the account file; returns the bytes left in it (`None`: deleted).
fn damage(root: &Path, how: Damage, rng: &mut Rng) -> Option<Vec<u8>> {
    let path = user_dir(root).join(ACCOUNT_FILE);
    let mut b = std::fs::read(&path).unwrap();
    match how {
        Damage::Flip => {
            let at = rng.below(b.len() as u64) as usize;
            b[at] ^= 1 << rng.below(8);
        }
        // (cutting only the final newline would lose nothing)
        Damage::Truncate => b.truncate(rng.below(b.len() as u64 - 1) as usize),
        Damage::Garbage => {
            let len = rng.below(600) as usize;
            b = (0..len).map(|_| rng.next() as u8).collect();
        }
        Damage::Delete => {
            std::fs::remove_file(&path).unwrap();
            return None;
        }
    }
    std::fs::write(&path, &b).unwrap();
    Some(b)
}

/// The first operation after reopening: a login, a LIST or the explicit
/// `reconstruct` of the user. Each must rebuild the account.
async fn first_access(s: &CrcStore, case: u64) {
    match case % 3 {
        0 => s.ensure_account(USER).await.unwrap(),
        1 => assert!(!s.list(USER).await.unwrap().is_empty()),
        _ => {
            let reports = s.reconstruct(USER, None).await.unwrap();
            assert_eq!(reports.len(), 9);
        }
    }
}

fn assert_recovered(got: &State, want: &State, case: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{case}: mailbox names"
    );
    for (n, w) in want {
        let g = &got[n];
        assert_eq!(g.special_use, w.special_use, "{case}: special use of {n}");
        assert_eq!(g.acl, w.acl, "{case}: ACL of {n}");
        assert_eq!(g.uid_validity, w.uid_validity, "{case}: UIDVALIDITY of {n}");
        assert_eq!(g.messages, w.messages, "{case}: UIDs/flags of {n}");
        assert_eq!(g.contents, w.contents, "{case}: message bytes of {n}");
    }
}

#[tokio::test]
async fn damaged_account_is_rebuilt_from_mailbox_files() {
    let cases: u64 = std::env::var("MAILROOM_CRC_ACCOUNT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let template = tempfile::tempdir().unwrap();
    let (want, subs_before) = populate(template.path()).await;
    let mut rng = Rng::new(0xacc0_0417);
    for case in 0..cases {
        let how = [
            Damage::Flip,
            Damage::Truncate,
            Damage::Garbage,
            Damage::Delete,
        ][(case % 4) as usize];
        let label = format!("case {case} ({how:?})");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let left = damage(dir.path(), how, &mut rng);
        let s = open(dir.path(), false);
        first_access(&s, case).await;
        let got = state(&s).await;
        assert_recovered(&got, &want, &label);
        // the bad file was moved aside, byte for byte
        let aside = moved_aside(dir.path(), ACCOUNT_FILE);
        match &left {
            Some(bytes) => {
                assert_eq!(aside.len(), 1, "{label}: moved-aside files {aside:?}");
                assert_eq!(&std::fs::read(&aside[0]).unwrap(), bytes, "{label}");
            }
            None => assert!(aside.is_empty(), "{label}"),
        }
        // every mailbox is subscribed (clients show only subscribed ones)
        let subs = s.subscriptions(USER).await.unwrap();
        for n in &subs_before {
            assert!(subs.contains(n), "{label}: {n} no longer subscribed");
        }
        assert_eq!(subs, got.keys().cloned().collect::<Vec<_>>(), "{label}");
        // the other user's rights work again
        let archive = mref("Архив/2024");
        assert_eq!(
            s.status(&archive, "bob").await.unwrap().messages,
            3,
            "{label}"
        );
        if case % 10 == 0 {
            // a new mailbox neither reuses a directory nor a UIDVALIDITY,
            // and is no second INBOX; default mailboxes are not re-created
            let fresh = mref("Neu nach Reparatur");
            s.create(&fresh, None).await.unwrap();
            append(&s, &fresh, 999, &[]).await;
            let after = state(&s).await;
            let max_uv = want.values().map(|m| m.uid_validity).max().unwrap();
            assert!(after[&fresh.name].uid_validity > max_uv, "{label}");
            let mut old = after.clone();
            old.remove(&fresh.name);
            assert_recovered(&old, &want, &label);
            drop(s);
            // and the rebuilt account survives a restart as it is
            let s = open(dir.path(), false);
            s.ensure_account(USER).await.unwrap();
            assert_eq!(state(&s).await, after, "{label}: after restart");
            assert_eq!(moved_aside(dir.path(), ACCOUNT_FILE).len(), aside.len());
        }
    }
}

#[tokio::test]
async fn mailbox_without_metadata_comes_back_under_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (want, _) = populate(dir.path()).await;
    let japanese = mref("日本語 テスト");
    let drafts = mref("Entwürfe");
    let (mdir, ddir) = {
        let s = open(dir.path(), false);
        (
            s.mailbox_dir(&japanese).await.unwrap(),
            s.mailbox_dir(&drafts).await.unwrap(),
        )
    };
    let id: u64 = mdir.file_name().unwrap().to_str().unwrap().parse().unwrap();
    let did: u64 = ddir.file_name().unwrap().to_str().unwrap().parse().unwrap();
    std::fs::remove_file(mdir.join(MAILBOX_FILE)).unwrap();
    // a second mailbox's file is damaged: also recovered without its name
    std::fs::write(ddir.join(MAILBOX_FILE), b"mailroom-crc-mailbox 1\nname x\n").unwrap();
    std::fs::write(user_dir(dir.path()).join(ACCOUNT_FILE), b"garbage").unwrap();
    let s = open(dir.path(), false);
    let got = state(&s).await;
    let rec = name(&format!("{RECOVERED_PARENT}/{id}"));
    let drec = name(&format!("{RECOVERED_PARENT}/{did}"));
    assert!(!got.contains_key(&japanese.name));
    assert!(!got.contains_key(&drafts.name));
    let r = &got[&rec];
    let w = &want[&japanese.name];
    assert_eq!(r.messages, w.messages);
    assert_eq!(r.contents, w.contents);
    assert_eq!(r.special_use, None);
    assert!(
        r.acl.entries.is_empty(),
        "a lost ACL grants nobody anything"
    );
    assert_eq!(got[&drec].contents, want[&drafts.name].contents);
    // the damaged metadata file was kept, the lost one written anew
    let kept: Vec<_> = std::fs::read_dir(&ddir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mailbox.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(mdir.join(MAILBOX_FILE).is_file());
    assert_eq!(got.len(), want.len());
    // its metadata file now names it, so a second loss keeps the name
    drop(s);
    std::fs::remove_file(user_dir(dir.path()).join(ACCOUNT_FILE)).unwrap();
    let s = open(dir.path(), false);
    assert_eq!(state(&s).await, got);
}

#[tokio::test]
async fn missing_metadata_files_are_written_on_first_access() {
    let dir = tempfile::tempdir().unwrap();
    let (want, _) = populate(dir.path()).await;
    let mdirs: Vec<PathBuf> = std::fs::read_dir(user_dir(dir.path()).join("mailboxes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(mdirs.len(), want.len());
    for d in &mdirs {
        std::fs::remove_file(d.join(MAILBOX_FILE)).unwrap();
    }
    let s = open(dir.path(), false);
    assert_eq!(state(&s).await, want);
    for d in &mdirs {
        assert!(
            d.join(MAILBOX_FILE).is_file(),
            "{} not upgraded",
            d.display()
        );
    }
    // and they are right: a lost account comes back whole from them
    drop(s);
    std::fs::write(user_dir(dir.path()).join(ACCOUNT_FILE), b"").unwrap();
    let s = open(dir.path(), false);
    assert_recovered(&state(&s).await, &want, "after upgrade");
}

#[tokio::test]
async fn renamed_mailboxes_keep_their_new_names() {
    let dir = tempfile::tempdir().unwrap();
    let (mut want, _) = populate(dir.path()).await;
    let s = open(dir.path(), false);
    let from = mref("Projects/été");
    let to = name("Erledigt/été ✓");
    s.rename(&from, &to).await.unwrap();
    let moved = want.remove(&from.name).unwrap();
    want.insert(to.clone(), moved);
    // RENAME INBOX moves its messages to a new mailbox; INBOX stays, empty
    let old_inbox = name("Alter Posteingang");
    s.rename(&inbox(USER), &old_inbox).await.unwrap();
    append(&s, &inbox(USER), 77, &["\\Seen"]).await;
    let want = state(&s).await;
    assert_eq!(want[&old_inbox].messages.len(), 3);
    assert_eq!(want[&MailboxName::inbox()].messages.len(), 1);
    drop(s);
    let path = user_dir(dir.path()).join(ACCOUNT_FILE);
    let mut b = std::fs::read(&path).unwrap();
    b[30] ^= 0x20;
    std::fs::write(&path, &b).unwrap();
    let s = open(dir.path(), false);
    assert_recovered(&state(&s).await, &want, "after renames");
}

#[tokio::test]
async fn inbox_is_recreated_when_no_directory_claims_it() {
    let dir = tempfile::tempdir().unwrap();
    let (want, _) = populate(dir.path()).await;
    let s = open(dir.path(), false);
    let idir = s.mailbox_dir(&inbox(USER)).await.unwrap();
    drop(s);
    std::fs::remove_dir_all(&idir).unwrap();
    std::fs::remove_file(user_dir(dir.path()).join(ACCOUNT_FILE)).unwrap();
    let s = open(dir.path(), false);
    s.ensure_account(USER).await.unwrap();
    let got = state(&s).await;
    assert!(got[&MailboxName::inbox()].messages.is_empty());
    assert_eq!(got.len(), want.len());
    let mut rest = got.clone();
    rest.remove(&MailboxName::inbox());
    let mut want_rest = want.clone();
    want_rest.remove(&MailboxName::inbox());
    assert_recovered(&rest, &want_rest, "without INBOX");
    append(&s, &inbox(USER), 5, &[]).await;
}

#[tokio::test]
async fn corrupt_quota_file_means_no_limits_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), false);
    s.ensure_account(USER).await.unwrap();
    s.set_limits(
        USER,
        QuotaLimits {
            storage_bytes: Some(1000),
            messages: Some(5),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.usage(USER).await.unwrap().limits.messages, Some(5));
    let path = user_dir(dir.path()).join(QUOTA_FILE);
    std::fs::write(&path, b"mailroom-crc-quota 1\nstorage 10\ncrc 0\n").unwrap();
    let u = s.usage(USER).await.unwrap();
    assert_eq!(u.limits, QuotaLimits::default());
    assert!(!path.exists());
    let aside = moved_aside(dir.path(), QUOTA_FILE);
    assert_eq!(aside.len(), 1);
    assert!(
        std::fs::read(&aside[0])
            .unwrap()
            .starts_with(b"mailroom-crc-quota")
    );
    append(&s, &inbox(USER), 1, &[]).await;
}
