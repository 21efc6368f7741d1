//! The data directory's reverse ACL index (`<data>/shared`): which
//! identifiers have an entry in the ACL of which mailbox (owner and
//! directory number), so that LIST can offer a user the mailboxes other
//! users shared with them without reading every account file.
//!
//! The index is derived data. It is kept a **superset** of the ACLs on disk:
//! an identifier is added before the `mailbox` and `account` files that
//! grant it are written, and removed after the files that drop it are. A
//! crash can therefore leave an extra entry (harmless: core checks the real
//! ACL of every candidate, and ids that no longer name a mailbox are
//! dropped), never a missing one. A missing or corrupt file is rebuilt by
//! reading every account file (the logged fallback). See FORMAT.md, "shared
//! file".

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use mailroom_core::{Acl, Error, Result};

use crate::account::{Account, MailboxMeta, check_crc, with_crc};
use crate::fsutil::{escape_component, escape_token, unescape_token, write_atomic};
use crate::store::{ACCOUNT_FILE, MAILBOX_FILE};

/// Name of the reverse ACL index in the data directory.
pub const SHARED_FILE: &str = "shared";
/// First line of the reverse ACL index.
pub(crate) const SHARED_MAGIC: &str = "mailroom-crc-shared 1";

/// One ACL entry as the index knows it (rights are not kept: they are read
/// from the owner's account when needed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Grant {
    pub(crate) identifier: String,
    pub(crate) owner: String,
    pub(crate) id: u64,
}

type Grants = BTreeSet<Grant>;

/// Encodes the index: the magic, one `grant` line per entry (sorted), the CRC.
pub(crate) fn encode(grants: &Grants) -> Vec<u8> {
    let mut s = format!("{SHARED_MAGIC}\n");
    for g in grants {
        s.push_str(&format!(
            "grant {} {} {}\n",
            escape_token(&g.identifier),
            escape_token(&g.owner),
            g.id
        ));
    }
    with_crc(s)
}

/// Decodes and checks the index file.
pub(crate) fn decode(data: &[u8], what: &str) -> Result<Grants> {
    let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
    let mut out = Grants::new();
    for line in check_crc(data, what, SHARED_MAGIC)? {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["grant", who, owner, id] => {
                let identifier = unescape_token(who).ok_or_else(|| bad("bad identifier"))?;
                let owner = unescape_token(owner)
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| bad("bad owner"))?;
                let id = id.parse::<u64>().map_err(|_| bad("bad number"))?;
                out.insert(Grant {
                    identifier,
                    owner,
                    id,
                });
            }
            _ => return Err(bad("unknown line")),
        }
    }
    Ok(out)
}

/// The index, loaded on first use and kept in step by every ACL change.
///
/// Lock order: an account lock, then this one (never the other way round:
/// the rebuild reads account files without taking account locks).
#[derive(Debug)]
pub(crate) struct SharedIndex {
    root: PathBuf,
    durable: bool,
    /// `None` until loaded.
    grants: Mutex<Option<Grants>>,
}

impl SharedIndex {
    pub(crate) fn new(root: &Path, durable: bool) -> SharedIndex {
        SharedIndex {
            root: root.to_path_buf(),
            durable,
            grants: Mutex::new(None),
        }
    }

    fn path(&self) -> PathBuf {
        self.root.join(SHARED_FILE)
    }

    /// The loaded index under its lock (read, or rebuilt, on first use).
    fn loaded(&self) -> Result<MutexGuard<'_, Option<Grants>>> {
        let mut guard = self
            .grants
            .lock()
            .map_err(|_| Error::Backend("shared index lock poisoned".into()))?;
        if guard.is_none() {
            let path = self.path();
            let grants = match fs::read(&path) {
                Ok(data) => match decode(&data, &path.display().to_string()) {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "shared index corrupt; rebuilding it from every account");
                        self.rebuild_and_save()?
                    }
                },
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracing::warn!(file = %path.display(), "shared index missing; rebuilding it from every account");
                    self.rebuild_and_save()?
                }
                Err(e) => return Err(e.into()),
            };
            *guard = Some(grants);
        }
        Ok(guard)
    }

    fn rebuild_and_save(&self) -> Result<Grants> {
        let grants = scan(&self.root)?;
        self.save(&grants);
        tracing::warn!(
            entries = grants.len(),
            "shared index rebuilt from the account files"
        );
        Ok(grants)
    }

    /// Writes the index. A failure is logged and the file removed (so the
    /// next process rebuilds it rather than trust a stale one); the
    /// in-memory index stays right.
    fn save(&self, grants: &Grants) {
        let path = self.path();
        if let Err(e) = write_atomic(&path, &encode(grants), self.durable) {
            tracing::error!(file = %path.display(), error = %e, "could not write the shared index");
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "could not remove the stale shared index")
                }
            }
        }
    }

    /// Applies `f` to the loaded index and saves it if it changed. An error
    /// loading is logged: the change is then picked up by the rebuild that
    /// the next use runs.
    fn change(&self, f: impl FnOnce(&mut Grants)) {
        let mut guard = match self.loaded() {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "shared index unavailable; it is rebuilt on next use");
                return;
            }
        };
        let Some(grants) = guard.as_mut() else {
            return;
        };
        let before = grants.clone();
        f(grants);
        if *grants != before {
            self.save(grants);
        }
    }

    /// Before an ACL change is written: adds every identifier of `acl`
    /// (the ACL as it will be) for mailbox `id` of `owner`.
    pub(crate) fn add(&self, owner: &str, id: u64, acl: &Acl) {
        self.change(|g| {
            for (who, _) in &acl.entries {
                g.insert(Grant {
                    identifier: who.clone(),
                    owner: owner.to_owned(),
                    id,
                });
            }
        });
    }

    /// After an ACL change (or a delete, `None`) is written: the entries of
    /// mailbox `id` of `owner` become exactly those of `acl`.
    pub(crate) fn settle(&self, owner: &str, id: u64, acl: Option<&Acl>) {
        self.change(|g| {
            g.retain(|x| !(x.owner == owner && x.id == id));
            for (who, _) in acl.map_or(&[][..], |a| &a.entries[..]) {
                g.insert(Grant {
                    identifier: who.clone(),
                    owner: owner.to_owned(),
                    id,
                });
            }
        });
    }

    /// After an account was rebuilt: the entries of `owner` become exactly
    /// those of its mailboxes.
    pub(crate) fn settle_owner(&self, owner: &str, account: &Account) {
        self.change(|g| {
            g.retain(|x| x.owner != owner);
            for e in account.mailboxes.values() {
                for (who, _) in &e.acl.entries {
                    g.insert(Grant {
                        identifier: who.clone(),
                        owner: owner.to_owned(),
                        id: e.id,
                    });
                }
            }
        });
    }

    /// The (owner, id) of every entry whose identifier passes `pick`, owners
    /// other than `user` only, sorted, at most `limit`.
    pub(crate) fn find(
        &self,
        user: &str,
        limit: usize,
        pick: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, u64)>> {
        let guard = self.loaded()?;
        let mut out: Vec<(String, u64)> = guard
            .iter()
            .flatten()
            .filter(|g| g.owner != user && pick(&g.identifier))
            .map(|g| (g.owner.clone(), g.id))
            .collect();
        out.sort();
        out.dedup();
        out.truncate(limit);
        Ok(out)
    }
}

/// Rebuilds the index from every user's account file (or, for an account
/// whose file is missing or fails its check, from its mailboxes' `mailbox`
/// files). Reads files only; takes no account lock.
fn scan(root: &Path) -> Result<Grants> {
    let mut grants = Grants::new();
    let users = match fs::read_dir(root.join("users")) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(grants),
        Err(e) => return Err(e.into()),
    };
    for entry in users {
        let entry = entry?;
        let Some(dir_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // the directory name is the escaped user name; a hashed (too long)
        // one cannot be turned back into the name
        let Some(owner) = unescape_token(&dir_name).filter(|u| escape_component(u) == dir_name)
        else {
            tracing::warn!(dir = %dir_name, "user directory whose name cannot be decoded; its ACLs are not in the shared index");
            continue;
        };
        let udir = entry.path();
        let account = udir.join(ACCOUNT_FILE);
        let from_account = fs::read(&account)
            .ok()
            .and_then(|d| Account::decode(&d, &account.display().to_string()).ok());
        let mut add = |id: u64, acl: &Acl| {
            for (who, _) in &acl.entries {
                grants.insert(Grant {
                    identifier: who.clone(),
                    owner: owner.clone(),
                    id,
                });
            }
        };
        match from_account {
            Some(a) => {
                for e in a.mailboxes.values() {
                    add(e.id, &e.acl);
                }
            }
            None => {
                // what a recovery of the account would find
                let Ok(rd) = fs::read_dir(udir.join("mailboxes")) else {
                    continue;
                };
                for m in rd.flatten() {
                    let Some(id) = m.file_name().to_str().and_then(|n| n.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    let path = m.path().join(MAILBOX_FILE);
                    if let Some(meta) = fs::read(&path)
                        .ok()
                        .and_then(|d| MailboxMeta::decode(&d, &path.display().to_string(), id).ok())
                    {
                        add(id, &meta.acl);
                    }
                }
            }
        }
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Grants {
        [
            ("bob@example.com", "alice@example.com", 1),
            ("anyone", "alice@example.com", 7),
            ("carol smith", "bob@example.com", 2),
        ]
        .into_iter()
        .map(|(i, o, id)| Grant {
            identifier: i.into(),
            owner: o.into(),
            id,
        })
        .collect()
    }

    #[test]
    fn roundtrip_and_every_flip_detected() {
        let g = sample();
        let enc = encode(&g);
        assert_eq!(decode(&enc, "t").unwrap(), g);
        for i in 0..enc.len() {
            let mut c = enc.clone();
            c[i] ^= 0x01;
            assert!(decode(&c, "t").is_err(), "flip at {i} undetected");
        }
        for n in 0..enc.len() - 1 {
            assert!(decode(&enc[..n], "t").is_err(), "cut at {n}");
        }
        assert_eq!(decode(&encode(&Grants::new()), "t").unwrap(), Grants::new());
        // an account file is not an index
        assert!(decode(&Account::default().encode(), "t").is_err());
    }

    /// FORMAT.md's example decodes and re-encodes to the same bytes.
    #[test]
    fn format_doc_example() {
        let doc = include_str!("../FORMAT.md");
        let start = doc.find("An example `shared` file:").unwrap();
        let block = &doc[start..];
        let open = block.find("```\n").unwrap() + 4;
        let len = block[open..].find("```").unwrap();
        let example = &block[open..open + len];
        let g = decode(example.as_bytes(), "FORMAT.md").unwrap();
        assert_eq!(g, sample());
        assert_eq!(encode(&g), example.as_bytes());
    }
}
