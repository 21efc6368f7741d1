//! The checker's reader and parser of server responses (RFC 3501 section 7,
//! RFC 4315 UIDPLUS codes, RFC 7162 MODSEQ, MODIFIED and VANISHED, RFC 3516
//! BINARY), apart from the connection so that a fuzz target can include it.
//!
//! Standard library only: `tools/bench/fuzz` includes this file by path
//! (`#[path = "../../src/stress/parse.rs"] mod parse;`), as the other fuzz
//! crates include `testkit/src/corpus.rs`; [`fuzz_one`] is the harness that
//! the fuzz target and the corpus replay test (`stress::tests`) share.
//!
//! A response line is read with its literals taken out: each literal (and
//! literal8, `~{n}`) becomes the atom `{#i}`, `i` its index in the list of
//! literals of the exchange, which keeps the bytes. `{` is not an atom
//! character (RFC 3501 `atom-specials`), so a well-formed server never
//! sends that atom; a `{#` a broken one sends becomes `{ #`, so that it
//! cannot pass for a literal either.

#![allow(dead_code)]

use std::io::{BufRead, Read};

/// The longest response line the checker accepts, literals excluded (a
/// server that sends more is broken, and the checker must not grow without
/// bound either).
pub(crate) const MAX_LINE: usize = 1 << 20;
/// The longest literal the checker keeps (its messages are a few KiB).
pub(crate) const MAX_LITERAL: u64 = 1 << 22;
/// The most literal bytes one line may carry.
pub(crate) const MAX_LINE_LITERALS: u64 = 1 << 24;
/// The most numbers or ranges a set may have.
pub(crate) const MAX_SET_PARTS: usize = 100_000;

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    Closed,
    LineTooLong,
    LiteralTooLong(u64),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Closed => write!(f, "connection closed by the server"),
            ReadError::LineTooLong => write!(f, "response line longer than {MAX_LINE} bytes"),
            ReadError::LiteralTooLong(n) => {
                write!(f, "literal of {n} bytes (at most {MAX_LITERAL} taken)")
            }
        }
    }
}

impl std::error::Error for ReadError {}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

/// Reads one response line, CRLF removed, each literal replaced by the atom
/// `{#i}` and its bytes pushed on `literals` (`i` their index there).
pub(crate) fn read_line<R: BufRead>(
    reader: &mut R,
    literals: &mut Vec<Vec<u8>>,
) -> Result<String, ReadError> {
    let mut out = Vec::new();
    let mut literal_bytes = 0u64;
    loop {
        let mut part = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_LINE - out.len().min(MAX_LINE)) as u64 + 1)
            .read_until(b'\n', &mut part)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        if !part.ends_with(b"\n") {
            return Err(if out.len() + part.len() > MAX_LINE {
                ReadError::LineTooLong
            } else {
                ReadError::Closed
            });
        }
        while matches!(part.last(), Some(b'\n' | b'\r')) {
            part.pop();
        }
        match literal_len(&part) {
            Some(len) => {
                if len > MAX_LITERAL || literal_bytes + len > MAX_LINE_LITERALS {
                    return Err(ReadError::LiteralTooLong(len));
                }
                literal_bytes += len;
                let mut open = part.iter().rposition(|&b| b == b'{').unwrap_or(part.len());
                if open > 0 && part[open - 1] == b'~' {
                    open -= 1;
                }
                defang(&part[..open], &mut out);
                out.extend_from_slice(format!("{{#{}}}", literals.len()).as_bytes());
                let mut bytes = Vec::with_capacity(len as usize);
                reader.by_ref().take(len).read_to_end(&mut bytes)?;
                if (bytes.len() as u64) < len {
                    return Err(ReadError::Closed);
                }
                literals.push(bytes);
            }
            None => {
                defang(&part, &mut out);
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
        }
    }
}

/// Appends `bytes` to `out`, each `{#` written `{ #` (see the module).
fn defang(bytes: &[u8], out: &mut Vec<u8>) {
    for (i, &b) in bytes.iter().enumerate() {
        out.push(b);
        if b == b'{' && bytes.get(i + 1) == Some(&b'#') {
            out.push(b' ');
        }
    }
}

/// The length of the literal (`{n}`, `{n+}`, `~{n}`) a line ends with.
pub(crate) fn literal_len(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = inner[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&inner[open + 1..]);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The index of the literal an atom `{#i}` stands for.
pub(crate) fn literal_index(atom: &str) -> Option<usize> {
    atom.strip_prefix("{#")?.strip_suffix('}')?.parse().ok()
}

/// A parenthesised value of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// An atom, number or string (a literal is its `{#i}` atom).
    Atom(String),
    /// A parenthesised list.
    List(Vec<Value>),
}

/// Parses a sequence of values (atoms, quoted strings, lists). Brackets in
/// an atom (`BODY[...]`) are kept in the atom; anything unbalanced ends
/// the parse where it is. Lists nest at most 64 deep (deeper ones are cut
/// off there), so that no line can exhaust the stack.
pub(crate) fn parse_values(s: &str) -> Vec<Value> {
    const MAX_DEPTH: usize = 64;
    fn list(b: &[u8], i: &mut usize, depth: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while *i < b.len() {
            match b[*i] {
                b' ' => *i += 1,
                b'(' => {
                    *i += 1;
                    if depth >= MAX_DEPTH {
                        *i = b.len();
                        return out;
                    }
                    out.push(Value::List(list(b, i, depth + 1)));
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
                    let mut depth = 0i64;
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
    list(s.as_bytes(), &mut i, 0)
}

/// A message body item's value: a literal (its index), or a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bytes {
    Literal(usize),
    Quoted(String),
    Nil,
}

/// The data of one FETCH response the model uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub(crate) seq: u32,
    pub(crate) uid: Option<u32>,
    pub(crate) flags: Option<Vec<String>>,
    pub(crate) modseq: Option<u64>,
    pub(crate) size: Option<u64>,
    /// `BODY[...]`, `BINARY[...]` (names upper-cased, `.PEEK` never
    /// answered) with their values.
    pub(crate) sections: Vec<(String, Bytes)>,
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
    /// RFC 7162 3.1.3: the messages a conditional STORE left alone.
    Modified(Vec<(u32, u32)>),
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
    /// RFC 7162 3.2.10: UIDs gone, as ranges; `EARLIER` or not.
    Vanished(bool, Vec<(u32, u32)>),
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
        "VANISHED" => {
            let (earlier, set) = match tail.split_once(' ') {
                Some((e, set)) if e.eq_ignore_ascii_case("(EARLIER)") => (true, set),
                _ => (false, tail),
            };
            match parse_ranges(set.trim_end()) {
                Some(r) => Response::Vanished(earlier, r),
                None => Response::Other(line.to_owned()),
            }
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
        let name = name.to_ascii_uppercase();
        match (name.as_str(), value) {
            ("UID", Value::Atom(u)) => f.uid = Some(u.parse().ok()?),
            ("FLAGS", Value::List(l)) => f.flags = Some(atoms(l)),
            ("MODSEQ", Value::List(l)) => match l.as_slice() {
                [Value::Atom(m)] => f.modseq = Some(m.parse().ok()?),
                _ => return None,
            },
            ("RFC822.SIZE", Value::Atom(n)) => f.size = Some(n.parse().ok()?),
            (n, Value::Atom(v))
                if (n.starts_with("BODY[") || n.starts_with("BINARY[")) && n.ends_with(']') =>
            {
                let bytes = match literal_index(v) {
                    Some(i) => Bytes::Literal(i),
                    None if v.eq_ignore_ascii_case("NIL") => Bytes::Nil,
                    None => Bytes::Quoted(v.clone()),
                };
                f.sections.push((name.clone(), bytes));
            }
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
        "MODIFIED" => Code::Modified(parse_ranges(args)?),
        _ => Code::Other(inner.to_owned()),
    };
    Some(code)
}

/// A set of numbers and ranges as ranges `(lo, hi)`, in the order written
/// (a range ascending whichever way it is written). At most
/// [`MAX_SET_PARTS`] parts.
pub(crate) fn parse_ranges(s: &str) -> Option<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        if out.len() >= MAX_SET_PARTS {
            return None;
        }
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                out.push((a.min(b), a.max(b)));
            }
            None => {
                let n = part.parse().ok()?;
                out.push((n, n));
            }
        }
    }
    Some(out)
}

/// Whether `n` is in `ranges`.
pub(crate) fn in_ranges(ranges: &[(u32, u32)], n: u32) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi)
}

/// A UID set of numbers and ranges, expanded in the order written (a
/// range `a:b` ascending whichever way it is written). At most 100,000
/// numbers: more is not an answer to anything the checker sends.
pub(crate) fn parse_set(s: &str) -> Option<Vec<u32>> {
    let mut out: Vec<u32> = Vec::new();
    for (lo, hi) in parse_ranges(s)? {
        if out.len() + (hi - lo) as usize >= MAX_SET_PARTS {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

/// The fuzz harness (`tools/bench/fuzz/fuzz_targets/responses.rs`, and the
/// replay of its corpus in `stress::tests`): `data` is what a server might
/// send. Every line is read and parsed; nothing may panic, every literal
/// atom must name a literal read with its line, every set stays in its
/// bounds, and the reader never keeps more than its limits.
///
/// # Panics
/// When one of those does not hold (that is the finding).
pub(crate) fn fuzz_one(data: &[u8]) {
    let mut reader = std::io::BufReader::new(data);
    // (each line consumes at least one byte: the loop ends)
    for _ in 0..=data.len() {
        let mut literals = Vec::new();
        let line = match read_line(&mut reader, &mut literals) {
            Ok(l) => l,
            Err(_) => return,
        };
        assert!(line.len() <= 2 * MAX_LINE + 24 * (literals.len() + 1));
        assert!(literals.iter().all(|l| l.len() as u64 <= MAX_LITERAL));
        let check_bytes = |b: &Bytes| {
            if let Bytes::Literal(i) = b {
                assert!(*i < literals.len(), "literal #{i} of {}", literals.len());
            }
        };
        match parse(&line) {
            Response::Fetch(f) => f.sections.iter().for_each(|(_, b)| check_bytes(b)),
            Response::Vanished(_, r) => assert!(r.len() <= MAX_SET_PARTS),
            Response::Status(_, Some(Code::AppendUid(_, u))) => assert!(u.len() <= MAX_SET_PARTS),
            Response::Status(_, Some(Code::CopyUid(_, a, b))) => {
                assert!(a.len() <= MAX_SET_PARTS && b.len() <= MAX_SET_PARTS);
            }
            _ => {}
        }
        let _ = parse_tagged(&line);
        let _ = parse_values(&line);
        if let Some(v) = parse_set(&line) {
            assert!(v.len() <= MAX_SET_PARTS);
        }
    }
}
