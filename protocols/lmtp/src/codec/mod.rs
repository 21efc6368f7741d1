//! The LMTP codec: command lines and message data in, replies out.
//!
//! Command lines are framed here (bounded length, a line too long is a
//! `500 5.5.2` and skipped) and parsed by `smtp-proto`; after a `354` the
//! codec switches to data mode, where the `data` module's reader dot-unstuffs
//! incrementally until `CRLF.CRLF`. Data beyond the size limit is
//! discarded as it arrives (the client still gets to finish), so memory stays
//! bounded whatever a client sends.

mod command;
mod data;
mod reply;

pub use command::{BodyType, Command, MessageData};
pub use reply::Reply;

use bytes::{Buf, Bytes, BytesMut};
use data::DataReader;

/// RFC 5321 §4.5.3.1.4: the least a server accepts for a command line.
pub const MIN_LINE_LENGTH: usize = 512;

enum Mode {
    Commands,
    Data { reader: DataReader, data: Vec<u8> },
    Discard(DataReader),
}

/// Splits a byte stream into LMTP commands and messages.
///
/// ```
/// use bytes::BytesMut;
/// use mailroom_lmtp::codec::{Command, LmtpCodec, MessageData};
///
/// let mut codec = LmtpCodec::new(4096, 1 << 20);
/// let mut buf = BytesMut::from(&b"DATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n"[..]);
/// assert_eq!(codec.decode(&mut buf), Some(Command::Data));
/// codec.start_data(); // the session answered 354
/// assert_eq!(
///     codec.decode(&mut buf),
///     Some(Command::Message(MessageData::Complete("Subject: hi\r\n\r\n.dot\r\n".into())))
/// );
/// assert_eq!(codec.decode(&mut buf), Some(Command::Quit));
/// ```
pub struct LmtpCodec {
    max_line: usize,
    max_message: usize,
    mode: Mode,
    discarding_line: bool,
    scanned: usize,
}

impl std::fmt::Debug for LmtpCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmtpCodec")
            .field("max_line", &self.max_line)
            .field("max_message", &self.max_message)
            .field(
                "mode",
                &match self.mode {
                    Mode::Commands => "commands",
                    Mode::Data { .. } => "data",
                    Mode::Discard(_) => "discarding data",
                },
            )
            .finish()
    }
}

impl LmtpCodec {
    /// A codec with the given line and message limits (bytes).
    pub fn new(max_line: usize, max_message: usize) -> LmtpCodec {
        LmtpCodec {
            max_line: max_line.max(MIN_LINE_LENGTH),
            max_message,
            mode: Mode::Commands,
            discarding_line: false,
            scanned: 0,
        }
    }

    /// Switches to data mode: the bytes that follow are the message.
    pub fn start_data(&mut self) {
        self.mode = Mode::Data {
            reader: DataReader::new(),
            data: Vec::new(),
        };
    }

    /// Whether the codec is reading a message.
    pub fn in_data(&self) -> bool {
        !matches!(self.mode, Mode::Commands)
    }

    /// Takes one command (or a complete message) off the front of `buf`, or
    /// `None` if more input is needed. Never fails: bad input becomes
    /// [`Command::Malformed`] or [`Command::Unknown`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Command> {
        match &mut self.mode {
            Mode::Commands => self.decode_line(buf),
            Mode::Data { reader, data } => {
                let (consumed, done) = reader.ingest(buf, Some(data));
                buf.advance(consumed);
                if done {
                    let message = Bytes::from(std::mem::take(data));
                    self.mode = Mode::Commands;
                    if message.len() > self.max_message {
                        return Some(Command::Message(MessageData::TooBig));
                    }
                    return Some(Command::Message(MessageData::Complete(message)));
                }
                // `data` holds message bytes only (the reader holds back a
                // line's leading dot and the CR after it until it knows), so
                // whether a message fits never depends on how reads split it.
                if data.len() > self.max_message {
                    self.mode = Mode::Discard(reader.clone());
                }
                None
            }
            Mode::Discard(reader) => {
                let (consumed, done) = reader.ingest(buf, None);
                buf.advance(consumed);
                if done {
                    self.mode = Mode::Commands;
                    return Some(Command::Message(MessageData::TooBig));
                }
                None
            }
        }
    }

    fn decode_line(&mut self, buf: &mut BytesMut) -> Option<Command> {
        let from = self.scanned.min(buf.len());
        let Some(pos) = buf[from..].iter().position(|&b| b == b'\n') else {
            if self.discarding_line || buf.len() >= self.max_line {
                buf.clear();
                self.scanned = 0;
                self.discarding_line = true;
            } else {
                self.scanned = buf.len();
            }
            return None;
        };
        let end = from + pos + 1;
        self.scanned = 0;
        if std::mem::take(&mut self.discarding_line) || end > self.max_line {
            buf.advance(end);
            return Some(Command::Malformed {
                code: 500,
                status: [5, 5, 2],
                reason: "line too long".into(),
            });
        }
        let line = buf.split_to(end);
        Some(Command::parse(&line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data_of(chunks: &[&[u8]], max: usize) -> (Option<Command>, BytesMut) {
        let mut c = LmtpCodec::new(4096, max);
        c.start_data();
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            if let Some(cmd) = c.decode(&mut buf) {
                return (Some(cmd), buf);
            }
        }
        (None, buf)
    }

    #[test]
    fn empty_message_and_stuffed_first_line() {
        assert_eq!(
            data_of(&[b".\r\n"], 100).0,
            Some(Command::Message(MessageData::Complete(Bytes::new())))
        );
        assert_eq!(
            data_of(&[b"..x\r\n.\r\n"], 100).0,
            Some(Command::Message(MessageData::Complete(Bytes::from_static(
                b".x\r\n"
            ))))
        );
    }

    #[test]
    fn terminator_split_across_reads() {
        let (cmd, rest) = data_of(&[b"a\r\n", b"\r", b"\n.", b"\r", b"\nNOOP\r\n"], 100);
        assert_eq!(
            cmd,
            Some(Command::Message(MessageData::Complete(Bytes::from_static(
                b"a\r\n\r\n"
            ))))
        );
        assert_eq!(&rest[..], b"NOOP\r\n");
    }

    #[test]
    fn bare_lf_dot_does_not_end_the_message() {
        // SMTP smuggling: "\n.\n" and "\r.\r\n" are data, not the end.
        let (cmd, _) = data_of(&[b"a\n.\nMAIL FROM:<x@y>\r\n", b"\r\n.\r\n"], 1000);
        assert_eq!(
            cmd,
            Some(Command::Message(MessageData::Complete(Bytes::from_static(
                b"a\n.\nMAIL FROM:<x@y>\r\n\r\n"
            ))))
        );
    }

    /// Found by the `codec` fuzz target: fed a byte at a time, a message of
    /// exactly the size limit (here an empty one, limit 0) was refused as
    /// too big, because `smtp-proto`'s receiver had already stored the CR of
    /// the end line when the size was checked. In one read the same message
    /// was accepted.
    #[test]
    fn message_at_the_limit_fits_however_the_reads_split_it() {
        for (max, message) in [(0, &b""[..]), (4, b"ab\r\n"), (5, b".a\r\n")] {
            let wire: Vec<u8> = [message, b".\r\n"].concat();
            let stuffed: Vec<u8> = if message.starts_with(b".") {
                [b".", &wire[..]].concat()
            } else {
                wire
            };
            let expected = Some(Command::Message(MessageData::Complete(
                Bytes::copy_from_slice(message),
            )));
            let whole = data_of(&[&stuffed], max).0;
            let bytes: Vec<&[u8]> = stuffed.chunks(1).collect();
            let byte_by_byte = data_of(&bytes, max).0;
            assert_eq!(whole, expected, "limit {max}, one read");
            assert_eq!(byte_by_byte, expected, "limit {max}, a byte per read");
            // max + 1 bytes (3 for limit 0), a byte per read
            let longer: Vec<u8> = [&vec![b'x'; max.max(2) - 1][..], b"\r\n.\r\n"].concat();
            let over: Vec<&[u8]> = longer.chunks(1).collect();
            assert_eq!(
                data_of(&over, max).0,
                Some(Command::Message(MessageData::TooBig)),
                "limit {max}, one byte more"
            );
        }
    }

    /// Found by the `codec` fuzz target: `smtp-proto`'s receiver ended the
    /// data at CRLF "." CR CR LF, so what followed was read as commands.
    #[test]
    fn dot_cr_cr_lf_is_data_not_the_end() {
        let (cmd, rest) = data_of(&[b"a\r\n.\r\r\nRSET\r\n.\r\nNOOP\r\n"], 1000);
        assert_eq!(
            cmd,
            Some(Command::Message(MessageData::Complete(Bytes::from_static(
                b"a\r\n\r\r\nRSET\r\n"
            ))))
        );
        assert_eq!(&rest[..], b"NOOP\r\n");
    }

    #[test]
    fn too_big_is_discarded_but_read_to_the_end() {
        let big = vec![b'x'; 10_000];
        let mut c = LmtpCodec::new(4096, 1000);
        c.start_data();
        let mut buf = BytesMut::new();
        for _ in 0..10 {
            buf.extend_from_slice(&big);
            buf.extend_from_slice(b"\r\n");
            assert_eq!(c.decode(&mut buf), None);
            assert!(buf.is_empty());
        }
        buf.extend_from_slice(b".\r\nNOOP\r\n");
        assert_eq!(
            c.decode(&mut buf),
            Some(Command::Message(MessageData::TooBig))
        );
        assert_eq!(c.decode(&mut buf), Some(Command::Noop));
    }

    #[test]
    fn long_command_line_is_500_and_skipped() {
        let mut c = LmtpCodec::new(512, 1000);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[b'a'; 600]);
        assert_eq!(c.decode(&mut buf), None);
        buf.extend_from_slice(&[b'a'; 6000]);
        assert_eq!(c.decode(&mut buf), None);
        assert!(buf.len() < 512);
        buf.extend_from_slice(b"\r\nNOOP\r\n");
        assert!(matches!(
            c.decode(&mut buf),
            Some(Command::Malformed { code: 500, .. })
        ));
        assert_eq!(c.decode(&mut buf), Some(Command::Noop));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20), data_at in proptest::option::of(0usize..20)) {
            let mut c = LmtpCodec::new(512, 2000);
            let mut buf = BytesMut::new();
            for (i, chunk) in chunks.into_iter().enumerate() {
                if data_at == Some(i) && !c.in_data() {
                    c.start_data();
                }
                buf.extend_from_slice(&chunk);
                while c.decode(&mut buf).is_some() {}
                prop_assert!(buf.len() < 512 + 300);
            }
        }

        #[test]
        fn stuffing_roundtrip(lines in proptest::collection::vec("[.a-z ]{0,12}", 0..20), split in 0usize..200) {
            let mut message = String::new();
            for l in &lines { message.push_str(l); message.push_str("\r\n"); }
            let mut wire = String::new();
            for l in &lines {
                if l.starts_with('.') { wire.push('.'); }
                wire.push_str(l);
                wire.push_str("\r\n");
            }
            wire.push_str(".\r\n");
            let split = split.min(wire.len());
            let (cmd, rest) = data_of(&[&wire.as_bytes()[..split], &wire.as_bytes()[split..]], 1 << 20);
            prop_assert_eq!(cmd, Some(Command::Message(MessageData::Complete(Bytes::from(message)))));
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn command_split_points_do_not_matter(line in "(LHLO [a-z]{1,10}|MAIL FROM:<[a-z]{1,5}@[a-z]{1,5}\\.org>( SIZE=[1-9][0-9]{0,5})?|RCPT TO:<[a-z+]{1,8}@x\\.org>|DATA|RSET|NOOP|QUIT|[A-Z]{1,6})", split in 0usize..60) {
            let whole = format!("{line}\r\n");
            let mut c1 = LmtpCodec::new(512, 1000);
            let expected = c1.decode(&mut BytesMut::from(whole.as_bytes()));
            prop_assert!(expected.is_some());
            let split = split.min(whole.len());
            let mut c2 = LmtpCodec::new(512, 1000);
            let mut b = BytesMut::from(&whole.as_bytes()[..split]);
            let mut got = c2.decode(&mut b);
            if got.is_none() {
                b.extend_from_slice(&whole.as_bytes()[split..]);
                got = c2.decode(&mut b);
            }
            prop_assert_eq!(got, expected);
        }
    }
}
