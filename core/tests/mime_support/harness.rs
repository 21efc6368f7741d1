//! The checks run on every input of the `mime` fuzz target and of its
//! corpus replay: [`MessageSummary::parse`] never panics on any bytes, and
//! what it returns describes the input consistently. Every part lies inside
//! its parent and inside the message, children come in order without
//! overlapping, nesting and part counts stay within the documented bounds,
//! line counts are the LF count of the part's body, media types are lower
//! case and never empty, and the stored header block is the message's own
//! prefix. FETCH serves BODY[n] and BODYSTRUCTURE from these offsets without
//! re-parsing, so an offset outside the message would be a wrong answer or a
//! panic later.

use mailroom_core::mime::{BodyPart, MAX_DEPTH, MAX_PARTS, MessageSummary, PartKind, count_lines};

/// Parses `data` and checks the summary (panics on a violated invariant).
pub(crate) fn run(data: &[u8]) {
    let summary = MessageSummary::parse(data);
    let len = data.len() as u64;
    let header_len = summary.structure.body_offset.min(len) as usize;
    assert_eq!(
        summary.header,
        data[..header_len],
        "header block is the message's prefix"
    );
    assert_eq!(
        summary.structure.header_offset, 0,
        "the root part starts the message"
    );
    let mut parts = 0;
    check(data, &summary.structure, 0, len, 0, &mut parts);
    assert!(parts <= MAX_PARTS + 1, "{parts} parts, more than MAX_PARTS");
}

fn check(data: &[u8], p: &BodyPart, lo: u64, hi: u64, depth: usize, parts: &mut usize) {
    *parts += 1;
    assert!(
        depth <= MAX_DEPTH + 1,
        "nesting depth {depth} beyond MAX_DEPTH"
    );
    assert!(
        lo <= p.header_offset
            && p.header_offset <= p.body_offset
            && p.body_offset <= p.end_offset()
            && p.end_offset() <= hi,
        "part {}..{}..{} outside its parent {lo}..{hi}",
        p.header_offset,
        p.body_offset,
        p.end_offset()
    );
    for (what, value) in [("type", &p.media_type), ("subtype", &p.media_subtype)] {
        assert!(!value.is_empty(), "empty media {what}");
        assert_eq!(
            *value,
            value.to_ascii_lowercase(),
            "media {what} not lower case"
        );
    }
    let body = &data[p.body_offset as usize..p.end_offset() as usize];
    if p.has_lines() {
        assert_eq!(
            p.lines,
            count_lines(body),
            "line count of {}/{}",
            p.media_type,
            p.media_subtype
        );
    }
    match &p.kind {
        PartKind::Single => {}
        PartKind::Multipart(children) => {
            let mut next = p.body_offset;
            for child in children {
                check(data, child, next, p.end_offset(), depth + 1, parts);
                next = child.end_offset();
            }
        }
        PartKind::Message { body, .. } => {
            check(data, body, p.body_offset, p.end_offset(), depth + 1, parts);
        }
    }
}
