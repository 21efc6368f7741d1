//! Tests of the MIME parser on hand-made messages.

use super::*;

fn child(part: &BodyPart, i: usize) -> &BodyPart {
    match &part.kind {
        PartKind::Multipart(children) => &children[i],
        PartKind::Message { body, .. } if i == 0 => body,
        other => panic!("no child {i} in {other:?}"),
    }
}

fn body<'a>(raw: &'a [u8], part: &BodyPart) -> &'a [u8] {
    &raw[part.body_offset as usize..part.end_offset() as usize]
}

#[test]
fn nested_multipart_offsets() {
    let raw = b"Content-Type: multipart/mixed; boundary=o\r\n\r\npre\r\n--o\r\n\
Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\n\
plain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>h</b>\r\n--i--\r\n--o\r\n\r\nlast\r\n--o--\r\nepi\r\n";
    let m = MessageSummary::parse(raw);
    let alt = child(&m.structure, 0);
    assert_eq!(alt.media_subtype, "alternative");
    assert_eq!(body(raw, child(alt, 0)), b"plain");
    assert_eq!(body(raw, child(alt, 1)), b"<b>h</b>");
    assert_eq!(child(alt, 1).media_subtype, "html");
    // the inner epilogue is empty: "--i--\r\n" is the alternative's last
    // line and "--o" follows at once
    assert_eq!(&raw[alt.end_offset() as usize..][..5], b"--o\r\n");
    assert_eq!(body(raw, child(&m.structure, 1)), b"last");
    assert_eq!(m.structure.end_offset() as usize, raw.len());
}
