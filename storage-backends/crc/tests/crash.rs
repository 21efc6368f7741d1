//! The crash test: a child process (this test binary, re-executed with an
//! environment variable) appends and delivers in a loop with durability on,
//! printing every acknowledged UID with the message's SHA-1; the parent
//! kills it with SIGKILL at a random moment, 100 rounds
//! (`MAILROOM_CRC_CRASH_ROUNDS` to change), and after each round reopens
//! the store and checks that every acknowledged message is present with the
//! right bytes, every CRC holds and no record points at a missing file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Rng, inbox};
use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    Delivery, DeliveryOutcome, DeliveryRequest, Flag, Flags, MailboxName, MailboxRef, MessageGuid,
    NewMessage, Quota, Recipient, Storage, StoreOp, Uid,
};
use mailroom_store_crc::{CrcOptions, CrcStore};

const CHILD_ENV: &str = "MAILROOM_CRC_CRASH_CHILD";
const SEED_ENV: &str = "MAILROOM_CRC_CRASH_SEED";
const JOURNAL_ENV: &str = "MAILROOM_CRC_CRASH_JOURNAL";
const USER: &str = "crash@example.com";

/// The child's loop; a no-op when run as an ordinary test.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(open_store(
            std::path::Path::new(&dir),
            std::env::var_os(JOURNAL_ENV).is_some(),
        ));
        store.ensure_account(USER).await.unwrap();
        let pipeline = Pipeline::standard(store.clone(), store.clone() as Arc<dyn Quota>);
        let ib = inbox(USER);
        let handle = store.open(&ib, USER).await.unwrap();
        let mut rng = Rng::new(seed);
        let mut out = std::io::stdout().lock();
        for n in 0u64.. {
            let body = format!(
                "Subject: crash {seed}/{n}\r\nMessage-ID: <{seed}.{n}@x>\r\n\r\n{}\r\n",
                "y".repeat(rng.below(3000) as usize)
            );
            let sha = MessageGuid::of(body.as_bytes());
            match rng.below(3) {
                0 => {
                    let req = DeliveryRequest {
                        return_path: None,
                        recipients: vec![Recipient {
                            user: USER.into(),
                            detail: None,
                        }],
                        message: body.into(),
                    };
                    for o in pipeline.deliver(&req).await {
                        if let DeliveryOutcome::Delivered { mailbox, uid } = o {
                            writeln!(out, "ACK {mailbox} {} {sha}", uid.0).unwrap();
                        }
                    }
                }
                1 => {
                    let arch = MailboxRef::new(USER, MailboxName::new("Archive").unwrap());
                    if store
                        .list(USER)
                        .await
                        .unwrap()
                        .iter()
                        .all(|m| m.name != arch.name)
                    {
                        store.create(&arch, None).await.unwrap();
                    }
                    let a = store
                        .append(
                            &arch,
                            NewMessage {
                                flags: Flags::default(),
                                internal_date: None,
                                content: body.into(),
                            },
                        )
                        .await
                        .unwrap();
                    writeln!(out, "ACK Archive {} {sha}", a.uid.0).unwrap();
                }
                _ => {
                    let a = store
                        .append(
                            &ib,
                            NewMessage {
                                flags: Flags::default(),
                                internal_date: None,
                                content: body.into(),
                            },
                        )
                        .await
                        .unwrap();
                    writeln!(out, "ACK INBOX {} {sha}", a.uid.0).unwrap();
                    // and a flag change, the in-place (dirty header) path
                    let target = Uid(1 + rng.below(u64::from(a.uid.0)) as u32);
                    let f: Flags = [Flag::Flagged].into_iter().collect();
                    handle
                        .store(&[target], &StoreOp::Add(f), None)
                        .await
                        .unwrap();
                    // and sometimes an expunge of the new one: it must
                    // never come back (the journal must not redo it)
                    if rng.below(4) == 0 {
                        writeln!(out, "EXPUNGING INBOX {}", a.uid.0).unwrap();
                        out.flush().unwrap();
                        let d: Flags = [Flag::Deleted].into_iter().collect();
                        handle
                            .store(&[a.uid], &StoreOp::Add(d), None)
                            .await
                            .unwrap();
                        handle.expunge(Some(&[a.uid])).await.unwrap();
                        writeln!(out, "EXPUNGED INBOX {}", a.uid.0).unwrap();
                    }
                }
            }
            out.flush().unwrap();
        }
    });
}

/// Opens the store, with the delivery journal or without.
fn open_store(dir: &std::path::Path, journal: bool) -> CrcStore {
    CrcStore::open(
        dir,
        CrcOptions {
            durability: true,
            journal,
            ..CrcOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn kill_nine_rounds() {
    kill_nine(false, 100);
}

/// The same with the delivery journal on (each reopen replays it).
#[test]
fn kill_nine_rounds_journaled() {
    kill_nine(true, 60);
}

fn kill_nine(journal: bool, default_rounds: u64) {
    let rounds: u64 = std::env::var("MAILROOM_CRC_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_rounds);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(0xC4A5);
    // (mailbox, uid) -> SHA-1 of every acknowledged message
    let mut acked: BTreeMap<(String, u32), String> = BTreeMap::new();
    // expunged (or maybe, if the kill came during the expunge): never
    // required, and once reported expunged never allowed back
    let mut expunged: BTreeMap<(String, u32), bool> = BTreeMap::new();
    let start = Instant::now();
    let mut killed_mid_work = 0;
    for round in 0..rounds {
        let mut cmd = Command::new(&exe);
        if journal {
            cmd.env(JOURNAL_ENV, "1");
        }
        let mut child = cmd
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(SEED_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        // let it get going, then kill it at a random instant
        let deadline = Instant::now() + Duration::from_secs(20);
        while lines.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let lines = lines.lock().unwrap();
        assert!(
            !lines.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        killed_mid_work += 1;
        for l in lines.iter() {
            for (prefix, done) in [("EXPUNGING ", false), ("EXPUNGED ", true)] {
                if let Some(rest) = l.strip_prefix(prefix) {
                    let parts: Vec<&str> = rest.split(' ').collect();
                    let key = (parts[0].to_owned(), parts[1].parse::<u32>().unwrap());
                    acked.remove(&key);
                    expunged.insert(key, done);
                }
            }
            let Some(rest) = l.strip_prefix("ACK ") else {
                continue;
            };
            let parts: Vec<&str> = rest.split(' ').collect();
            let key = (parts[0].to_owned(), parts[1].parse::<u32>().unwrap());
            assert!(
                acked.insert(key.clone(), parts[2].to_owned()).is_none(),
                "UID acknowledged twice: {key:?}"
            );
        }
        check(dir.path(), &acked, &expunged, journal, round);
    }
    eprintln!(
        "{rounds} kill -9 rounds, {} acknowledged messages, all present, in {:?} ({killed_mid_work} kills)",
        acked.len(),
        start.elapsed()
    );
}

/// Reopens the store and checks everything acknowledged so far.
fn check(
    dir: &std::path::Path,
    acked: &BTreeMap<(String, u32), String>,
    expunged: &BTreeMap<(String, u32), bool>,
    journal: bool,
    round: u64,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store: CrcStore = open_store(dir, journal);
        for ((mb, uid), done) in expunged {
            let mref = MailboxRef::new(USER, MailboxName::new(mb).unwrap());
            let m = store.open(&mref, USER).await.unwrap();
            let live = m
                .snapshot()
                .await
                .unwrap()
                .messages
                .iter()
                .any(|x| x.uid.0 == *uid);
            assert!(
                !(live && *done),
                "round {round}: expunged {mb} UID {uid} came back"
            );
        }
        let mut by_box: BTreeMap<&str, Vec<(u32, &str)>> = BTreeMap::new();
        for ((mb, uid), sha) in acked {
            by_box
                .entry(mb.as_str())
                .or_default()
                .push((*uid, sha.as_str()));
        }
        for (mb, msgs) in by_box {
            let mref = MailboxRef::new(USER, MailboxName::new(mb).unwrap());
            // CRCs of header, records and cache; every live record's file
            // present with the right size and SHA-1
            let live = store
                .verify(&mref)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {mb} fails verification: {e}"));
            assert!(live as usize >= msgs.len());
            let m = store.open(&mref, USER).await.unwrap();
            for (uid, sha) in msgs {
                let body = m.content(Uid(uid)).await.unwrap_or_else(|e| {
                    panic!("round {round}: acknowledged {mb} UID {uid} lost: {e}")
                });
                assert_eq!(
                    MessageGuid::of(&body).to_string(),
                    sha,
                    "round {round}: {mb} UID {uid} has wrong bytes"
                );
            }
        }
        // opening a mailbox clears the killed process's unfinished message
        // files from its tmp/ (they were never visible)
        for info in store.list(USER).await.unwrap() {
            let mref = MailboxRef::new(USER, info.name.clone());
            store.open(&mref, USER).await.unwrap();
        }
        for user in std::fs::read_dir(dir.join("users")).unwrap().flatten() {
            // A kill between creating the user's directory and its
            // `mailboxes/` leaves the first alone (the store makes both
            // again when the account is first written): nothing to check.
            let Ok(mailboxes) = std::fs::read_dir(user.path().join("mailboxes")) else {
                assert!(
                    !user.path().join("account").exists(),
                    "round {round}: {:?} has an account file but no mailboxes/",
                    user.path()
                );
                continue;
            };
            for mb in mailboxes.flatten() {
                let left: Vec<_> = std::fs::read_dir(mb.path().join("tmp"))
                    .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                    .unwrap_or_default();
                assert!(
                    left.is_empty(),
                    "round {round}: leftovers in {:?}: {left:?}",
                    mb.path()
                );
            }
        }
        assert!(store.reconstruct_queue().is_empty());
    });
}
