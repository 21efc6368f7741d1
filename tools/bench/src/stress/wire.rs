//! The checker's side of the wire: one blocking IMAP connection that sends a
//! command and collects every response line up to its tagged completion,
//! each literal kept apart (see `parse`, which reads and parses the lines).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub(crate) use super::parse::{Bytes, Code, Fetch, Response, parse, parse_tagged};
#[cfg(test)]
use super::parse::{parse_set, parse_values};

/// One command and everything the server said until its completion.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exchange {
    /// What was sent (literal contents elided).
    pub(crate) sent: String,
    /// The untagged and continuation lines, in order.
    pub(crate) lines: Vec<String>,
    /// The tagged completion line.
    pub(crate) tagged: String,
    /// The literals of the lines, by the index in their `{#i}` atom.
    pub(crate) literals: Vec<Vec<u8>>,
}

impl Exchange {
    /// `OK`, `NO` or `BAD` (anything else as it came).
    pub(crate) fn status(&self) -> &str {
        self.tagged.split(' ').nth(1).unwrap_or("")
    }

    /// The exchange as printed under a violation: `C:` and `S:` lines, at
    /// most `limit` server lines (the middle elided).
    pub(crate) fn transcript(&self, limit: usize) -> String {
        let mut out = format!("    C: {}\n", self.sent);
        let n = self.lines.len();
        for (i, l) in self.lines.iter().enumerate() {
            if n > limit && i == limit / 2 {
                out.push_str(&format!("    S: ... {} lines ...\n", n - limit));
            }
            if n > limit && i >= limit / 2 && i < n - limit / 2 {
                continue;
            }
            out.push_str(&format!("    S: {l}\n"));
        }
        out.push_str(&format!("    S: {}\n", self.tagged));
        for (i, l) in self.literals.iter().enumerate().take(limit) {
            out.push_str(&format!(
                "    literal #{i}: {} bytes: {:?}\n",
                l.len(),
                String::from_utf8_lossy(&l[..l.len().min(160)])
            ));
        }
        out
    }
}

/// A connection to the server under test.
#[derive(Debug)]
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_tag: u64,
}

impl Conn {
    /// Connects and reads the greeting.
    pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let mut c = Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            next_tag: 1,
        };
        let greeting = c.read_line(&mut Vec::new())?;
        if !greeting.starts_with("* OK") {
            bail!("bad greeting: {greeting:?}");
        }
        Ok(c)
    }

    fn tag(&mut self) -> String {
        let t = format!("s{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Sends `command` and reads to its completion.
    pub(crate) fn exec(&mut self, command: &str) -> Result<Exchange> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        let mut ex = Exchange {
            sent: format!("{tag} {command}"),
            ..Exchange::default()
        };
        self.read_to(&tag, &mut ex)?;
        Ok(ex)
    }

    /// APPEND with a synchronizing literal (every server takes it).
    pub(crate) fn append(&mut self, head: &str, message: &[u8]) -> Result<Exchange> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} {head} {{{}}}\r\n", message.len()).as_bytes())?;
        let mut ex = Exchange {
            sent: format!("{tag} {head} {{{}}} <message>", message.len()),
            ..Exchange::default()
        };
        if !self.read_to_continuation(&tag, &mut ex)? {
            return Ok(ex);
        }
        self.writer.write_all(message)?;
        self.writer.write_all(b"\r\n")?;
        self.read_to(&tag, &mut ex)?;
        Ok(ex)
    }

    /// IDLE for `wait`, then DONE: what arrived meanwhile is read after DONE
    /// (it waits in the socket, in order).
    pub(crate) fn idle(&mut self, wait: Duration) -> Result<Exchange> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} IDLE\r\n").as_bytes())?;
        let mut ex = Exchange {
            sent: format!("{tag} IDLE ... DONE"),
            ..Exchange::default()
        };
        if !self.read_to_continuation(&tag, &mut ex)? {
            return Ok(ex);
        }
        std::thread::sleep(wait);
        self.writer.write_all(b"DONE\r\n")?;
        self.read_to(&tag, &mut ex)?;
        Ok(ex)
    }

    /// Reads until a `+` line (true) or the tagged completion (false).
    fn read_to_continuation(&mut self, tag: &str, ex: &mut Exchange) -> Result<bool> {
        loop {
            let line = self.read_line(&mut ex.literals)?;
            if line.starts_with('+') {
                ex.lines.push(line);
                return Ok(true);
            }
            if is_tagged(&line, tag) {
                ex.tagged = line;
                return Ok(false);
            }
            ex.lines.push(line);
        }
    }

    fn read_to(&mut self, tag: &str, ex: &mut Exchange) -> Result<()> {
        loop {
            let line = self.read_line(&mut ex.literals)?;
            if is_tagged(&line, tag) {
                ex.tagged = line;
                return Ok(());
            }
            if line.starts_with("* BYE") && !ex.sent.ends_with("LOGOUT") {
                ex.lines.push(line);
                bail!("server said BYE: {}", ex.transcript(40));
            }
            ex.lines.push(line);
        }
    }

    /// One response line (see `parse::read_line`).
    fn read_line(&mut self, literals: &mut Vec<Vec<u8>>) -> Result<String> {
        Ok(super::parse::read_line(&mut self.reader, literals)?)
    }
}

fn is_tagged(line: &str, tag: &str) -> bool {
    line.strip_prefix(tag)
        .is_some_and(|rest| rest.starts_with(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_responses_the_model_reads() {
        assert_eq!(parse("* 3 EXISTS"), Response::Exists(3));
        assert_eq!(parse("* 2 EXPUNGE"), Response::Expunge(2));
        assert_eq!(
            parse("* FLAGS (\\Seen $Kw1)"),
            Response::Flags(vec!["\\Seen".into(), "$Kw1".into()])
        );
        assert_eq!(
            parse("* 4 FETCH (UID 9 FLAGS (\\Seen \\Recent) MODSEQ (17))"),
            Response::Fetch(Fetch {
                seq: 4,
                uid: Some(9),
                flags: Some(vec!["\\Seen".into(), "\\Recent".into()]),
                modseq: Some(17),
                ..Fetch::default()
            })
        );
        assert_eq!(
            parse("* 1 FETCH (FLAGS () BODY[HEADER.FIELDS (SUBJECT)] \"\" UID 3)"),
            Response::Fetch(Fetch {
                seq: 1,
                uid: Some(3),
                flags: Some(vec![]),
                modseq: None,
                sections: vec![(
                    "BODY[HEADER.FIELDS (SUBJECT)]".into(),
                    Bytes::Quoted(String::new())
                )],
                ..Fetch::default()
            })
        );
        assert_eq!(
            parse("* SEARCH 2 5 (MODSEQ 40)"),
            Response::Search(vec![2, 5], Some(40))
        );
        assert_eq!(
            parse("* OK [COPYUID 7 3:5,9 20:23] Moved"),
            Response::Status(
                "OK".into(),
                Some(Code::CopyUid(7, vec![3, 4, 5, 9], vec![20, 21, 22, 23]))
            )
        );
        assert_eq!(
            parse_tagged("s1 OK [APPENDUID 7 12] done"),
            ("OK".into(), Some(Code::AppendUid(7, vec![12])))
        );
        assert_eq!(
            parse("* OK [PERMANENTFLAGS (\\Seen \\*)] ok"),
            Response::Status(
                "OK".into(),
                Some(Code::PermanentFlags(vec!["\\Seen".into(), "\\*".into()]))
            )
        );
        assert!(matches!(parse("* 1 FETCH (UID x)"), Response::Other(_)));
        assert_eq!(
            parse("* VANISHED (EARLIER) 3:5,9"),
            Response::Vanished(true, vec![(3, 5), (9, 9)])
        );
        assert_eq!(
            parse("* VANISHED 7"),
            Response::Vanished(false, vec![(7, 7)])
        );
        assert_eq!(
            parse_tagged("s4 OK [MODIFIED 7,9:8] Conditional STORE failed"),
            ("OK".into(), Some(Code::Modified(vec![(7, 7), (8, 9)])))
        );
        assert_eq!(parse_set("1:100000000"), None);
    }

    /// Literals (and literal8) are taken out of the line into the
    /// exchange's list; the FETCH names them by index.
    #[test]
    fn literals_are_kept_and_named() {
        let wire = b"* 2 FETCH (UID 8 RFC822.SIZE 5 BODY[] {5}\r\nab\r\nc BINARY[] ~{2}\r\nxy BODY[HEADER] \"h\")\r\n* 3 EXISTS\r\n";
        let mut r = std::io::BufReader::new(&wire[..]);
        let mut lits = Vec::new();
        let line = super::super::parse::read_line(&mut r, &mut lits).unwrap();
        assert_eq!(lits, vec![b"ab\r\nc".to_vec(), b"xy".to_vec()]);
        assert_eq!(
            parse(&line),
            Response::Fetch(Fetch {
                seq: 2,
                uid: Some(8),
                size: Some(5),
                sections: vec![
                    ("BODY[]".into(), Bytes::Literal(0)),
                    ("BINARY[]".into(), Bytes::Literal(1)),
                    ("BODY[HEADER]".into(), Bytes::Quoted("h".into())),
                ],
                ..Fetch::default()
            })
        );
        let line = super::super::parse::read_line(&mut r, &mut lits).unwrap();
        assert_eq!(parse(&line), Response::Exists(3));
        // `{#` from a (broken) server cannot pass for a literal
        let mut r = std::io::BufReader::new(&b"* 1 FETCH (UID 1 BODY[] {#0})\r\n"[..]);
        let line = super::super::parse::read_line(&mut r, &mut Vec::new()).unwrap();
        let Response::Fetch(f) = parse(&line) else {
            panic!("{line}")
        };
        assert_eq!(
            f.sections,
            vec![("BODY[]".into(), Bytes::Quoted("{".into()))]
        );
        // a literal cut short by the end of the stream is an error
        let mut r = std::io::BufReader::new(&b"* 1 FETCH (BODY[] {9}\r\nab"[..]);
        assert!(super::super::parse::read_line(&mut r, &mut Vec::new()).is_err());
    }

    proptest::proptest! {
        /// Whatever a (broken) server sends, the parsers answer without
        /// panicking, and a UID set never grows past its bound.
        #[test]
        fn any_line_parses_without_panic(line in "[* 0-9A-Z()\\[\\]\"{}:,+$a-z]{0,80}") {
            let _ = parse(&line);
            let _ = parse_tagged(&line);
            let _ = parse_values(&line);
            if let Some(v) = parse_set(&line) {
                proptest::prop_assert!(v.len() <= 100_000);
            }
        }

        #[test]
        fn fetch_responses_round_trip(seq in 1u32..1000, uid in 1u32..100_000, modseq in 1u64..1_000_000,
                                      flags in proptest::collection::btree_set("\\\\?[A-Za-z$][a-z0-9]{0,6}", 0..5)) {
            let flags: Vec<String> = flags.into_iter().collect();
            let line = format!("* {seq} FETCH (UID {uid} FLAGS ({}) MODSEQ ({modseq}))", flags.join(" "));
            proptest::prop_assert_eq!(
                parse(&line),
                Response::Fetch(Fetch { seq, uid: Some(uid), flags: Some(flags), modseq: Some(modseq), ..Fetch::default() })
            );
        }
    }
}
