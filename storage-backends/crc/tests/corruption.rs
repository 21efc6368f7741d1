//! The corruption test: one random byte flipped in the index header, in a
//! random index record, in a cache record or in a message file — 100 cases
//! of each by default (`MAILROOM_CRC_CORRUPTION_CASES` to change). Every
//! flip is detected (`Error::Corruption`, the mailbox queued for
//! reconstruct), no operation serves wrong data, and `reconstruct` restores
//! a valid mailbox whose quota usage equals the sum of its message sizes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Rng, inbox, open};
use mailroom_core::{
    Error, Flag, Flags, MailboxSnapshot, MessageMeta, NewMessage, Quota, Storage, Uid,
};
use mailroom_store_crc::layout::{HEADER_SIZE, RECORD_SIZE, rec};

const USER: &str = "alice";
const MESSAGES: u64 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Header,
    Record,
    Cache,
    Message,
}

fn is_corruption<T: std::fmt::Debug>(r: &mailroom_core::Result<T>) -> bool {
    matches!(r, Err(Error::Corruption(_)))
}

struct Expected {
    snapshot: MailboxSnapshot,
    contents: BTreeMap<u32, Vec<u8>>,
    headers: BTreeMap<u32, Vec<u8>>,
}

async fn setup(dir: &Path, rng: &mut Rng) -> (Expected, PathBuf) {
    let s = open(dir, false);
    s.ensure_account(USER).await.unwrap();
    let ib = inbox(USER);
    for n in 0..MESSAGES {
        let mut flags = Flags::default();
        if rng.below(2) == 0 {
            flags.insert(Flag::Seen);
        }
        if rng.below(3) == 0 {
            flags.insert(Flag::parse("$Label1").unwrap());
        }
        let content = common::message(rng.next() % 1000 + n * 1000);
        s.append(
            &ib,
            NewMessage {
                flags,
                internal_date: None,
                content: content.into(),
            },
        )
        .await
        .unwrap();
    }
    let m = s.open(&ib, USER).await.unwrap();
    let snapshot = m.snapshot().await.unwrap();
    let uids: Vec<Uid> = snapshot.messages.iter().map(|m| m.uid).collect();
    let mut contents = BTreeMap::new();
    for u in &uids {
        contents.insert(u.0, m.content(*u).await.unwrap().to_vec());
    }
    let headers = m
        .summaries(&uids)
        .await
        .unwrap()
        .into_iter()
        .map(|(u, s)| (u.0, s.header.clone()))
        .collect();
    let mdir = s.mailbox_dir(&ib).await.unwrap();
    (
        Expected {
            snapshot,
            contents,
            headers,
        },
        mdir,
    )
}

fn flip(path: &Path, lo: usize, hi: usize, rng: &mut Rng) -> usize {
    let mut b = std::fs::read(path).unwrap();
    assert!(
        hi <= b.len() && lo < hi,
        "{} {lo}..{hi} of {}",
        path.display(),
        b.len()
    );
    let at = lo + rng.below((hi - lo) as u64) as usize;
    b[at] ^= 1 << rng.below(8);
    std::fs::write(path, &b).unwrap();
    at
}

fn record_field(index: &[u8], i: usize, f: mailroom_store_crc::layout::Field) -> u64 {
    f.read_uint(&index[HEADER_SIZE + i * RECORD_SIZE..HEADER_SIZE + (i + 1) * RECORD_SIZE])
}

/// Corrupts one byte; returns the UID whose data was hit (if one).
fn corrupt(mdir: &Path, target: Target, rng: &mut Rng) -> Option<u32> {
    let index = std::fs::read(mdir.join("index")).unwrap();
    let i = rng.below(MESSAGES) as usize;
    let uid = record_field(&index, i, rec::UID) as u32;
    match target {
        Target::Header => {
            flip(&mdir.join("index"), 0, HEADER_SIZE, rng);
            None
        }
        Target::Record => {
            let lo = HEADER_SIZE + i * RECORD_SIZE;
            flip(&mdir.join("index"), lo, lo + RECORD_SIZE, rng);
            Some(uid)
        }
        Target::Cache => {
            let off = record_field(&index, i, rec::CACHE_OFFSET) as usize;
            let len = record_field(&index, i, rec::CACHE_LEN) as usize;
            flip(&mdir.join("cache"), off, off + len, rng);
            Some(uid)
        }
        Target::Message => {
            let p = mdir.join("msg").join(uid.to_string());
            let len = std::fs::metadata(&p).unwrap().len() as usize;
            flip(&p, 0, len, rng);
            Some(uid)
        }
    }
}

fn same_meta(a: &MessageMeta, b: &MessageMeta) -> bool {
    a == b
}

async fn one_case(target: Target, seed: u64) {
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (exp, mdir) = setup(dir.path(), &mut rng).await;
    let hit = corrupt(&mdir, target, &mut rng);
    let ctx = format!("{target:?} case {seed}");

    let s = open(dir.path(), false);
    let ib = inbox(USER);
    let all: Vec<Uid> = exp.snapshot.messages.iter().map(|m| m.uid).collect();
    match target {
        Target::Header => {
            assert!(is_corruption(&s.status(&ib, USER).await), "{ctx}: STATUS");
            assert!(
                is_corruption(&s.open(&ib, USER).await.map(|_| ())),
                "{ctx}: SELECT"
            );
        }
        // the last commit's records are checked against the header's tail
        // when the mailbox loads (FORMAT.md, "Commit order"): a hit there
        // fails SELECT itself
        Target::Record if hit == all.last().map(|u| u.0) => {
            assert!(
                is_corruption(&s.open(&ib, USER).await.map(|_| ())),
                "{ctx}: SELECT"
            );
            assert!(is_corruption(&s.status(&ib, USER).await), "{ctx}: STATUS");
        }
        Target::Record => {
            let m = s.open(&ib, USER).await.unwrap();
            assert!(is_corruption(&m.snapshot().await), "{ctx}: snapshot");
            assert!(
                is_corruption(&m.changes_since(mailroom_core::ModSeq(0)).await),
                "{ctx}: changes"
            );
            // per-UID reads: either the right answer or a corruption
            for u in &all {
                match m.fetch_meta(&[*u]).await {
                    Ok(v) => {
                        assert_eq!(v.len(), 1, "{ctx}: UID {u} vanished");
                        let e = exp.snapshot.messages.iter().find(|m| m.uid == *u).unwrap();
                        assert!(same_meta(&v[0], e), "{ctx}: wrong metadata served for {u}");
                        assert_ne!(Some(u.0), hit, "{ctx}: the corrupt record was served");
                    }
                    Err(Error::Corruption(_)) => {}
                    Err(e) => panic!("{ctx}: unexpected error {e}"),
                }
            }
        }
        Target::Cache => {
            let m = s.open(&ib, USER).await.unwrap();
            assert_eq!(m.snapshot().await.unwrap(), exp.snapshot, "{ctx}");
            let h = Uid(hit.unwrap());
            assert!(is_corruption(&m.summaries(&[h]).await), "{ctx}: summary");
            for u in all.iter().filter(|u| **u != h) {
                let got = m.summaries(&[*u]).await.unwrap();
                assert_eq!(got[0].1.header, exp.headers[&u.0], "{ctx}");
            }
        }
        Target::Message => {
            let m = s.open(&ib, USER).await.unwrap();
            assert_eq!(m.snapshot().await.unwrap(), exp.snapshot, "{ctx}");
            let h = Uid(hit.unwrap());
            assert!(is_corruption(&m.content(h).await), "{ctx}: content");
            for u in all.iter().filter(|u| **u != h) {
                assert_eq!(
                    m.content(*u).await.unwrap().to_vec(),
                    exp.contents[&u.0],
                    "{ctx}"
                );
            }
            // FETCH of cached items still works: the cache was built from
            // the right bytes
            assert_eq!(m.summaries(&[h]).await.unwrap().len(), 1);
        }
    }
    if target != Target::Message {
        assert!(
            s.reconstruct_queue().contains(&ib),
            "{ctx}: not queued for reconstruct"
        );
    }

    // reconstruct
    let reports = s.reconstruct(USER, Some(&ib.name)).await.unwrap();
    let report = &reports[0].1;
    assert_eq!(s.verify(&ib).await.unwrap(), report.messages, "{ctx}");
    assert!(s.reconstruct_queue().is_empty());
    let m = s.open(&ib, USER).await.unwrap();
    let snap = m.snapshot().await.unwrap();
    let mut sum = 0u64;
    for meta in &snap.messages {
        let body = m.content(meta.uid).await.unwrap();
        assert_eq!(
            body.to_vec(),
            exp.contents[&meta.uid.0],
            "{ctx}: wrong bytes after reconstruct"
        );
        sum += body.len() as u64;
        let e = exp
            .snapshot
            .messages
            .iter()
            .find(|x| x.uid == meta.uid)
            .unwrap();
        if Some(meta.uid.0) != hit || target == Target::Cache {
            assert_eq!(meta.flags, e.flags, "{ctx}: flags of UID {} lost", meta.uid);
        }
    }
    let usage = s.usage(USER).await.unwrap();
    assert_eq!(
        usage.storage_bytes, sum,
        "{ctx}: quota is not the sum of sizes"
    );
    assert_eq!(report.quota_bytes, sum, "{ctx}");
    assert_eq!(usage.messages, snap.messages.len() as u64);
    let expected_live = if target == Target::Message {
        MESSAGES - 1
    } else {
        MESSAGES
    };
    assert_eq!(
        snap.messages.len() as u64,
        expected_live,
        "{ctx}: {report:?}"
    );
    if target == Target::Message {
        assert_eq!(report.quarantined, 1, "{ctx}");
        assert!(mdir.join("quarantine").read_dir().unwrap().count() == 1);
    } else {
        assert_eq!(
            snap.uid_validity == exp.snapshot.uid_validity,
            target != Target::Header,
            "{ctx}: UIDVALIDITY must change exactly when the header was lost"
        );
    }
}

fn cases() -> u64 {
    std::env::var("MAILROOM_CRC_CORRUPTION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

async fn run(target: Target, salt: u64) {
    for case in 0..cases() {
        one_case(target, salt * 1_000_000 + case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_in_the_index_header() {
    run(Target::Header, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_in_index_records() {
    run(Target::Record, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_in_cache_records() {
    run(Target::Cache, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_in_message_files() {
    run(Target::Message, 4).await;
}

/// A large provider once doubled users' quota figures by adding a
/// reconstruct's recount to the old usage. Ours is recomputed from scratch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconstruct_does_not_add_to_the_old_quota() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let (exp, _) = setup(dir.path(), &mut rng).await;
    let s = open(dir.path(), false);
    let sum: u64 = exp.contents.values().map(|c| c.len() as u64).sum();
    let arch =
        mailroom_core::MailboxRef::new(USER, mailroom_core::MailboxName::new("Archive").unwrap());
    s.create(&arch, None).await.unwrap();
    s.append(&arch, common::new_message(5, Flags::default()))
        .await
        .unwrap();
    let extra = common::message(5).len() as u64;
    let before = s.usage(USER).await.unwrap();
    assert_eq!(before.storage_bytes, sum + extra);
    for _ in 0..3 {
        s.reconstruct(USER, None).await.unwrap();
        let after = s.usage(USER).await.unwrap();
        assert_eq!(
            after.storage_bytes,
            sum + extra,
            "reconstruct changed the quota figure"
        );
        assert_eq!(after.messages, MESSAGES + 1);
    }
    // and with the old header figure wrong (as a buggy release might leave
    // it), the recount ignores it
    drop(s);
    let path = dir.path().join("users/alice/mailboxes/1/index");
    let mut b = std::fs::read(&path).unwrap();
    b[64..72].copy_from_slice(&(sum * 2).to_le_bytes());
    let crc = crc32fast::hash(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let s = open(dir.path(), false);
    assert_eq!(
        s.usage(USER).await.unwrap().storage_bytes,
        sum * 2 + extra,
        "setup: the stale figure is visible"
    );
    s.reconstruct(USER, Some(&mailroom_core::MailboxName::inbox()))
        .await
        .unwrap();
    assert_eq!(s.usage(USER).await.unwrap().storage_bytes, sum + extra);
}

/// The records are verified once and then served from memory; a byte
/// flipped on disk while the mailbox is loaded must still be caught at the
/// next operation (the header compare and file stamp see the change, the
/// index is reloaded and re-verified), never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_while_the_mailbox_is_open_are_detected() {
    use std::os::unix::fs::FileExt;
    for (case, target) in [
        Target::Record,
        Target::Header,
        Target::Record,
        Target::Header,
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(900 + case as u64);
        let (exp, mdir) = setup(dir.path(), &mut rng).await;
        let s = open(dir.path(), false);
        let ib = inbox(USER);
        let m = s.open(&ib, USER).await.unwrap();
        // verified and cached
        assert_eq!(m.snapshot().await.unwrap(), exp.snapshot);
        // a flip in place (no truncation under the map), after the file
        // system's timestamp granularity has passed
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let path = mdir.join("index");
        let i = rng.below(MESSAGES) as usize;
        let at = match target {
            Target::Header => rng.below(HEADER_SIZE as u64) as usize,
            _ => HEADER_SIZE + i * RECORD_SIZE + rng.below(RECORD_SIZE as u64) as usize,
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at as u64).unwrap();
        b[0] ^= 1 << rng.below(8);
        f.write_all_at(&b, at as u64).unwrap();
        drop(f);
        let ctx = format!("{target:?} case {case}, byte {at}");
        assert!(is_corruption(&m.snapshot().await), "{ctx}: snapshot");
        let all: Vec<Uid> = exp.snapshot.messages.iter().map(|m| m.uid).collect();
        assert!(
            is_corruption(&m.fetch_meta(&all).await),
            "{ctx}: fetch_meta"
        );
        assert!(
            is_corruption(&m.changes_since(mailroom_core::ModSeq(0)).await),
            "{ctx}: changes"
        );
        if target == Target::Header {
            assert!(is_corruption(&s.status(&ib, USER).await), "{ctx}: STATUS");
        }
        assert!(s.reconstruct_queue().contains(&ib), "{ctx}: not queued");
        s.reconstruct(USER, Some(&ib.name)).await.unwrap();
        let m = s.open(&ib, USER).await.unwrap();
        assert_eq!(m.snapshot().await.unwrap().messages.len() as u64, MESSAGES);
    }
}
