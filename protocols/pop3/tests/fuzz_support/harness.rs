//! The checks run on every input of the `codec` fuzz target and of its
//! corpus replay (`tests/codec_fuzz_corpus.rs`).
//!
//! Input: three header bytes (chunk size, line limit, SASL mode), then the
//! bytes a client sends, which are also taken as a stored message.
//!
//! - The command decoder, fed in chunks, never panics, never returns more
//!   commands than there are line ends, and never holds more than a line's
//!   worth of bytes: after it answers "need more", the buffer is shorter
//!   than the line limit (an over-long line is discarded, never kept).
//! - The message writer (RETR, TOP) sends every line CRLF-terminated and
//!   byte-stuffed, ends with the single `.` line, and once unstuffed the
//!   client gets exactly `octets(message)` bytes, the figure LIST and STAT
//!   announce. TOP's output is a prefix of RETR's, line by line.

use bytes::{Bytes, BytesMut};
use mailroom_pop3::codec::{MessageWriter, Pop3Codec, octets};

/// Runs every check on `data` (panics on a violated invariant).
pub(crate) fn run(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(3));
    let chunk = head.first().map_or(7, |&b| usize::from(b % 64) + 1);
    let max_line = head.get(1).map_or(512, |&b| 512 + usize::from(b) * 8);
    let sasl = head.get(2).copied().unwrap_or(0);
    decode(rest, chunk, max_line, sasl);
    let full = write(rest, None, chunk);
    assert_eq!(
        full.iter().map(|l| l.len() as u64 + 2).sum::<u64>(),
        octets(rest),
        "RETR sends what LIST announced"
    );
    let top = write(rest, Some(u32::from(sasl % 8)), chunk);
    assert!(top.len() <= full.len(), "TOP longer than RETR");
    assert_eq!(full[..top.len()], top[..], "TOP is a prefix of RETR");
}

fn decode(input: &[u8], chunk: usize, max_line: usize, sasl: u8) {
    let mut codec = Pop3Codec::new(max_line);
    let mut buf = BytesMut::new();
    let mut commands = 0usize;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(cmd) = codec.decode(&mut buf) {
            assert!(!cmd.name().is_empty());
            commands += 1;
            // Now and then the session would have sent a SASL challenge.
            codec.set_expect_sasl_response(sasl & 1 == 1 && commands.is_multiple_of(3));
        }
        assert!(
            buf.len() < max_line.max(512),
            "{} bytes held while waiting for a line end (limit {max_line})",
            buf.len()
        );
    }
    let line_ends = input.iter().filter(|&&b| b == b'\n').count();
    assert!(
        commands <= line_ends,
        "{commands} commands from {line_ends} lines"
    );
}

/// What a client reads from RETR (`top` = None) or TOP: the lines of the
/// message, unstuffed, without the terminating `.` line.
fn write(message: &[u8], top: Option<u32>, chunk: usize) -> Vec<Vec<u8>> {
    let mut writer = MessageWriter::new(Bytes::copy_from_slice(message), top);
    let mut wire = Vec::new();
    let mut rounds = 0usize;
    loop {
        let mut out = BytesMut::new();
        let done = writer.fill(&mut out, chunk * 16);
        wire.extend_from_slice(&out);
        if done {
            break;
        }
        assert!(!out.is_empty(), "the writer made no progress");
        rounds += 1;
        assert!(rounds <= message.len() + 2, "the writer does not finish");
    }
    let body = wire
        .strip_suffix(b".\r\n")
        .expect("the answer ends with the terminating line");
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("every line ends with CRLF");
        let line = &rest[..end];
        assert!(!line.contains(&b'\n'), "bare LF on the wire");
        let line = match line.first() {
            Some(b'.') => {
                assert_eq!(
                    line.get(1),
                    Some(&b'.'),
                    "a line starting with '.' is not stuffed"
                );
                &line[1..]
            }
            _ => line,
        };
        lines.push(line.to_vec());
        rest = &rest[end + 2..];
    }
    lines
}
