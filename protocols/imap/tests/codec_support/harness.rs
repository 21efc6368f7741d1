//! The decoder harness shared by the proptests, the corpus replay test and
//! the fuzz target: feeds bytes in chunks, checks the decoder's invariants,
//! and round-trips every command it accepts through the test formatter.

use bytes::BytesMut;
use mailroom_imap::parser::{Decoded, Decoder, Limits};

use super::format::{Style, format_request};

/// Small limits so that the bounds are exercised.
pub const LIMITS: Limits = Limits {
    max_line: 512,
    max_literal: 2048,
    max_depth: 16,
    literal_minus: false,
};

/// With LITERAL- (RFC 7888): literals large enough that its 4096-octet
/// bound on non-synchronizing ones is reached before `max_literal`.
pub const LITERAL_MINUS_LIMITS: Limits = Limits {
    max_literal: 8192,
    literal_minus: true,
    ..LIMITS
};

/// Decodes everything in `buf`, checking that every event consumed input
/// and that the buffer stays bounded. Returns the events.
pub fn drain(d: &mut Decoder, buf: &mut BytesMut) -> Vec<Decoded> {
    let limits = d.limits();
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        let r = d.decode(buf);
        if r == Decoded::Incomplete {
            assert!(
                buf.len() <= limits.max_line + 2 + limits.max_literal as usize,
                "buffer kept {} bytes",
                buf.len()
            );
            return out;
        }
        assert!(buf.len() < before, "{r:?} without consuming input");
        out.push(r);
    }
}

/// Feeds `data` in chunks whose sizes come from the data itself, then a
/// few line ends so that any pending line completes; checks every command
/// that comes out round-trips. The high bit of the first size byte turns
/// LITERAL- on ([`LITERAL_MINUS_LIMITS`]).
pub fn run(data: &[u8]) {
    let (sizes, rest) = data.split_at(data.len().min(4));
    let limits = if sizes.first().is_some_and(|b| b & 0x80 != 0) {
        LITERAL_MINUS_LIMITS
    } else {
        LIMITS
    };
    let mut d = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < rest.len() {
        let n = usize::from(sizes.get(k % sizes.len().max(1)).copied().unwrap_or(7)).max(1);
        k += 1;
        let end = (i + n).min(rest.len());
        buf.extend_from_slice(&rest[i..end]);
        i = end;
        events.extend(drain(&mut d, &mut buf));
    }
    buf.extend_from_slice(b"\r\n\r\n");
    events.extend(drain(&mut d, &mut buf));
    for e in events {
        if let Decoded::Request(r) = e {
            check_roundtrip(&r.tag, &r.command);
        }
    }
}

/// A command formatted and decoded again is the same command, in every style.
pub fn check_roundtrip(tag: &str, cmd: &mailroom_imap::command::Command) {
    for style in [Style::Plain, Style::LiteralPlus, Style::LiteralSync] {
        let bytes = format_request(tag, cmd, style);
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&bytes[..]);
        let mut got = None;
        loop {
            match d.decode(&mut buf) {
                Decoded::NeedContinuation => continue,
                Decoded::Request(r) => {
                    got = Some(r);
                    break;
                }
                Decoded::Incomplete => break,
                other => panic!(
                    "formatted command did not parse: {other:?}\n{}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
        let got = got.unwrap_or_else(|| panic!("incomplete: {}", String::from_utf8_lossy(&bytes)));
        assert_eq!(got.tag, tag);
        assert_eq!(&got.command, cmd, "{}", String::from_utf8_lossy(&bytes));
        assert!(buf.is_empty());
    }
}
