//! The checks run on every input of the `fetch` fuzz target and of its
//! corpus replay (`tests/fetch_fuzz_corpus.rs`): whatever bytes a message
//! holds, the FETCH response Mailroom writes for it (ENVELOPE,
//! BODYSTRUCTURE with extension data, BODY, BODY[HEADER]) is well-formed
//! IMAP that an independent parser (`imap-codec`) reads to the end, and
//! the structure it reads has the part tree Mailroom computed. A quoting or
//! literal mistake here would break a real client's view of the mailbox.

use std::sync::Arc;

use bytes::Bytes;
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder as _;
use imap_codec::imap_types::body::{BodyStructure, SpecificFields};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data as CodecData, Response as CodecResponse};
use mailroom_core::mime::{BodyPart, MessageSummary, PartKind};
use mailroom_imap::response::{
    Data, EncodeOptions, FetchItem, Response, SectionLabel, encode_to_vec,
};

/// Encodes the FETCH response for `data` and parses it back (panics on a
/// violated invariant).
pub(crate) fn run(data: &[u8]) {
    let summary = Arc::new(MessageSummary::parse(data));
    let header = Bytes::copy_from_slice(&summary.header);
    let response = Response::Data(Data::Fetch {
        seq: 1,
        items: vec![
            FetchItem::Envelope(summary.clone()),
            FetchItem::BodyStructure(summary.clone()),
            FetchItem::Body(summary.clone()),
            FetchItem::BodySection {
                label: SectionLabel::Rfc822Header,
                origin: None,
                data: Some(header),
            },
        ],
    });
    let bytes = encode_to_vec(&response, EncodeOptions::default());
    if depth(&summary.structure) > IMAP_CODEC_MAX_DEPTH {
        // imap-codec reads body structures nested at most this deep (a
        // bound against stack exhaustion); Mailroom reports up to
        // `MAX_DEPTH` levels, as Dovecot does, so deeper ones go unjudged.
        return;
    }
    let parsed = match ResponseCodec::default().decode(&bytes) {
        Ok((rest, parsed)) => {
            assert!(
                rest.is_empty(),
                "trailing bytes after the FETCH response: {:?}",
                String::from_utf8_lossy(rest)
            );
            parsed
        }
        Err(e) => panic!(
            "imap-codec rejects our FETCH response ({e:?}):\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    let CodecResponse::Data(CodecData::Fetch { items, .. }) = parsed else {
        panic!("not a FETCH response");
    };
    let mut structures = 0;
    for item in items.as_ref() {
        if let MessageDataItem::BodyStructure(b) | MessageDataItem::Body(b) = item {
            assert_same_tree(&summary.structure, b);
            structures += 1;
        }
    }
    assert_eq!(structures, 2, "BODYSTRUCTURE and BODY both read back");
}

/// The part tree imap-codec read has the shape of ours: multiparts with
/// as many children, message/rfc822 parts with their embedded body.
fn assert_same_tree(ours: &BodyPart, theirs: &BodyStructure<'_>) {
    match (&ours.kind, theirs) {
        (PartKind::Multipart(children), BodyStructure::Multi { bodies, .. }) => {
            // An empty multipart is shown as one empty text/plain part.
            let n = bodies.as_ref().len();
            assert_eq!(n, children.len().max(1), "children of a multipart");
            for (c, b) in children.iter().zip(bodies.as_ref()) {
                assert_same_tree(c, b);
            }
        }
        (PartKind::Message { body, .. }, BodyStructure::Single { body: b, .. }) => {
            let SpecificFields::Message { body_structure, .. } = &b.specific else {
                panic!("message/rfc822 read back as something else");
            };
            assert_same_tree(body, body_structure);
        }
        (PartKind::Single, BodyStructure::Single { .. }) => {}
        (ours, theirs) => panic!("part kinds differ: ours {ours:?}, read back {theirs:?}"),
    }
}

/// The deepest nesting `imap_codec` 2.0.0-alpha.10 parses (`body(8)`:
/// seven levels of parts below the root).
const IMAP_CODEC_MAX_DEPTH: usize = 6;

/// Levels of parts below `p` (0 for a leaf).
fn depth(p: &BodyPart) -> usize {
    match &p.kind {
        PartKind::Single => 0,
        PartKind::Multipart(children) => 1 + children.iter().map(depth).max().unwrap_or(0),
        PartKind::Message { body, .. } => 1 + depth(body),
    }
}
