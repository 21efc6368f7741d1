//! The response encoder's output checked by an independent parser:
//! every response imap-codec understands must parse there, whole.
//!
//! Not checked there (imap-codec 2.0.0-alpha.10 has no parser for them, their
//! exact bytes are tested in the unit tests instead): ESEARCH, the ACL
//! responses (ACL, LISTRIGHTS, MYRIGHTS) and XLIST.

use std::sync::Arc;

use bytes::Bytes;
use imap_codec::decode::Decoder as _;
use imap_codec::{GreetingCodec, ResponseCodec};
use mailroom_core::{Flag, Flags, InternalDate, MessageSummary, ModSeq, SeqSet, Uid, UidValidity};
use mailroom_imap::command::{Section, SectionText, StatusItem};
use mailroom_imap::response::*;

fn set(s: &str) -> SeqSet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn summary() -> Arc<MessageSummary> {
    Arc::new(MessageSummary::parse(
        b"From: \"Ann \\\"A\\\" Example\" <ann@example.com>\r\n\
To: team: bob@example.com, carol@example.org;\r\n\
Subject: =?utf-8?q?caf=C3=A9?= \"quoted\"\r\n\
Message-ID: <1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n\
--b1\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"m.eml\"\r\n\r\n\
Subject: inner\r\n\r\ninner body\r\n\
--b1--\r\n",
    ))
}

fn responses() -> Vec<Response> {
    let mut flags = Flags::default();
    flags.insert(Flag::Seen);
    flags.insert(Flag::Keyword("$Forwarded".into()));
    let s = summary();
    vec![
        StatusResponse::ok("a1", None, "done"),
        StatusResponse::ok("a1", Some(Code::ReadWrite), "SELECT completed"),
        StatusResponse::no("a1", Some(Code::TryCreate), "no such\r\nmailbox"),
        StatusResponse::bad(None, None, "bad"),
        StatusResponse::bad(Some("a1"), Some(Code::TooBig), "literal too large"),
        StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::UidValidity(UidValidity(3857529045))),
            "UIDs valid",
        ),
        StatusResponse::untagged(StatusKind::Ok, Some(Code::UidNext(Uid(4392))), "next"),
        StatusResponse::untagged(StatusKind::Ok, Some(Code::Unseen(12)), "first unseen"),
        StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::PermanentFlags(vec![
                "\\Deleted".into(),
                "\\Seen".into(),
                "\\*".into(),
            ])),
            "limited",
        ),
        StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::HighestModSeq(ModSeq(715194045007))),
            "x",
        ),
        StatusResponse::untagged(StatusKind::Ok, Some(Code::NoModSeq), "x"),
        StatusResponse::ok("a", Some(Code::Modified(set("7,9"))), "x"),
        StatusResponse::ok(
            "a",
            Some(Code::AppendUid(UidValidity(38505), Uid(3955))),
            "APPEND done",
        ),
        StatusResponse::ok(
            "a",
            Some(Code::CopyUid(
                UidValidity(38505),
                set("304,319:320"),
                set("3956:3958"),
            )),
            "done",
        ),
        StatusResponse::ok(
            "a",
            Some(Code::Capability(vec!["IMAP4rev1".into(), "IDLE".into()])),
            "hi",
        ),
        StatusResponse::no("a", Some(Code::BadCharset(vec!["UTF-8".into()])), "charset"),
        StatusResponse::no("a", Some(Code::NonExistent), "x"),
        StatusResponse::no("a", Some(Code::OverQuota), "x"),
        StatusResponse::untagged(StatusKind::Bye, None, "logging out"),
        Response::Continue("Ready".into()),
        Response::Continue("dGVzdA==".into()),
        Response::Data(Data::Capability(vec![
            "IMAP4rev1".into(),
            "LITERAL+".into(),
            "AUTH=PLAIN".into(),
        ])),
        Response::Data(Data::List {
            kind: ListKind::List,
            attributes: vec!["\\HasNoChildren".into(), "\\Sent".into()],
            delimiter: Some('/'),
            name: "Entwürfe/日本語".into(),
            child_info: Vec::new(),
        }),
        Response::Data(Data::List {
            kind: ListKind::Lsub,
            attributes: vec![],
            delimiter: None,
            name: "a \"b\"".into(),
            child_info: Vec::new(),
        }),
        Response::Data(Data::Status {
            mailbox: "INBOX".into(),
            items: vec![
                (StatusItem::Messages, 231),
                (StatusItem::UidNext, 44292),
                (StatusItem::Unseen, 3),
                (StatusItem::HighestModSeq, 7),
                (StatusItem::Size, 1000),
            ],
            mailbox_id: None,
        }),
        Response::Data(Data::Search {
            ids: vec![2, 84, 882],
            modseq: None,
        }),
        Response::Data(Data::Search {
            ids: vec![],
            modseq: None,
        }),
        Response::Data(Data::Search {
            ids: vec![2, 5],
            modseq: Some(ModSeq(917162500)),
        }),
        Response::Data(Data::Flags(vec![
            "\\Answered".into(),
            "\\Seen".into(),
            "$Junk".into(),
        ])),
        Response::Data(Data::Exists(23)),
        Response::Data(Data::Recent(5)),
        Response::Data(Data::Expunge(44)),
        Response::Data(Data::Vanished {
            earlier: true,
            uids: set("300:310,405,411"),
        }),
        Response::Data(Data::Vanished {
            earlier: false,
            uids: set("405"),
        }),
        Response::Data(Data::Namespace {
            personal: vec![("".into(), '/')],
            other: vec![("Other Users/".into(), '/')],
            shared: vec![],
        }),
        Response::Data(Data::Id(None)),
        Response::Data(Data::Id(Some(vec![("name".into(), "Mailroom".into())]))),
        Response::Data(Data::Enabled(vec!["CONDSTORE".into()])),
        Response::Data(Data::Quota {
            root: "".into(),
            resources: vec![("STORAGE".into(), 10, 512)],
        }),
        Response::Data(Data::QuotaRoot {
            mailbox: "INBOX".into(),
            roots: vec!["".into()],
        }),
        Response::Data(Data::Fetch {
            seq: 12,
            items: vec![
                FetchItem::Uid(Uid(40)),
                FetchItem::Flags {
                    flags: flags.clone(),
                    recent: true,
                },
                FetchItem::InternalDate(InternalDate {
                    timestamp: 1_577_869_200,
                    offset_minutes: -420,
                }),
                FetchItem::Rfc822Size(4286),
                FetchItem::ModSeq(ModSeq(12121231000)),
            ],
        }),
        Response::Data(Data::Fetch {
            seq: 1,
            items: vec![
                FetchItem::Envelope(s.clone()),
                FetchItem::Body(s.clone()),
                FetchItem::BodyStructure(s),
            ],
        }),
        Response::Data(Data::Fetch {
            seq: 2,
            items: vec![
                FetchItem::BodySection {
                    label: SectionLabel::Body(Section {
                        part: vec![1, 2],
                        text: Some(SectionText::HeaderFields(vec!["From".into(), "X-Y".into()])),
                    }),
                    origin: Some(0),
                    data: Some(Bytes::from_static(b"From: a\r\n\r\n")),
                },
                FetchItem::BodySection {
                    label: SectionLabel::Body(Section::default()),
                    origin: None,
                    data: Some(Bytes::from_static(b"\x00\xff binary")),
                },
                FetchItem::BodySection {
                    label: SectionLabel::Body(Section {
                        part: vec![3],
                        text: Some(SectionText::Mime),
                    }),
                    origin: None,
                    data: None,
                },
                FetchItem::BodySection {
                    label: SectionLabel::Rfc822,
                    origin: None,
                    data: Some(Bytes::from_static(b"x")),
                },
                FetchItem::BodySection {
                    label: SectionLabel::Rfc822Header,
                    origin: None,
                    data: Some(Bytes::from_static(b"")),
                },
                FetchItem::BodySection {
                    label: SectionLabel::Rfc822Text,
                    origin: None,
                    data: None,
                },
            ],
        }),
    ]
}

#[test]
fn every_response_parses_with_imap_codec() {
    let mut failures = Vec::new();
    for r in responses() {
        let bytes = encode_to_vec(&r, EncodeOptions::default());
        match ResponseCodec::default().decode(&bytes) {
            Ok((b"", _)) => {}
            Ok((rest, _)) => failures.push(format!(
                "{}: trailing {:?}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(rest)
            )),
            Err(e) => failures.push(format!("{}: {e:?}", String::from_utf8_lossy(&bytes))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn greetings_parse_with_imap_codec() {
    for r in [
        StatusResponse::untagged(StatusKind::PreAuth, None, "welcome"),
        StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::Capability(vec![
                "IMAP4rev1".into(),
                "STARTTLS".into(),
            ])),
            "ready",
        ),
        StatusResponse::untagged(StatusKind::Bye, None, "too busy"),
    ] {
        let bytes = encode_to_vec(&r, EncodeOptions::default());
        let parsed = GreetingCodec::default().decode(&bytes);
        assert!(
            matches!(parsed, Ok((b"", _))),
            "{}: {parsed:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn responses_never_carry_bare_line_ends_in_text() {
    for r in responses() {
        let bytes = encode_to_vec(&r, EncodeOptions::default());
        if !matches!(r, Response::Data(Data::Fetch { .. })) {
            // Outside literals, CRLF appears only at the end.
            let body = &bytes[..bytes.len() - 2];
            let has_literal = body.windows(3).any(|w| w == b"}\r\n");
            if !has_literal {
                assert!(!body.contains(&b'\n') && !body.contains(&b'\r'), "{r:?}");
            }
        }
        assert!(bytes.ends_with(b"\r\n"));
    }
}
