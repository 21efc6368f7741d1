//! Message flags: the RFC 3501 system flags and keywords.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::ParseError;

/// One message flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword such as `$Forwarded` or `Junk`: an IMAP atom without `\`.
    Keyword(String),
}

/// The longest keyword accepted, in bytes.
pub const MAX_KEYWORD_LEN: usize = 128;

impl Flag {
    const SYSTEM: [(Flag, &'static str, u8); 5] = [
        (Flag::Seen, "\\Seen", 1),
        (Flag::Answered, "\\Answered", 2),
        (Flag::Flagged, "\\Flagged", 4),
        (Flag::Deleted, "\\Deleted", 8),
        (Flag::Draft, "\\Draft", 16),
    ];

    /// Parses `\Seen` (case-insensitively) or a keyword atom.
    /// `\Recent` and other `\` names are not storable and are rejected.
    pub fn parse(s: &str) -> Result<Flag, ParseError> {
        if let Some(rest) = s.strip_prefix('\\') {
            for (flag, name, _) in Self::SYSTEM {
                if name[1..].eq_ignore_ascii_case(rest) {
                    return Ok(flag);
                }
            }
            return Err(ParseError::new("unknown or non-storable system flag"));
        }
        if s.is_empty() || s.len() > MAX_KEYWORD_LEN {
            return Err(ParseError::new("invalid keyword length"));
        }
        let ok = s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
        if !ok {
            return Err(ParseError::new("invalid character in keyword"));
        }
        Ok(Flag::Keyword(s.to_owned()))
    }

    /// The system flag's bit in [`Flags::system_bits`], if a system flag.
    pub fn system_bit(&self) -> Option<u8> {
        Self::SYSTEM
            .iter()
            .find(|(f, _, _)| f == self)
            .map(|(_, _, b)| *b)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Keyword(k) => f.write_str(k),
            other => {
                let name = Self::SYSTEM
                    .iter()
                    .find(|(x, _, _)| x == other)
                    .map(|(_, n, _)| *n)
                    .unwrap_or_default();
                f.write_str(name)
            }
        }
    }
}

/// A set of flags: system flags as bits, keywords as a sorted set.
///
/// ```
/// use mailroom_core::{Flag, Flags};
/// let mut f = Flags::default();
/// f.insert(Flag::Seen);
/// f.insert(Flag::parse("$Forwarded").unwrap());
/// assert!(f.contains(&Flag::Seen));
/// assert_eq!(f.to_string(), "\\Seen $Forwarded");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    bits: u8,
    keywords: BTreeSet<String>,
}

impl Flags {
    /// Bit of `\Seen` in [`Flags::system_bits`].
    pub const SEEN: u8 = 1;
    /// Bit of `\Answered`.
    pub const ANSWERED: u8 = 2;
    /// Bit of `\Flagged`.
    pub const FLAGGED: u8 = 4;
    /// Bit of `\Deleted`.
    pub const DELETED: u8 = 8;
    /// Bit of `\Draft`.
    pub const DRAFT: u8 = 16;

    /// Flags from system bits and keywords.
    pub fn from_parts(bits: u8, keywords: impl IntoIterator<Item = String>) -> Flags {
        Flags {
            bits: bits & 0x1f,
            keywords: keywords.into_iter().collect(),
        }
    }

    /// The system flags as a bit mask (see the associated constants).
    pub fn system_bits(&self) -> u8 {
        self.bits
    }

    /// The keywords, sorted.
    pub fn keywords(&self) -> impl Iterator<Item = &str> + '_ {
        self.keywords.iter().map(String::as_str)
    }

    /// Whether the flag is set. Keywords compare case-insensitively.
    pub fn contains(&self, flag: &Flag) -> bool {
        match flag {
            Flag::Keyword(k) => {
                self.keywords.contains(k) || self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
            }
            sys => sys.system_bit().is_some_and(|b| self.bits & b != 0),
        }
    }

    /// Sets a flag. Returns whether it was newly set.
    pub fn insert(&mut self, flag: Flag) -> bool {
        if self.contains(&flag) {
            return false;
        }
        match flag {
            Flag::Keyword(k) => self.keywords.insert(k),
            sys => {
                self.bits |= sys.system_bit().unwrap_or(0);
                true
            }
        }
    }

    /// Clears a flag. Returns whether it was set.
    pub fn remove(&mut self, flag: &Flag) -> bool {
        match flag {
            Flag::Keyword(k) => {
                let before = self.keywords.len();
                self.keywords.retain(|x| !x.eq_ignore_ascii_case(k));
                before != self.keywords.len()
            }
            sys => {
                let b = sys.system_bit().unwrap_or(0);
                let was = self.bits & b != 0;
                self.bits &= !b;
                was
            }
        }
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.bits == 0 && self.keywords.is_empty()
    }

    /// All flags, system flags first.
    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        Flag::SYSTEM
            .iter()
            .filter(|(_, _, b)| self.bits & b != 0)
            .map(|(f, _, _)| f.clone())
            .chain(self.keywords.iter().map(|k| Flag::Keyword(k.clone())))
    }

    /// Applies a STORE operation; returns whether anything changed.
    pub fn apply(&mut self, op: &StoreOp) -> bool {
        let before = self.clone();
        match op {
            StoreOp::Replace(new) => *self = new.clone(),
            StoreOp::Add(add) => {
                for f in add.iter() {
                    self.insert(f);
                }
            }
            StoreOp::Remove(rm) => {
                for f in rm.iter() {
                    self.remove(&f);
                }
            }
        }
        *self != before
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut f = Flags::default();
        for x in iter {
            f.insert(x);
        }
        f
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{flag}")?;
        }
        Ok(())
    }
}

/// A STORE operation on flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// `FLAGS (...)`: replace all flags.
    Replace(Flags),
    /// `+FLAGS (...)`: add these.
    Add(Flags),
    /// `-FLAGS (...)`: remove these.
    Remove(Flags),
}

impl StoreOp {
    /// The flags the operation names.
    pub fn flags(&self) -> &Flags {
        match self {
            StoreOp::Replace(f) | StoreOp::Add(f) | StoreOp::Remove(f) => f,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_keeps_existing_seen() {
        // Regression: `STORE n +FLAGS (\Seen \Deleted)` on a \Seen message keeps \Seen.
        let mut f: Flags = [Flag::Seen].into_iter().collect();
        let add: Flags = [Flag::Seen, Flag::Deleted].into_iter().collect();
        assert!(f.apply(&StoreOp::Add(add)));
        assert!(f.contains(&Flag::Seen) && f.contains(&Flag::Deleted));
    }

    #[test]
    fn parse_rejects_recent_and_bad_atoms() {
        assert!(Flag::parse("\\Recent").is_err());
        assert!(Flag::parse("a b").is_err());
        assert!(Flag::parse("a\0").is_err());
        assert_eq!(Flag::parse("\\SEEN").unwrap(), Flag::Seen);
    }

    #[test]
    fn keywords_case_insensitive() {
        let mut f = Flags::default();
        f.insert(Flag::Keyword("$Junk".into()));
        assert!(!f.insert(Flag::Keyword("$junk".into())));
        assert!(f.remove(&Flag::Keyword("$JUNK".into())));
        assert!(f.is_empty());
    }
}
