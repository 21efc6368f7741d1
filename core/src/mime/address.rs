//! RFC 5322 §3.4 address lists for ENVELOPE, with the recovery rules IMAP
//! clients have come to expect from Dovecot for the many malformed lists in
//! real mail: an address missing its local part or domain gets the
//! placeholder `MISSING_MAILBOX` / `MISSING_DOMAIN`, a broken `<...>` the
//! domain `SYNTAX_ERROR`, a broken source route `INVALID_ROUTE`; a list stops
//! at the first address that is not followed by a comma.
//!
//! Display names are kept raw: encoded words are not decoded, quoted strings
//! lose their quotes and escapes, words are joined with single spaces.

use super::Address;

const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";
const SYNTAX_ERROR: &[u8] = b"SYNTAX_ERROR";
const INVALID_ROUTE: &[u8] = b"INVALID_ROUTE";

/// At most this many entries are kept in one address list (a bound on
/// memory for hostile input; real lists are far shorter).
pub(super) const MAX_ADDRESSES: usize = 10_000;

/// `atext` of RFC 5322, plus every 8-bit byte (RFC 6532).
pub(super) fn is_atext(b: u8) -> bool {
    b >= 0x80
        || b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

/// The outcome of a lexer step, as in the RFC 822 tokenizers of mail
/// servers: input remains, input is exhausted, or the input is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    More,
    End,
    Bad,
}

/// A cursor over a header value with the RFC 5322 lexical rules.
#[derive(Debug)]
pub(super) struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    /// The text of the last comment skipped, when `keep_comments` is set.
    pub(super) last_comment: Vec<u8>,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(s: &'a [u8]) -> Lexer<'a> {
        Lexer {
            s,
            pos: 0,
            last_comment: Vec::new(),
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(super) fn bump(&mut self) {
        self.pos += 1;
    }

    fn state(&self) -> Step {
        if self.at_end() { Step::End } else { Step::More }
    }

    /// Skips whitespace (line breaks included) and comments.
    pub(super) fn skip_cfws(&mut self) -> Step {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() == Step::Bad {
                        return Step::Bad;
                    }
                }
                _ => break,
            }
        }
        self.state()
    }

    /// Skips one (nested) comment, remembering its text (quoted pairs
    /// unescaped, nested parentheses kept).
    fn skip_comment(&mut self) -> Step {
        self.last_comment.clear();
        self.pos += 1;
        let mut level = 1usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        self.pos += 1;
                        return self.state();
                    }
                }
                b'\\' => match self.s.get(self.pos + 1) {
                    None => {
                        self.pos = self.s.len();
                        return Step::Bad;
                    }
                    Some(b'\r' | b'\n') => {}
                    Some(&escaped) => {
                        self.pos += 1;
                        self.last_comment.push(escaped);
                        self.pos += 1;
                        continue;
                    }
                },
                b'\r' | b'\n' => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            self.last_comment.push(b);
            self.pos += 1;
        }
        Step::Bad
    }

    /// A quoted string (at `"`), its content unescaped into `out`.
    pub(super) fn quoted_string(&mut self, out: &mut Vec<u8>) -> Step {
        self.pos += 1;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.pos += 1;
                    return self.skip_cfws();
                }
                b'\\' => match self.s.get(self.pos + 1) {
                    None => {
                        self.pos = self.s.len();
                        return Step::Bad;
                    }
                    Some(b'\r' | b'\n') => self.pos += 1,
                    Some(&escaped) => {
                        out.push(escaped);
                        self.pos += 2;
                    }
                },
                b'\r' | b'\n' => self.pos += 1,
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        Step::Bad
    }

    /// Atext and dots, as one word of an (obsolete) phrase.
    fn atom_or_dots(&mut self, out: &mut Vec<u8>) -> Step {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_atext(b) || b == b'.' {
                self.pos += 1;
            } else {
                out.extend_from_slice(&self.s[start..self.pos]);
                return self.skip_cfws();
            }
        }
        out.extend_from_slice(&self.s[start..]);
        Step::End
    }

    /// A plain atom.
    pub(super) fn atom(&mut self, out: &mut Vec<u8>) -> Step {
        match self.peek() {
            Some(b) if is_atext(b) => {}
            _ => return Step::Bad,
        }
        let start = self.pos;
        while self.peek().is_some_and(is_atext) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.s[start..self.pos]);
        self.skip_cfws()
    }

    /// `dot-atom`, tolerating whitespace around the dots and empty labels.
    fn dot_atom(&mut self, out: &mut Vec<u8>) -> Step {
        match self.peek() {
            Some(b) if is_atext(b) => {}
            _ => return Step::Bad,
        }
        let mut start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            if is_atext(b) {
                self.pos += 1;
                continue;
            }
            out.extend_from_slice(&self.s[start..self.pos]);
            let step = self.skip_cfws();
            if step != Step::More {
                return step;
            }
            if self.peek() != Some(b'.') {
                return Step::More;
            }
            self.pos += 1;
            out.push(b'.');
            let step = self.skip_cfws();
            if step != Step::More {
                return step;
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.s[start..]);
        Step::End
    }

    /// A phrase: words (atoms, dots, quoted strings) joined with one space.
    pub(super) fn phrase(&mut self, out: &mut Vec<u8>) -> Step {
        match self.peek() {
            None => return Step::End,
            Some(b'.') => return Step::Bad,
            Some(_) => {}
        }
        loop {
            let step = if self.peek() == Some(b'"') {
                self.quoted_string(out)
            } else {
                self.atom_or_dots(out)
            };
            if step != Step::More {
                return step;
            }
            match self.peek() {
                Some(b) if is_atext(b) || b == b'"' || b == b'.' => out.push(b' '),
                _ => break,
            }
        }
        self.skip_cfws()
    }

    /// `@` domain: a dot-atom or a domain literal (kept with its brackets).
    fn domain(&mut self, out: &mut Vec<u8>) -> Step {
        self.pos += 1; // '@'
        if self.skip_cfws() != Step::More {
            return Step::Bad;
        }
        if self.peek() != Some(b'[') {
            return self.dot_atom(out);
        }
        let start = self.pos;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b']' => {
                    out.extend(
                        self.s[start..self.pos]
                            .iter()
                            .filter(|&&c| c != b'\r' && c != b'\n'),
                    );
                    return self.skip_cfws();
                }
                b'\\' if !self.at_end() => self.pos += 1,
                _ => {}
            }
        }
        Step::Bad
    }
}

/// The address being assembled, with the "syntax was bad" flag the
/// recovery rules look at.
#[derive(Default)]
struct Pending {
    name: Option<Vec<u8>>,
    route: Option<Vec<u8>>,
    mailbox: Option<Vec<u8>>,
    domain: Option<Vec<u8>>,
    invalid: bool,
}

struct ListParser<'a> {
    lex: Lexer<'a>,
    out: Vec<Address>,
    cur: Pending,
}

/// Parses an address-list header value (unfolded or not).
pub(super) fn parse_list(value: &[u8]) -> Vec<Address> {
    let mut p = ListParser {
        lex: Lexer::new(value),
        out: Vec::new(),
        cur: Pending::default(),
    };
    if p.lex.skip_cfws() == Step::More {
        p.address_list();
    }
    p.out
}

impl ListParser<'_> {
    fn push(&mut self) {
        let cur = std::mem::take(&mut self.cur);
        if self.out.len() < MAX_ADDRESSES {
            self.out.push(Address {
                name: cur.name,
                adl: cur.route,
                mailbox: cur.mailbox,
                host: cur.domain,
            });
        }
    }

    /// Adds the pending address with placeholders for what is missing.
    fn push_fixed(&mut self) {
        if self.cur.mailbox.is_none() {
            self.cur.mailbox = Some(MISSING_MAILBOX.to_vec());
        }
        if self.cur.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.cur.domain = Some(MISSING_DOMAIN.to_vec());
        }
        self.push();
    }

    fn address_list(&mut self) {
        while self.out.len() < MAX_ADDRESSES {
            if self.address() == Step::End {
                break;
            }
            if self.lex.peek() != Some(b',') {
                break;
            }
            self.lex.bump();
            match self.lex.skip_cfws() {
                Step::More => {}
                Step::End => break,
                Step::Bad => {
                    // the list ends with garbage
                    self.push_fixed();
                    break;
                }
            }
        }
    }

    fn address(&mut self) -> Step {
        let start = self.lex.pos;
        match self.group() {
            Some(step) => step,
            None => {
                self.lex.pos = start;
                self.mailbox()
            }
        }
    }

    /// A group, or `None` (nothing consumed that matters) if this is not one.
    fn group(&mut self) -> Option<Step> {
        let mut name = Vec::new();
        let step = self.lex.phrase(&mut name);
        if step == Step::Bad || step == Step::End || self.lex.peek() != Some(b':') {
            return None;
        }
        self.lex.bump();
        let mut step = self.lex.skip_cfws();
        self.cur.mailbox = Some(name);
        self.push();
        if step == Step::More && self.lex.peek() != Some(b';') {
            loop {
                // a broken member does not end the group
                let _ = self.mailbox();
                if self.lex.peek() != Some(b',') {
                    break;
                }
                self.lex.bump();
                if self.lex.skip_cfws() != Step::More {
                    step = Step::Bad;
                    break;
                }
            }
        }
        if step != Step::Bad {
            if self.lex.peek() == Some(b';') {
                self.lex.bump();
                step = self.lex.skip_cfws();
            } else {
                step = Step::Bad;
            }
        }
        // the end-of-group marker
        self.cur = Pending::default();
        self.push();
        Some(if step == Step::End {
            Step::End
        } else {
            Step::More
        })
    }

    fn mailbox(&mut self) -> Step {
        let start = self.lex.pos;
        let step = match self.name_addr() {
            Some(step) => step,
            None => {
                self.lex.pos = start;
                let step = self.addr_spec();
                let cur = &mut self.cur;
                if cur.invalid
                    && cur.name.is_none()
                    && cur.mailbox.is_some()
                    && cur.domain.is_none()
                {
                    // "user" alone, or a quoted string alone: a name, really
                    cur.name = cur.mailbox.take();
                }
                step
            }
        };
        self.push_fixed();
        step
    }

    /// `[phrase] <addr>`, or `None` if there is no `<` after the phrase.
    fn name_addr(&mut self) -> Option<Step> {
        let mut name = Vec::new();
        let step = self.lex.phrase(&mut name);
        if step != Step::More || self.lex.peek() != Some(b'<') {
            return None;
        }
        self.cur.name = (!name.is_empty()).then_some(name);
        if self.angle_addr() == Step::Bad {
            self.cur.domain = Some(SYNTAX_ERROR.to_vec());
            self.cur.invalid = true;
        }
        Some(self.lex.state())
    }

    fn angle_addr(&mut self) -> Step {
        self.lex.bump(); // '<'
        if self.lex.skip_cfws() != Step::More {
            return Step::Bad;
        }
        if self.lex.peek() == Some(b'@') {
            if self.route() == Step::More && self.lex.peek() == Some(b':') {
                self.lex.bump();
            } else {
                self.cur.route = Some(INVALID_ROUTE.to_vec());
                if self.lex.at_end() {
                    return Step::Bad;
                }
            }
            if self.lex.skip_cfws() != Step::More {
                return Step::Bad;
            }
        }
        if self.lex.peek() != Some(b'>') {
            if self.local_part() != Step::More {
                return Step::Bad;
            }
            if self.lex.peek() == Some(b'@') && self.domain() != Step::More {
                return Step::Bad;
            }
        }
        if self.lex.peek() != Some(b'>') {
            return Step::Bad;
        }
        self.lex.bump();
        self.lex.skip_cfws()
    }

    /// `@a,@b` before the `:` of an obsolete source route.
    fn route(&mut self) -> Step {
        let mut route = Vec::new();
        loop {
            match self.lex.peek() {
                None => return Step::End,
                Some(b'@') => {}
                Some(_) => break,
            }
            if !route.is_empty() {
                route.push(b',');
            }
            route.push(b'@');
            let step = self.lex.domain(&mut route);
            if step != Step::More {
                return step;
            }
            while self.lex.skip_cfws() == Step::More && self.lex.peek() == Some(b',') {
                self.lex.bump();
            }
        }
        self.cur.route = Some(route);
        Step::More
    }

    fn local_part(&mut self) -> Step {
        let mut local = Vec::new();
        let step = if self.lex.peek() == Some(b'"') {
            self.lex.quoted_string(&mut local)
        } else {
            self.lex.dot_atom(&mut local)
        };
        if step != Step::Bad {
            self.cur.mailbox = Some(local);
        }
        step
    }

    fn domain(&mut self) -> Step {
        let mut domain = Vec::new();
        let step = self.lex.domain(&mut domain);
        if step != Step::Bad {
            self.cur.domain = Some(domain);
        }
        step
    }

    /// `local@domain [(comment)]`, or a bare word or phrase.
    fn addr_spec(&mut self) -> Step {
        self.lex.last_comment.clear();
        let quoted = self.lex.peek() == Some(b'"');
        let mut step = self.local_part();
        if step != Step::More {
            self.cur.invalid = true;
        }
        let mut domain_step = None;
        if step != Step::End && self.lex.peek() == Some(b'@') {
            let d = self.domain();
            if d != Step::More {
                step = d;
            }
            domain_step = Some(d);
        }
        if !self.lex.last_comment.is_empty() {
            self.cur.name = Some(self.lex.last_comment.clone());
        } else if domain_step.is_none() {
            // no @domain and no comment: "user" is a mailbox, but
            // "some words" are a display name
            let mut words = self.cur.mailbox.clone().unwrap_or_default();
            words.push(b' ');
            let before = words.len();
            let _ = self.lex.phrase(&mut words);
            if words.len() != before {
                self.cur.mailbox = None;
                self.cur.name = Some(words);
            } else if !quoted {
                self.cur.domain = Some(Vec::new());
            }
            self.cur.invalid = true;
            step = Step::Bad;
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(|s| s.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.map(|s| s.as_bytes().to_vec()),
            host: host.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn plain_forms() {
        assert_eq!(
            parse_list(b"\"Doe, John\" <john@example.com>, jane@example.org (Jane  D)"),
            vec![
                a(Some("Doe, John"), Some("john"), Some("example.com")),
                a(Some("Jane  D"), Some("jane"), Some("example.org")),
            ]
        );
        assert_eq!(
            parse_list(b"=?utf-8?q?J=C3=B6rg?= <j@x.de>"),
            vec![a(Some("=?utf-8?q?J=C3=B6rg?="), Some("j"), Some("x.de"))]
        );
        assert_eq!(parse_list(b"<a@b>"), vec![a(None, Some("a"), Some("b"))]);
        assert_eq!(parse_list(b""), vec![]);
        assert_eq!(parse_list(b"   "), vec![]);
    }

    #[test]
    fn groups() {
        assert_eq!(
            parse_list(b"undisclosed-recipients:;"),
            vec![
                a(None, Some("undisclosed-recipients"), None),
                a(None, None, None)
            ]
        );
        assert_eq!(
            parse_list(b"Team: a@b, C <c@d>; , e@f"),
            vec![
                a(None, Some("Team"), None),
                a(None, Some("a"), Some("b")),
                a(Some("C"), Some("c"), Some("d")),
                a(None, None, None),
                a(None, Some("e"), Some("f")),
            ]
        );
    }

    #[test]
    fn recovery_placeholders() {
        assert_eq!(
            parse_list(b"foo"),
            vec![a(None, Some("foo"), Some("MISSING_DOMAIN"))]
        );
        assert_eq!(
            parse_list(b"Foo Bar"),
            vec![a(
                Some("Foo Bar"),
                Some("MISSING_MAILBOX"),
                Some("MISSING_DOMAIN")
            )]
        );
        assert_eq!(
            parse_list(b"Foo <bar"),
            vec![a(Some("Foo"), Some("bar"), Some("SYNTAX_ERROR"))]
        );
        assert_eq!(
            parse_list(b"<>"),
            vec![a(None, Some("MISSING_MAILBOX"), Some("MISSING_DOMAIN"))]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_bounded_and_safe(s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let list = parse_list(&s);
            proptest::prop_assert!(list.len() <= s.len() + 1);
            for a in &list {
                // host is None only in group markers
                if a.host.is_none() {
                    proptest::prop_assert!(a.name.is_none() && a.adl.is_none());
                }
            }
        }

        #[test]
        fn token_soup(parts in proptest::collection::vec(proptest::sample::select(vec![
            "a", "b.c", "@", "<", ">", ",", ";", ":", "\"", "\"q\"", "(c)", "(", ")", " ", "\\", "[1.2]", ".", "=?x?q?y?=",
        ]), 0..30)) {
            let s = parts.concat();
            let _ = parse_list(s.as_bytes());
        }
    }

    #[test]
    fn source_route() {
        let got = parse_list(b"<@r1,@r2:x@y>");
        assert_eq!(got[0].adl.as_deref(), Some(&b"@r1,@r2"[..]));
        assert_eq!(got[0].mailbox.as_deref(), Some(&b"x"[..]));
    }
}
