//! The checks run on every input of the `frame` fuzz target and of its
//! corpus replay (`tests/frame_fuzz_corpus.rs`).
//!
//! Input: one header byte (the chunk size the bytes arrive in), then the
//! bytes a peer sends on the replication port.
//!
//! - The frame decoder, fed in chunks under small limits, never panics;
//!   after "need more" it holds less than one whole frame (4 + max_frame +
//!   4 bytes): nothing is buffered beyond the frame being read. Every error
//!   it reports is the peer's fault.
//! - Every frame it returns encodes back to bytes that decode to the same
//!   frame (unknown fields and types included), within the same limits.
//! - Every typed reader (HELLO, ERROR, ACCOUNT, the namespace requests,
//!   RECORDS, APPLIED, DIGESTS, GET_RECORDS, RECORDS_PAGE) either fails with an error or returns a
//!   value that survives its own round trip.

use bytes::BytesMut;
use mailroom_sync::msgs::{
    self, AppliedFrame, ErrorFrame, GetRecords, Hello, NamespaceRequest, Records, RecordsPage,
};
use mailroom_sync::wire::{Frame, FrameCodec, Limits};
use tokio_util::codec::Decoder;

/// The limits the harness decodes under: small, so the fuzzer reaches them.
pub(crate) const LIMITS: Limits = Limits {
    max_frame: 64 * 1024,
    max_fields: 256,
    max_string: 512,
    max_depth: 3,
};

/// Runs every check on `data` (panics on a violated invariant).
pub(crate) fn run(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(1));
    let chunk = head.first().map_or(7, |&b| usize::from(b % 32) + 1);
    let mut codec = FrameCodec::new(LIMITS);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => check_frame(&frame),
                Ok(None) => {
                    assert!(
                        buf.len() < 8 + LIMITS.max_frame as usize,
                        "decoder held {} bytes",
                        buf.len()
                    );
                    break;
                }
                Err(e) => {
                    assert!(e.is_peer_fault(), "{e:?}");
                    return;
                }
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(Some(frame)) => check_frame(&frame),
        Ok(None) => assert!(buf.is_empty()),
        Err(e) => assert!(e.is_peer_fault(), "{e:?}"),
    }
}

fn check_frame(frame: &Frame) {
    let bytes = frame
        .to_bytes(LIMITS.max_frame)
        .expect("a decoded frame fits its limits");
    let mut again = BytesMut::from(&bytes[..]);
    let decoded = FrameCodec::new(LIMITS)
        .decode(&mut again)
        .expect("re-encoded frame decodes")
        .expect("re-encoded frame is whole");
    assert_eq!(&decoded, frame, "frame round trip");
    assert!(again.is_empty());

    if let Ok(h) = Hello::from_frame(frame) {
        assert_eq!(Hello::from_frame(&h.to_frame()).ok(), Some(h));
    }
    if let Ok(e) = ErrorFrame::from_frame(frame) {
        assert_eq!(ErrorFrame::from_frame(&e.to_frame()).ok(), Some(e));
    }
    if let Ok(Some(a)) = msgs::account_from(frame) {
        let user = a.user.clone();
        assert_eq!(
            msgs::account_from(&msgs::account(&user, Some(&a))).ok(),
            Some(Some(a))
        );
    }
    if let Ok(n) = NamespaceRequest::from_frame(frame) {
        assert_eq!(NamespaceRequest::from_frame(&n.to_frame()).ok(), Some(n));
    }
    if let Ok(r) = Records::from_frame(frame) {
        assert_eq!(Records::from_frame(&r.to_frame()).ok(), Some(r));
    }
    if let Ok(g) = GetRecords::from_frame(frame) {
        assert_eq!(GetRecords::from_frame(&g.to_frame()).ok(), Some(g));
    }
    if let Ok(p) = RecordsPage::from_frame(frame) {
        assert_eq!(RecordsPage::from_frame(&p.to_frame()).ok(), Some(p));
    }
    if let Ok(a) = AppliedFrame::from_frame(frame) {
        assert_eq!(AppliedFrame::from_frame(&a.to_frame()).ok(), Some(a));
    }
    if let Ok(damaged) = msgs::digests_damaged(frame)
        && let Ok((head, list)) = msgs::digests_from(frame)
    {
        let again = msgs::digests_with_damage(&head, &list, &damaged);
        assert_eq!(msgs::digests_damaged(&again).ok(), Some(damaged));
    }
    if let Ok(damaged) = msgs::digests_damaged(frame)
        && let Ok((head, list)) = msgs::digests_from(frame)
    {
        let again = msgs::digests_with_damage(&head, &list, &damaged);
        assert_eq!(msgs::digests_damaged(&again).ok(), Some(damaged));
    }
    if let Ok((head, list)) = msgs::digests_from(frame) {
        assert_eq!(
            msgs::digests_from(&msgs::digests(&head, &list)).ok(),
            Some((head, list))
        );
    }
}
