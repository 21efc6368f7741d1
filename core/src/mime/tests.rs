//! Tests of the MIME parser: hand-made messages, a property test and
//! CPython's email test corpus.

use super::*;
use proptest::prelude::*;

fn child(part: &BodyPart, i: usize) -> &BodyPart {
    match &part.kind {
        PartKind::Multipart(children) => &children[i],
        PartKind::Message { body, .. } if i == 0 => body,
        other => panic!("no child {i} in {other:?}"),
    }
}

fn children(part: &BodyPart) -> &[BodyPart] {
    match &part.kind {
        PartKind::Multipart(children) => children,
        other => panic!("not a multipart: {other:?}"),
    }
}

fn body<'a>(raw: &'a [u8], part: &BodyPart) -> &'a [u8] {
    &raw[part.body_offset as usize..part.end_offset() as usize]
}

fn header<'a>(raw: &'a [u8], part: &BodyPart) -> &'a [u8] {
    &raw[part.header_offset as usize..part.body_offset as usize]
}

fn lf(crlf: &[u8]) -> Vec<u8> {
    crlf.iter().copied().filter(|&b| b != b'\r').collect()
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

/// Checks that every offset is in range, children lie inside their
/// parent's body in order, and line counts are the LFs of the body.
fn check_tree(raw: &[u8], part: &BodyPart, depth: usize) {
    let len = raw.len() as u64;
    assert!(part.header_offset <= part.body_offset, "{part:?}");
    assert!(part.end_offset() <= len, "{part:?}");
    assert_eq!(part.lines, count_lines(body(raw, part)));
    assert!(depth <= MAX_DEPTH);
    match &part.kind {
        PartKind::Single => {}
        PartKind::Multipart(children) => {
            let mut at = part.body_offset;
            for c in children {
                assert!(
                    c.header_offset >= at,
                    "child before its sibling's end: {c:?}"
                );
                assert!(
                    c.end_offset() <= part.end_offset(),
                    "child past its parent: {c:?}"
                );
                at = c.end_offset();
                check_tree(raw, c, depth + 1);
            }
        }
        PartKind::Message { body, .. } => {
            assert_eq!(body.header_offset, part.body_offset);
            assert!(body.end_offset() <= part.end_offset());
            check_tree(raw, body, depth + 1);
        }
    }
}

fn check(raw: &[u8]) -> MessageSummary {
    let m = MessageSummary::parse(raw);
    check_tree(raw, &m.structure, 0);
    assert_eq!(m.structure.header_offset, 0);
    assert_eq!(m.header, header(raw, &m.structure));
    m
}

#[test]
fn nested_multipart_offsets() {
    let raw = b"Content-Type: multipart/mixed; boundary=o\r\n\r\npre\r\n--o\r\n\
Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\n\
plain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>h</b>\r\n--i--\r\n--o\r\n\r\nlast\r\n--o--\r\nepi\r\n";
    let m = check(raw);
    assert_eq!(m.structure.media_type, "multipart");
    assert!(body(raw, &m.structure).starts_with(b"pre\r\n--o\r\n"));
    let alt = child(&m.structure, 0);
    assert_eq!(alt.media_subtype, "alternative");
    assert_eq!(body(raw, child(alt, 0)), b"plain");
    assert_eq!(body(raw, child(alt, 1)), b"<b>h</b>");
    assert_eq!(child(alt, 1).media_subtype, "html");
    // the inner epilogue is empty: "--i--\r\n" is the alternative's last
    // line and "--o" follows at once
    assert_eq!(&raw[alt.end_offset() as usize..][..5], b"--o\r\n");
    // a part with an empty header is text/plain
    let last = child(&m.structure, 1);
    assert_eq!(header(raw, last), b"\r\n");
    assert_eq!(body(raw, last), b"last");
    assert_eq!(
        (last.media_type.as_str(), last.media_subtype.as_str()),
        ("text", "plain")
    );
    assert_eq!(last.params, vec![("charset".into(), "us-ascii".into())]);
    assert_eq!(m.structure.end_offset() as usize, raw.len());
}

#[test]
fn message_rfc822_inside_multipart() {
    let raw = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nsee below\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
From: Inner <in@example.com>\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n\
--c\r\n\r\none\r\n--c\r\nContent-Type: text/html\r\n\r\n<i>two</i>\r\n--c--\r\n\r\n--b--\r\n";
    let m = check(raw);
    assert_eq!(m.envelope.subject, bytes("outer"));
    let rfc822 = child(&m.structure, 1);
    assert_eq!(
        (rfc822.media_type.as_str(), rfc822.media_subtype.as_str()),
        ("message", "rfc822")
    );
    assert!(rfc822.has_lines());
    let PartKind::Message {
        envelope,
        body: inner,
    } = &rfc822.kind
    else {
        panic!("not a message: {rfc822:?}");
    };
    assert_eq!(envelope.subject, bytes("inner"));
    assert_eq!(envelope.from[0].name, bytes("Inner"));
    assert_eq!(envelope.sender, envelope.from);
    assert_eq!(inner.media_subtype, "alternative");
    assert_eq!(body(raw, child(inner, 0)), b"one");
    assert_eq!(body(raw, child(inner, 1)), b"<i>two</i>");
    // the message/rfc822 body is the whole embedded message, up to the
    // line break before "--b--"
    assert!(body(raw, rfc822).starts_with(b"From: Inner"));
    assert!(body(raw, rfc822).ends_with(b"--c--\r\n"));
    assert_eq!(rfc822.lines, count_lines(body(raw, rfc822)));
}

#[test]
fn alternative_inside_mixed_with_attachment() {
    let raw = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\
Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>\r\n\
--a--\r\n\r\n--m\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"x.pdf\"\r\nContent-ID: <x@y>\r\nContent-Description: a pdf\r\n\
Content-MD5: abc=\r\nContent-Language: en, de\r\nContent-Location: http://x/y.pdf\r\n\r\nJVBE\r\n--m--\r\n";
    let m = check(raw);
    let parts = children(&m.structure);
    assert_eq!(parts.len(), 2);
    let text = child(&parts[0], 0);
    assert_eq!(text.encoding, "quoted-printable");
    assert_eq!(text.params, vec![("charset".into(), "utf-8".into())]);
    assert_eq!(body(raw, text), b"caf=C3=A9");
    let pdf = &parts[1];
    assert_eq!(pdf.media_type, "application");
    assert_eq!(pdf.encoding, "base64");
    assert_eq!(pdf.params, vec![("name".into(), "x.pdf".into())]);
    assert_eq!(pdf.id.as_deref(), Some("<x@y>"));
    assert_eq!(pdf.description.as_deref(), Some("a pdf"));
    assert_eq!(pdf.md5.as_deref(), Some("abc="));
    assert_eq!(pdf.language, vec!["en".to_string(), "de".to_string()]);
    assert_eq!(pdf.location.as_deref(), Some("http://x/y.pdf"));
    let disposition = pdf.disposition.as_ref().expect("disposition");
    assert_eq!(disposition.kind, "attachment");
    assert_eq!(
        disposition.params,
        vec![("filename".into(), "x.pdf".into())]
    );
    assert!(!pdf.has_lines());
}

#[test]
fn eight_bit_headers_stay_raw() {
    let raw = b"From: J\xc3\xb6rg <j@example.de>\r\nSubject: Gr\xfc\xdfe =?utf-8?q?x?=\r\n\
Content-Description: caf\xc3\xa9\r\nContent-Type: text/plain\r\n\r\nx\r\n";
    let m = check(raw);
    assert_eq!(
        m.envelope.subject.as_deref(),
        Some(&b"Gr\xfc\xdfe =?utf-8?q?x?="[..])
    );
    assert_eq!(
        m.envelope.from[0].name.as_deref(),
        Some(&b"J\xc3\xb6rg"[..])
    );
    assert_eq!(m.structure.description.as_deref(), Some("café"));
}

#[test]
fn missing_or_garbage_content_type_is_text_plain() {
    for ct in [
        "",
        "Content-Type: garbage\r\n",
        "Content-Type: text\r\n",
        "Content-Type: ;;\r\n",
        "Content-Type: a/\r\n",
    ] {
        let raw = format!("MIME-Version: 1.0\r\n{ct}\r\nbody\r\n");
        let m = check(raw.as_bytes());
        let p = &m.structure;
        assert_eq!(
            (p.media_type.as_str(), p.media_subtype.as_str()),
            ("text", "plain"),
            "{ct}"
        );
        assert_eq!(
            p.params,
            vec![("charset".into(), "us-ascii".into())],
            "{ct}"
        );
        assert_eq!(p.encoding, "7bit");
        assert_eq!(p.lines, 1);
    }
    // without MIME-Version or Content-Type, Content-* fields do not count
    let m = check(b"Content-Transfer-Encoding: base64\r\nContent-ID: <a@b>\r\n\r\nx\r\n");
    assert_eq!(m.structure.encoding, "7bit");
    assert_eq!(m.structure.id, None);
    // a multipart without boundary has no parts
    let m = check(b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\ny\r\n");
    assert_eq!(m.structure.kind, PartKind::Multipart(Vec::new()));
    // a multipart/digest's parts default to message/rfc822
    let m = check(b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: s\r\n\r\nx\r\n--d--\r\n");
    let PartKind::Message { envelope, .. } = &child(&m.structure, 0).kind else {
        panic!("digest part is not a message");
    };
    assert_eq!(envelope.subject, bytes("s"));
}

#[test]
fn group_addresses() {
    let m = check(
        b"From: a@example.com\r\nTo: Team: b@example.com, \"C D\" <c@example.com>;, e@example.com\r\n\
Cc: undisclosed-recipients:;\r\nBcc:\r\n\r\n",
    );
    let to = &m.envelope.to;
    assert_eq!(to.len(), 5);
    assert_eq!(
        to[0],
        Address {
            mailbox: bytes("Team"),
            ..Address::default()
        }
    );
    assert_eq!(to[1].mailbox, bytes("b"));
    assert_eq!(to[2].name, bytes("C D"));
    assert_eq!(to[3], Address::default());
    assert_eq!(to[4].host, bytes("example.com"));
    assert_eq!(m.envelope.cc.len(), 2);
    assert_eq!(m.envelope.cc[0].mailbox, bytes("undisclosed-recipients"));
    assert_eq!(m.envelope.cc[0].host, None);
    assert!(m.envelope.bcc.is_empty());
    assert_eq!(m.envelope.reply_to, m.envelope.from);
}

#[test]
fn nil_versus_empty_fields() {
    let m = check(b"Subject:\r\nMessage-ID: <a@b>\r\n\r\n");
    assert_eq!(m.envelope.subject, Some(Vec::new()));
    assert_eq!(m.envelope.date, None);
    assert_eq!(m.envelope.message_id, bytes("<a@b>"));
    assert!(m.envelope.from.is_empty() && m.envelope.sender.is_empty());
}

#[test]
fn empty_body_and_empty_message() {
    let raw = b"Subject: x\r\n\r\n";
    let m = check(raw);
    assert_eq!(m.structure.body_offset as usize, raw.len());
    assert_eq!((m.structure.body_len, m.structure.lines), (0, 0));
    assert_eq!(m.header, raw);

    let m = check(b"");
    assert_eq!((m.structure.body_offset, m.structure.body_len), (0, 0));
    assert_eq!(m.envelope, Envelope::default());
    assert_eq!(m.structure.media_type, "text");
}

#[test]
fn no_header_body_separator() {
    let raw = b"Subject: only a header\r\nFrom: a@b.c";
    let m = check(raw);
    assert_eq!(m.header, raw);
    assert_eq!(m.structure.body_offset as usize, raw.len());
    assert_eq!(m.structure.body_len, 0);
    assert_eq!(m.envelope.from[0].host, bytes("b.c"));

    // a body without header
    let raw = b"\r\njust a body\r\n";
    let m = check(raw);
    assert_eq!(m.header, b"\r\n");
    assert_eq!(body(raw, &m.structure), b"just a body\r\n");
}

#[test]
fn crlf_and_lf_give_the_same_tree() {
    let crlf = b"From: a@b.c\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\npre\r\n--z\r\n\
Content-Type: text/plain\r\n\r\none\r\ntwo\r\n--z\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n\
--z--\r\n";
    let lf = lf(crlf);
    let a = check(crlf);
    let b = check(&lf);
    assert_eq!(a.envelope, b.envelope);
    fn shape(p: &BodyPart) -> (String, String, u32, Vec<(String, String, u32)>) {
        let kids = match &p.kind {
            PartKind::Multipart(c) => c
                .iter()
                .map(|c| (c.media_type.clone(), c.media_subtype.clone(), c.lines))
                .collect(),
            _ => Vec::new(),
        };
        (p.media_type.clone(), p.media_subtype.clone(), p.lines, kids)
    }
    assert_eq!(shape(&a.structure), shape(&b.structure));
    let (ta, tb) = (child(&a.structure, 0), child(&b.structure, 0));
    assert_eq!(body(crlf, ta), b"one\r\ntwo");
    assert_eq!(body(&lf, tb), b"one\ntwo");
    assert_eq!((ta.lines, tb.lines), (1, 1));
}

#[test]
fn boundary_prefixes_and_unclosed_parts() {
    // "--a" closes the inner multipart "ab" too; the longest boundary wins
    let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\
Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\ninner\r\n--a\r\n\r\nouter\r\n";
    let m = check(raw);
    let parts = children(&m.structure);
    assert_eq!(parts.len(), 2);
    assert_eq!(body(raw, child(&parts[0], 0)), b"inner");
    // the last part runs to the end: there is no closing boundary
    assert_eq!(body(raw, &parts[1]), b"outer\r\n");
}

#[test]
fn boundary_inside_a_part_header() {
    let raw = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/html\r\n--B\r\n\r\nx\r\n--B--\r\n";
    let m = check(raw);
    let first = child(&m.structure, 0);
    assert_eq!(header(raw, first), b"Content-Type: text/html");
    assert_eq!(first.body_len, 0);
    assert_eq!(first.media_subtype, "html");
    assert_eq!(body(raw, child(&m.structure, 1)), b"x");
}

#[test]
fn nesting_limit() {
    let mut raw = Vec::new();
    for _ in 0..MAX_DEPTH + 10 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: deep\r\n\r\nx\r\n");
    let m = check(&raw);
    let mut part = &m.structure;
    let mut depth = 0;
    while let PartKind::Message { body, .. } = &part.kind {
        part = body;
        depth += 1;
    }
    assert_eq!(depth, MAX_DEPTH - 1);
    assert_eq!(part.media_type, "application");
    assert_eq!(
        part.body_len as usize,
        raw.len() - part.body_offset as usize
    );
}

#[test]
fn part_limit() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=p\r\n\r\n".to_vec();
    for _ in 0..MAX_PARTS + 5 {
        raw.extend_from_slice(b"--p\r\n\r\nx\r\n");
    }
    let m = check(&raw);
    assert_eq!(children(&m.structure).len(), MAX_PARTS - 1);
}

#[test]
fn sent_date() {
    let m = check(b"Date: Fri, 20 Apr 2001 20:18:00 -0400 (EDT)\r\n\r\n");
    assert_eq!(m.sent_date, Some((987_812_280, -240)));
    assert_eq!(check(b"Date: yesterday\r\n\r\n").sent_date, None);
}

#[test]
fn rfc2231_parameters_are_decoded() {
    let m = check(
        b"Content-Type: application/x; name*0=\"a\"; name*1=\"b.txt\"\r\n\
Content-Disposition: attachment; filename*=utf-8'en'na%C3%AFve.txt\r\n\r\n",
    );
    assert_eq!(m.structure.params, vec![("name".into(), "ab.txt".into())]);
    let d = m.structure.disposition.expect("disposition");
    assert_eq!(d.params, vec![("filename".into(), "naïve.txt".into())]);
}

/// CPython's email test data (`libpython3.11-testsuite` on Debian): every
/// file, the binary ones too, parses within the invariants.
#[test]
fn cpython_email_corpus() {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import test.test_email, os; print(os.path.dirname(test.test_email.__file__))",
        ])
        .output()
        .expect("python3 must be installed to find CPython's email test corpus");
    assert!(
        out.status.success(),
        "python3 cannot import test.test_email: install libpython3.11-testsuite"
    );
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("data");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let raw = std::fs::read(&path).expect("read");
        check(&raw);
        check(&lf(&raw));
        n += 1;
    }
    assert!(n >= 40, "only {n} files in {}", dir.display());
    // spot checks against the structure CPython's own tests expect
    let raw = std::fs::read(dir.join("msg_02.txt")).expect("msg_02.txt");
    let m = check(&raw);
    let digest = child(&m.structure, 2);
    assert_eq!(digest.media_subtype, "digest");
    assert_eq!(children(digest).len(), 5);
    assert!(
        children(digest)
            .iter()
            .all(|p| matches!(p.kind, PartKind::Message { .. }))
    );
}

/// Pieces that make MIME parsers work: boundaries of two nesting levels,
/// content types, line breaks of both kinds, junk.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"Content-Type: multipart/mixed; boundary=a\r\n".to_vec()),
        Just(b"Content-Type: multipart/digest; boundary=\"ab\"\n".to_vec()),
        Just(b"Content-Type: message/rfc822\r\n".to_vec()),
        Just(b"Content-Type: text/plain; charset*=utf-8''%C3%A9\r\n".to_vec()),
        Just(b"MIME-Version: 1.0\r\n".to_vec()),
        Just(b"From: \"x\" <a@b>, g: c@d;\r\n".to_vec()),
        Just(b"--a\r\n".to_vec()),
        Just(b"--ab\n".to_vec()),
        Just(b"--a--\r\n".to_vec()),
        Just(b"--ab--".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        Just(b"text line\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_and_offsets_nest(pieces in prop::collection::vec(fragment(), 0..40)) {
        let raw = pieces.concat();
        check(&raw);
    }

    #[test]
    fn parse_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        check(&raw);
    }
}
