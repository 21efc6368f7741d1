//! The lexical layer of RFC 3501 §9: atoms, strings, literals, numbers,
//! sequence sets, flags and dates, read from one framed command.
//!
//! A framed command is the text of its lines with the CRLFs that end a
//! literal announcement removed, plus the literals themselves, which the
//! framing layer took out of the byte stream. The cursor knows at which text
//! offsets a literal announcement ends and hands out the literal's bytes
//! there, so a `{5}` that is not where a literal was framed is an error.

use std::borrow::Cow;

use bytes::Bytes;
use mailroom_core::{Flag, InternalDate, SeqSet};

use crate::command::SearchDate;
use crate::response::Code;

/// The most items any parenthesised list in a command may hold.
pub(crate) const MAX_LIST_ITEMS: usize = 1_000;

/// Why a command could not be parsed: a reason fit to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) reason: Cow<'static, str>,
    pub(crate) code: Option<Code>,
}

impl SyntaxError {
    pub(crate) fn new(reason: &'static str) -> SyntaxError {
        SyntaxError {
            reason: Cow::Borrowed(reason),
            code: None,
        }
    }
}

pub(crate) type PResult<T> = Result<T, SyntaxError>;

/// Builds a [`SyntaxError`] from a static reason.
pub(crate) fn err<T>(reason: &'static str) -> PResult<T> {
    Err(SyntaxError::new(reason))
}

/// `atom-specials` plus CTL and 8-bit: what may not appear in an atom.
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR`: an atom char or `]`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `tag`: an astring char other than `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `list-char`: an atom char, a wildcard or `]`.
pub(crate) fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// A read position in one framed command.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
    literals: &'a [Bytes],
    literal_ends: &'a [usize],
    next_literal: usize,
    /// UTF8=ACCEPT: mailbox names are UTF-8, not modified UTF-7.
    pub(crate) utf8: bool,
    /// Nesting still allowed.
    pub(crate) depth_left: usize,
    /// The first mailbox name met that is not valid modified UTF-7 (the
    /// command becomes [`Command::InvalidMailboxName`](crate::command::Command::InvalidMailboxName)).
    pub(crate) invalid_mailbox: Option<String>,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(
        text: &'a [u8],
        literals: &'a [Bytes],
        literal_ends: &'a [usize],
        utf8: bool,
        max_depth: usize,
    ) -> Cursor<'a> {
        Cursor {
            text,
            pos: 0,
            literals,
            literal_ends,
            next_literal: 0,
            utf8,
            depth_left: max_depth,
            invalid_mailbox: None,
        }
    }

    /// The next byte, if any.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Whether the whole command has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The unread rest of the text.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.text[self.pos.min(self.text.len())..]
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Requires `b` next.
    pub(crate) fn expect(&mut self, b: u8, reason: &'static str) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else if self.peek() == Some(0) {
            err("NUL byte in command")
        } else {
            err(reason)
        }
    }

    /// Requires one space.
    pub(crate) fn sp(&mut self) -> PResult<()> {
        match self.peek() {
            Some(b' ') => {
                self.pos += 1;
                Ok(())
            }
            None => err("missing argument"),
            Some(0) => err("NUL byte in command"),
            Some(_) => err("expected a space"),
        }
    }

    /// Requires the end of the command.
    pub(crate) fn end(&self) -> PResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(0) => err("NUL byte in command"),
            Some(b' ') => err("unexpected extra arguments"),
            Some(_) => err("unexpected characters at end of command"),
        }
    }

    /// Consumes `word` if it comes next, case-insensitively, and is not the
    /// prefix of a longer atom.
    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        let rest = self.rest();
        if rest.len() >= w.len()
            && rest[..w.len()].eq_ignore_ascii_case(w)
            && !rest.get(w.len()).is_some_and(|&b| is_atom_char(b))
        {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    /// Takes bytes while `pred` holds; a NUL is always an error.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> PResult<&'a [u8]> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == 0 {
                return err("NUL byte in command");
            }
            if !pred(b) {
                break;
            }
            self.pos += 1;
        }
        Ok(&self.text[start..self.pos])
    }

    /// An atom (`1*ATOM-CHAR`) as a string.
    pub(crate) fn atom(&mut self) -> PResult<&'a str> {
        let a = self.take_while(is_atom_char)?;
        if a.is_empty() {
            return match self.peek() {
                None => err("missing argument"),
                Some(b) if b >= 0x80 => err("8-bit character in atom"),
                _ => err("expected an atom"),
            };
        }
        // Atom chars are ASCII.
        std::str::from_utf8(a).map_err(|_| SyntaxError::new("8-bit character in atom"))
    }

    /// An atom, optionally preceded by `\` (`\Sent`, `\Seen`).
    pub(crate) fn atom_with_backslash(&mut self) -> PResult<&'a str> {
        let start = self.pos;
        self.eat(b'\\');
        self.take_while(is_atom_char)?;
        let t = &self.text[start..self.pos];
        if t.is_empty() || t == b"\\" {
            return if self.at_end() {
                err("missing argument")
            } else {
                err("expected an atom")
            };
        }
        std::str::from_utf8(t).map_err(|_| SyntaxError::new("8-bit character in atom"))
    }

    /// An atom read for a keyword position, upper-cased.
    pub(crate) fn keyword(&mut self) -> PResult<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    /// A run of bytes where `pred` holds (e.g. a sequence set), at least one.
    pub(crate) fn token(
        &mut self,
        pred: impl Fn(u8) -> bool,
        what: &'static str,
    ) -> PResult<&'a [u8]> {
        let t = self.take_while(pred)?;
        if t.is_empty() {
            return if self.at_end() {
                err("missing argument")
            } else {
                err(what)
            };
        }
        Ok(t)
    }

    /// `quoted`: a double-quoted string with `\\` and `\"` escapes.
    pub(crate) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return err("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'\\' | b'"')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return err("invalid escape in quoted string"),
                    }
                }
                Some(0) => return err("NUL byte in quoted string"),
                Some(b'\r' | b'\n') => return err("CR or LF in quoted string"),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `literal`: `{n}` or `{n+}` where the framing layer took a literal.
    pub(crate) fn literal(&mut self) -> PResult<Bytes> {
        self.expect(b'{', "expected a literal")?;
        let digits = self.take_while(|b| b.is_ascii_digit())?;
        if digits.is_empty() {
            return err("invalid literal length");
        }
        self.eat(b'+');
        self.expect(b'}', "invalid literal")?;
        match (
            self.literal_ends.get(self.next_literal),
            self.literals.get(self.next_literal),
        ) {
            (Some(&end), Some(data)) if end == self.pos => {
                self.next_literal += 1;
                Ok(data.clone())
            }
            _ => err("literal not at the end of a line"),
        }
    }

    /// `literal8` (RFC 4466 §4.3, `~{n}`): the framing takes it like a
    /// literal; here only the `~` is extra.
    pub(crate) fn literal8(&mut self) -> PResult<Bytes> {
        self.expect(b'~', "expected a literal8")?;
        self.literal()
    }

    /// Whether a `literal8` (`~{n}`) starts here.
    pub(crate) fn is_literal8(&self) -> bool {
        self.rest().starts_with(b"~{")
    }

    /// `string`: quoted or literal.
    pub(crate) fn string(&mut self) -> PResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => Ok(Cow::Owned(self.quoted()?)),
            Some(b'{') => Ok(Cow::Owned(self.literal()?.to_vec())),
            Some(b'~') if self.is_literal8() => err("literal8 is not supported here"),
            None => err("missing argument"),
            Some(0) => err("NUL byte in command"),
            _ => err("expected a string"),
        }
    }

    /// `astring`: `1*ASTRING-CHAR` or a string.
    pub(crate) fn astring(&mut self) -> PResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            Some(b'~') if self.is_literal8() => self.string(),
            _ => {
                let a = self.take_while(is_astring_char)?;
                if a.is_empty() {
                    return match self.peek() {
                        None => err("missing argument"),
                        Some(b) if b >= 0x80 => err("8-bit character in atom"),
                        _ => err("expected an atom or string"),
                    };
                }
                Ok(Cow::Borrowed(a))
            }
        }
    }

    /// An astring that must be UTF-8.
    pub(crate) fn astring_utf8(&mut self) -> PResult<String> {
        let a = self.astring()?;
        utf8(a)
    }

    /// An astring taken as text, with invalid UTF-8 replaced (SEARCH
    /// strings in a charset the server will refuse anyway).
    pub(crate) fn astring_lossy(&mut self) -> PResult<String> {
        let a = self.astring()?;
        Ok(String::from_utf8_lossy(&a).into_owned())
    }

    /// `nstring`: NIL or a string.
    pub(crate) fn nstring(&mut self) -> PResult<Option<Cow<'a, [u8]>>> {
        if self.eat_word("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// `mailbox`: an astring, decoded from modified UTF-7 (or taken as UTF-8
    /// under UTF8=ACCEPT). Raw UTF-8 from a client that did not enable
    /// UTF8=ACCEPT is accepted as well, since real clients send it.
    pub(crate) fn mailbox(&mut self) -> PResult<String> {
        let raw = self.astring()?;
        self.mailbox_name(raw)
    }

    /// Decodes a mailbox name given as bytes. A name that is ASCII but not
    /// valid modified UTF-7 is returned as sent and remembered in
    /// [`Cursor::invalid_mailbox`].
    pub(crate) fn mailbox_name(&mut self, raw: Cow<'_, [u8]>) -> PResult<String> {
        match self.mailbox_name_or_raw(raw)? {
            Ok(name) => Ok(name),
            Err(raw) => {
                if self.invalid_mailbox.is_none() {
                    self.invalid_mailbox = Some(raw.clone());
                }
                Ok(raw)
            }
        }
    }

    /// Decodes a mailbox name or pattern given as bytes: `Ok(Err(raw))`
    /// for ASCII that is not valid modified UTF-7 (no mailbox has such a
    /// name); invalid UTF-8 and control characters are syntax errors.
    pub(crate) fn mailbox_name_or_raw(
        &self,
        raw: Cow<'_, [u8]>,
    ) -> PResult<Result<String, String>> {
        let s = utf8(raw)?;
        if self.utf8 || !s.is_ascii() {
            if s.chars().any(char::is_control) {
                return err("control character in mailbox name");
            }
            return Ok(Ok(s));
        }
        if s.bytes().any(|b| b.is_ascii_control()) {
            return err("control character in mailbox name");
        }
        Ok(crate::utf7::decode(&s).ok_or(s))
    }

    /// `number`: a 32-bit unsigned integer.
    pub(crate) fn number(&mut self) -> PResult<u32> {
        let d = self.token(|b| b.is_ascii_digit(), "expected a number")?;
        parse_u64(d)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| SyntaxError::new("number out of range"))
    }

    /// `nz-number`.
    pub(crate) fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => err("number must not be zero"),
            n => Ok(n),
        }
    }

    /// `number64` (RFC 9051): up to 2^63-1.
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        let d = self.token(|b| b.is_ascii_digit(), "expected a number")?;
        parse_u64(d)
            .filter(|&v| v <= i64::MAX as u64)
            .ok_or_else(|| SyntaxError::new("number out of range"))
    }

    /// `nz-number64` (RFC 9051).
    pub(crate) fn nz_number64(&mut self) -> PResult<u64> {
        match self.number64()? {
            0 => err("number must not be zero"),
            n => Ok(n),
        }
    }

    /// `sequence-set / "$"` (RFC 5182): `None` for `$`, the saved search
    /// result (see [`crate::extension::searchres`]).
    pub(crate) fn seq_set_or_saved(&mut self) -> PResult<Option<SeqSet>> {
        if self.eat(b'$') {
            return Ok(None);
        }
        self.seq_set().map(Some)
    }

    /// `sequence-set` (without `$`).
    pub(crate) fn seq_set(&mut self) -> PResult<SeqSet> {
        if self.peek() == Some(b'$') {
            return err("the saved search result ($) is not supported here");
        }
        let t = self.token(
            |b| b.is_ascii_digit() || matches!(b, b':' | b',' | b'*'),
            "expected a sequence set",
        )?;
        let s = std::str::from_utf8(t).map_err(|_| SyntaxError::new("invalid sequence set"))?;
        s.parse::<SeqSet>()
            .map_err(|e| SyntaxError::new(e.reason()))
    }

    /// `flag`: a system flag or keyword. `\Recent` and unknown `\` names
    /// cannot be stored and are refused.
    pub(crate) fn flag(&mut self) -> PResult<Flag> {
        let start = self.pos;
        self.eat(b'\\');
        self.take_while(is_atom_char)?;
        let t = &self.text[start..self.pos];
        let s = std::str::from_utf8(t).map_err(|_| SyntaxError::new("invalid flag"))?;
        if s.is_empty() || s == "\\" {
            return if self.at_end() {
                err("missing argument")
            } else {
                err("expected a flag")
            };
        }
        Flag::parse(s).map_err(|e| SyntaxError::new(e.reason()))
    }

    /// `flag-list`: `(` [flag *(SP flag)] `)`.
    pub(crate) fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.expect(b'(', "expected a flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            if flags.len() >= MAX_LIST_ITEMS {
                return err("too many flags");
            }
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// A parenthesised, space-separated, non-empty list of `item`.
    pub(crate) fn list<T>(
        &mut self,
        allow_empty: bool,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(', "expected '('")?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return if allow_empty {
                Ok(out)
            } else {
                err("empty list")
            };
        }
        loop {
            if out.len() >= MAX_LIST_ITEMS {
                return err("too many items in list");
            }
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            if self.at_end() {
                return err("unbalanced parentheses");
            }
            self.sp()?;
        }
    }

    /// `date`: `d-Mon-yyyy`, optionally quoted.
    pub(crate) fn date(&mut self) -> PResult<SearchDate> {
        let quoted = self.eat(b'"');
        let t = self.token(
            |b| b.is_ascii_alphanumeric() || b == b'-',
            "expected a date",
        )?;
        if quoted {
            self.expect(b'"', "unterminated date")?;
        }
        let mut parts = t.split(|&b| b == b'-');
        let (Some(d), Some(m), Some(y), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return err("invalid date");
        };
        if d.is_empty() || d.len() > 2 || y.len() != 4 {
            return err("invalid date");
        }
        let day = parse_u64(d).ok_or_else(|| SyntaxError::new("invalid date"))?;
        let year = parse_u64(y).ok_or_else(|| SyntaxError::new("invalid date"))?;
        let month = month(m).ok_or_else(|| SyntaxError::new("invalid month"))?;
        let days = civil_days(year as i64, month, day as u32)
            .ok_or_else(|| SyntaxError::new("invalid date"))?;
        Ok(SearchDate(days))
    }

    /// `date-time`: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may be space padded).
    pub(crate) fn date_time(&mut self) -> PResult<InternalDate> {
        self.expect(b'"', "expected a date-time")?;
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b'"' {
                break;
            }
            if b == 0 {
                return err("NUL byte in command");
            }
            self.pos += 1;
        }
        let t = &self.text[start..self.pos];
        self.expect(b'"', "unterminated date-time")?;
        parse_date_time(t).ok_or_else(|| SyntaxError::new("invalid date-time"))
    }

    /// Enters one nesting level (parentheses, NOT, OR).
    pub(crate) fn enter(&mut self) -> PResult<()> {
        if self.depth_left == 0 {
            return err("nesting too deep");
        }
        self.depth_left -= 1;
        Ok(())
    }

    /// Leaves a nesting level.
    pub(crate) fn leave(&mut self) {
        self.depth_left += 1;
    }
}

/// Bytes to a `String`, refusing invalid UTF-8.
pub(crate) fn utf8(b: Cow<'_, [u8]>) -> PResult<String> {
    String::from_utf8(b.into_owned()).map_err(|_| SyntaxError::new("invalid UTF-8"))
}

/// Decimal digits to a number; `None` on overflow or non-digits.
pub(crate) fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The three-letter English month name of month `m` (1-12).
pub(crate) fn month_name(m: u32) -> &'static str {
    MONTHS
        .get((m as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan")
}

fn month(m: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|n| n.as_bytes().eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm); `None` for an impossible day.
pub(crate) fn civil_days(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses the inside of a `date-time`: `dd-Mon-yyyy hh:mm:ss +zzzz`.
pub(crate) fn parse_date_time(t: &[u8]) -> Option<InternalDate> {
    let s = std::str::from_utf8(t).ok()?;
    let s = s.strip_prefix(' ').unwrap_or(s);
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut dp = date.split('-');
    let (d, m, y) = (dp.next()?, dp.next()?, dp.next()?);
    if dp.next().is_some() || d.is_empty() || d.len() > 2 || y.len() != 4 {
        return None;
    }
    let day = parse_u64(d.as_bytes())? as u32;
    let year = parse_u64(y.as_bytes())? as i64;
    let month = month(m.as_bytes())?;
    let days = civil_days(year, month, day)?;
    let tb = time.as_bytes();
    if tb.len() != 8 || tb[2] != b':' || tb[5] != b':' {
        return None;
    }
    let hh = parse_u64(&tb[0..2])? as i64;
    let mm = parse_u64(&tb[3..5])? as i64;
    let ss = parse_u64(&tb[6..8])? as i64;
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let zb = zone.as_bytes();
    if zb.len() != 5 || !matches!(zb[0], b'+' | b'-') {
        return None;
    }
    let zh = parse_u64(&zb[1..3])? as i64;
    let zm = parse_u64(&zb[3..5])? as i64;
    if zm > 59 {
        return None;
    }
    let mut offset = zh * 60 + zm;
    if zb[0] == b'-' {
        offset = -offset;
    }
    let local = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(InternalDate {
        timestamp: local - offset * 60,
        offset_minutes: i16::try_from(offset).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(t: &[u8]) -> Cursor<'_> {
        Cursor::new(t, &[], &[], false, 8)
    }

    #[test]
    fn quoted_escapes() {
        assert_eq!(cur(br#""a\"b\\c""#).quoted().unwrap(), b"a\"b\\c");
        assert!(cur(br#""a\nb""#).quoted().is_err());
        assert!(cur(br#""abc"#).quoted().is_err());
        assert!(cur(b"\"a\0b\"").quoted().is_err());
    }

    #[test]
    fn atoms_and_nul() {
        let mut c = cur(b"abc def");
        assert_eq!(c.atom().unwrap(), "abc");
        let e = cur(b"ab\0c").atom().map(|_| ()).unwrap_err();
        assert!(e.reason.contains("NUL"));
    }

    #[test]
    fn dates() {
        assert_eq!(cur(b"1-Jan-1970").date().unwrap(), SearchDate(0));
        assert_eq!(cur(b"\"02-jan-1970\"").date().unwrap(), SearchDate(1));
        assert_eq!(cur(b"1-Mar-2000").date().unwrap(), SearchDate(11_017));
        assert!(cur(b"30-Feb-2000").date().is_err());
        assert!(cur(b"1-Foo-2000").date().is_err());
        let d = cur(b"\"01-Jan-2020 10:00:00 +0100\"").date_time().unwrap();
        assert_eq!(d.timestamp, 1_577_869_200);
        assert_eq!(d.offset_minutes, 60);
        let d = cur(b"\" 1-Jan-2020 10:00:00 -0130\"").date_time().unwrap();
        assert_eq!(d.timestamp, 1_577_872_800 + 5400);
        assert_eq!(d.offset_minutes, -90);
        assert!(cur(b"\"01-Jan-2020 25:00:00 +0100\"").date_time().is_err());
        for z in [-800_000i64, -1, 0, 59, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(civil_days(y, m, d), Some(z));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(cur(b"4294967295").number().unwrap(), u32::MAX);
        assert!(cur(b"4294967296").number().is_err());
        assert!(cur(b"0").nz_number().is_err());
        assert_eq!(
            cur(b"9223372036854775807").number64().unwrap(),
            i64::MAX as u64
        );
        assert!(cur(b"9223372036854775808").number64().is_err());
        assert!(cur(b"99999999999999999999999").number64().is_err());
    }

    #[test]
    fn mailbox_names() {
        assert_eq!(cur(b"Entw&APw-rfe").mailbox().unwrap(), "Entwürfe");
        // Not modified UTF-7: kept as sent and remembered.
        let mut c = cur(b"AT&T");
        assert_eq!(c.mailbox().unwrap(), "AT&T");
        assert_eq!(c.invalid_mailbox.as_deref(), Some("AT&T"));
        let mut c = cur(b"\"a\x01\"");
        assert!(c.mailbox().is_err(), "control characters are bad syntax");
        assert_eq!(
            cur("\"Entwürfe\"".as_bytes()).mailbox().unwrap(),
            "Entwürfe"
        );
        let mut c = cur(b"AT&T");
        c.utf8 = true;
        assert_eq!(c.mailbox().unwrap(), "AT&T");
    }
}
