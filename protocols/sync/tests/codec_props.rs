//! Property tests of the frame codec and the typed frames: any frame
//! round-trips; any split of a stream of frames decodes to the same frames
//! (partial input is always "need more"); unknown fields anywhere, of any
//! type, are skipped by the typed readers; damage to any byte of a frame is
//! caught. Also writes the fuzz seed corpus on request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use mailroom_core::replication::{MailboxHead, ReplicaMessage, ReplicaRecord, StateCrc};
use mailroom_core::{
    Flag, Flags, InternalDate, MailboxName, MessageGuid, ModSeq, Uid, UidValidity,
};
use mailroom_sync::SyncError;
use mailroom_sync::handshake::nonce;
use mailroom_sync::msgs::{
    self, AppliedFrame, ErrorFrame, GetRecords, Hello, MailboxKey, NamespaceRequest, Records,
    RecordsPage, Role,
};
use mailroom_sync::wire::{Field, Frame, FrameCodec, Value};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn value(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Value::Uint),
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| Value::Bytes(Bytes::from(b))),
        "[a-zA-Z0-9 /äß]{0,30}".prop_map(Value::Str),
        (5u8..=255, proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(t, b)| {
            Value::Unknown {
                wire_type: t,
                bytes: Bytes::from(b),
            }
        }),
    ];
    if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            4 => leaf,
            1 => proptest::collection::vec(field(depth - 1), 0..5).prop_map(Value::Group),
        ]
        .boxed()
    }
}

fn field(depth: u32) -> BoxedStrategy<Field> {
    (any::<u16>(), value(depth))
        .prop_map(|(tag, value)| Field { tag, value })
        .boxed()
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        any::<u16>(),
        any::<u8>(),
        proptest::collection::vec(field(2), 0..8),
    )
        .prop_map(|(kind, flags, fields)| Frame {
            kind,
            flags,
            fields,
        })
}

fn decode_all(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    for cut in cuts {
        buf.extend_from_slice(&bytes[start..cut.max(start)]);
        start = cut.max(start);
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
    }
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    out
}

fn sample_records() -> Records {
    let content = Bytes::from_static(b"Subject: hi\r\n\r\nbody\r\n");
    Records {
        key: MailboxKey {
            user: "alice".into(),
            name: MailboxName::new("Lists/rust").unwrap(),
            uid_validity: UidValidity(1_700_000_000),
        },
        messages: vec![
            ReplicaMessage {
                record: ReplicaRecord {
                    uid: Uid(7),
                    modseq: ModSeq(40),
                    flags: [Flag::Seen, Flag::Keyword("$Forwarded".into())]
                        .into_iter()
                        .collect(),
                    internal_date: InternalDate {
                        timestamp: 1_700_000_123,
                        offset_minutes: 60,
                    },
                    size: content.len() as u64,
                    guid: MessageGuid::of(&content),
                    seen_by: vec!["bob".into()],
                    save_date: Some(1_700_000_200),
                },
                content: Some(content),
            },
            ReplicaMessage {
                record: ReplicaRecord {
                    uid: Uid(3),
                    modseq: ModSeq(41),
                    flags: Flags::default(),
                    internal_date: InternalDate {
                        timestamp: 0,
                        offset_minutes: 0,
                    },
                    size: 10,
                    guid: MessageGuid::of(b"x"),
                    seen_by: vec![],
                    save_date: None,
                },
                content: None,
            },
        ],
        expunged: vec![(Uid(1), ModSeq(30)), (Uid(2), ModSeq(39))],
        uid_next: Some(Uid(8)),
        highest_modseq: Some(ModSeq(41)),
        expected: None,
    }
}

/// Inserts `extra` fields into `fields` (and into every group inside) at
/// positions chosen by `at`.
fn sprinkle(fields: &mut Vec<Field>, extra: &[Field], at: &[usize]) {
    for (i, f) in extra.iter().enumerate() {
        let pos = at.get(i).copied().unwrap_or(0) % (fields.len() + 1);
        fields.insert(pos, f.clone());
    }
    for f in fields.iter_mut() {
        if let Value::Group(inner) = &mut f.value {
            // Unknown tags only: a known tag inside a group keeps its meaning.
            let extra: Vec<Field> = extra.iter().filter(|f| f.tag >= 1000).cloned().collect();
            for (i, f) in extra.into_iter().enumerate() {
                let pos = at.get(i).copied().unwrap_or(0) % (inner.len() + 1);
                inner.insert(pos, f);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_frame_round_trips(f in frame()) {
        let bytes = f.to_bytes(1 << 20).unwrap();
        prop_assert_eq!(bytes.len(), f.wire_len());
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(FrameCodec::default().decode(&mut buf).unwrap(), Some(f));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_split_decodes_the_same_frames(
        frames in proptest::collection::vec(frame(), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut bytes = BytesMut::new();
        for f in &frames {
            f.encode(&mut bytes, 1 << 20).unwrap();
        }
        prop_assert_eq!(decode_all(&bytes, &cuts), frames);
    }

    #[test]
    fn unknown_fields_are_skipped(
        extra in proptest::collection::vec(
            (1000u16..=u16::MAX, value(1)).prop_map(|(tag, value)| Field { tag, value }),
            0..6,
        ),
        at in proptest::collection::vec(any::<usize>(), 6),
    ) {
        let records = sample_records();
        let mut f = records.to_frame();
        sprinkle(&mut f.fields, &extra, &at);
        let bytes = f.to_bytes(1 << 20).unwrap();
        let decoded = FrameCodec::default()
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        prop_assert_eq!(Records::from_frame(&decoded).unwrap(), records);

        let hello = Hello {
            min_version: 1,
            max_version: 4,
            role: Role::Primary,
            nonce: [7; 32],
            chosen: None,
        };
        let mut f = hello.to_frame();
        sprinkle(&mut f.fields, &extra, &at);
        prop_assert_eq!(Hello::from_frame(&f).unwrap(), hello);
    }

    #[test]
    fn any_damaged_byte_is_caught(f in frame(), pos in any::<usize>(), bit in 0u8..8) {
        let bytes = f.to_bytes(1 << 20).unwrap();
        let mut damaged = BytesMut::from(&bytes[..]);
        let pos = pos % damaged.len();
        damaged[pos] ^= 1 << bit;
        // A damaged length either asks for more, or is refused; any other
        // damage fails the CRC. Never a wrong frame.
        match FrameCodec::default().decode(&mut damaged) {
            Ok(None) => prop_assert!(pos < 4),
            Ok(Some(other)) => prop_assert!(false, "damaged frame accepted: {:?}", other),
            Err(e) => prop_assert!(e.is_peer_fault()),
        }
    }
}

/// Valid frames of every kind, and a few broken ones: the fuzz seeds.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let key = sample_records().key;
    let head = MailboxHead {
        uid_validity: key.uid_validity,
        uid_next: Uid(8),
        highest_modseq: ModSeq(41),
        messages: 1,
        state_crc: StateCrc(0x1234_5678),
    };
    let mut frames = vec![
        (
            "hello",
            Hello {
                min_version: 1,
                max_version: 1,
                role: Role::Primary,
                nonce: nonce(),
                chosen: None,
            }
            .to_frame(),
        ),
        (
            "error",
            ErrorFrame::from_error(&SyncError::VersionUnsupported {
                peer_min: 2,
                peer_max: 3,
                ours_min: 1,
                ours_max: 1,
            })
            .to_frame(),
        ),
        ("get-account", msgs::get_account("alice")),
        ("records", sample_records().to_frame()),
        (
            "applied",
            AppliedFrame {
                head,
                missing: vec![Uid(3)],
            }
            .to_frame(),
        ),
        ("get-digests", msgs::get_digests(&key)),
        (
            "digests",
            msgs::digests(&head, &[(Uid(7), 99), (Uid(9), 1)]),
        ),
        (
            "get-records",
            GetRecords {
                key: key.clone(),
                since: ModSeq(5),
                after: Uid(2),
                limit: 100,
                content_from: Uid(6),
            }
            .to_frame(),
        ),
        (
            "records-page",
            RecordsPage {
                head,
                messages: sample_records().messages,
                more: true,
                expunged: vec![(Uid(4), ModSeq(30))],
                expunged_complete: true,
            }
            .to_frame(),
        ),
        ("unsupported", msgs::unsupported(0x7f02)),
        ("ok", msgs::ok()),
        (
            "rename",
            NamespaceRequest::Rename {
                user: "alice".into(),
                from: MailboxName::new("a").unwrap(),
                to: MailboxName::new("b/c").unwrap(),
            }
            .to_frame(),
        ),
        (
            "quota",
            NamespaceRequest::Quota {
                user: "alice".into(),
                limits: mailroom_core::QuotaLimits {
                    storage_bytes: Some(1 << 30),
                    messages: None,
                },
            }
            .to_frame(),
        ),
    ];
    let state = mailroom_core::replication::AccountState {
        user: "alice".into(),
        mailboxes: vec![mailroom_core::replication::MailboxState {
            name: MailboxName::inbox(),
            head,
            special_use: None,
            acl: mailroom_core::Acl::default(),
            mailbox_id: Some(mailroom_core::MailboxId([3; 16])),
            sync_point: None,
        }],
        subscriptions: vec![MailboxName::inbox()],
        quota: mailroom_core::QuotaLimits::default(),
    };
    frames.push(("account", msgs::account("alice", Some(&state))));
    let mut out = Vec::new();
    for (name, f) in frames {
        let bytes = f.to_bytes(1 << 20).unwrap().to_vec();
        let mut with_chunk = vec![5u8];
        with_chunk.extend_from_slice(&bytes);
        out.push((format!("seed-{name}"), with_chunk.clone()));
        let mut truncated = with_chunk.clone();
        truncated.truncate(truncated.len() / 2);
        out.push((format!("seed-{name}-truncated"), truncated));
        let mut damaged = with_chunk;
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        out.push((format!("seed-{name}-crc"), damaged));
    }
    out.push(("seed-huge-length".into(), vec![1, 0x7f, 0xff, 0xff, 0xff]));
    out.push(("seed-http".into(), b"\x03GET / HTTP/1.1\r\n\r\n".to_vec()));
    out
}

#[test]
fn seeds_pass_the_fuzz_checks_and_can_be_written() {
    let seeds = seeds();
    if std::env::var_os("MAILROOM_SYNC_WRITE_SEEDS").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    // Every seed decodes as expected under the default limits.
    for (name, bytes) in &seeds {
        let mut buf = BytesMut::from(&bytes[1..]);
        let r = FrameCodec::default().decode_eof(&mut buf);
        let broken = name.ends_with("-truncated")
            || name.ends_with("-crc")
            || name.contains("huge")
            || name.contains("http");
        assert_eq!(r.is_err(), broken, "{name}: {r:?}");
    }
}
