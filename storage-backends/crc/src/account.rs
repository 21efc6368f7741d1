//! The per-user account file (mailbox list, special uses, ACLs,
//! subscriptions, counters) and the quota limits file. Both are small text
//! files ending in a CRC line, replaced atomically on every change.

use std::collections::{BTreeMap, BTreeSet};

use mailroom_core::{Acl, Error, MailboxName, QuotaLimits, Result, Rights, SpecialUse};

use crate::fsutil::{escape_token, unescape_token};

/// First line of an account file.
pub(crate) const ACCOUNT_MAGIC: &str = "mailroom-crc-account 1";
/// First line of a quota file.
pub(crate) const QUOTA_MAGIC: &str = "mailroom-crc-quota 1";
/// First line of a per-mailbox metadata file.
pub(crate) const MAILBOX_MAGIC: &str = "mailroom-crc-mailbox 1";

/// One mailbox of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailboxEntry {
    /// The mailbox directory's number.
    pub(crate) id: u64,
    pub(crate) special_use: Option<SpecialUse>,
    pub(crate) acl: Acl,
}

/// A user's account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Account {
    pub(crate) next_id: u64,
    pub(crate) last_uid_validity: u32,
    /// Whether the default mailboxes were made (and any import done).
    pub(crate) initialised: bool,
    pub(crate) mailboxes: BTreeMap<MailboxName, MailboxEntry>,
    pub(crate) subscriptions: BTreeSet<MailboxName>,
}

pub(crate) fn with_crc(mut body: String) -> Vec<u8> {
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!("crc {crc:08x}\n"));
    body.into_bytes()
}

/// Splits off and checks the final CRC line; returns the body lines.
pub(crate) fn check_crc<'a>(data: &'a [u8], what: &str, magic: &str) -> Result<Vec<&'a str>> {
    let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
    let text = std::str::from_utf8(data).map_err(|_| bad("not UTF-8"))?;
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or_else(|| bad("truncated"))?;
    let (body, crc_line) = text.split_at(body_end);
    let crc = crc_line
        .trim_end_matches('\n')
        .strip_prefix("crc ")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| bad("missing CRC line"))?;
    if crc32fast::hash(body.as_bytes()) != crc {
        return Err(bad("CRC mismatch"));
    }
    let mut lines = body.lines();
    if lines.next() != Some(magic) {
        return Err(bad("unknown format"));
    }
    Ok(lines.collect())
}

impl Account {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut s = format!(
            "{ACCOUNT_MAGIC}\nnext-id {}\nlast-uidvalidity {}\ninitialised {}\n",
            self.next_id,
            self.last_uid_validity,
            u8::from(self.initialised)
        );
        for (name, e) in &self.mailboxes {
            let su = e.special_use.map_or("-", SpecialUse::as_str);
            s.push_str(&format!(
                "mailbox {} {} {}\n",
                e.id,
                su,
                escape_token(name.as_str())
            ));
            for (id, rights) in &e.acl.entries {
                s.push_str(&format!(
                    "acl {} {} {}\n",
                    e.id,
                    escape_token(&rights.to_string()),
                    escape_token(id)
                ));
            }
        }
        for n in &self.subscriptions {
            s.push_str(&format!("sub {}\n", escape_token(n.as_str())));
        }
        with_crc(s)
    }

    pub(crate) fn decode(data: &[u8], what: &str) -> Result<Account> {
        let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
        let mut a = Account::default();
        let mut by_id: BTreeMap<u64, MailboxName> = BTreeMap::new();
        for line in check_crc(data, what, ACCOUNT_MAGIC)? {
            let parts: Vec<&str> = line.split(' ').collect();
            let name = |t: &str| {
                unescape_token(t)
                    .and_then(|n| MailboxName::new(&n).ok())
                    .ok_or_else(|| bad("bad mailbox name"))
            };
            let num = |t: &str| t.parse::<u64>().map_err(|_| bad("bad number"));
            match parts.as_slice() {
                ["next-id", n] => a.next_id = num(n)?,
                ["initialised", n] => a.initialised = num(n)? != 0,
                ["last-uidvalidity", n] => {
                    a.last_uid_validity =
                        u32::try_from(num(n)?).map_err(|_| bad("bad uidvalidity"))?
                }
                ["mailbox", id, su, n] => {
                    let id = num(id)?;
                    let special_use = match *su {
                        "-" => None,
                        s => Some(SpecialUse::parse(s).ok_or_else(|| bad("bad special use"))?),
                    };
                    let n = name(n)?;
                    by_id.insert(id, n.clone());
                    a.mailboxes.insert(
                        n,
                        MailboxEntry {
                            id,
                            special_use,
                            acl: Acl::default(),
                        },
                    );
                }
                ["acl", id, rights, who] => {
                    let n = by_id
                        .get(&num(id)?)
                        .ok_or_else(|| bad("ACL of unknown mailbox"))?;
                    let rights = unescape_token(rights)
                        .and_then(|r| Rights::parse(&r))
                        .ok_or_else(|| bad("bad rights"))?;
                    let who = unescape_token(who).ok_or_else(|| bad("bad identifier"))?;
                    if let Some(e) = a.mailboxes.get_mut(n) {
                        e.acl.set(&who, Some(rights));
                    }
                }
                ["sub", n] => {
                    a.subscriptions.insert(name(n)?);
                }
                _ => return Err(bad("unknown line")),
            }
        }
        Ok(a)
    }

    /// A new UIDVALIDITY: the current time, or one more than the last one
    /// given, whichever is larger, so no two incarnations share one.
    pub(crate) fn next_uid_validity(&mut self) -> u32 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let v = now.max(self.last_uid_validity.saturating_add(1)).max(1);
        self.last_uid_validity = v;
        v
    }
}

/// The copy of one mailbox's account entry kept in its own directory
/// (`mailboxes/<id>/mailbox`), from which a lost account file is rebuilt.
/// The account file is authoritative while it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailboxMeta {
    pub(crate) id: u64,
    pub(crate) name: MailboxName,
    pub(crate) special_use: Option<SpecialUse>,
    pub(crate) acl: Acl,
}

impl MailboxMeta {
    /// The metadata of the account entry `e` named `name`.
    pub(crate) fn of(name: &MailboxName, e: &MailboxEntry) -> MailboxMeta {
        MailboxMeta {
            id: e.id,
            name: name.clone(),
            special_use: e.special_use,
            acl: e.acl.clone(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut s = format!(
            "{MAILBOX_MAGIC}\nid {}\nname {}\nspecial-use {}\n",
            self.id,
            escape_token(self.name.as_str()),
            self.special_use.map_or("-", SpecialUse::as_str)
        );
        for (who, rights) in &self.acl.entries {
            s.push_str(&format!(
                "acl {} {}\n",
                escape_token(&rights.to_string()),
                escape_token(who)
            ));
        }
        with_crc(s)
    }

    /// Decodes and checks a metadata file: the CRC, the magic, every line,
    /// and that it belongs to the directory numbered `id`.
    pub(crate) fn decode(data: &[u8], what: &str, id: u64) -> Result<MailboxMeta> {
        let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
        let lines = check_crc(data, what, MAILBOX_MAGIC)?;
        let mut it = lines.iter().map(|l| l.split(' ').collect::<Vec<_>>());
        match it.next().as_deref() {
            Some(["id", n]) if n.parse::<u64>().ok() == Some(id) => {}
            _ => return Err(bad("missing or wrong id")),
        }
        let name = match it.next().as_deref() {
            Some(["name", n]) => unescape_token(n)
                .and_then(|n| MailboxName::new(&n).ok())
                .ok_or_else(|| bad("bad mailbox name"))?,
            _ => return Err(bad("missing name")),
        };
        let special_use = match it.next().as_deref() {
            Some(["special-use", "-"]) => None,
            Some(["special-use", s]) => {
                Some(SpecialUse::parse(s).ok_or_else(|| bad("bad special use"))?)
            }
            _ => return Err(bad("missing special-use")),
        };
        let mut acl = Acl::default();
        for parts in it {
            match parts.as_slice() {
                ["acl", rights, who] => {
                    let rights = unescape_token(rights)
                        .and_then(|r| Rights::parse(&r))
                        .ok_or_else(|| bad("bad rights"))?;
                    let who = unescape_token(who).ok_or_else(|| bad("bad identifier"))?;
                    acl.set(&who, Some(rights));
                }
                _ => return Err(bad("unknown line")),
            }
        }
        Ok(MailboxMeta {
            id,
            name,
            special_use,
            acl,
        })
    }
}

/// Encodes quota limits.
pub(crate) fn encode_limits(l: &QuotaLimits) -> Vec<u8> {
    let f = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    with_crc(format!(
        "{QUOTA_MAGIC}\nstorage {}\nmessages {}\n",
        f(l.storage_bytes),
        f(l.messages)
    ))
}

/// Decodes quota limits.
pub(crate) fn decode_limits(data: &[u8], what: &str) -> Result<QuotaLimits> {
    let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
    let mut l = QuotaLimits::default();
    for line in check_crc(data, what, QUOTA_MAGIC)? {
        let (k, v) = line.split_once(' ').ok_or_else(|| bad("bad line"))?;
        let v = match v {
            "-" => None,
            n => Some(n.parse::<u64>().map_err(|_| bad("bad number"))?),
        };
        match k {
            "storage" => l.storage_bytes = v,
            "messages" => l.messages = v,
            _ => return Err(bad("unknown line")),
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_roundtrip_and_crc() {
        let mut a = Account {
            next_id: 3,
            last_uid_validity: 99,
            initialised: true,
            ..Account::default()
        };
        let mut acl = Acl::default();
        acl.set("bob smith", Rights::parse("lrs"));
        a.mailboxes.insert(
            MailboxName::new("Entwürfe/ä b").unwrap(),
            MailboxEntry {
                id: 2,
                special_use: Some(SpecialUse::Drafts),
                acl,
            },
        );
        a.subscriptions.insert(MailboxName::inbox());
        let enc = a.encode();
        assert_eq!(Account::decode(&enc, "t").unwrap(), a);
        for i in 0..enc.len() {
            let mut c = enc.clone();
            c[i] ^= 0x01;
            assert!(Account::decode(&c, "t").is_err(), "flip at {i} undetected");
        }
        assert!(Account::decode(&enc[..enc.len() / 2], "t").is_err());
    }

    #[test]
    fn mailbox_meta_roundtrip_and_crc() {
        let mut acl = Acl::default();
        acl.set("bob smith", Rights::parse("lrs"));
        acl.set("anyone", Rights::parse("l"));
        let m = MailboxMeta {
            id: 7,
            name: MailboxName::new("Entwürfe/ä b#").unwrap(),
            special_use: Some(SpecialUse::Drafts),
            acl,
        };
        let enc = m.encode();
        assert_eq!(MailboxMeta::decode(&enc, "t", 7).unwrap(), m);
        assert!(
            MailboxMeta::decode(&enc, "t", 8).is_err(),
            "wrong id accepted"
        );
        for i in 0..enc.len() {
            let mut c = enc.clone();
            c[i] ^= 0x01;
            assert!(
                MailboxMeta::decode(&c, "t", 7).is_err(),
                "flip at {i} undetected"
            );
        }
        // (cutting only the final newline loses nothing)
        for n in 0..enc.len() - 1 {
            assert!(
                MailboxMeta::decode(&enc[..n], "t", 7).is_err(),
                "cut at {n}"
            );
        }
        let plain = MailboxMeta {
            id: 1,
            name: MailboxName::inbox(),
            special_use: None,
            acl: Acl::default(),
        };
        assert_eq!(MailboxMeta::decode(&plain.encode(), "t", 1).unwrap(), plain);
        // an account file is not a mailbox file
        let a = Account::default().encode();
        assert!(MailboxMeta::decode(&a, "t", 1).is_err());
    }

    /// FORMAT.md's example `mailbox` file decodes and re-encodes to the same
    /// bytes, and the document names every text file's magic line.
    #[test]
    fn format_doc_example_and_magics() {
        let doc = include_str!("../FORMAT.md");
        for magic in [ACCOUNT_MAGIC, QUOTA_MAGIC, MAILBOX_MAGIC] {
            assert!(doc.contains(magic), "FORMAT.md lacks {magic}");
        }
        let start = doc.find("An example, complete:").unwrap();
        let block = &doc[start..];
        let open = block.find("```\n").unwrap() + 4;
        let len = block[open..].find("```").unwrap();
        let example = &block[open..open + len];
        let m = MailboxMeta::decode(example.as_bytes(), "FORMAT.md", 4).unwrap();
        assert_eq!(m.special_use, Some(SpecialUse::Drafts));
        assert_eq!(m.acl.entries.len(), 2);
        assert_eq!(m.encode(), example.as_bytes());
    }

    #[test]
    fn limits_roundtrip() {
        let l = QuotaLimits {
            storage_bytes: Some(10),
            messages: None,
        };
        assert_eq!(decode_limits(&encode_limits(&l), "q").unwrap(), l);
    }
}
