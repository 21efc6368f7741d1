//! The checker's side of the wire: one blocking IMAP connection that sends a
//! command and collects every response line up to its tagged completion
//! (literals replaced by an empty quoted string, as the checker never looks
//! inside them), and a parser of the responses the model checks (RFC 3501
//! section 7, RFC 4315 UIDPLUS codes, RFC 7162 MODSEQ).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The longest response line the checker accepts (a server that sends more
/// is broken, and the checker must not grow without bound either).
const MAX_LINE: usize = 1 << 20;

/// One command and everything the server said until its completion.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exchange {
    /// What was sent (literal contents elided).
    pub(crate) sent: String,
    /// The untagged and continuation lines, in order.
    pub(crate) lines: Vec<String>,
    /// The tagged completion line.
    pub(crate) tagged: String,
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
        let greeting = c.read_line()?;
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
            let line = self.read_line()?;
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
            let line = self.read_line()?;
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

    /// One response line, CRLF removed, each literal replaced by `""`.
    fn read_line(&mut self) -> Result<String> {
        let mut out = Vec::new();
        loop {
            let mut part = Vec::new();
            let n = (&mut self.reader)
                .take((MAX_LINE - out.len().min(MAX_LINE)) as u64 + 1)
                .read_until(b'\n', &mut part)?;
            if n == 0 {
                bail!("connection closed by the server");
            }
            if !part.ends_with(b"\n") {
                bail!("response line longer than {MAX_LINE} bytes");
            }
            while matches!(part.last(), Some(b'\n' | b'\r')) {
                part.pop();
            }
            match literal_len(&part) {
                Some(len) => {
                    let open = part.iter().rposition(|&b| b == b'{').unwrap_or(part.len());
                    out.extend_from_slice(&part[..open]);
                    out.extend_from_slice(b"\"\"");
                    std::io::copy(&mut (&mut self.reader).take(len), &mut std::io::sink())?;
                }
                None => {
                    out.extend_from_slice(&part);
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
            }
        }
    }
}

fn is_tagged(line: &str, tag: &str) -> bool {
    line.strip_prefix(tag)
        .is_some_and(|rest| rest.starts_with(' '))
}

fn literal_len(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// A parenthesised value of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// An atom, number or string.
    Atom(String),
    /// A parenthesised list.
    List(Vec<Value>),
}

/// Parses a sequence of values (atoms, quoted strings, lists). Brackets in
/// an atom (`BODY[...]`) are kept in the atom; anything unbalanced ends
/// the parse where it is.
pub(crate) fn parse_values(s: &str) -> Vec<Value> {
    fn list(b: &[u8], i: &mut usize) -> Vec<Value> {
        let mut out = Vec::new();
        while *i < b.len() {
            match b[*i] {
                b' ' => *i += 1,
                b'(' => {
                    *i += 1;
                    out.push(Value::List(list(b, i)));
                }
                b')' => {
                    *i += 1;
                    return out;
                }
                b'"' => {
                    *i += 1;
                    let mut v = Vec::new();
                    while *i < b.len() && b[*i] != b'"' {
                        if b[*i] == b'\\' && *i + 1 < b.len() {
                            *i += 1;
                        }
                        v.push(b[*i]);
                        *i += 1;
                    }
                    *i += 1;
                    out.push(Value::Atom(String::from_utf8_lossy(&v).into_owned()));
                }
                _ => {
                    let start = *i;
                    let mut depth = 0;
                    while *i < b.len() {
                        match b[*i] {
                            b'[' => depth += 1,
                            b']' => depth -= 1,
                            b' ' | b')' if depth <= 0 => break,
                            b'(' if depth <= 0 => break,
                            _ => {}
                        }
                        *i += 1;
                    }
                    out.push(Value::Atom(
                        String::from_utf8_lossy(&b[start..*i]).into_owned(),
                    ));
                }
            }
        }
        out
    }
    let mut i = 0;
    list(s.as_bytes(), &mut i)
}

/// The data of one FETCH response the model uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub(crate) seq: u32,
    pub(crate) uid: Option<u32>,
    pub(crate) flags: Option<Vec<String>>,
    pub(crate) modseq: Option<u64>,
}

/// A response code (`[...]`) the model uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Code {
    UidValidity(u32),
    UidNext(u32),
    HighestModseq(u64),
    AppendUid(u32, Vec<u32>),
    CopyUid(u32, Vec<u32>, Vec<u32>),
    PermanentFlags(Vec<String>),
    Other(String),
}

/// An untagged response (or the code of a tagged one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    Exists(u32),
    Expunge(u32),
    Recent(u32),
    Flags(Vec<String>),
    Fetch(Fetch),
    /// SEARCH numbers (and the `(MODSEQ n)` at its end, RFC 7162 3.1.5).
    Search(Vec<u32>, Option<u64>),
    /// OK/NO/BAD/BYE with its code.
    Status(String, Option<Code>),
    /// A continuation request.
    Continue,
    /// Anything else (CAPABILITY, ENABLED, LIST, ...), or a line the
    /// parser could not read.
    Other(String),
}

/// Parses one untagged line.
pub(crate) fn parse(line: &str) -> Response {
    if line.starts_with('+') {
        return Response::Continue;
    }
    let Some(rest) = line.strip_prefix("* ") else {
        return Response::Other(line.to_owned());
    };
    let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    if let Ok(n) = first.parse::<u32>() {
        let (kind, data) = tail.split_once(' ').unwrap_or((tail, ""));
        return match kind.to_ascii_uppercase().as_str() {
            "EXISTS" => Response::Exists(n),
            "EXPUNGE" => Response::Expunge(n),
            "RECENT" => Response::Recent(n),
            "FETCH" => parse_fetch(n, data).unwrap_or_else(|| Response::Other(line.to_owned())),
            _ => Response::Other(line.to_owned()),
        };
    }
    match first.to_ascii_uppercase().as_str() {
        "FLAGS" => match parse_values(tail).first() {
            Some(Value::List(v)) => Response::Flags(atoms(v)),
            _ => Response::Other(line.to_owned()),
        },
        "SEARCH" => {
            let mut nums = Vec::new();
            let mut modseq = None;
            for v in parse_values(tail) {
                match v {
                    Value::Atom(a) => match a.parse() {
                        Ok(n) => nums.push(n),
                        Err(_) => return Response::Other(line.to_owned()),
                    },
                    Value::List(l) => {
                        if let [Value::Atom(k), Value::Atom(m)] = l.as_slice()
                            && k.eq_ignore_ascii_case("MODSEQ")
                        {
                            modseq = m.parse().ok();
                        }
                    }
                }
            }
            Response::Search(nums, modseq)
        }
        "OK" | "NO" | "BAD" | "BYE" => {
            Response::Status(first.to_ascii_uppercase(), parse_code(tail))
        }
        _ => Response::Other(line.to_owned()),
    }
}

/// The status and code of a tagged completion.
pub(crate) fn parse_tagged(line: &str) -> (String, Option<Code>) {
    let mut it = line.splitn(3, ' ');
    let _tag = it.next();
    let status = it.next().unwrap_or("").to_ascii_uppercase();
    (status, parse_code(it.next().unwrap_or("")))
}

fn atoms(v: &[Value]) -> Vec<String> {
    v.iter()
        .filter_map(|x| match x {
            Value::Atom(a) => Some(a.clone()),
            Value::List(_) => None,
        })
        .collect()
}

fn parse_fetch(seq: u32, data: &str) -> Option<Response> {
    let vals = parse_values(data);
    let Some(Value::List(items)) = vals.first() else {
        return None;
    };
    let mut f = Fetch {
        seq,
        ..Fetch::default()
    };
    let mut i = 0;
    while i + 1 < items.len() {
        let Value::Atom(name) = &items[i] else {
            return None;
        };
        let value = &items[i + 1];
        match (name.to_ascii_uppercase().as_str(), value) {
            ("UID", Value::Atom(u)) => f.uid = Some(u.parse().ok()?),
            ("FLAGS", Value::List(l)) => f.flags = Some(atoms(l)),
            ("MODSEQ", Value::List(l)) => match l.as_slice() {
                [Value::Atom(m)] => f.modseq = Some(m.parse().ok()?),
                _ => return None,
            },
            _ => {}
        }
        i += 2;
    }
    Some(Response::Fetch(f))
}

fn parse_code(text: &str) -> Option<Code> {
    let inner = text.strip_prefix('[')?;
    let end = inner.find(']')?;
    let inner = &inner[..end];
    let (name, args) = inner.split_once(' ').unwrap_or((inner, ""));
    let nums: Vec<&str> = args.split(' ').collect();
    let code = match name.to_ascii_uppercase().as_str() {
        "UIDVALIDITY" => Code::UidValidity(args.parse().ok()?),
        "UIDNEXT" => Code::UidNext(args.parse().ok()?),
        "HIGHESTMODSEQ" => Code::HighestModseq(args.parse().ok()?),
        "APPENDUID" if nums.len() == 2 => {
            Code::AppendUid(nums[0].parse().ok()?, parse_set(nums[1])?)
        }
        "COPYUID" if nums.len() == 3 => Code::CopyUid(
            nums[0].parse().ok()?,
            parse_set(nums[1])?,
            parse_set(nums[2])?,
        ),
        "PERMANENTFLAGS" => match parse_values(args).first() {
            Some(Value::List(v)) => Code::PermanentFlags(atoms(v)),
            _ => return None,
        },
        _ => Code::Other(inner.to_owned()),
    };
    Some(code)
}

/// A UID set of numbers and ranges, expanded in the order written (a
/// range `a:b` ascending whichever way it is written). At most 100,000
/// numbers: more is not an answer to anything the checker sends.
pub(crate) fn parse_set(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                let (lo, hi) = (a.min(b), a.max(b));
                if out.len() + (hi - lo) as usize >= 100_000 {
                    return None;
                }
                out.extend(lo..=hi);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
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
                modseq: Some(17)
            })
        );
        assert_eq!(
            parse("* 1 FETCH (FLAGS () BODY[HEADER.FIELDS (SUBJECT)] \"\" UID 3)"),
            Response::Fetch(Fetch {
                seq: 1,
                uid: Some(3),
                flags: Some(vec![]),
                modseq: None
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
        assert_eq!(parse_set("1:100000000"), None);
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
                Response::Fetch(Fetch { seq, uid: Some(uid), flags: Some(flags), modseq: Some(modseq) })
            );
        }
    }
}
