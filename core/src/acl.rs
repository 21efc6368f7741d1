//! Access control lists (RFC 4314) and the principal they are checked for.

use std::fmt;

/// One RFC 4314 right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    /// `l`: the mailbox is visible to LIST.
    Lookup,
    /// `r`: SELECT, EXAMINE, FETCH, SEARCH, COPY from.
    Read,
    /// `s`: keep `\Seen` across sessions.
    Seen,
    /// `w`: set flags other than `\Seen` and `\Deleted`.
    Write,
    /// `i`: APPEND, COPY or MOVE into.
    Insert,
    /// `p`: send mail to the submission address of the mailbox.
    Post,
    /// `k`: create child mailboxes.
    CreateChild,
    /// `x`: delete or rename the mailbox.
    DeleteMailbox,
    /// `t`: set or clear `\Deleted`.
    DeleteMessage,
    /// `e`: EXPUNGE.
    Expunge,
    /// `a`: administer (SETACL, DELETEACL, GETACL).
    Administer,
}

impl Right {
    const ALL: [(Right, char); 11] = [
        (Right::Lookup, 'l'),
        (Right::Read, 'r'),
        (Right::Seen, 's'),
        (Right::Write, 'w'),
        (Right::Insert, 'i'),
        (Right::Post, 'p'),
        (Right::CreateChild, 'k'),
        (Right::DeleteMailbox, 'x'),
        (Right::DeleteMessage, 't'),
        (Right::Expunge, 'e'),
        (Right::Administer, 'a'),
    ];

    /// The right's letter.
    pub fn letter(self) -> char {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, c)| *c)
            .unwrap_or('?')
    }

    fn bit(self) -> u16 {
        let idx = Self::ALL.iter().position(|(r, _)| *r == self).unwrap_or(0);
        1 << idx
    }
}

/// A set of rights.
///
/// ```
/// use mailroom_core::{Rights, Right};
/// let r = Rights::parse("lrs").unwrap();
/// assert!(r.contains(Right::Seen) && !r.contains(Right::Insert));
/// assert_eq!(Rights::all().to_string(), "lrswipkxtea");
/// // the obsolete RFC 2086 letters map to their RFC 4314 replacements
/// assert!(Rights::parse("d").unwrap().contains(Right::Expunge));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u16);

impl Rights {
    /// No rights.
    pub const fn none() -> Rights {
        Rights(0)
    }

    /// Every right.
    pub fn all() -> Rights {
        Rights((1 << Right::ALL.len()) - 1)
    }

    /// Parses a rights string. `c` means `k` and `x`; `d` means `t`, `e`
    /// (and `x`), as RFC 4314 §2.1.1 allows servers to treat them.
    pub fn parse(s: &str) -> Option<Rights> {
        let mut r = Rights::none();
        for ch in s.chars() {
            match ch {
                'c' => {
                    r.insert(Right::CreateChild);
                    r.insert(Right::DeleteMailbox);
                }
                'd' => {
                    r.insert(Right::DeleteMessage);
                    r.insert(Right::Expunge);
                    r.insert(Right::DeleteMailbox);
                }
                '0'..='9' => {}
                _ => r.insert(Right::ALL.iter().find(|(_, c)| *c == ch)?.0),
            }
        }
        Some(r)
    }

    /// Adds a right.
    pub fn insert(&mut self, right: Right) {
        self.0 |= right.bit();
    }

    /// Whether the right is in the set.
    pub fn contains(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }

    /// Union.
    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// Difference.
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// Whether empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (r, c) in Right::ALL {
            if self.contains(r) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The identifier that matches every authenticated user.
pub const ANYONE: &str = "anyone";

/// A mailbox's access control list: identifier → rights. The owner
/// implicitly holds every right; entries grant rights to others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    /// The entries, in no particular order, at most one per identifier.
    pub entries: Vec<(String, Rights)>,
}

impl Acl {
    /// Sets (or with `None` removes) the rights of an identifier.
    pub fn set(&mut self, identifier: &str, rights: Option<Rights>) {
        self.entries.retain(|(id, _)| id != identifier);
        if let Some(r) = rights.filter(|r| !r.is_empty()) {
            self.entries.push((identifier.to_owned(), r));
        }
    }

    /// The rights an identifier holds through its own entry and `anyone`.
    pub fn rights_of(&self, identifier: &str) -> Rights {
        self.entries
            .iter()
            .filter(|(id, _)| id == identifier || id == ANYONE)
            .fold(Rights::none(), |acc, (_, r)| acc.union(*r))
    }
}

/// The domain part of `local@domain` (`None` without an `@` or with an
/// empty side).
pub fn domain_of(user: &str) -> Option<&str> {
    match user.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Some(domain),
        _ => None,
    }
}

/// The roles a principal holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// Administers the users of their own domain (business).
    pub domain_admin: bool,
    /// Administers the whole server.
    pub server_admin: bool,
}

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name, as the owner of mailboxes (`alice@example.com`).
    pub user: String,
    /// The domain (business) the user belongs to, if any.
    pub domain: Option<String>,
    /// Administrative roles.
    pub roles: Roles,
}

impl Principal {
    /// A plain user; the domain is taken from the part after `@`.
    pub fn user(name: impl Into<String>) -> Principal {
        let user = name.into();
        let domain = user.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        Principal {
            user,
            domain,
            roles: Roles::default(),
        }
    }

    /// Whether this principal administers `domain`: a server admin
    /// administers every domain, a domain admin only its own (compared
    /// without regard to case). The one place core decides what a role
    /// means; every admin operation (archive settings, the archive itself,
    /// other users' quota) asks here.
    ///
    /// ```
    /// use mailroom_core::{Principal, Roles};
    /// let mut admin = Principal::user("boss@a.example");
    /// admin.roles = Roles { domain_admin: true, server_admin: false };
    /// assert!(admin.administers_domain("A.example"));
    /// assert!(!admin.administers_domain("b.example"));
    /// assert!(admin.administers_user("carol@a.example"));
    /// assert!(!admin.administers_user("carol@b.example"));
    /// assert!(!Principal::user("carol@a.example").administers_user("dave@a.example"));
    /// ```
    pub fn administers_domain(&self, domain: &str) -> bool {
        if self.roles.server_admin {
            return true;
        }
        self.roles.domain_admin
            && self
                .domain
                .as_deref()
                .is_some_and(|d| !d.is_empty() && d.eq_ignore_ascii_case(domain))
    }

    /// Whether this principal administers the account `user`: a server
    /// admin every account, a domain admin the accounts of its own domain.
    /// A user without a domain part is administered by server admins only.
    pub fn administers_user(&self, user: &str) -> bool {
        if self.roles.server_admin {
            return true;
        }
        match domain_of(user) {
            Some(d) => self.administers_domain(d),
            None => false,
        }
    }

    /// The rights this principal has on a mailbox of `owner` with `acl`.
    pub fn rights_on(&self, owner: &str, acl: &Acl) -> Rights {
        if owner == self.user {
            return Rights::all();
        }
        acl.rights_of(&self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_has_all_others_per_acl() {
        let mut acl = Acl::default();
        acl.set("bob", Rights::parse("lr"));
        acl.set(ANYONE, Rights::parse("l"));
        let alice = Principal::user("alice@x.org");
        let bob = Principal::user("bob");
        let eve = Principal::user("eve");
        assert_eq!(alice.rights_on("alice@x.org", &acl), Rights::all());
        assert_eq!(bob.rights_on("alice@x.org", &acl).to_string(), "lr");
        assert_eq!(eve.rights_on("alice@x.org", &acl).to_string(), "l");
        acl.set("bob", None);
        assert_eq!(bob.rights_on("alice@x.org", &acl).to_string(), "l");
        assert_eq!(alice.domain.as_deref(), Some("x.org"));
    }

    #[test]
    fn roles_reach_their_own_domain_only() {
        let mut root = Principal::user("root@ops.example");
        root.roles.server_admin = true;
        assert!(root.administers_domain("x.org") && root.administers_user("local"));
        let mut admin = Principal::user("boss@x.org");
        admin.roles.domain_admin = true;
        assert!(admin.administers_user("alice@X.ORG"));
        assert!(!admin.administers_user("alice@y.org"));
        assert!(!admin.administers_user("alice"));
        assert!(!admin.administers_user("@x.org"));
        let plain = Principal::user("alice@x.org");
        assert!(!plain.administers_domain("x.org"));
        let mut no_domain = Principal::user("boss");
        no_domain.roles.domain_admin = true;
        assert!(!no_domain.administers_domain(""));
        assert_eq!(domain_of("a@b"), Some("b"));
        assert_eq!(domain_of("a@"), None);
    }
}
