//! Encoder tests: exact bytes for every kind of response.

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{Flag, Flags, InternalDate, MessageSummary, ModSeq, SeqSet, Uid, UidValidity};

use super::*;
use crate::command::{Section, SectionText, StatusItem};

fn enc(r: &Response) -> String {
    String::from_utf8(encode_to_vec(r, EncodeOptions::default())).unwrap()
}

fn data(d: Data) -> String {
    enc(&Response::Data(d))
}

fn set(s: &str) -> SeqSet {
    s.parse().unwrap()
}

#[test]
fn status_responses() {
    assert_eq!(
        enc(&StatusResponse::ok("a1", None, "done")),
        "a1 OK done\r\n"
    );
    assert_eq!(
        enc(&StatusResponse::no(
            "a1",
            Some(Code::TryCreate),
            "no\r\nsuch"
        )),
        "a1 NO [TRYCREATE] no  such\r\n"
    );
    assert_eq!(
        enc(&StatusResponse::bad(None, None, "")),
        "* BAD invalid command\r\n"
    );
    assert_eq!(
        enc(&StatusResponse::untagged(StatusKind::Bye, None, "bye")),
        "* BYE bye\r\n"
    );
    assert_eq!(
        enc(&StatusResponse::untagged(StatusKind::PreAuth, None, "hi")),
        "* PREAUTH hi\r\n"
    );
    assert_eq!(enc(&Response::Continue(String::new())), "+ \r\n");
    assert_eq!(enc(&Response::Continue("Ready".into())), "+ Ready\r\n");
}

#[test]
fn every_code() {
    let cases: Vec<(Code, &str)> = vec![
        (Code::Alert, "ALERT"),
        (Code::BadCharset(vec![]), "BADCHARSET"),
        (
            Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()]),
            "BADCHARSET (UTF-8 US-ASCII)",
        ),
        (
            Code::Capability(vec!["IMAP4rev1".into(), "IDLE".into()]),
            "CAPABILITY IMAP4rev1 IDLE",
        ),
        (Code::Parse, "PARSE"),
        (
            Code::PermanentFlags(vec!["\\Seen".into(), "\\*".into()]),
            "PERMANENTFLAGS (\\Seen \\*)",
        ),
        (Code::ReadOnly, "READ-ONLY"),
        (Code::ReadWrite, "READ-WRITE"),
        (Code::TryCreate, "TRYCREATE"),
        (Code::UidNext(Uid(7)), "UIDNEXT 7"),
        (Code::UidValidity(UidValidity(9)), "UIDVALIDITY 9"),
        (Code::Unseen(3), "UNSEEN 3"),
        (
            Code::AppendUid(UidValidity(38505), Uid(3955)),
            "APPENDUID 38505 3955",
        ),
        (
            Code::CopyUid(UidValidity(38505), set("304,319:320"), set("3956:3958")),
            "COPYUID 38505 304,319:320 3956:3958",
        ),
        (Code::UidNotSticky, "UIDNOTSTICKY"),
        (
            Code::HighestModSeq(ModSeq(715_194_045_007)),
            "HIGHESTMODSEQ 715194045007",
        ),
        (Code::NoModSeq, "NOMODSEQ"),
        (Code::Modified(set("7,9")), "MODIFIED 7,9"),
        (Code::Closed, "CLOSED"),
        (Code::NonExistent, "NONEXISTENT"),
        (Code::AlreadyExists, "ALREADYEXISTS"),
        (Code::NoPerm, "NOPERM"),
        (Code::OverQuota, "OVERQUOTA"),
        (Code::Cannot, "CANNOT"),
        (Code::InUse, "INUSE"),
        (Code::Limit, "LIMIT"),
        (Code::ServerBug, "SERVERBUG"),
        (Code::Unavailable, "UNAVAILABLE"),
        (Code::Corruption, "CORRUPTION"),
        (Code::AuthenticationFailed, "AUTHENTICATIONFAILED"),
        (Code::PrivacyRequired, "PRIVACYREQUIRED"),
        (Code::ContactAdmin, "CONTACTADMIN"),
        (Code::ExpungeIssued, "EXPUNGEISSUED"),
        (Code::HasChildren, "HASCHILDREN"),
        (Code::ClientBug, "CLIENTBUG"),
        (Code::TooBig, "TOOBIG"),
        (Code::UidRequired, "UIDREQUIRED"),
    ];
    for (code, text) in cases {
        assert_eq!(
            enc(&StatusResponse::ok("t", Some(code), "x")),
            format!("t OK [{text}] x\r\n")
        );
    }
}

#[test]
fn mailbox_data() {
    assert_eq!(
        data(Data::List {
            kind: ListKind::List,
            attributes: vec!["\\HasNoChildren".into(), "\\Drafts".into()],
            delimiter: Some('/'),
            name: "Entwürfe".into(),
            child_info: Vec::new(),
        }),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entw&APw-rfe\"\r\n"
    );
    let utf8 = encode_to_vec(
        &Response::Data(Data::List {
            kind: ListKind::Lsub,
            attributes: vec![],
            delimiter: None,
            name: "Entwürfe".into(),
            child_info: Vec::new(),
        }),
        EncodeOptions { utf8: true },
    );
    assert_eq!(utf8, "* LSUB () NIL \"Entwürfe\"\r\n".as_bytes());
    assert_eq!(
        data(Data::List {
            kind: ListKind::List,
            attributes: vec!["\\NonExistent".into()],
            delimiter: Some('/'),
            name: "Fruit".into(),
            child_info: vec!["SUBSCRIBED".into()],
        }),
        "* LIST (\\NonExistent) \"/\" \"Fruit\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
    );
    assert_eq!(
        data(Data::List {
            kind: ListKind::Xlist,
            attributes: vec![],
            delimiter: Some('\\'),
            name: "a\"b".into(),
            child_info: Vec::new(),
        }),
        "* XLIST () \"\\\\\" \"a\\\"b\"\r\n"
    );
    assert_eq!(
        data(Data::Status {
            mailbox: "INBOX".into(),
            items: vec![
                (StatusItem::Messages, 3),
                (StatusItem::UidNext, 4),
                (StatusItem::HighestModSeq, 9),
                (StatusItem::Size, 100),
                (StatusItem::Deleted, 0),
            ],
            mailbox_id: None,
        }),
        "* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4 HIGHESTMODSEQ 9 SIZE 100 DELETED 0)\r\n"
    );
    assert_eq!(
        data(Data::Flags(vec!["\\Seen".into(), "$Junk".into()])),
        "* FLAGS (\\Seen $Junk)\r\n"
    );
    assert_eq!(data(Data::Exists(3)), "* 3 EXISTS\r\n");
    assert_eq!(data(Data::Recent(0)), "* 0 RECENT\r\n");
    assert_eq!(data(Data::Expunge(2)), "* 2 EXPUNGE\r\n");
    assert_eq!(
        data(Data::Capability(vec![
            "IMAP4rev1".into(),
            "LITERAL+".into()
        ])),
        "* CAPABILITY IMAP4rev1 LITERAL+\r\n"
    );
    assert_eq!(
        data(Data::Enabled(vec!["CONDSTORE".into()])),
        "* ENABLED CONDSTORE\r\n"
    );
}

#[test]
fn search_data() {
    assert_eq!(
        data(Data::Search {
            ids: vec![],
            modseq: None
        }),
        "* SEARCH\r\n"
    );
    assert_eq!(
        data(Data::Search {
            ids: vec![2, 5],
            modseq: Some(ModSeq(917_162_500))
        }),
        "* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    );
    assert_eq!(
        data(Data::ESearch {
            tag: "A282".into(),
            uid: true,
            min: Some(2),
            max: Some(47),
            count: Some(3),
            all: Some(set("2,10:11")),
            modseq: Some(ModSeq(5)),
            partial: None,
        }),
        "* ESEARCH (TAG \"A282\") UID MIN 2 MAX 47 COUNT 3 ALL 2,10:11 MODSEQ 5\r\n"
    );
    assert_eq!(
        data(Data::ESearch {
            tag: "t".into(),
            uid: false,
            min: None,
            max: None,
            count: Some(0),
            all: None,
            modseq: None,
            partial: None,
        }),
        "* ESEARCH (TAG \"t\") COUNT 0\r\n"
    );
    // RFC 5267 §4.4 and §4.3.3 examples.
    let range = |from_end, lo, hi| crate::command::PartialRange { from_end, lo, hi };
    assert_eq!(
        data(Data::ESearch {
            tag: "A04".into(),
            uid: true,
            min: None,
            max: None,
            count: None,
            all: None,
            modseq: None,
            partial: Some((range(false, 24000, 24500), None)),
        }),
        "* ESEARCH (TAG \"A04\") UID PARTIAL (24000:24500 NIL)\r\n"
    );
    assert_eq!(
        data(Data::ESearch {
            tag: "A05".into(),
            uid: false,
            min: None,
            max: None,
            count: None,
            all: None,
            modseq: None,
            partial: Some((range(true, 1, 2), Some(set("9,7")))),
        }),
        "* ESEARCH (TAG \"A05\") PARTIAL (-1:-2 9,7)\r\n"
    );
    assert_eq!(
        data(Data::ESearchUpdate {
            tag: "C01".into(),
            uid: true,
            remove: vec![(0, set("32768"))],
            add: vec![(1, set("2733")), (1, set("2731:2732"))],
        }),
        "* ESEARCH (TAG \"C01\") UID REMOVEFROM (0 32768) ADDTO (1 2733 1 2731:2732)\r\n"
    );
    assert_eq!(
        data(Data::Vanished {
            earlier: true,
            uids: set("41,43:116")
        }),
        "* VANISHED (EARLIER) 41,43:116\r\n"
    );
    assert_eq!(
        data(Data::Vanished {
            earlier: false,
            uids: set("405")
        }),
        "* VANISHED 405\r\n"
    );
}

#[test]
fn other_data() {
    assert_eq!(
        data(Data::Namespace {
            personal: vec![("".into(), '/')],
            other: vec![],
            shared: vec![("Shared/".into(), '/')]
        }),
        "* NAMESPACE ((\"\" \"/\")) NIL ((\"Shared/\" \"/\"))\r\n"
    );
    assert_eq!(data(Data::Id(None)), "* ID NIL\r\n");
    assert_eq!(
        data(Data::Id(Some(vec![("name".into(), "Mailroom".into())]))),
        "* ID (\"name\" \"Mailroom\")\r\n"
    );
    assert_eq!(
        data(Data::Acl {
            mailbox: "INBOX".into(),
            entries: vec![
                ("fred".into(), "rwipslxetad".into()),
                ("anyone".into(), "".into())
            ]
        }),
        "* ACL \"INBOX\" fred rwipslxetad anyone \"\"\r\n"
    );
    assert_eq!(
        data(Data::ListRights {
            mailbox: "INBOX".into(),
            identifier: "smith".into(),
            required: "".into(),
            optional: vec!["l".into(), "r".into(), "s".into()]
        }),
        "* LISTRIGHTS \"INBOX\" smith \"\" l r s\r\n"
    );
    assert_eq!(
        data(Data::MyRights {
            mailbox: "x".into(),
            rights: "rwi".into()
        }),
        "* MYRIGHTS \"x\" rwi\r\n"
    );
    assert_eq!(
        data(Data::Quota {
            root: "".into(),
            resources: vec![("STORAGE".into(), 10, 512), ("MESSAGE".into(), 1, 100)]
        }),
        "* QUOTA \"\" (STORAGE 10 512 MESSAGE 1 100)\r\n"
    );
    assert_eq!(
        data(Data::QuotaRoot {
            mailbox: "INBOX".into(),
            roots: vec!["".into()]
        }),
        "* QUOTAROOT \"INBOX\" \"\"\r\n"
    );
}

#[test]
fn uidfetch_is_named_by_uid() {
    let r = enc(&Response::Data(Data::UidFetch {
        uid: Uid(4_000_000_000),
        items: vec![
            FetchItem::Uid(Uid(4_000_000_000)),
            FetchItem::ModSeq(ModSeq(7)),
            FetchItem::BodySection {
                label: SectionLabel::Rfc822,
                origin: None,
                data: Some(Bytes::from_static(b"x")),
            },
        ],
    }));
    assert_eq!(
        r,
        "* 4000000000 UIDFETCH (UID 4000000000 MODSEQ (7) RFC822 {1}\r\nx)\r\n"
    );
}

#[test]
fn fetch_items_and_bodies_are_not_copied() {
    let body = Bytes::from_static(b"Subject: hi\r\n\r\nbody\r\n");
    let mut flags = Flags::default();
    flags.insert(Flag::Seen);
    flags.insert(Flag::Keyword("$Forwarded".into()));
    let resp = Response::Data(Data::Fetch {
        seq: 12,
        items: vec![
            FetchItem::Uid(Uid(40)),
            FetchItem::Flags {
                flags,
                recent: true,
            },
            FetchItem::InternalDate(InternalDate {
                timestamp: 1_577_869_200,
                offset_minutes: 60,
            }),
            FetchItem::Rfc822Size(22),
            FetchItem::ModSeq(ModSeq(3)),
            FetchItem::BodySection {
                label: SectionLabel::Body(Section {
                    part: vec![1, 2],
                    text: Some(SectionText::HeaderFields(vec!["From".into(), "X Y".into()])),
                }),
                origin: Some(0),
                data: Some(body.clone()),
            },
            FetchItem::BodySection {
                label: SectionLabel::Rfc822Header,
                origin: None,
                data: None,
            },
        ],
    });
    let mut chunks = Vec::new();
    encode(&resp, EncodeOptions::default(), &mut chunks);
    assert!(
        chunks
            .iter()
            .any(|c| c.as_ptr() == body.as_ptr() && c.len() == body.len()),
        "the body must be appended as its own chunk"
    );
    let all = String::from_utf8(chunks.concat()).unwrap();
    assert_eq!(
        all,
        "* 12 FETCH (UID 40 FLAGS (\\Seen $Forwarded \\Recent) \
         INTERNALDATE \"01-Jan-2020 10:00:00 +0100\" RFC822.SIZE 22 MODSEQ (3) \
         BODY[1.2.HEADER.FIELDS (From \"X Y\")]<0> {21}\r\nSubject: hi\r\n\r\nbody\r\n \
         RFC822.HEADER NIL)\r\n"
    );
}

#[test]
fn section_labels() {
    let label = |s: Section| {
        let r = Response::Data(Data::Fetch {
            seq: 1,
            items: vec![FetchItem::BodySection {
                label: SectionLabel::Body(s),
                origin: None,
                data: Some(Bytes::new()),
            }],
        });
        enc(&r)
    };
    assert_eq!(label(Section::default()), "* 1 FETCH (BODY[] {0}\r\n)\r\n");
    assert_eq!(
        label(Section {
            part: vec![3],
            text: Some(SectionText::Mime)
        }),
        "* 1 FETCH (BODY[3.MIME] {0}\r\n)\r\n"
    );
    assert_eq!(
        label(Section {
            part: vec![],
            text: Some(SectionText::HeaderFieldsNot(vec!["A".into()]))
        }),
        "* 1 FETCH (BODY[HEADER.FIELDS.NOT (A)] {0}\r\n)\r\n"
    );
    assert_eq!(
        label(Section {
            part: vec![],
            text: Some(SectionText::Text)
        }),
        "* 1 FETCH (BODY[TEXT] {0}\r\n)\r\n"
    );
    assert_eq!(
        label(Section {
            part: vec![2],
            text: Some(SectionText::Header)
        }),
        "* 1 FETCH (BODY[2.HEADER] {0}\r\n)\r\n"
    );
}
#[test]
fn structure_items_use_the_mime_writers() {
    let summary = Arc::new(MessageSummary::parse(
        b"From: a@b.c\r\nSubject: hi\r\n\r\nhello\r\n",
    ));
    let r = enc(&Response::Data(Data::Fetch {
        seq: 1,
        items: vec![
            FetchItem::Envelope(summary.clone()),
            FetchItem::Body(summary.clone()),
            FetchItem::BodyStructure(summary),
        ],
    }));
    assert!(r.starts_with("* 1 FETCH (ENVELOPE ("), "{r}");
    assert!(
        r.contains(" BODY (\"text\" \"plain\"") || r.contains(" BODY (\"TEXT\" \"PLAIN\""),
        "{r}"
    );
    assert!(r.contains(" BODYSTRUCTURE ("), "{r}");
    assert!(r.ends_with(")\r\n"));
}

#[test]
fn nul_bytes_never_go_out_in_a_literal() {
    let r = Response::Data(Data::Fetch {
        seq: 1,
        items: vec![FetchItem::BodySection {
            label: SectionLabel::Rfc822,
            origin: None,
            data: Some(Bytes::from_static(b"a\0b")),
        }],
    });
    assert_eq!(
        encode_to_vec(&r, EncodeOptions::default()),
        b"* 1 FETCH (RFC822 {3}\r\na\x80b)\r\n"
    );
}
