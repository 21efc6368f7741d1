//! The message after `DATA`: dot-unstuffing and the end line, exactly as
//! RFC 5321 §4.5.2 and §4.1.1.4 have them.
//!
//! The data ends at the first CR LF `.` CR LF (the CR LF before the dot
//! belongs to the message; the DATA command's own line end counts as the
//! first CR LF, so a message may be empty). A line that starts with a dot
//! and has more on it loses that dot. A bare LF is not a line end here, so
//! LF `.` LF, CR `.` CR LF and the like are data, never the end (the "SMTP
//! smuggling" forms).
//!
//! `smtp-proto`'s `DataReceiver` was used here first. The `codec` fuzz target
//! found that it also ends the data at CR LF `.` CR CR LF (any run of CRs
//! before the LF), keeping a CR as the message's last byte, so the bytes
//! after that line would have been read as commands. This reader is the
//! RFC's rule and nothing else.

/// Where the reader is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a line.
    Text,
    /// Inside a line, just after a CR.
    Cr,
    /// At the start of a line (after CR LF).
    LineStart,
    /// A line started with a dot (held back: stuffing or the end line).
    Dot,
    /// A line started with dot CR (held back: the end line if LF follows).
    DotCr,
}

/// Reads message data incrementally; see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct DataReader {
    state: State,
}

impl DataReader {
    /// A reader at the start of the data (just after the DATA line).
    pub(crate) fn new() -> DataReader {
        DataReader {
            state: State::LineStart,
        }
    }

    /// Reads from `input`, appending the unstuffed data to `sink` (if any).
    /// Returns how many bytes of `input` it took and whether the end line was
    /// among them; nothing after the end line is taken.
    pub(crate) fn ingest(&mut self, input: &[u8], mut sink: Option<&mut Vec<u8>>) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Text {
                // The common case: copy up to the next CR in one go.
                let run = input[i..]
                    .iter()
                    .position(|&b| b == b'\r')
                    .unwrap_or(input.len() - i);
                if let Some(out) = sink.as_deref_mut() {
                    out.extend_from_slice(&input[i..i + run]);
                }
                i += run;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            let mut push = |bytes: &[u8]| {
                if let Some(out) = sink.as_deref_mut() {
                    out.extend_from_slice(bytes);
                }
            };
            self.state = match (self.state, b) {
                (State::LineStart, b'.') => State::Dot,
                (State::Dot, b'\r') => State::DotCr,
                (State::DotCr, b'\n') => {
                    self.state = State::LineStart;
                    return (i, true);
                }
                // ". CR x": a stuffed line starting with CR; the dot goes.
                (State::DotCr, b) => {
                    push(b"\r");
                    push(&[b]);
                    after(State::Cr, b)
                }
                (State::Dot, b) => {
                    push(&[b]);
                    after(State::Text, b)
                }
                (state, b) => {
                    push(&[b]);
                    after(state, b)
                }
            };
        }
        (i, false)
    }
}

/// The state after data byte `b` was read in `state` (not a held-back dot).
fn after(state: State, b: u8) -> State {
    match (state, b) {
        (_, b'\r') => State::Cr,
        (State::Cr, b'\n') => State::LineStart,
        _ => State::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(chunks: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
        let mut r = DataReader::new();
        let mut out = Vec::new();
        let mut taken = 0;
        for chunk in chunks {
            let (n, done) = r.ingest(chunk, Some(&mut out));
            taken += n;
            if done {
                return (out, Some(taken));
            }
            assert_eq!(n, chunk.len(), "everything is taken until the end");
        }
        (out, None)
    }

    #[test]
    fn rfc_5321_end_and_stuffing() {
        assert_eq!(read(&[b".\r\n"]), (b"".to_vec(), Some(3)));
        assert_eq!(read(&[b"a\r\n.\r\nNOOP"]), (b"a\r\n".to_vec(), Some(6)));
        assert_eq!(read(&[b"..x\r\n.\r\n"]), (b".x\r\n".to_vec(), Some(8)));
        assert_eq!(read(&[b"..\r\n.\r\n"]), (b".\r\n".to_vec(), Some(7)));
        // a stuffed line that is just a CR
        assert_eq!(read(&[b".\r\r\n.\r\n"]), (b"\r\r\n".to_vec(), Some(7)));
        // not the end: bare LF and CR forms, a dot inside a line
        for data in [
            &b"a\n.\nb"[..],
            b"a\r.\r\nb",
            b"a\n.\r\nb",
            b"a.\r\nb",
            b"\r\n.\r",
        ] {
            let (out, end) = read(&[data]);
            assert_eq!(end, None, "{:?}", String::from_utf8_lossy(data));
            assert!(!out.is_empty());
        }
    }

    fn reference(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let rest = &raw[i..];
            let len = rest.windows(2).position(|w| w == b"\r\n")? + 2;
            let line = &rest[..len];
            if line == b".\r\n" {
                return Some((out, i + len));
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            i += len;
        }
    }

    proptest! {
        #[test]
        fn matches_the_rfc_rule_however_split(
            raw in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'x')], 0..64),
            split in 1usize..8,
        ) {
            let chunks: Vec<&[u8]> = raw.chunks(split).collect();
            let (out, end) = read(&chunks);
            match reference(&raw) {
                Some((expected, len)) => {
                    prop_assert_eq!(end, Some(len));
                    prop_assert_eq!(out, expected);
                }
                None => prop_assert_eq!(end, None),
            }
        }
    }
}
