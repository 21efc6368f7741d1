//! The index header's state CRC is the replication state CRC (FORMAT.md,
//! "State CRC"): kept incrementally through appends, keyword changes and
//! expunges (`verify` recounts and compares), and an index written before
//! it (header flag bit 1 clear, the old per-record CRC) is upgraded once on
//! load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use mailroom_core::{Flag, MailboxName, MailboxRef, NewMessage, Storage, StoreOp, Uid};
use mailroom_store_crc::layout::{HDR_FLAG_REPLICATION_CRC, hdr};

fn message(i: u32) -> NewMessage {
    NewMessage {
        flags: [Flag::Keyword(format!("$K{}", i % 3))]
            .into_iter()
            .collect(),
        internal_date: None,
        content: format!("Subject: {i}\r\n\r\nbody {i}\r\n").into(),
    }
}

fn header(index: &Path) -> Vec<u8> {
    std::fs::read(index).unwrap()[..128].to_vec()
}

#[tokio::test]
async fn kept_incrementally_and_upgraded_from_the_old_crc() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = MailboxRef::new("alice", MailboxName::inbox());
    let mdir;
    let crc_before;
    {
        let s = common::open(dir.path(), false);
        s.ensure_account("alice").await.unwrap();
        for i in 0..6 {
            s.append(&inbox, message(i)).await.unwrap();
        }
        let m = s.open(&inbox, "alice").await.unwrap();
        m.store(
            &[Uid(2), Uid(3)],
            &StoreOp::Add(
                [Flag::Flagged, Flag::Deleted, Flag::Keyword("New".into())]
                    .into_iter()
                    .collect(),
            ),
            None,
        )
        .await
        .unwrap();
        m.expunge(None).await.unwrap();
        drop(m);
        assert_eq!(s.verify(&inbox).await.unwrap(), 4, "incremental == recount");
        mdir = s.mailbox_dir(&inbox).await.unwrap();
        let h = header(&mdir.join("index"));
        assert_ne!(
            hdr::FLAGS.read_uint(&h) as u32 & HDR_FLAG_REPLICATION_CRC,
            0
        );
        crc_before = hdr::STATE_CRC.read_uint(&h);
        assert_ne!(crc_before, 0);
    }
    // Make it look like an index from before replication: bit 1 clear and
    // some other CRC in the field.
    let path = mdir.join("index");
    let mut all = std::fs::read(&path).unwrap();
    let flags = hdr::FLAGS.read_uint(&all) & !u64::from(HDR_FLAG_REPLICATION_CRC);
    hdr::FLAGS.put_uint(&mut all, flags);
    hdr::STATE_CRC.put_uint(&mut all, 0x1234_5678);
    let crc = crc32fast::hash(&all[..hdr::CRC.offset]);
    hdr::CRC.put_uint(&mut all, u64::from(crc));
    std::fs::write(&path, &all).unwrap();

    let s = common::open(dir.path(), false);
    let status = s.status(&inbox, "alice").await.unwrap();
    assert_eq!(status.messages, 4);
    assert_eq!(s.verify(&inbox).await.unwrap(), 4);
    let h = header(&path);
    assert_ne!(
        hdr::FLAGS.read_uint(&h) as u32 & HDR_FLAG_REPLICATION_CRC,
        0,
        "upgraded"
    );
    assert_eq!(hdr::STATE_CRC.read_uint(&h), crc_before, "recomputed");
}
