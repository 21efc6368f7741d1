//! Upgrade on first access: a version-0 mailbox (written here by a small
//! legacy writer that knows only the old layout) is converted on first
//! open; a Maildir tree is imported on the user's first `ensure_account`.
//! Garbage met on the way is reported and skipped or rebuilt, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use mailroom_core::{
    Flag, MailboxName, MailboxRef, MessageGuid, ModSeq, SpecialUse, Storage, Uid, UidValidity,
};
use mailroom_store_crc::{CrcOptions, CrcStore};

// ---------------------------------------------------------------------
// The legacy (version 0) writer: 64-byte header and records, no cache.

struct V0Msg {
    uid: u32,
    flags: u8,
    expunged: bool,
    date: i64,
    modseq: u64,
    body: Vec<u8>,
    /// write a wrong GUID into the record (the file does not match)
    wrong_guid: bool,
    /// break the record's CRC
    bad_crc: bool,
    /// write the message file
    file: bool,
}

fn v0_header(uid_validity: u32, uid_next: u32, count: u32, modseq: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[0..8].copy_from_slice(b"MRCRCIDX");
    h[8..12].copy_from_slice(&0u32.to_le_bytes());
    h[12..16].copy_from_slice(&uid_validity.to_le_bytes());
    h[16..20].copy_from_slice(&uid_next.to_le_bytes());
    h[20..24].copy_from_slice(&count.to_le_bytes());
    h[24..32].copy_from_slice(&modseq.to_le_bytes());
    let crc = crc32fast::hash(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

fn v0_record(m: &V0Msg) -> Vec<u8> {
    let mut r = vec![0u8; 64];
    r[0..4].copy_from_slice(&m.uid.to_le_bytes());
    r[4] = u8::from(m.expunged);
    r[5] = m.flags;
    r[8..16].copy_from_slice(&m.date.to_le_bytes());
    r[16..24].copy_from_slice(&(m.body.len() as u64).to_le_bytes());
    r[24..32].copy_from_slice(&m.modseq.to_le_bytes());
    let mut guid = MessageGuid::of(&m.body).0;
    if m.wrong_guid {
        guid[0] ^= 0xff;
    }
    r[32..52].copy_from_slice(&guid);
    let mut crc = crc32fast::hash(&r[..60]);
    if m.bad_crc {
        crc ^= 1;
    }
    r[60..64].copy_from_slice(&crc.to_le_bytes());
    r
}

fn account_file(entries: &[(u64, &str)]) -> Vec<u8> {
    let mut s =
        String::from("mailroom-crc-account 1\nnext-id 10\nlast-uidvalidity 4000\ninitialised 1\n");
    for (id, name) in entries {
        s.push_str(&format!("mailbox {id} - {name}\n"));
    }
    let crc = crc32fast::hash(s.as_bytes());
    s.push_str(&format!("crc {crc:08x}\n"));
    s.into_bytes()
}

fn write_v0_mailbox(dir: &Path, msgs: &[V0Msg], trailing_garbage: bool) {
    std::fs::create_dir_all(dir.join("msg")).unwrap();
    let mut index = v0_header(4000, 20, msgs.len() as u32, 50);
    for m in msgs {
        index.extend_from_slice(&v0_record(m));
        if m.file {
            std::fs::write(dir.join("msg").join(m.uid.to_string()), &m.body).unwrap();
        }
    }
    if trailing_garbage {
        index.extend_from_slice(&[0xAB; 23]); // a truncated record
    }
    std::fs::write(dir.join("index"), index).unwrap();
}

fn v0_fixture(data: &Path) -> Vec<V0Msg> {
    let udir = data.join("users").join("legacy");
    std::fs::create_dir_all(udir.join("mailboxes")).unwrap();
    std::fs::write(
        udir.join("account"),
        account_file(&[(1, "INBOX"), (2, "Old")]),
    )
    .unwrap();
    let m = |uid, flags, modseq| V0Msg {
        uid,
        flags,
        expunged: false,
        date: 1_600_000_000 + i64::from(uid),
        modseq,
        body: common::message(u64::from(uid)),
        wrong_guid: false,
        bad_crc: false,
        file: true,
    };
    let msgs = vec![
        m(1, 1, 10),     // \Seen
        m(3, 4 | 2, 12), // \Flagged \Answered
        V0Msg {
            expunged: true,
            file: false,
            ..m(4, 0, 30)
        }, // expunged, kept for VANISHED
        V0Msg {
            bad_crc: true,
            ..m(6, 1, 14)
        }, // record garbage: rebuilt from the file
        V0Msg {
            wrong_guid: true,
            ..m(8, 0, 15)
        }, // file does not match: quarantined
        m(9, 16, 16),    // \Draft
        V0Msg {
            file: false,
            ..m(11, 0, 17)
        }, // file missing: reported expunged
    ];
    write_v0_mailbox(&udir.join("mailboxes").join("1"), &msgs, true);
    // a second mailbox whose index is pure garbage of the right size
    let old = udir.join("mailboxes").join("2");
    std::fs::create_dir_all(old.join("msg")).unwrap();
    std::fs::write(old.join("msg").join("5"), common::message(500)).unwrap();
    let mut junk = v0_header(4001, 6, 1, 3);
    junk.extend_from_slice(&[0x5A; 64]);
    std::fs::write(old.join("index"), junk).unwrap();
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_0_mailbox_converts_on_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let msgs = v0_fixture(dir.path());
    let s = common::open(dir.path(), true);
    let ib = MailboxRef::new("legacy", MailboxName::inbox());
    let st = s.status(&ib, "legacy").await.unwrap();
    assert_eq!(st.uid_validity, UidValidity(4000), "UIDVALIDITY kept");
    assert_eq!(st.messages, 4, "1, 3, 6, 9 live");
    assert!(st.uid_next.0 >= 20);
    // the file is version 1 now
    let mdir = s.mailbox_dir(&ib).await.unwrap();
    let index = std::fs::read(mdir.join("index")).unwrap();
    assert_eq!(u32::from_le_bytes(index[8..12].try_into().unwrap()), 1);
    let m = s.open(&ib, "legacy").await.unwrap();
    let snap = m.snapshot().await.unwrap();
    let got: Vec<(u32, u8)> = snap
        .messages
        .iter()
        .map(|x| (x.uid.0, x.flags.system_bits()))
        .collect();
    assert_eq!(
        got,
        vec![(1, 1), (3, 6), (6, 0), (9, 16)],
        "UIDs and flags kept; the bad record's flags lost"
    );
    let one = &snap.messages[0];
    assert_eq!(one.modseq, ModSeq(10), "modseq kept");
    assert_eq!(one.internal_date.timestamp, 1_600_000_001);
    for x in &snap.messages {
        let src = msgs.iter().find(|m| m.uid == x.uid.0).unwrap();
        assert_eq!(m.content(x.uid).await.unwrap().to_vec(), src.body);
        let sum = m.summaries(&[x.uid]).await.unwrap();
        assert!(
            sum[0].1.header.starts_with(b"From: Sender"),
            "cache rebuilt"
        );
    }
    let ch = m.changes_since(ModSeq(0)).await.unwrap();
    let vanished: Vec<u32> = ch.expunged.iter().map(|e| e.0.0).collect();
    assert_eq!(
        vanished,
        vec![4, 8, 11],
        "expunged, quarantined and lost UIDs are reported"
    );
    assert_eq!(ch.expunged[0].1, ModSeq(30), "old expunge modseq kept");
    assert!(mdir.join("quarantine").read_dir().unwrap().count() == 1);
    assert_eq!(s.verify(&ib).await.unwrap(), 4);
    // the garbage mailbox: rebuilt from its one message file
    let old = MailboxRef::new("legacy", MailboxName::new("Old").unwrap());
    let st = s.status(&old, "legacy").await.unwrap();
    assert_eq!(st.messages, 1);
    assert_eq!(st.uid_validity, UidValidity(4001));
    let m_old = s.open(&old, "legacy").await.unwrap();
    assert_eq!(
        m_old.content(Uid(5)).await.unwrap().to_vec(),
        common::message(500)
    );
    // and the conversion happens once (handles keep the store, and so the
    // data-directory lock, alive)
    drop((m, m_old, s));
    let s = common::open(dir.path(), true);
    let m = s.open(&ib, "legacy").await.unwrap();
    assert_eq!(m.snapshot().await.unwrap(), snap);
}

// ---------------------------------------------------------------------
// Maildir

fn put(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn maildir_fixture(root: &Path) {
    let md = root.join("mdu").join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    put(&md.join("cur/1000.M1.host:2,S"), &common::message(1));
    put(&md.join("cur/1001.M2.host:2,FRab"), &common::message(2));
    put(&md.join("cur/1002.M3.host:2,T"), &common::message(3));
    put(&md.join("new/1003.M4.host"), &common::message(4)); // not in the uidlist
    put(&md.join("cur/1004.M5.host:2,"), b""); // empty file: still a message
    std::fs::create_dir_all(md.join("cur/a-directory")).unwrap(); // skipped
    put(&md.join("tmp/999.half-written"), b"From: x"); // tmp/ is never imported
    put(
        &md.join("dovecot-uidlist"),
        b"3 V777 N50 Gdeadbeef\n7 :1000.M1.host\n9 W123 S100 :1001.M2.host\nthis line is garbage\n12 :1002.M3.host:2,T\n",
    );
    put(&md.join("dovecot-keywords"), b"0 $Work\n1 NonJunk\n");
    // folders
    put(
        &md.join(".Archive.2024/cur/2000.M1.host:2,S"),
        &common::message(20),
    );
    put(
        &md.join(".Entw&APw-rfe/cur/3000.M1.host:2,D"),
        &common::message(30),
    );
    put(
        &md.join(".Drafts/cur/4000.M1.host:2,D"),
        &common::message(40),
    );
    put(&md.join(".bad&name/cur/1.x"), &common::message(50)); // undecodable: skipped
    put(
        &md.join(".Archive.2024/dovecot-uidlist"),
        b"\x00\xff garbage that is not a uidlist",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maildir_imports_on_first_login() {
    let dir = tempfile::tempdir().unwrap();
    let mroot = tempfile::tempdir().unwrap();
    maildir_fixture(mroot.path());
    let opts = CrcOptions {
        durability: false,
        maildir_location: Some(format!("{}/%u/Maildir", mroot.path().display())),
        ..CrcOptions::default()
    };
    let s = CrcStore::open(dir.path(), opts.clone()).unwrap();
    s.ensure_account("mdu").await.unwrap();
    let mut names: Vec<(String, Option<SpecialUse>)> = s
        .list("mdu")
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.name.to_string(), m.special_use))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("Archive/2024".into(), None),
            ("Drafts".into(), Some(SpecialUse::Drafts)),
            ("Entwürfe".into(), None),
            ("INBOX".into(), None),
            ("Junk".into(), Some(SpecialUse::Junk)),
            ("Sent".into(), Some(SpecialUse::Sent)),
            ("Trash".into(), Some(SpecialUse::Trash)),
        ]
    );
    let subs = s.subscriptions("mdu").await.unwrap();
    assert!(subs.contains(&MailboxName::new("Archive/2024").unwrap()));
    let ib = MailboxRef::new("mdu", MailboxName::inbox());
    let m = s.open(&ib, "mdu").await.unwrap();
    let snap = m.snapshot().await.unwrap();
    assert_eq!(snap.uid_validity, UidValidity(777));
    let got: Vec<(u32, String)> = snap
        .messages
        .iter()
        .map(|x| (x.uid.0, x.flags.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (7, "\\Seen".into()),
            (9, "\\Answered \\Flagged $Work NonJunk".into()),
            (12, "\\Deleted".into()),
            (50, String::new()),
            (51, String::new()),
        ]
    );
    assert_eq!(snap.uid_next, Uid(52));
    assert_eq!(
        m.content(Uid(9)).await.unwrap().to_vec(),
        common::message(2)
    );
    assert_eq!(m.content(Uid(51)).await.unwrap().len(), 0);
    // the message from new/ is \Recent
    assert_eq!(m.claim_recent().await.unwrap(), Uid(50));
    let arch = MailboxRef::new("mdu", MailboxName::new("Archive/2024").unwrap());
    let a = s
        .open(&arch, "mdu")
        .await
        .unwrap()
        .snapshot()
        .await
        .unwrap();
    assert_eq!(a.messages.len(), 1);
    assert!(a.messages[0].flags.contains(&Flag::Seen));
    for info in s.list("mdu").await.unwrap() {
        s.verify(&MailboxRef::new("mdu", info.name)).await.unwrap();
    }
    // only on the first login
    let m2 = MailboxRef::new("mdu", MailboxName::new("Later").unwrap());
    s.create(&m2, None).await.unwrap();
    drop(m);
    drop(s);
    let s = CrcStore::open(dir.path(), opts).unwrap();
    s.ensure_account("mdu").await.unwrap();
    assert_eq!(s.list("mdu").await.unwrap().len(), 8);
    assert_eq!(s.status(&ib, "mdu").await.unwrap().messages, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_garbage_files_never_panic() {
    // every prefix of a valid v0 index, and random garbage, as an index
    let mut rng = common::Rng::new(99);
    for case in 0..60u64 {
        let dir = tempfile::tempdir().unwrap();
        let msgs = v0_fixture(dir.path());
        let idx = dir.path().join("users/legacy/mailboxes/1/index");
        let full = std::fs::read(&idx).unwrap();
        let data = if case % 2 == 0 {
            full[..(rng.below(full.len() as u64) as usize)].to_vec()
        } else {
            (0..rng.below(600)).map(|_| rng.next() as u8).collect()
        };
        std::fs::write(&idx, data).unwrap();
        if case % 3 == 0 {
            // and a garbage keyword table and seen file
            let mdir = dir.path().join("users/legacy/mailboxes/1");
            std::fs::write(mdir.join("keywords"), b"MRCRCKWD\x01\x00").unwrap();
            std::fs::create_dir_all(mdir.join("seen")).unwrap();
            std::fs::write(mdir.join("seen/bob"), b"junk").unwrap();
        }
        let s = common::open(dir.path(), false);
        let ib = MailboxRef::new("legacy", MailboxName::inbox());
        // either converted, or reported as corrupt: never a panic, never wrong bytes
        match s.open(&ib, "legacy").await {
            Ok(m) => {
                for x in m.snapshot().await.unwrap().messages {
                    let src = msgs.iter().find(|m| m.uid == x.uid.0).unwrap();
                    assert_eq!(m.content(x.uid).await.unwrap().to_vec(), src.body);
                }
            }
            Err(mailroom_core::Error::Corruption(_)) => {}
            Err(e) => panic!("case {case}: {e}"),
        }
        // reconstruct always gets it back: every file that matches (or has
        // no surviving record) is served again
        s.reconstruct("legacy", Some(&MailboxName::inbox()))
            .await
            .unwrap();
        assert!(s.verify(&ib).await.unwrap() >= 3, "case {case}");
    }
}
