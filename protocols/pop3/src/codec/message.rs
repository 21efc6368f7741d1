//! Messages on the wire: CRLF normalisation, byte-stuffing and TOP.
//!
//! A stored message may end lines with LF or CRLF and may lack a final line
//! ending. On the wire every line ends with CRLF and the last line is
//! terminated, so the *normalised* form is: each line of the stored bytes
//! (split at LF; a CR right before the LF belongs to the line ending) followed
//! by CRLF. [`octets`] counts exactly the bytes of that form, and
//! [`MessageWriter`] sends exactly that form, byte-stuffed, so the sizes in
//! `LIST` and `STAT` always equal what `RETR` delivers once the client has
//! removed the stuffing and the terminating `.` (RFC 1939 §3, §11).

use bytes::{BufMut, Bytes, BytesMut};

/// Iterates over the lines of a stored message, without their line endings.
#[derive(Debug, Clone)]
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// The size in octets of a message in its normalised (CRLF) form, without
/// byte-stuffing: the figure `LIST` and `STAT` report.
///
/// ```
/// use mailroom_pop3::codec::octets;
/// assert_eq!(octets(b"a\r\nb\r\n"), 6);
/// assert_eq!(octets(b"a\nb"), 6); // LF becomes CRLF, a final CRLF is added
/// assert_eq!(octets(b""), 0);
/// ```
pub fn octets(raw: &[u8]) -> u64 {
    Lines { rest: raw }.map(|l| l.len() as u64 + 2).sum()
}

/// Writes a message (or its TOP) normalised and byte-stuffed, in bounded
/// chunks, followed by the terminating `.` line.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use mailroom_pop3::codec::MessageWriter;
///
/// let mut w = MessageWriter::new(Bytes::from_static(b"Subject: x\n\n.hidden\nline 2\n"), None);
/// let mut wire = Vec::new();
/// loop {
///     let mut out = BytesMut::new();
///     let done = w.fill(&mut out, 8); // a socket write of `out` would go here
///     wire.extend_from_slice(&out);
///     if done { break; }
/// }
/// assert_eq!(wire, b"Subject: x\r\n\r\n..hidden\r\nline 2\r\n.\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct MessageWriter {
    content: Bytes,
    pos: usize,
    /// For TOP: body lines still to send (`None` sends everything).
    body_lines_left: Option<u32>,
    in_body: bool,
    done: bool,
}

impl MessageWriter {
    /// A writer for the whole message (`top` = `None`) or for its header and
    /// the first `top` lines of its body.
    pub fn new(content: Bytes, top: Option<u32>) -> MessageWriter {
        MessageWriter {
            content,
            pos: 0,
            body_lines_left: top,
            in_body: false,
            done: false,
        }
    }

    /// Appends output to `out` until it holds at least `chunk` bytes or the
    /// message is finished. Returns `true` once the terminating `.` line is written.
    pub fn fill(&mut self, out: &mut BytesMut, chunk: usize) -> bool {
        if self.done {
            return true;
        }
        let content = self.content.clone();
        let mut lines = Lines {
            rest: &content[self.pos..],
        };
        while out.len() < chunk {
            if self.in_body && self.body_lines_left == Some(0) {
                break;
            }
            let Some(line) = lines.next() else {
                break;
            };
            if self.in_body {
                if let Some(n) = self.body_lines_left.as_mut() {
                    *n -= 1;
                }
            } else if line.is_empty() {
                self.in_body = true;
            }
            if line.first() == Some(&b'.') {
                out.put_u8(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        self.pos = content.len() - lines.rest.len();
        let finished = lines.rest.is_empty() || (self.in_body && self.body_lines_left == Some(0));
        if finished {
            out.extend_from_slice(b".\r\n");
            self.done = true;
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn render(raw: &[u8], top: Option<u32>, chunk: usize) -> Vec<u8> {
        let mut w = MessageWriter::new(Bytes::copy_from_slice(raw), top);
        let mut all = Vec::new();
        loop {
            let mut out = BytesMut::new();
            let done = w.fill(&mut out, chunk);
            all.extend_from_slice(&out);
            if done {
                return all;
            }
        }
    }

    /// What a client does: split at CRLF, stop at ".", remove stuffing.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = wire;
        loop {
            let i = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = &rest[..i];
            rest = &rest[i + 2..];
            if line == b"." {
                assert!(rest.is_empty());
                return out;
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            out.extend_from_slice(b"\r\n");
        }
    }

    #[test]
    fn top_sends_header_and_n_lines() {
        let msg = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(render(msg, Some(0), 4096), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            render(msg, Some(2), 4096),
            b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n"
        );
        assert_eq!(render(msg, Some(99), 4096), render(msg, None, 4096));
        // No body separator: the whole message is header.
        assert_eq!(
            render(b"A: 1\nB: 2", Some(0), 4096),
            b"A: 1\r\nB: 2\r\n.\r\n"
        );
    }

    #[test]
    fn empty_message_is_just_the_terminator() {
        assert_eq!(render(b"", None, 4096), b".\r\n");
        assert_eq!(octets(b""), 0);
    }

    #[test]
    fn stuffing_of_dot_lines() {
        assert_eq!(
            render(b".\r\n..\r\n.x", None, 4096),
            b"..\r\n...\r\n..x\r\n.\r\n"
        );
    }

    proptest! {
        #[test]
        fn octets_equal_what_retr_sends(raw in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..200), chunk in 1usize..64) {
            let wire = render(&raw, None, chunk);
            let received = unstuff(&wire);
            prop_assert_eq!(received.len() as u64, octets(&raw));
        }

        #[test]
        fn chunk_size_does_not_change_output(raw in proptest::collection::vec(any::<u8>(), 0..300), chunk in 1usize..64, top in proptest::option::of(0u32..5)) {
            prop_assert_eq!(render(&raw, top, chunk), render(&raw, top, 1 << 20));
        }
    }
}
