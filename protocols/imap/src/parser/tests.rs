//! Unit tests of the framing layer and of each command's grammar.

use bytes::BytesMut;
use mailroom_core::{Flag, InternalDate, ModSeq, SeqSet, SpecialUse, UidValidity};

use super::*;
use crate::command::*;

fn dec() -> Decoder {
    Decoder::new(Limits::default())
}

fn one(input: &[u8]) -> Decoded {
    let mut d = dec();
    let mut b = BytesMut::from(input);
    let r = d.decode(&mut b);
    assert!(b.is_empty(), "left over: {b:?}");
    r
}

fn cmd(input: &str) -> Command {
    match one(format!("{input}\r\n").as_bytes()) {
        Decoded::Request(r) => r.command,
        other => panic!("{input:?}: {other:?}"),
    }
}

fn bad(input: &str) -> String {
    match one(format!("{input}\r\n").as_bytes()) {
        Decoded::Error { reason, .. } => reason,
        other => panic!("{input:?} should fail: {other:?}"),
    }
}

fn set(s: &str) -> SeqSet {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- framing

#[test]
fn incremental_byte_by_byte() {
    let input = b"a1 LOGIN {4}\r\nuser {6+}\r\nsecret\r\na2 NOOP\r\n";
    let mut d = dec();
    let mut b = BytesMut::new();
    let mut out = Vec::new();
    for &byte in input.iter() {
        b.extend_from_slice(&[byte]);
        loop {
            match d.decode(&mut b) {
                Decoded::Incomplete => break,
                other => out.push(other),
            }
        }
    }
    assert_eq!(
        out,
        vec![
            Decoded::NeedContinuation,
            Decoded::Request(Request {
                tag: "a1".into(),
                command: Command::Login {
                    username: "user".into(),
                    password: "secret".into()
                }
            }),
            Decoded::Request(Request {
                tag: "a2".into(),
                command: Command::Noop
            }),
        ]
    );
    assert!(b.is_empty());
}

#[test]
fn continuation_only_for_synchronising_literals() {
    let mut d = dec();
    let mut b = BytesMut::from(&b"a APPEND INBOX {5}\r\n"[..]);
    assert_eq!(d.decode(&mut b), Decoded::NeedContinuation);
    assert_eq!(d.decode(&mut b), Decoded::Incomplete);
    b.extend_from_slice(b"hel");
    assert_eq!(d.decode(&mut b), Decoded::Incomplete);
    b.extend_from_slice(b"lo\r\n");
    let Decoded::Request(r) = d.decode(&mut b) else {
        panic!()
    };
    let Command::Append { message, .. } = r.command else {
        panic!()
    };
    assert_eq!(&message[..], b"hello");

    let mut b = BytesMut::from(&b"a APPEND INBOX {5+}\r\nhello\r\n"[..]);
    assert!(matches!(d.decode(&mut b), Decoded::Request(_)));
}

#[test]
fn empty_lines_are_ignored_and_bare_lf_accepted() {
    let mut d = dec();
    let mut b = BytesMut::from(&b"\r\n\na NOOP\nb NOOP\r\n"[..]);
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "a"));
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "b"));
    assert_eq!(d.decode(&mut b), Decoded::Incomplete);
}

#[test]
fn long_line_without_crlf_is_bounded_and_recovers() {
    let limits = Limits {
        max_line: 1024,
        ..Limits::default()
    };
    let mut d = Decoder::new(limits);
    let mut b = BytesMut::new();
    b.extend_from_slice(b"t1 NOOP ");
    let mut answered = 0;
    for _ in 0..1024 {
        b.extend_from_slice(&[b'x'; 1024]);
        match d.decode(&mut b) {
            Decoded::Incomplete => {}
            Decoded::Error { tag, reason, .. } => {
                assert_eq!(tag.as_deref(), Some("t1"));
                assert!(reason.contains("too long"));
                answered += 1;
            }
            other => panic!("{other:?}"),
        }
        assert!(b.len() <= 2048, "buffer grew to {}", b.len());
    }
    assert_eq!(answered, 1);
    b.extend_from_slice(b"\r\nt2 NOOP\r\n");
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "t2"));
}

#[test]
fn long_complete_line_is_an_error() {
    let mut d = Decoder::new(Limits {
        max_line: 100,
        ..Limits::default()
    });
    let line = format!("x1 SEARCH {}\r\nx2 NOOP\r\n", "ALL ".repeat(50));
    let mut b = BytesMut::from(line.as_bytes());
    assert!(matches!(d.decode(&mut b), Decoded::Error { tag: Some(t), .. } if t == "x1"));
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "x2"));
}

#[test]
fn long_line_announcing_a_non_sync_literal_skips_it() {
    let mut d = Decoder::new(Limits {
        max_line: 100,
        ..Limits::default()
    });
    let line = format!(
        "x1 APPEND {} {{5+}}\r\nhello\r\nx2 NOOP\r\n",
        "a".repeat(200)
    );
    let mut b = BytesMut::from(line.as_bytes());
    assert!(matches!(d.decode(&mut b), Decoded::Error { .. }));
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "x2"));
}

#[test]
fn oversized_literals() {
    let limits = Limits {
        max_literal: 10,
        ..Limits::default()
    };
    let mut d = Decoder::new(limits);
    // An APPEND over the limit is refused (NO, RFC 7889) before the "+".
    let mut b = BytesMut::from(&b"a APPEND INBOX {11}\r\nb NOOP\r\n"[..]);
    match d.decode(&mut b) {
        Decoded::Refused { tag, code, .. } => {
            assert_eq!(tag, "a");
            assert_eq!(code, Some(crate::response::Code::TooBig));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "b"));
    // Another command with such a literal is bad.
    let mut b = BytesMut::from(&b"a LOGIN {11}\r\nb NOOP\r\n"[..]);
    match d.decode(&mut b) {
        Decoded::Error { tag, code, .. } => {
            assert_eq!(tag.as_deref(), Some("a"));
            assert_eq!(code, Some(crate::response::Code::TooBig));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "b"));

    let mut b = BytesMut::from(&b"c APPEND INBOX {99999999999999+}\r\n"[..]);
    assert!(matches!(d.decode(&mut b), Decoded::Fatal { tag: Some(t), .. } if t == "c"));
    // At the limit it is taken.
    let mut d = Decoder::new(limits);
    let mut b = BytesMut::from(&b"a APPEND INBOX {10}\r\n"[..]);
    assert_eq!(d.decode(&mut b), Decoded::NeedContinuation);
}

#[test]
fn literal_minus_refuses_large_non_synchronizing_literals() {
    let limits = Limits {
        literal_minus: true,
        ..Limits::default()
    };
    let mut d = Decoder::new(limits);
    let mut input = b"a APPEND INBOX {4097+}\r\n".to_vec();
    input.extend_from_slice(&[b'x'; 4097]);
    input.extend_from_slice(b" trailing words {3+}\r\nabc\r\nb NOOP\r\n");
    // Fed in pieces: the refusal comes at the announcement, the bytes are
    // dropped as they arrive, and the next command parses.
    let mut got = Vec::new();
    let mut b = BytesMut::new();
    for chunk in input.chunks(1000) {
        b.extend_from_slice(chunk);
        loop {
            match d.decode(&mut b) {
                Decoded::Incomplete => break,
                other => got.push(other),
            }
        }
    }
    assert_eq!(got.len(), 2, "{got:?}");
    match &got[0] {
        Decoded::Error { tag, code, .. } => {
            assert_eq!(tag.as_deref(), Some("a"));
            assert_eq!(*code, Some(crate::response::Code::TooBig));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&got[1], Decoded::Request(r) if r.tag == "b"),
        "{got:?}"
    );
    // 4096 octets are fine, and a synchronizing literal of any allowed size.
    let mut b = BytesMut::from(&b"c LOGIN {4096+}\r\n"[..]);
    b.extend_from_slice(&[b'u'; 4096]);
    b.extend_from_slice(b" pw\r\n");
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "c"));
    let mut b = BytesMut::from(&b"d APPEND INBOX {100000}\r\n"[..]);
    assert_eq!(d.decode(&mut b), Decoded::NeedContinuation);
    // Without LITERAL-, the large non-synchronizing literal is taken.
    let mut d = Decoder::new(Limits::default());
    let mut b = BytesMut::from(&b"e LOGIN {5000+}\r\n"[..]);
    b.extend_from_slice(&[b'u'; 5000]);
    b.extend_from_slice(b" pw\r\n");
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.tag == "e"));
}

#[test]
fn literal_in_quoted_string_is_not_a_literal() {
    assert_eq!(
        cmd("a LOGIN \"{3}\" pw"),
        Command::Login {
            username: "{3}".into(),
            password: "pw".into()
        }
    );
}

#[test]
fn literal_marker_not_at_line_end() {
    assert!(bad("a LOGIN {3} x").contains("literal"));
}

#[test]
fn decode_line_bounds() {
    let mut d = Decoder::new(Limits {
        max_line: 8,
        ..Limits::default()
    });
    let mut b = BytesMut::from(&b"DONE\r\n"[..]);
    assert_eq!(
        d.decode_line(&mut b),
        Some(Ok(bytes::Bytes::from_static(b"DONE")))
    );
    assert_eq!(d.decode_line(&mut b), None);
    b.extend_from_slice(b"0123456789abcdef");
    assert_eq!(d.decode_line(&mut b), Some(Err(LineTooLong)));
    b.extend_from_slice(b"more\r\nok\r\n");
    assert_eq!(
        d.decode_line(&mut b),
        Some(Ok(bytes::Bytes::from_static(b"ok")))
    );
}

#[test]
fn decode_line_too_long_keeps_what_follows_in_the_same_read() {
    let mut d = Decoder::new(Limits {
        max_line: 8,
        ..Limits::default()
    });
    // The whole long line, its end and the next command arrive together.
    let mut b = BytesMut::from(&b"0123456789abcdef\r\na NOOP\r\n"[..]);
    assert_eq!(d.decode_line(&mut b), Some(Err(LineTooLong)));
    match d.decode(&mut b) {
        Decoded::Request(r) => assert_eq!(r.tag, "a"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn errors_carry_tag_and_reason() {
    match one(b"a1 FROBNICATE\r\n") {
        Decoded::Error { tag, reason, .. } => {
            assert_eq!(tag.as_deref(), Some("a1"));
            assert_eq!(reason, "unknown command");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        one(b"+bad NOOP\r\n"),
        Decoded::Error { tag: None, .. }
    ));
    assert!(bad("a NO\0OP").contains("NUL"));
    assert!(bad("a LOGIN us\0er pw").contains("NUL"));
    assert!(bad("a NOOP extra").contains("extra"));
    assert!(bad("a FETCH 1 (FLAGS UID").contains("parenthes"));
    assert!(bad("a FETCH 1 (FLAGS))").contains("end"));
    assert!(bad("a1").contains("command"));
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("a SEARCH {}ALL{}", "(".repeat(100), ")".repeat(100));
    assert!(bad(&deep).contains("deep"));
    let nots = format!("a SEARCH {}ALL", "NOT ".repeat(100));
    assert!(bad(&nots).contains("deep"));
    let ok = format!("a SEARCH {}ALL{}", "(".repeat(10), ")".repeat(10));
    cmd(&ok);
}

// ---------------------------------------------------------------- commands

#[test]
fn any_state_commands() {
    assert_eq!(cmd("a1 NOOP"), Command::Noop);
    assert_eq!(cmd("a1 capability"), Command::Capability);
    assert_eq!(cmd("a1 LOGOUT"), Command::Logout);
    assert_eq!(cmd("a1 STARTTLS"), Command::StartTls);
    assert_eq!(cmd("a1 ID NIL"), Command::Id(None));
    assert_eq!(
        cmd("a1 ID (\"name\" \"Thunderbird\" \"version\" NIL)"),
        Command::Id(Some(vec![
            ("name".into(), Some("Thunderbird".into())),
            ("version".into(), None)
        ]))
    );
    assert_eq!(
        cmd("a1 ENABLE condstore UTF8=ACCEPT"),
        Command::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])
    );
    assert_eq!(cmd("a1 IDLE"), Command::Idle);
    assert_eq!(cmd("a1 NAMESPACE"), Command::Namespace);
    assert_eq!(cmd("a1 UNSELECT"), Command::Unselect);
    assert_eq!(cmd("a1 CHECK"), Command::Check);
    assert_eq!(cmd("a1 CLOSE"), Command::Close);
    assert_eq!(cmd("a1 EXPUNGE"), Command::Expunge { uids: None });
    assert_eq!(
        cmd("a1 UID EXPUNGE 1:3,5"),
        Command::Expunge {
            uids: Some(set("1:3,5"))
        }
    );
}

#[test]
fn authenticate() {
    assert_eq!(
        cmd("a AUTHENTICATE plain"),
        Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: None
        }
    );
    assert_eq!(
        cmd("a AUTHENTICATE PLAIN AHVzZXIAcGFzcw=="),
        Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some("AHVzZXIAcGFzcw==".into())
        }
    );
    assert_eq!(
        cmd("a AUTHENTICATE PLAIN ="),
        Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some("=".into())
        }
    );
    assert!(bad("a AUTHENTICATE PLAIN abc").contains("base64"));
}

#[test]
fn login_forms() {
    let expect = Command::Login {
        username: "joe".into(),
        password: "p\"w\\d".into(),
    };
    assert_eq!(cmd(r#"a LOGIN joe "p\"w\\d""#), expect);
    let mut d = dec();
    let mut b = BytesMut::from(&b"a LOGIN {3}\r\njoe {5+}\r\np\"w\\d\r\n"[..]);
    assert_eq!(d.decode(&mut b), Decoded::NeedContinuation);
    assert!(matches!(d.decode(&mut b), Decoded::Request(r) if r.command == expect));
}

#[test]
fn select_and_examine() {
    assert_eq!(
        cmd("a SELECT inbox"),
        Command::Select {
            mailbox: "inbox".into(),
            params: SelectParams::default()
        }
    );
    assert_eq!(
        cmd("a EXAMINE \"Entw&APw-rfe\" (CONDSTORE)"),
        Command::Examine {
            mailbox: "Entwürfe".into(),
            params: SelectParams {
                condstore: true,
                qresync: None
            }
        }
    );
    assert_eq!(
        cmd("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 4:6)))"),
        Command::Select {
            mailbox: "INBOX".into(),
            params: SelectParams {
                condstore: false,
                qresync: Some(QresyncParams {
                    uid_validity: UidValidity(67_890_007),
                    modseq: ModSeq(20_050_715_194_045_000),
                    known_uids: Some(set("41,43:211,214:541")),
                    seq_match: Some((set("1:3"), set("4:6"))),
                })
            }
        }
    );
    assert_eq!(
        cmd("a SELECT INBOX (QRESYNC (1 2))"),
        Command::Select {
            mailbox: "INBOX".into(),
            params: SelectParams {
                condstore: false,
                qresync: Some(QresyncParams {
                    uid_validity: UidValidity(1),
                    modseq: ModSeq(2),
                    known_uids: None,
                    seq_match: None,
                })
            }
        }
    );
    assert!(bad("a SELECT INBOX (FOO)").contains("SELECT"));
    assert!(bad("a SELECT INBOX ()").contains("empty"));
}

#[test]
fn mailbox_commands() {
    assert_eq!(
        cmd("a CREATE Sent (USE (\\Sent))"),
        Command::Create {
            mailbox: "Sent".into(),
            special_use: vec![SpecialUse::Sent]
        }
    );
    assert_eq!(
        cmd("a CREATE \"a b\""),
        Command::Create {
            mailbox: "a b".into(),
            special_use: vec![]
        }
    );
    assert_eq!(
        cmd("a DELETE &ZeVnLIqe-"),
        Command::Delete {
            mailbox: "日本語".into()
        }
    );
    assert_eq!(
        cmd("a RENAME INBOX Old"),
        Command::Rename {
            from: "INBOX".into(),
            to: "Old".into()
        }
    );
    assert_eq!(
        cmd("a SUBSCRIBE x"),
        Command::Subscribe {
            mailbox: "x".into()
        }
    );
    assert_eq!(
        cmd("a UNSUBSCRIBE {1+}\r\nx"),
        Command::Unsubscribe {
            mailbox: "x".into()
        }
    );
    // Not modified UTF-7: parsed, the name kept as sent, and marked.
    assert_eq!(
        cmd("a DELETE AT&T"),
        Command::InvalidMailboxName {
            command: Box::new(Command::Delete {
                mailbox: "AT&T".into()
            }),
            name: "AT&T".into()
        }
    );
    assert!(bad("a DELETE \"a\x01b\"").contains("control"));
}

#[test]
fn names_that_are_not_modified_utf7() {
    let invalid = |line: &str, name: &str, inner: Command| {
        assert_eq!(
            cmd(line),
            Command::InvalidMailboxName {
                command: Box::new(inner),
                name: name.into()
            },
            "{line}"
        );
    };
    invalid(
        "a SELECT \"&Jjo!\"",
        "&Jjo!",
        Command::Select {
            mailbox: "&Jjo!".into(),
            params: SelectParams::default(),
        },
    );
    // The first bad name is the one reported.
    invalid(
        "a RENAME &foo &bar",
        "&foo",
        Command::Rename {
            from: "&foo".into(),
            to: "&bar".into(),
        },
    );
    invalid(
        "a RENAME x &bar",
        "&bar",
        Command::Rename {
            from: "x".into(),
            to: "&bar".into(),
        },
    );
    // LIST: an invalid pattern beside valid ones is dropped; alone, or as
    // the reference, it makes the command match nothing.
    let Command::List(args) = cmd("a LIST \"\" (\"&foo\" INBOX)") else {
        panic!("LIST");
    };
    assert_eq!(args.patterns, vec!["INBOX".to_owned()]);
    assert!(matches!(
        cmd("a LIST \"\" \"&foo*\""),
        Command::InvalidMailboxName { name, .. } if name == "&foo*"
    ));
    assert!(matches!(
        cmd("a LIST &foo *"),
        Command::InvalidMailboxName { name, .. } if name == "&foo"
    ));
    assert!(matches!(
        cmd("a LSUB \"\" &foo"),
        Command::InvalidMailboxName { name, .. } if name == "&foo"
    ));
    // Still a syntax error when the rest is wrong.
    bad("a SELECT &foo extra");
    // Valid modified UTF-7 is decoded as before.
    assert_eq!(
        cmd("a DELETE &Jjo-"),
        Command::Delete {
            mailbox: "\u{263a}".into()
        }
    );
}

#[test]
fn utf8_mode_takes_names_verbatim() {
    let mut d = dec();
    d.set_utf8(true);
    let mut b = BytesMut::from("a SELECT \"Entw&APw-rfe/é\"\r\n".as_bytes());
    let Decoded::Request(r) = d.decode(&mut b) else {
        panic!()
    };
    assert_eq!(
        r.command,
        Command::Select {
            mailbox: "Entw&APw-rfe/é".into(),
            params: SelectParams::default()
        }
    );
}

#[test]
fn list_forms() {
    assert_eq!(
        cmd("a LIST \"\" *"),
        Command::List(ListArgs {
            reference: "".into(),
            patterns: vec!["*".into()],
            ..ListArgs::default()
        })
    );
    assert_eq!(
        cmd(
            "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a\" b% &ZeVnLIqe-/*) RETURN (CHILDREN STATUS (MESSAGES UNSEEN) SPECIAL-USE)"
        ),
        Command::List(ListArgs {
            reference: "".into(),
            patterns: vec!["a".into(), "b%".into(), "日本語/*".into()],
            selection: vec!["SUBSCRIBED".into(), "RECURSIVEMATCH".into()],
            returns: ListReturn {
                subscribed: false,
                children: true,
                special_use: true,
                status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
            },
        })
    );
    assert_eq!(
        cmd("a LIST () foo/ %"),
        Command::List(ListArgs {
            reference: "foo/".into(),
            patterns: vec!["%".into()],
            ..ListArgs::default()
        })
    );
    assert_eq!(
        cmd("a LIST \"\" % RETURN ()"),
        Command::List(ListArgs {
            reference: "".into(),
            patterns: vec!["%".into()],
            ..ListArgs::default()
        })
    );
    assert_eq!(
        cmd("a LSUB \"\" *"),
        Command::Lsub {
            reference: "".into(),
            pattern: "*".into()
        }
    );
    assert_eq!(
        cmd("a XLIST \"\" %"),
        Command::Xlist {
            reference: "".into(),
            pattern: "%".into()
        }
    );
    assert!(bad("a LIST \"\" * RETURN (FOO)").contains("return"));
    assert!(bad("a LIST \"\" * FOO").contains("RETURN"));
}

#[test]
fn status_items() {
    assert_eq!(
        cmd(
            "a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE DELETED)"
        ),
        Command::Status {
            mailbox: "INBOX".into(),
            items: vec![
                StatusItem::Messages,
                StatusItem::Recent,
                StatusItem::UidNext,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::HighestModSeq,
                StatusItem::Size,
                StatusItem::Deleted,
            ]
        }
    );
    assert!(bad("a STATUS INBOX (FOO)").contains("STATUS"));
    assert!(bad("a STATUS INBOX ()").contains("empty"));
}

#[test]
fn append_forms() {
    let Command::Append {
        mailbox,
        flags,
        date,
        message,
    } = cmd("a APPEND Sent (\\Seen $Forwarded) \"01-Jan-2020 10:00:00 +0100\" {3+}\r\nabc")
    else {
        panic!()
    };
    assert_eq!(mailbox, "Sent");
    assert_eq!(flags, vec![Flag::Seen, Flag::Keyword("$Forwarded".into())]);
    assert_eq!(
        date,
        Some(InternalDate {
            timestamp: 1_577_869_200,
            offset_minutes: 60
        })
    );
    assert_eq!(&message[..], b"abc");
    let Command::Append { flags, date, .. } =
        cmd("a APPEND x \" 1-Feb-2021 00:00:00 -0000\" {0+}\r\n")
    else {
        panic!()
    };
    assert!(flags.is_empty());
    assert!(date.is_some());
    let Command::Append { flags, .. } = cmd("a APPEND x () {1+}\r\nz") else {
        panic!()
    };
    assert!(flags.is_empty());
    assert!(bad("a APPEND x \"hello\"").contains("date"));
    assert!(bad("a APPEND x (\\Recent) {1+}\r\nz").contains("flag"));
}

/// RFC 6855 §4: `UTF8 (literal8)`, as Thunderbird sends it after ENABLE
/// UTF8=ACCEPT; a plain literal inside is taken too.
#[test]
fn append_utf8_data_extension() {
    for input in [
        "a APPEND Sent (\\Seen) UTF8 (~{3+}\r\nabc)",
        "a APPEND Sent utf8 ({3+}\r\nabc)",
        "a APPEND Sent \"01-Jan-2020 10:00:00 +0100\" UTF8 (~{3+}\r\nabc)",
    ] {
        let Command::Append {
            mailbox, message, ..
        } = cmd(input)
        else {
            panic!("{input}")
        };
        assert_eq!(mailbox, "Sent");
        assert_eq!(&message[..], b"abc", "{input}");
    }
    assert!(bad("a APPEND Sent UTF8 (~{3+}\r\nabc").contains(')'));
    assert!(bad("a APPEND Sent UTF9 ({3+}\r\nabc)").contains("literal"));
    assert!(bad("a APPEND Sent UTF8 \"abc\"").contains('('));
}

#[test]
fn acl_commands() {
    assert_eq!(
        cmd("a GETACL INBOX"),
        Command::GetAcl {
            mailbox: "INBOX".into()
        }
    );
    assert_eq!(
        cmd("a SETACL INBOX fred +rw"),
        Command::SetAcl {
            mailbox: "INBOX".into(),
            identifier: "fred".into(),
            rights: "+rw".into()
        }
    );
    // imaplib's way of sending empty rights (imapclient's "remove")
    assert_eq!(
        cmd("a SETACL INBOX fred "),
        Command::SetAcl {
            mailbox: "INBOX".into(),
            identifier: "fred".into(),
            rights: String::new()
        }
    );
    assert_eq!(
        cmd("a SETACL INBOX fred \"\""),
        Command::SetAcl {
            mailbox: "INBOX".into(),
            identifier: "fred".into(),
            rights: String::new()
        }
    );
    assert_eq!(
        cmd("a DELETEACL INBOX \"-fred\""),
        Command::DeleteAcl {
            mailbox: "INBOX".into(),
            identifier: "-fred".into()
        }
    );
    assert_eq!(
        cmd("a LISTRIGHTS INBOX anyone"),
        Command::ListRights {
            mailbox: "INBOX".into(),
            identifier: "anyone".into()
        }
    );
    assert_eq!(
        cmd("a MYRIGHTS x"),
        Command::MyRights {
            mailbox: "x".into()
        }
    );
}

#[test]
fn quota_commands() {
    assert_eq!(
        cmd("a GETQUOTA \"\""),
        Command::GetQuota { root: "".into() }
    );
    assert_eq!(
        cmd("a GETQUOTAROOT INBOX"),
        Command::GetQuotaRoot {
            mailbox: "INBOX".into()
        }
    );
    assert_eq!(
        cmd("a SETQUOTA \"\" (storage 512 MESSAGE 100)"),
        Command::SetQuota {
            root: "".into(),
            limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 100)]
        }
    );
    assert_eq!(
        cmd("a SETQUOTA r ()"),
        Command::SetQuota {
            root: "r".into(),
            limits: vec![]
        }
    );
}

#[test]
fn fetch_macros_and_items() {
    let items = |s: &str| match cmd(s) {
        Command::Fetch { items, .. } => items,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        items("a FETCH 1 ALL"),
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope
        ]
    );
    assert_eq!(
        items("a FETCH 1 fast"),
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size
        ]
    );
    assert_eq!(items("a FETCH 1 FULL").len(), 5);
    assert_eq!(
        items(
            "a FETCH 1:* (UID FLAGS ENVELOPE BODY BODYSTRUCTURE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT INTERNALDATE MODSEQ)"
        ),
        vec![
            FetchAttr::Uid,
            FetchAttr::Flags,
            FetchAttr::Envelope,
            FetchAttr::Body,
            FetchAttr::BodyStructure,
            FetchAttr::Rfc822,
            FetchAttr::Rfc822Header,
            FetchAttr::Rfc822Size,
            FetchAttr::Rfc822Text,
            FetchAttr::InternalDate,
            FetchAttr::ModSeq,
        ]
    );
    assert_eq!(
        items(
            "a FETCH 1 (BODY[] BODY.PEEK[1.2.HEADER.FIELDS (From \"To\")]<0.1024> BODY[3.MIME] BODY[TEXT] BODY[HEADER.FIELDS.NOT (X-A)] body.peek[4]<10.1>)"
        ),
        vec![
            FetchAttr::BodySection {
                peek: false,
                section: Section::default(),
                partial: None
            },
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::HeaderFields(vec!["From".into(), "To".into()]))
                },
                partial: Some((0, 1024))
            },
            FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![3],
                    text: Some(SectionText::Mime)
                },
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::Text)
                },
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFieldsNot(vec!["X-A".into()]))
                },
                partial: None
            },
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![4],
                    text: None
                },
                partial: Some((10, 1))
            },
        ]
    );
    assert!(bad("a FETCH 1 (ALL)").contains("macro"));
    assert!(bad("a FETCH 1 BODY[MIME]").contains("MIME"));
    assert!(bad("a FETCH 1 BODY[0]").contains("zero"));
    assert!(bad("a FETCH 1 BODY[1]<0.0>").contains("zero"));
    // RFC 9051 `partial`: number64 both (RFC 3501 had 32 bits), up to 2^63-1.
    assert_eq!(
        items("a FETCH 1 (BODY[]<5000000000.10> BINARY.PEEK[1]<0.9223372036854775807>)"),
        vec![
            FetchAttr::BodySection {
                peek: false,
                section: Section::default(),
                partial: Some((5_000_000_000, 10))
            },
            FetchAttr::Binary {
                peek: true,
                part: vec![1],
                partial: Some((0, 9_223_372_036_854_775_807))
            },
        ]
    );
    assert!(bad("a FETCH 1 BODY[]<9223372036854775808.1>").contains("range"));
    assert!(bad("a FETCH 1 BODY[1.]").contains("section"));
    assert!(bad("a FETCH 1 FOO").contains("FETCH"));
    assert!(bad("a FETCH 0 FLAGS").contains("sequence"));
    assert!(bad("a FETCH 1 ()").contains("empty"));
}

#[test]
fn fetch_modifiers() {
    assert_eq!(
        cmd("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
        Command::Fetch {
            uid: true,
            set: set("1:*"),
            items: vec![FetchAttr::Flags],
            changed_since: Some(ModSeq(12_345)),
            vanished: true
        }
    );
    assert!(bad("a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").contains("UID"));
    assert!(bad("a UID FETCH 1:* (FLAGS) (VANISHED)").contains("CHANGEDSINCE"));
}

#[test]
fn store_forms() {
    assert_eq!(
        cmd("a STORE 1 +FLAGS (\\Seen \\Deleted)"),
        Command::Store {
            uid: false,
            set: set("1"),
            kind: StoreKind::Add,
            silent: false,
            flags: vec![Flag::Seen, Flag::Deleted],
            unchanged_since: None
        }
    );
    assert_eq!(
        cmd("a UID STORE 2:4 (UNCHANGEDSINCE 0) -FLAGS.SILENT \\Flagged $Junk"),
        Command::Store {
            uid: true,
            set: set("2:4"),
            kind: StoreKind::Remove,
            silent: true,
            flags: vec![Flag::Flagged, Flag::Keyword("$Junk".into())],
            unchanged_since: Some(ModSeq(0))
        }
    );
    assert_eq!(
        cmd("a STORE 1 FLAGS ()"),
        Command::Store {
            uid: false,
            set: set("1"),
            kind: StoreKind::Replace,
            silent: false,
            flags: vec![],
            unchanged_since: None
        }
    );
    assert!(bad("a STORE 1 FLAGZ (\\Seen)").contains("FLAGS"));
    assert!(bad("a STORE 1 +FLAGS (\\Recent)").contains("flag"));
}

#[test]
fn copy_and_move() {
    assert_eq!(
        cmd("a COPY 1:2 Trash"),
        Command::Copy {
            uid: false,
            set: set("1:2"),
            mailbox: "Trash".into()
        }
    );
    assert_eq!(
        cmd("a UID MOVE 5 \"Junk\""),
        Command::Move {
            uid: true,
            set: set("5"),
            mailbox: "Junk".into()
        }
    );
    assert!(bad("a UID FROB 1").contains("UID"));
}

fn criteria(s: &str) -> SearchKey {
    match cmd(s) {
        Command::Search { criteria, .. } => criteria,
        other => panic!("{other:?}"),
    }
}

#[test]
fn search_within_keys() {
    use SearchKey as K;
    assert_eq!(
        criteria("a SEARCH OLDER 3600 NOT YOUNGER 60"),
        K::And(vec![K::Older(3600), K::Not(Box::new(K::Younger(60)))])
    );
    assert_eq!(
        criteria("a SEARCH younger 4294967295"),
        K::Younger(u32::MAX)
    );
    for line in [
        "a SEARCH OLDER 0",
        "a SEARCH YOUNGER",
        "a SEARCH OLDER x",
        "a SEARCH YOUNGER 4294967296",
    ] {
        bad(line);
    }
}

#[test]
fn search_every_key() {
    use SearchKey as K;
    let d = |s: &str| match criteria(&format!("a SEARCH ON {s}")) {
        K::On(d) => d,
        other => panic!("{other:?}"),
    };
    let d1 = d("1-Feb-1994");
    assert_eq!(
        criteria(
            "a SEARCH ALL ANSWERED BCC x BEFORE 1-Feb-1994 BODY \"y z\" CC c DELETED DRAFT FLAGGED \
             FROM f HEADER Message-ID <x@y> KEYWORD $Junk LARGER 10 NEW NOT SEEN OLD ON \"1-Feb-1994\" \
             OR SEEN UNSEEN RECENT SEEN SENTBEFORE 1-Feb-1994 SENTON 1-Feb-1994 SENTSINCE 1-Feb-1994 \
             SINCE 1-Feb-1994 SMALLER 5 SUBJECT {3+}\r\nabc TEXT t TO to UID 1:* UNANSWERED UNDELETED \
             UNDRAFT UNFLAGGED UNKEYWORD foo UNSEEN 1,2:* $ MODSEQ 7 (ALL ALL)"
        ),
        K::And(vec![
            K::All,
            K::Answered,
            K::Bcc("x".into()),
            K::Before(d1),
            K::Body("y z".into()),
            K::Cc("c".into()),
            K::Deleted,
            K::Draft,
            K::Flagged,
            K::From("f".into()),
            K::Header("Message-ID".into(), "<x@y>".into()),
            K::Keyword("$Junk".into()),
            K::Larger(10),
            K::New,
            K::Not(Box::new(K::Seen)),
            K::Old,
            K::On(d1),
            K::Or(Box::new(K::Seen), Box::new(K::Unseen)),
            K::Recent,
            K::Seen,
            K::SentBefore(d1),
            K::SentOn(d1),
            K::SentSince(d1),
            K::Since(d1),
            K::Smaller(5),
            K::Subject("abc".into()),
            K::Text("t".into()),
            K::To("to".into()),
            K::Uid(set("1:*")),
            K::Unanswered,
            K::Undeleted,
            K::Undraft,
            K::Unflagged,
            K::Unkeyword("foo".into()),
            K::Unseen,
            K::SeqSet(set("1,2:*")),
            K::SavedResult,
            K::ModSeq(ModSeq(7)),
            K::And(vec![K::All, K::All]),
        ])
    );
    assert_eq!(d1, crate::command::SearchDate(8797));
}

#[test]
fn search_charset_return_and_modseq() {
    assert_eq!(
        cmd(
            "a UID SEARCH RETURN (MIN COUNT) CHARSET utf-8 MODSEQ \"/flags/\\\\draft\" all 620162338"
        ),
        Command::Search {
            uid: true,
            charset: Some("UTF-8".into()),
            return_options: Some(vec![SearchReturn::Min, SearchReturn::Count]),
            criteria: SearchKey::ModSeq(ModSeq(620_162_338)),
        }
    );
    assert_eq!(
        cmd("a SEARCH RETURN () ALL"),
        Command::Search {
            uid: false,
            charset: None,
            return_options: Some(vec![SearchReturn::All]),
            criteria: SearchKey::All,
        }
    );
    assert!(bad("a SEARCH").contains("missing"));
    assert!(bad("a SEARCH FOO").contains("search key"));
    assert!(bad("a SEARCH OR SEEN").contains("missing"));
    assert!(bad("a SEARCH BEFORE 1-Foo-2000").contains("month"));
    assert!(bad("a SEARCH RETURN (BAR) ALL").contains("return"));
}

#[test]
fn search_literal_strings_can_be_utf8() {
    assert_eq!(
        criteria("a SEARCH CHARSET UTF-8 SUBJECT {6+}\r\ncafé!"),
        SearchKey::Subject("café!".into())
    );
}

#[test]
fn a_line_arriving_byte_by_byte_is_not_rescanned() {
    // 64 KiB one byte at a time: quadratic rescanning would take seconds.
    let mut d = dec();
    let mut b = BytesMut::new();
    let line = format!("a LOGIN {} x\r\n", "u".repeat(60_000));
    let start = std::time::Instant::now();
    let mut got = None;
    for &byte in line.as_bytes() {
        b.extend_from_slice(&[byte]);
        match d.decode(&mut b) {
            Decoded::Incomplete => {}
            other => got = Some(other),
        }
    }
    assert!(matches!(got, Some(Decoded::Request(_))));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
