//! The byte-level writer behind [`encode`](super::encode): a buffer that is
//! cut into chunks wherever a message body is appended, so bodies travel as
//! the `Bytes` the store handed out, never copied.

use bytes::Bytes;
use mailroom_core::InternalDate;

use super::body_structure::{write_astring, write_string, write_uint};
use crate::parser::primitives::{civil_from_days, is_atom_char, month_name};

/// Under UTF8=ACCEPT, UTF-8 strings up to this length go quoted.
const MAX_QUOTED: usize = 1024;

/// The size at which a long list of numbers (SEARCH, SORT, THREAD of a
/// large mailbox) is cut into a chunk of its own: the buffer is allocated
/// at this size once and never grown by doubling (a 700 KB SORT answer
/// grown that way spent a fifth of the command in page faults and
/// `madvise`, `perf record` of `mailroom-bench sort`).
pub(crate) const SPILL: usize = 64 * 1024;

/// The response being written.
#[derive(Debug)]
pub(crate) struct Out<'a> {
    pub(crate) buf: Vec<u8>,
    chunks: &'a mut Vec<Bytes>,
    pub(crate) utf8: bool,
}

impl<'a> Out<'a> {
    pub(crate) fn new(chunks: &'a mut Vec<Bytes>, utf8: bool) -> Out<'a> {
        Out {
            buf: Vec::with_capacity(128),
            chunks,
            utf8,
        }
    }

    pub(crate) fn raw(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn num(&mut self, n: impl std::fmt::Display) {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(self.buf, "{n}");
    }

    /// An unsigned number, without going through `fmt` (FETCH of 100,000
    /// messages writes a few hundred thousand of these).
    pub(crate) fn uint(&mut self, n: impl Into<u64>) {
        write_uint(&mut self.buf, n.into());
    }

    pub(crate) fn sp(&mut self) {
        self.buf.push(b' ');
    }

    /// `SP number` for each number: the SEARCH and SORT lists, written in
    /// chunks of [`SPILL`] bytes.
    pub(crate) fn sp_uints(&mut self, ns: &[u32]) {
        for &n in ns {
            self.buf.push(b' ');
            write_uint(&mut self.buf, n.into());
            self.spill();
        }
    }

    /// Ends the current chunk once it holds [`SPILL`] bytes and starts the
    /// next at that size (for responses whose length grows with the
    /// mailbox), so that a long response is never copied to grow it.
    pub(crate) fn spill(&mut self) {
        if self.buf.len() >= SPILL {
            let next = Vec::with_capacity(SPILL + 64);
            self.chunks
                .push(Bytes::from(std::mem::replace(&mut self.buf, next)));
        }
    }

    /// A literal whose bytes are appended as their own chunk, uncopied.
    ///
    /// A literal may not hold NUL (RFC 3501 §9, `CHAR8`); only BINARY's
    /// `literal8` may. A message that has NULs anyway (they are rare and
    /// always malformed mail) is sent with each NUL replaced by 0x80, as
    /// Dovecot does, which costs a copy of that one message.
    pub(crate) fn literal_bytes(&mut self, data: &Bytes) {
        self.buf.push(b'{');
        self.num(data.len());
        self.raw(b"}\r\n");
        if data.is_empty() {
            return;
        }
        self.flush();
        if data.contains(&0) {
            let clean: Vec<u8> = data
                .iter()
                .map(|&b| if b == 0 { 0x80 } else { b })
                .collect();
            self.chunks.push(Bytes::from(clean));
        } else {
            self.chunks.push(data.clone());
        }
    }

    /// BINARY's data (RFC 3516): a `literal8` (`~{n}`) when it holds NUL,
    /// else an ordinary literal; the bytes go as their own chunk, uncopied.
    pub(crate) fn literal8_bytes(&mut self, data: &Bytes) {
        if !data.contains(&0) {
            return self.literal_bytes(data);
        }
        self.raw(b"~{");
        self.num(data.len());
        self.raw(b"}\r\n");
        self.flush();
        self.chunks.push(data.clone());
    }

    /// A string: quoted when it can be, else a literal (the MIME
    /// engineer's [`write_string`] decides; under UTF8=ACCEPT valid UTF-8
    /// may also go quoted, RFC 6855 §3).
    pub(crate) fn string(&mut self, s: &[u8]) {
        if self.utf8 && !s.is_ascii() && utf8_quotable(s) {
            quote_into(&mut self.buf, s);
        } else {
            write_string(&mut self.buf, s);
        }
    }

    /// `astring`: an atom when it can be one, else a string.
    pub(crate) fn astring(&mut self, s: &[u8]) {
        if self.utf8 && !s.is_ascii() && utf8_quotable(s) {
            quote_into(&mut self.buf, s);
        } else {
            write_astring(&mut self.buf, s);
        }
    }

    /// A mailbox name: modified UTF-7 unless UTF8=ACCEPT, written as a string.
    pub(crate) fn mailbox(&mut self, name: &str) {
        if self.utf8 {
            self.string(name.as_bytes());
        } else {
            let enc = crate::utf7::encode(name);
            self.string(enc.as_bytes());
        }
    }

    /// Human-readable text with CR, LF and NUL replaced by spaces.
    pub(crate) fn text(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.buf.push(if matches!(b, b'\r' | b'\n' | 0) {
                b' '
            } else {
                b
            });
        }
    }

    /// An atom from a caller-supplied name (capability, flag, attribute);
    /// characters an atom cannot hold are dropped so the response stays parseable.
    pub(crate) fn atom(&mut self, s: &str) {
        for &b in s.as_bytes() {
            if is_atom_char(b) || b == b'\\' || b == b']' {
                self.buf.push(b);
            }
        }
    }

    /// `date-time`: `"dd-Mon-yyyy hh:mm:ss +zzzz"`.
    pub(crate) fn date_time(&mut self, d: &InternalDate) {
        let s = format_date_time(d);
        self.buf.push(b'"');
        self.str(&s);
        self.buf.push(b'"');
    }

    /// Ends the response.
    pub(crate) fn finish(mut self) {
        self.raw(b"\r\n");
        self.flush();
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let b = std::mem::take(&mut self.buf);
            self.chunks.push(Bytes::from(b));
        }
    }
}

/// Whether UTF-8 text can be a quoted string under UTF8=ACCEPT.
fn utf8_quotable(s: &[u8]) -> bool {
    s.len() <= MAX_QUOTED
        && !s.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
        && std::str::from_utf8(s).is_ok()
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn quote_into(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            buf.push(b'\\');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz` for an internal date, in its own zone.
pub(crate) fn format_date_time(d: &InternalDate) -> String {
    // Years must have four digits.
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let offset = i64::from(d.offset_minutes.clamp(-(99 * 60 + 59), 99 * 60 + 59));
    let local = d.timestamp.saturating_add(offset * 60).clamp(MIN, MAX);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, day) = civil_from_days(days);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.abs();
    format!(
        "{day:02}-{}-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        month_name(m),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 60,
        off % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::primitives::parse_date_time;
    use proptest::prelude::*;

    #[test]
    fn date_format() {
        let d = InternalDate {
            timestamp: 1_577_869_200,
            offset_minutes: 60,
        };
        assert_eq!(format_date_time(&d), "01-Jan-2020 10:00:00 +0100");
        let d = InternalDate {
            timestamp: 0,
            offset_minutes: -90,
        };
        assert_eq!(format_date_time(&d), "31-Dec-1969 22:30:00 -0130");
    }

    #[test]
    fn strings() {
        let mut chunks = Vec::new();
        let mut o = Out::new(&mut chunks, false);
        o.string(b"a\"b\\c");
        o.sp();
        o.string(b"line\r\nbreak");
        o.sp();
        o.astring(b"INBOX");
        o.sp();
        o.astring(b"NIL");
        o.sp();
        o.string("é".as_bytes());
        o.finish();
        let all: Vec<u8> = chunks.concat();
        assert_eq!(
            all,
            "\"a\\\"b\\\\c\" {11}\r\nline\r\nbreak INBOX \"NIL\" {2}\r\né\r\n".as_bytes()
        );
    }

    proptest! {
        #[test]
        fn date_roundtrip(ts in -2_000_000_000i64..4_000_000_000, off in -720i16..840) {
            let d = InternalDate { timestamp: ts, offset_minutes: off };
            let s = format_date_time(&d);
            prop_assert_eq!(parse_date_time(s.as_bytes()), Some(d));
        }
    }
}
