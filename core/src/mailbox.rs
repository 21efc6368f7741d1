//! Mailbox names, references, attributes, status and LIST pattern matching.
//!
//! Names are UTF-8 inside Mailroom with `/` as the hierarchy delimiter;
//! modified UTF-7 exists only at the IMAP edge.

use std::fmt;

use crate::error::{Error, Result};
use crate::types::{ModSeq, Uid, UidValidity};

/// The hierarchy delimiter of every Mailroom namespace.
pub const DELIMITER: char = '/';
/// The longest mailbox name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;
/// The deepest hierarchy accepted.
pub const MAX_NAME_DEPTH: usize = 32;

/// A validated mailbox name relative to its owner's personal namespace.
///
/// `INBOX` is matched case-insensitively and always stored as `INBOX`
/// (also as the first component: `inbox/x` becomes `INBOX/x`).
///
/// ```
/// use mailroom_core::MailboxName;
/// let n = MailboxName::new("inbox/Reports").unwrap();
/// assert_eq!(n.as_str(), "INBOX/Reports");
/// assert!(MailboxName::new("a//b").is_err());
/// assert_eq!(n.parent().unwrap().as_str(), "INBOX");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxName(String);

impl MailboxName {
    /// Validates and normalises a name.
    pub fn new(name: &str) -> Result<MailboxName> {
        if name.is_empty() {
            return Err(Error::InvalidMailboxName("empty name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidMailboxName("name too long"));
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidMailboxName("control character in name"));
        }
        if name.contains(['*', '%']) {
            return Err(Error::InvalidMailboxName("wildcard in name"));
        }
        let parts: Vec<&str> = name.split(DELIMITER).collect();
        if parts.len() > MAX_NAME_DEPTH {
            return Err(Error::InvalidMailboxName("hierarchy too deep"));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidMailboxName("empty hierarchy component"));
        }
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(Error::InvalidMailboxName("'.' or '..' component"));
        }
        let mut out = String::with_capacity(name.len());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(DELIMITER);
            }
            if i == 0 && p.eq_ignore_ascii_case("INBOX") {
                out.push_str("INBOX");
            } else {
                out.push_str(p);
            }
        }
        Ok(MailboxName(out))
    }

    /// `INBOX`.
    pub fn inbox() -> MailboxName {
        MailboxName("INBOX".to_owned())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `INBOX` itself.
    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// The parent in the hierarchy, if any.
    pub fn parent(&self) -> Option<MailboxName> {
        self.0
            .rsplit_once(DELIMITER)
            .map(|(p, _)| MailboxName(p.to_owned()))
    }

    /// Every ancestor, nearest last (`a/b/c` gives `a`, `a/b`).
    pub fn ancestors(&self) -> Vec<MailboxName> {
        let mut v = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            v.push(p);
        }
        v.reverse();
        v
    }

    /// Whether `self` is strictly below `other` in the hierarchy.
    pub fn is_descendant_of(&self, other: &MailboxName) -> bool {
        self.0.len() > other.0.len()
            && self.0.starts_with(other.as_str())
            && self.0.as_bytes()[other.0.len()] == DELIMITER as u8
    }

    /// The name with the prefix `from` replaced by `to` (for RENAME of a subtree).
    pub fn rebase(&self, from: &MailboxName, to: &MailboxName) -> Option<MailboxName> {
        if self == from {
            return Some(to.clone());
        }
        if self.is_descendant_of(from) {
            return MailboxName::new(&format!("{}{}", to.0, &self.0[from.0.len()..])).ok();
        }
        None
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox of a given owner: the key every storage operation takes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxRef {
    /// The owning user, as the authenticator names them (`alice@example.com`).
    pub owner: String,
    /// The name within the owner's personal namespace.
    pub name: MailboxName,
}

impl MailboxRef {
    /// A reference to `name` of `owner`.
    pub fn new(owner: impl Into<String>, name: MailboxName) -> MailboxRef {
        MailboxRef {
            owner: owner.into(),
            name,
        }
    }
}

impl fmt::Display for MailboxRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.owner, self.name)
    }
}

/// A special-use attribute (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// Every special use.
    pub const ALL: [SpecialUse; 7] = [
        SpecialUse::All,
        SpecialUse::Archive,
        SpecialUse::Drafts,
        SpecialUse::Flagged,
        SpecialUse::Junk,
        SpecialUse::Sent,
        SpecialUse::Trash,
    ];

    /// The attribute as IMAP writes it (`\Sent`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses `\Sent` and the others, case-insensitively.
    pub fn parse(s: &str) -> Option<SpecialUse> {
        Self::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(s))
    }
}

/// The mailboxes a new account gets, with their special uses.
pub const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 5] = [
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
];

/// One mailbox as a backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Its name.
    pub name: MailboxName,
    /// Its special use, if any.
    pub special_use: Option<SpecialUse>,
}

/// What STATUS reports, read from the mailbox header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Number of messages.
    pub messages: u32,
    /// Messages not yet claimed as `\Recent` by any session.
    pub recent: u32,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// Messages without `\Seen` (for the viewer asking).
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// Sum of message sizes in bytes.
    pub size: u64,
    /// MAILBOXID (RFC 8474), kept by the store for the mailbox's life.
    pub mailbox_id: crate::MailboxId,
}

/// Whether `name` matches a LIST pattern (`*` matches anything, `%` anything
/// but the delimiter). Case-sensitive except for a leading `INBOX`.
///
/// ```
/// use mailroom_core::mailbox::list_matches;
/// assert!(list_matches("*", "a/b"));
/// assert!(list_matches("%", "a"));
/// assert!(!list_matches("%", "a/b"));
/// assert!(list_matches("a/%", "a/b"));
/// assert!(list_matches("inbox", "INBOX"));
/// ```
pub fn list_matches(pattern: &str, name: &str) -> bool {
    let pattern = normalise_inbox_prefix(pattern);
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    // Iterative matcher with backtracking on the last '*'/'%', bounded O(p×n).
    let mut memo = vec![None; (p.len() + 1) * (n.len() + 1)];
    matches_at(p, n, 0, 0, &mut memo)
}

fn normalise_inbox_prefix(pattern: &str) -> String {
    if pattern.len() >= 5
        && pattern.is_char_boundary(5)
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        let rest = &pattern[5..];
        if rest.is_empty() || rest.starts_with(DELIMITER) {
            return format!("INBOX{rest}");
        }
    }
    pattern.to_owned()
}

fn matches_at(p: &[u8], n: &[u8], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let key = i * (n.len() + 1) + j;
    if let Some(v) = memo[key] {
        return v;
    }
    let r = if i == p.len() {
        j == n.len()
    } else {
        match p[i] {
            b'*' => {
                matches_at(p, n, i + 1, j, memo)
                    || (j < n.len() && matches_at(p, n, i, j + 1, memo))
            }
            b'%' => {
                matches_at(p, n, i + 1, j, memo)
                    || (j < n.len() && n[j] != DELIMITER as u8 && matches_at(p, n, i, j + 1, memo))
            }
            c => j < n.len() && n[j] == c && matches_at(p, n, i + 1, j + 1, memo),
        }
    };
    memo[key] = Some(r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(MailboxName::new("").is_err());
        assert!(MailboxName::new("/a").is_err());
        assert!(MailboxName::new("a/").is_err());
        assert!(MailboxName::new("a/../b").is_err());
        assert!(MailboxName::new("a\0").is_err());
        assert_eq!(MailboxName::new("Inbox").unwrap(), MailboxName::inbox());
        assert_eq!(
            MailboxName::new("Entwürfe/Ä").unwrap().as_str(),
            "Entwürfe/Ä"
        );
        let a = MailboxName::new("a").unwrap();
        let ab = MailboxName::new("a/b").unwrap();
        let abc = MailboxName::new("abc").unwrap();
        assert!(ab.is_descendant_of(&a));
        assert!(!abc.is_descendant_of(&a));
        let z = MailboxName::new("z").unwrap();
        assert_eq!(ab.rebase(&a, &z).unwrap().as_str(), "z/b");
    }

    #[test]
    fn patterns() {
        assert!(list_matches("a*", "a/b/c"));
        assert!(list_matches("a/%/c", "a/b/c"));
        assert!(!list_matches("a/%", "a/b/c"));
        assert!(list_matches("INBOX*", "INBOX/x"));
        assert!(list_matches("Inbox/%", "INBOX/x"));
        assert!(list_matches(
            "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%x",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaax"
        ));
    }
}
