//! The checks run on every input of the `codec` fuzz target and of its
//! corpus replay (`tests/codec_fuzz_corpus.rs`).
//!
//! Input: two header bytes (chunk size, size limit), then the bytes an MTA
//! sends. The decoder is driven as the session drives it: after a `DATA`
//! command it switches to message mode.
//!
//! - It never panics and, in command mode, never holds more than a line's
//!   worth of bytes while waiting for a line end; in message mode it takes
//!   every byte it is given (the message accumulates in the decoder, bounded
//!   by the size limit, after which it is discarded as it arrives).
//! - A message it completes is exactly what the reference below makes of the
//!   same bytes: everything up to the first CRLF `.` CRLF, with the leading
//!   dot of each line removed (RFC 5321 §4.5.2); one over the limit is
//!   reported as too big, never delivered cut short.

use bytes::BytesMut;
use mailroom_lmtp::codec::{Command, LmtpCodec, MessageData};

/// Runs every check on `data` (panics on a violated invariant).
pub(crate) fn run(data: &[u8]) {
    let (head, input) = data.split_at(data.len().min(2));
    let chunk = head.first().map_or(7, |&b| usize::from(b % 64) + 1);
    let max_message = head.get(1).map_or(4096, |&b| usize::from(b) * 16);
    let max_line = 512;
    let mut codec = LmtpCodec::new(max_line, max_message);
    let mut buf = BytesMut::new();
    // Where the message being received starts in `input`.
    let mut data_start: Option<usize> = None;
    let mut fed = 0usize;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            let before = buf.len();
            let Some(cmd) = codec.decode(&mut buf) else {
                break;
            };
            let consumed_to = fed - buf.len();
            match cmd {
                Command::Data => {
                    codec.start_data();
                    data_start = Some(consumed_to);
                }
                Command::Message(m) => {
                    let start = data_start.take().expect("a message only after DATA");
                    let expected = unstuff(&input[start..]);
                    match m {
                        MessageData::Complete(bytes) => {
                            let (message, end) = expected.expect("the decoder saw an end");
                            assert!(
                                bytes.len() <= max_message,
                                "message over the limit delivered"
                            );
                            assert_eq!(&bytes[..], &message[..], "dot-unstuffed message");
                            assert_eq!(start + end, consumed_to, "consumed up to the end line");
                        }
                        MessageData::TooBig => {
                            let (message, _) = expected.expect("the decoder saw an end");
                            assert!(
                                message.len() > max_message,
                                "a message within the limit refused"
                            );
                        }
                    }
                }
                other => assert!(!other.name().is_empty()),
            }
            assert!(buf.len() <= before);
        }
        if codec.in_data() {
            assert!(
                buf.is_empty(),
                "{} bytes left unread in message mode",
                buf.len()
            );
        } else {
            assert!(
                buf.len() < max_line,
                "{} bytes held waiting for a line end",
                buf.len()
            );
        }
    }
}

/// The reference: the message that starts at `raw[0]` (just after the
/// DATA command's line), unstuffed, and how many bytes of `raw` it took
/// including the end line; `None` if `raw` has no end line yet.
fn unstuff(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // at the start of a line
        let rest = &raw[i..];
        let line_len = rest.windows(2).position(|w| w == b"\r\n")? + 2;
        let line = &rest[..line_len];
        if line == b".\r\n" {
            return Some((out, i + line_len));
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        i += line_len;
    }
}
