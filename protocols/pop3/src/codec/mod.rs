//! The POP3 codec: bytes to [`Command`]s and [`Reply`]s to bytes.
//!
//! Decoding is incremental: [`Pop3Codec::decode`] returns `None` until a
//! whole line is buffered, bounds the line length, and turns every line it
//! cannot parse into [`Command::Malformed`] (answered `-ERR`), so a client
//! can neither panic the server nor make it drop the connection with bad
//! syntax.

mod command;
mod message;
mod reply;

pub use command::{Command, MessageNumber};
pub use mailroom_core::base64::{decode as base64_decode, encode as base64_encode};
pub use message::{MessageWriter, octets};
pub use reply::{Action, Body, Reply, ResponseCode, Status};

use bytes::{Buf, BytesMut};

/// RFC 2449 §4: command lines are at most 255 octets; this is the least a
/// server may accept.
pub const MIN_LINE_LENGTH: usize = 255;

/// Splits a byte stream into POP3 command lines.
///
/// ```
/// use bytes::BytesMut;
/// use mailroom_pop3::codec::{Command, Pop3Codec};
///
/// let mut codec = Pop3Codec::new(1024);
/// let mut buf = BytesMut::from(&b"STAT\r\nLIST 1\r\nRE"[..]);
/// assert_eq!(codec.decode(&mut buf), Some(Command::Stat));
/// assert_eq!(codec.decode(&mut buf), Some(Command::List(Some(1))));
/// assert_eq!(codec.decode(&mut buf), None); // "RE" needs more
/// buf.extend_from_slice(b"TR 1\r\n");
/// assert_eq!(codec.decode(&mut buf), Some(Command::Retr(1)));
/// ```
#[derive(Debug, Clone)]
pub struct Pop3Codec {
    max_line: usize,
    /// Bytes of an over-long line are being thrown away up to its LF.
    discarding: bool,
    /// The next line answers a SASL challenge rather than being a command.
    sasl: bool,
    /// How far `buf` has been searched for LF already (no rescans).
    scanned: usize,
}

impl Pop3Codec {
    /// A codec accepting lines up to `max_line` bytes (CRLF included; at least
    /// [`MIN_LINE_LENGTH`]).
    pub fn new(max_line: usize) -> Pop3Codec {
        Pop3Codec {
            max_line: max_line.max(MIN_LINE_LENGTH),
            discarding: false,
            sasl: false,
            scanned: 0,
        }
    }

    /// Whether the next line is a SASL response (set after a `+ ` challenge).
    pub fn set_expect_sasl_response(&mut self, sasl: bool) {
        self.sasl = sasl;
    }

    /// Takes one command off the front of `buf`, or returns `None` if no
    /// whole line is there yet. Never fails: bad input becomes
    /// [`Command::Malformed`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Command> {
        let from = self.scanned.min(buf.len());
        let Some(pos) = buf[from..].iter().position(|&b| b == b'\n') else {
            if self.discarding || buf.len() >= self.max_line {
                // Too long already: drop what we have and skip to the LF.
                buf.clear();
                self.scanned = 0;
                self.discarding = true;
            } else {
                self.scanned = buf.len();
            }
            return None;
        };
        let end = from + pos;
        self.scanned = 0;
        let sasl = std::mem::take(&mut self.sasl);
        if std::mem::take(&mut self.discarding) || end + 1 > self.max_line {
            buf.advance(end + 1);
            // An over-long SASL line still ends the exchange.
            return Some(if sasl {
                Command::SaslResponse("*".into())
            } else {
                Command::Malformed {
                    reason: "line too long",
                }
            });
        }
        let line = buf.split_to(end + 1);
        let mut line = &line[..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if sasl {
            return Some(match std::str::from_utf8(line) {
                Ok(s) => Command::SaslResponse(s.trim().to_owned()),
                Err(_) => Command::SaslResponse("*".into()),
            });
        }
        Some(Command::parse(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(codec: &mut Pop3Codec, buf: &mut BytesMut) -> Vec<Command> {
        std::iter::from_fn(|| codec.decode(buf)).collect()
    }

    #[test]
    fn partial_lines_need_more() {
        let mut c = Pop3Codec::new(255);
        let mut buf = BytesMut::new();
        for b in b"UIDL 12\r" {
            buf.extend_from_slice(&[*b]);
            assert_eq!(c.decode(&mut buf), None);
        }
        buf.extend_from_slice(b"\n");
        assert_eq!(c.decode(&mut buf), Some(Command::Uidl(Some(12))));
        assert!(buf.is_empty());
    }

    #[test]
    fn bare_lf_is_accepted() {
        let mut c = Pop3Codec::new(255);
        let mut buf = BytesMut::from(&b"NOOP\nQUIT\n"[..]);
        assert_eq!(
            decode_all(&mut c, &mut buf),
            vec![Command::Noop, Command::Quit]
        );
    }

    #[test]
    fn long_line_is_skipped_and_reported_once() {
        let mut c = Pop3Codec::new(255);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[b'A'; 300]);
        assert_eq!(c.decode(&mut buf), None);
        buf.extend_from_slice(&[b'A'; 5000]);
        assert_eq!(c.decode(&mut buf), None);
        assert!(buf.len() < 255, "buffer stays bounded");
        buf.extend_from_slice(b"AAA\r\nNOOP\r\n");
        assert_eq!(
            decode_all(&mut c, &mut buf),
            vec![
                Command::Malformed {
                    reason: "line too long"
                },
                Command::Noop
            ]
        );
    }

    #[test]
    fn sasl_mode_reads_one_raw_line() {
        let mut c = Pop3Codec::new(255);
        c.set_expect_sasl_response(true);
        let mut buf = BytesMut::from(&b"AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n"[..]);
        assert_eq!(
            c.decode(&mut buf),
            Some(Command::SaslResponse("AGFsaWNlAHNlY3JldA==".into()))
        );
        assert_eq!(c.decode(&mut buf), Some(Command::Stat));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..20)) {
            let mut c = Pop3Codec::new(255);
            let mut buf = BytesMut::new();
            for chunk in chunks {
                buf.extend_from_slice(&chunk);
                while c.decode(&mut buf).is_some() {}
                prop_assert!(buf.len() < 255 + 400);
            }
        }

        #[test]
        fn split_points_do_not_matter(line in "(STAT|LIST [1-9][0-9]{0,3}|TOP [1-9] [0-9]{1,3}|UIDL|USER [a-z]{1,10}|PASS [ -~]{1,20}|NOOP|[A-Z]{1,6}( [a-z0-9]{1,5})?)", split in 0usize..40) {
            let whole = format!("{line}\r\n");
            let mut c1 = Pop3Codec::new(255);
            let mut b1 = BytesMut::from(whole.as_bytes());
            let expected = c1.decode(&mut b1);
            prop_assert!(expected.is_some());
            let split = split.min(whole.len());
            let mut c2 = Pop3Codec::new(255);
            let mut b2 = BytesMut::from(&whole.as_bytes()[..split]);
            let mut got = c2.decode(&mut b2);
            if got.is_none() {
                b2.extend_from_slice(&whole.as_bytes()[split..]);
                got = c2.decode(&mut b2);
            }
            prop_assert_eq!(got, expected);
        }
    }
}
