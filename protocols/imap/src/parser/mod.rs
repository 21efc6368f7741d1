//! The IMAP command parser: framing and grammar, incremental and bounded.
//!
//! A [`Decoder`] lives as long as a connection. The driver appends what it
//! reads to a `BytesMut` and calls [`Decoder::decode`] until it answers
//! [`Decoded::Incomplete`]. The decoder takes complete lines and literals out
//! of the buffer as they arrive (a literal's bytes are split off the buffer,
//! not copied) and parses a command once its last line is in.
//!
//! # Framing
//!
//! A command is one or more lines: a line that ends in `{n}` or `{n+}`
//! announces a literal of `n` bytes that follows the CRLF, after which the
//! command goes on. For a synchronising literal `{n}` the decoder answers
//! [`Decoded::NeedContinuation`] and the driver must send `+ Ready`;
//! a non-synchronising one (`{n+}`, LITERAL+, RFC 7888) is read at once.
//!
//! # Limits and recovery
//!
//! - The text of a command (its lines without literals) may not exceed
//!   [`Limits::max_line`]. When more than that arrives without a line end,
//!   the decoder answers [`Decoded::Error`] ("line too long") at once and
//!   then discards everything up to the next line end, so memory stays
//!   bounded however long the line is and the connection goes on. If the
//!   discarded line announced a non-synchronising literal, that literal is
//!   skipped too (without buffering it).
//! - A literal over [`Limits::max_literal`]: a synchronising one is refused
//!   with [`Decoded::Error`] and code `TOOBIG`, before the continuation is
//!   sent, so the client never sends it; a non-synchronising one cannot be
//!   refused in time and yields [`Decoded::Fatal`] (RFC 7888 §4: BAD, then
//!   BYE and close).
//! - Parenthesis, `NOT` and `OR` nesting is bounded by [`Limits::max_depth`],
//!   lists by a fixed item count, literals per command by a fixed count.
//! - Bad syntax is [`Decoded::Error`] with the tag when it could be read and
//!   a reason; the whole command has been consumed, so the next one parses.
//!
//! Empty lines between commands are ignored. A bare LF is accepted as a line
//! end, as most servers do.

use bytes::{Bytes, BytesMut};

use crate::command::{Command, Request};
use crate::response::Code;

mod acl;
pub(crate) mod append;
mod auth;
mod copy;
mod expunge;
mod fetch;
mod id;
mod list;
mod mailbox;
mod notify;
pub(crate) mod primitives;
mod quota;
mod search;
mod select;
mod sort;
mod status;
mod store;
mod thread;

use primitives::{Cursor, PResult, SyntaxError, err, is_tag_char};

/// The most literals one command may carry.
pub const MAX_LITERALS: usize = 256;

/// Bounds on what one client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest command text (all its lines, literals excluded). Default 64 KiB.
    pub max_line: usize,
    /// The largest literal. Default 64 MiB.
    pub max_literal: u64,
    /// The deepest nesting of parentheses and SEARCH `NOT`/`OR`. Default 64.
    pub max_depth: usize,
    /// LITERAL- (RFC 7888) instead of LITERAL+: non-synchronizing literals
    /// only up to 4096 octets; a larger one is answered `BAD [TOOBIG]` and
    /// its bytes dropped (see [`crate::extension::literal_minus`]). Default
    /// off: LITERAL+, any size up to `max_literal`.
    pub literal_minus: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_depth: 64,
            literal_minus: false,
        }
    }
}

/// What [`Decoder::decode`] found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// More input is needed.
    Incomplete,
    /// A synchronising literal `{n}` was announced and accepted: the driver
    /// must send `+ Ready` and call `decode` again.
    NeedContinuation,
    /// A complete command.
    Request(Request),
    /// Bad syntax etc.: answer `tag BAD [code] reason` (untagged if no tag)
    /// and go on. The bad input has been consumed (for a line over the limit:
    /// is being discarded up to its end).
    Error {
        /// The tag, when it could be read.
        tag: Option<String>,
        /// What was wrong, fit for the client.
        reason: String,
        /// A response code such as `TOOBIG`.
        code: Option<Code>,
    },
    /// A well-formed command the server will not carry out, refused before
    /// its literal was sent: answer `tag NO [code] reason` and go on (an
    /// APPEND over the APPENDLIMIT, RFC 7889; the client never sends the
    /// literal since it got no `+`).
    Refused {
        /// The tag.
        tag: String,
        /// What was wrong, fit for the client.
        reason: String,
        /// A response code such as `TOOBIG`.
        code: Option<Code>,
    },
    /// The stream cannot be resynchronised (a non-synchronising literal over
    /// the limit): answer BAD (tagged if the tag was read), then `* BYE`, and
    /// close the connection.
    Fatal {
        /// The tag, when it could be read.
        tag: Option<String>,
        /// What was wrong.
        reason: String,
    },
}

/// A line given to [`Decoder::decode_line`] was longer than
/// [`Limits::max_line`]; it has been (or is being) discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line too long")]
pub struct LineTooLong;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line of the current command.
    Line,
    /// Waiting for the bytes of an accepted literal.
    Literal { len: usize },
    /// Dropping input up to the next line end (after refusing a line).
    Discard,
    /// Dropping a non-synchronising literal of a refused command, then the
    /// rest of its line.
    Skip { remaining: u64 },
}

/// The per-connection command decoder.
///
/// Between calls the driver may only append to the buffer it passes in
/// (the decoder remembers how far it has looked for a line end, as
/// tokio-util's `LinesCodec` does). A driver that throws buffered input away,
/// as it must after STARTTLS, should start a new `Decoder` as well.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    utf8: bool,
    state: State,
    /// The command's text so far: its lines without line ends.
    text: Vec<u8>,
    /// Its literals so far.
    literals: Vec<Bytes>,
    /// Where in `text` each literal's announcement ends.
    literal_ends: Vec<usize>,
    /// Sum of the literal sizes so far.
    literal_total: u64,
    /// The last bytes of a line being discarded, to spot a `{n+}` at its end.
    discard_tail: Vec<u8>,
    /// How many bytes at the front of the buffer are known to hold no LF,
    /// so that a line arriving a byte at a time is not rescanned from the
    /// start each time (the buffer is only appended to between calls, as
    /// with tokio-util's `LinesCodec`).
    scanned: usize,
}

const TAIL: usize = 24;

impl Decoder {
    /// A decoder with these limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            utf8: false,
            state: State::Line,
            text: Vec::new(),
            literals: Vec::new(),
            literal_ends: Vec::new(),
            literal_total: 0,
            discard_tail: Vec::new(),
            scanned: 0,
        }
    }

    /// UTF8=ACCEPT enabled: mailbox names are UTF-8, not modified UTF-7.
    pub fn set_utf8(&mut self, on: bool) {
        self.utf8 = on;
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether part of a command has been taken in (a line with a literal
    /// announced, a literal being read or skipped): the driver waits for
    /// the rest under the read timeout, not the idle one.
    pub fn in_command(&self) -> bool {
        !matches!(self.state, State::Line) || !self.text.is_empty()
    }

    fn reset(&mut self) {
        self.state = State::Line;
        self.text.clear();
        self.literals.clear();
        self.literal_ends.clear();
        self.literal_total = 0;
    }

    /// Incremental: consumes complete input from `buf`; partial input is
    /// [`Decoded::Incomplete`], never an error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Decoded {
        loop {
            match self.state {
                State::Discard => {
                    if !self.discard_line(buf) {
                        return Decoded::Incomplete;
                    }
                    // The refused line ended; did it announce a literal that follows anyway?
                    match trailing_literal(&self.discard_tail) {
                        Some((n, false)) if n <= self.limits.max_literal => {
                            self.state = State::Skip { remaining: n };
                        }
                        Some((_, false)) => {
                            self.discard_tail.clear();
                            self.reset();
                            return Decoded::Fatal {
                                tag: None,
                                reason: "literal too large".into(),
                            };
                        }
                        _ => self.reset(),
                    }
                    self.discard_tail.clear();
                }
                State::Skip { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let _ = buf.split_to(n);
                    self.scanned = 0;
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::Skip { remaining };
                        return Decoded::Incomplete;
                    }
                    self.state = State::Discard;
                }
                State::Literal { len } => {
                    if buf.len() < len {
                        buf.reserve(len - buf.len());
                        return Decoded::Incomplete;
                    }
                    self.literals.push(buf.split_to(len).freeze());
                    self.scanned = 0;
                    self.state = State::Line;
                }
                State::Line => {
                    if let Some(d) = self.line(buf) {
                        return d;
                    }
                }
            }
        }
    }

    /// Drops input up to and including the next LF, remembering the tail.
    /// Returns whether the line end was reached.
    fn discard_line(&mut self, buf: &mut BytesMut) -> bool {
        let found = buf.iter().position(|&b| b == b'\n');
        let upto = found.map_or(buf.len(), |i| i + 1);
        let chunk = buf.split_to(upto);
        self.scanned = 0;
        if found.is_some() {
            self.remember_tail(strip_eol(&chunk));
            // The CR may have come in an earlier read than the LF.
            if chunk.len() == 1 && self.discard_tail.last() == Some(&b'\r') {
                self.discard_tail.pop();
            }
        } else {
            self.remember_tail(&chunk);
        }
        found.is_some()
    }

    /// Keeps the last [`TAIL`] bytes of a line being discarded.
    fn remember_tail(&mut self, dropped: &[u8]) {
        let keep = dropped.len().min(TAIL);
        self.discard_tail
            .extend_from_slice(&dropped[dropped.len() - keep..]);
        if self.discard_tail.len() > TAIL {
            let cut = self.discard_tail.len() - TAIL;
            self.discard_tail.drain(..cut);
        }
    }

    /// The index of the first LF among the first `limit` bytes of `buf`.
    /// Remembers how far it looked; whoever consumes from `buf`
    /// resets `scanned`.
    fn find_lf(&mut self, buf: &BytesMut, limit: usize) -> Option<usize> {
        let end = buf.len().min(limit);
        let start = if self.scanned > end { 0 } else { self.scanned };
        match buf[start..end].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.scanned = 0;
                Some(start + i)
            }
            None => {
                self.scanned = end;
                None
            }
        }
    }

    /// Handles one line of the current command. `None` means "go on".
    fn line(&mut self, buf: &mut BytesMut) -> Option<Decoded> {
        let room = self.limits.max_line.saturating_sub(self.text.len());
        let Some(lf) = self.find_lf(buf, room.saturating_add(2)) else {
            if buf.len() > room.saturating_add(1) {
                // Over the limit without a line end: refuse now, drop the rest.
                let tag = self.error_tag(buf);
                self.discard_tail.clear();
                self.reset();
                self.state = State::Discard;
                // Release the memory now: the scanned part holds no line end.
                let scanned = room.saturating_add(2).min(buf.len());
                let dropped = buf.split_to(scanned);
                self.scanned = 0;
                self.remember_tail(&dropped);
                return Some(Decoded::Error {
                    tag,
                    reason: "line too long".into(),
                    code: None,
                });
            }
            return Some(Decoded::Incomplete);
        };
        let raw = buf.split_to(lf + 1);
        let line = strip_eol(&raw);
        if line.len() > room {
            let tag = self.error_tag(line);
            self.discard_tail.clear();
            self.discard_tail
                .extend_from_slice(&line[line.len().saturating_sub(TAIL)..]);
            self.reset();
            // Re-enter discard with the line already at its end.
            return Some(self.after_refused_line(tag, "line too long".into(), None));
        }
        if self.text.is_empty() && line.is_empty() && self.literals.is_empty() {
            return None; // empty line between commands
        }
        let literal = trailing_literal_in_line(line);
        self.text.extend_from_slice(line);
        let Some((n, sync)) = literal else {
            let d = self.parse();
            self.reset();
            return Some(d);
        };
        self.literal_ends.push(self.text.len());
        let total = self.literal_total.saturating_add(n);
        let too_big = n > self.limits.max_literal
            || total
                > self
                    .limits
                    .max_literal
                    .saturating_add(self.limits.max_line as u64);
        if !too_big && crate::extension::literal_minus::refuses(&self.limits, n, sync) {
            // RFC 7888 §4: BAD [TOOBIG]; the literal is on its way, so it is
            // read and dropped, and the rest of its command with it.
            let tag = self.error_tag(&[]);
            self.reset();
            self.state = State::Skip { remaining: n };
            return Some(Decoded::Error {
                tag,
                reason: "non-synchronizing literal over 4096 octets (LITERAL-)".into(),
                code: Some(Code::TooBig),
            });
        }
        if too_big || self.literals.len() >= MAX_LITERALS {
            let tag = self.error_tag(&[]);
            let appended_text = std::mem::take(&mut self.text);
            let (reason, code) = if too_big {
                ("literal too large", Some(Code::TooBig))
            } else {
                ("too many literals", Some(Code::Limit))
            };
            self.reset();
            if sync {
                // The client waits for "+" and will not send the literal.
                // An APPEND over the limit is a NO (RFC 7889 §4).
                if too_big
                    && let Some(tag) = tag.clone()
                    && crate::extension::appendlimit::is_append(&appended_text)
                {
                    return Some(Decoded::Refused {
                        tag,
                        reason: "message larger than the APPENDLIMIT".into(),
                        code,
                    });
                }
                return Some(Decoded::Error {
                    tag,
                    reason: reason.into(),
                    code,
                });
            }
            if too_big {
                return Some(Decoded::Fatal {
                    tag,
                    reason: reason.into(),
                });
            }
            self.state = State::Skip { remaining: n };
            return Some(Decoded::Error {
                tag,
                reason: reason.into(),
                code,
            });
        }
        self.literal_total = total;
        // n <= max_literal, which fits in memory by configuration.
        let len = usize::try_from(n).unwrap_or(usize::MAX);
        self.state = State::Literal { len };
        if sync {
            Some(Decoded::NeedContinuation)
        } else {
            None
        }
    }

    /// After a whole line was refused: skip a non-synchronising literal it
    /// announced, then answer.
    fn after_refused_line(
        &mut self,
        tag: Option<String>,
        reason: String,
        code: Option<Code>,
    ) -> Decoded {
        match trailing_literal(&self.discard_tail) {
            Some((n, false)) if n <= self.limits.max_literal => {
                self.state = State::Skip { remaining: n };
            }
            Some((_, false)) => {
                self.discard_tail.clear();
                return Decoded::Fatal { tag, reason };
            }
            _ => self.state = State::Line,
        }
        self.discard_tail.clear();
        Decoded::Error { tag, reason, code }
    }

    /// The tag of the current command, if it can be read, from the text so
    /// far or (when that is empty) from `fallback`.
    fn error_tag(&self, fallback: &[u8]) -> Option<String> {
        let src = if self.text.is_empty() {
            fallback
        } else {
            &self.text[..]
        };
        read_tag(src)
    }

    fn parse(&self) -> Decoded {
        let mut c = Cursor::new(
            &self.text,
            &self.literals,
            &self.literal_ends,
            self.utf8,
            self.limits.max_depth,
        );
        let tag = match tag(&mut c) {
            Ok(t) => t,
            Err(e) => {
                return Decoded::Error {
                    tag: None,
                    reason: e.reason.into_owned(),
                    code: e.code,
                };
            }
        };
        match command(&mut c).and_then(|cmd| c.end().map(|()| cmd)) {
            Ok(command) => Decoded::Request(Request {
                tag,
                command: match c.invalid_mailbox.take() {
                    None => command,
                    Some(name) => Command::InvalidMailboxName {
                        command: Box::new(command),
                        name,
                    },
                },
            }),
            Err(e) => Decoded::Error {
                tag: Some(tag),
                reason: e.reason.into_owned(),
                code: e.code,
            },
        }
    }

    /// For IDLE's `DONE` and AUTHENTICATE continuation lines: one
    /// CRLF-terminated line (without the CRLF), bounded by
    /// [`Limits::max_line`]. `None` means more input is needed. A line over
    /// the limit is an error once; the rest of it is then discarded.
    pub fn decode_line(&mut self, buf: &mut BytesMut) -> Option<Result<Bytes, LineTooLong>> {
        loop {
            if self.state == State::Discard {
                if !self.discard_line(buf) {
                    return None;
                }
                self.discard_tail.clear();
                self.state = State::Line;
                continue;
            }
            let max = self.limits.max_line;
            return match self.find_lf(buf, max.saturating_add(2)) {
                Some(lf) => {
                    let mut line = buf.split_to(lf + 1);
                    let len = strip_eol(&line).len();
                    line.truncate(len);
                    if len > max {
                        Some(Err(LineTooLong))
                    } else {
                        Some(Ok(line.freeze()))
                    }
                }
                None if buf.len() > max.saturating_add(1) => {
                    // Drop only what was scanned: the line's end, and any
                    // command pipelined after it, may already be in `buf`.
                    let scanned = max.saturating_add(2).min(buf.len());
                    let _ = buf.split_to(scanned);
                    self.scanned = 0;
                    self.state = State::Discard;
                    Some(Err(LineTooLong))
                }
                None => None,
            };
        }
    }
}

/// A FETCH body section in brackets (`[1.2.MIME]`) on its own, as IMAP
/// URLs carry it (CATENATE); `None` unless all of `text` is one.
pub(crate) fn parse_section(text: &[u8]) -> Option<crate::command::Section> {
    let mut c = Cursor::new(text, &[], &[], true, 8);
    let section = fetch::section(&mut c).ok()?;
    c.end().ok()?;
    Some(section)
}

/// A line without its CRLF (or bare LF).
fn strip_eol(raw: &[u8]) -> &[u8] {
    let l = raw.strip_suffix(b"\n").unwrap_or(raw);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// A `{n}` / `{n+}` at the very end of `tail` (no quote tracking).
fn trailing_literal(tail: &[u8]) -> Option<(u64, bool)> {
    let inner = tail.strip_suffix(b"}")?;
    let (inner, sync) = match inner.strip_suffix(b"+") {
        Some(i) => (i, false),
        None => (inner, true),
    };
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let n = primitives::parse_u64(&inner[open + 1..])?;
    Some((n, sync))
}

/// A literal announcement at the end of a command line, outside any quoted
/// string.
fn trailing_literal_in_line(line: &[u8]) -> Option<(u64, bool)> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let mut in_quote = false;
    let mut escaped = false;
    for &b in line {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        }
    }
    if in_quote {
        return None;
    }
    trailing_literal(line)
}

/// Reads a tag at the start of `src` when it is followed by a space.
fn read_tag(src: &[u8]) -> Option<String> {
    let n = src.iter().take_while(|&&b| is_tag_char(b)).count();
    if n == 0 || n > 64 || src.get(n) != Some(&b' ') {
        return None;
    }
    std::str::from_utf8(&src[..n]).ok().map(str::to_owned)
}

/// `tag SP`.
fn tag(c: &mut Cursor<'_>) -> PResult<String> {
    let t = c.token(is_tag_char, "invalid tag")?;
    if t.len() > 64 {
        return err("tag too long");
    }
    let t = String::from_utf8_lossy(t).into_owned();
    if c.at_end() {
        return err("missing command");
    }
    c.sp()?;
    Ok(t)
}

/// The command name and its arguments.
fn command(c: &mut Cursor<'_>) -> PResult<Command> {
    let name = c.keyword().map_err(|e| {
        if e.reason.contains("NUL") {
            e
        } else {
            SyntaxError::new("missing or invalid command name")
        }
    })?;
    let no_args = |c: &mut Cursor<'_>, cmd: Command| c.end().map(|()| cmd);
    match name.as_str() {
        "CAPABILITY" => no_args(c, Command::Capability),
        "NOOP" => no_args(c, Command::Noop),
        "LOGOUT" => no_args(c, Command::Logout),
        "STARTTLS" => no_args(c, Command::StartTls),
        "CHECK" => no_args(c, Command::Check),
        "CLOSE" => no_args(c, Command::Close),
        "UNSELECT" => no_args(c, Command::Unselect),
        "IDLE" => no_args(c, Command::Idle),
        "NAMESPACE" => no_args(c, Command::Namespace),
        "EXPUNGE" => no_args(c, Command::Expunge { uids: None }),
        "ID" => id::id(c),
        "ENABLE" => id::enable(c),
        "NOTIFY" => notify::notify(c),
        "LOGIN" => auth::login(c),
        "AUTHENTICATE" => auth::authenticate(c),
        "SELECT" => select::select(c, false),
        "EXAMINE" => select::select(c, true),
        "CREATE" => mailbox::create(c),
        "DELETE" => mailbox::delete(c),
        "RENAME" => mailbox::rename(c),
        "SUBSCRIBE" => mailbox::subscribe(c, true),
        "UNSUBSCRIBE" => mailbox::subscribe(c, false),
        "LIST" => list::list(c),
        "LSUB" => list::lsub(c, false),
        "XLIST" => list::lsub(c, true),
        "STATUS" => status::status(c),
        "APPEND" => append::append(c),
        "REPLACE" => append::replace(c, false),
        "COMPRESS" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            Ok(Command::Compress(mechanism))
        }
        "GETACL" => acl::get_acl(c),
        "SETACL" => acl::set_acl(c),
        "DELETEACL" => acl::delete_acl(c),
        "LISTRIGHTS" => acl::list_rights(c),
        "MYRIGHTS" => acl::my_rights(c),
        "GETQUOTA" => quota::get_quota(c),
        "GETQUOTAROOT" => quota::get_quota_root(c),
        "SETQUOTA" => quota::set_quota(c),
        "SEARCH" => search::search(c, false),
        "CANCELUPDATE" => search::cancel_update(c),
        "SORT" => sort::sort(c, false),
        "THREAD" => thread::thread(c, false),
        "FETCH" => fetch::fetch(c, false),
        "STORE" => store::store(c, false),
        "COPY" => copy::copy(c, false, false),
        "MOVE" => copy::copy(c, false, true),
        "UID" => {
            c.sp()?;
            let sub = c.keyword()?;
            match sub.as_str() {
                "FETCH" => fetch::fetch(c, true),
                "SEARCH" => search::search(c, true),
                "SORT" => sort::sort(c, true),
                "THREAD" => thread::thread(c, true),
                "STORE" => store::store(c, true),
                "COPY" => copy::copy(c, true, false),
                "MOVE" => copy::copy(c, true, true),
                "EXPUNGE" => expunge::uid_expunge(c),
                "REPLACE" => append::replace(c, true),
                _ => err("unknown UID command"),
            }
        }
        _ => err("unknown command"),
    }
}

#[cfg(test)]
mod tests;
