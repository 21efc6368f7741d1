//! Import of a Maildir (the Dovecot/Courier layout) on a user's first login.
//!
//! `INBOX` is the Maildir root; other folders are Maildir++ subdirectories
//! `.Name.Sub` (names in modified UTF-7, `.` as the hierarchy separator).
//! In each folder, messages are the files of `cur/` and `new/`; flags come
//! from the `:2,` suffix of their names (`D` Draft, `F` Flagged, `R`
//! Answered, `S` Seen, `T` Deleted, `P` the `$Forwarded` keyword, `a`-`z`
//! the keywords listed in `dovecot-keywords`); UIDs and UIDVALIDITY from
//! `dovecot-uidlist` when present. Unreadable files and malformed uidlist
//! lines are reported and skipped; nothing here panics on bad input.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use mailroom_core::mailbox::DEFAULT_MAILBOXES;
use mailroom_core::{InternalDate, MailboxName, Result, SpecialUse};

use crate::account::Account;
use crate::rebuild::{HintHeader, HintRecord, build_imported};
use crate::store::StoreInner;

/// The largest `dovecot-uidlist` or `dovecot-keywords` read.
const MAX_LIST_FILE: u64 = 64 << 20;
/// The most messages imported per folder.
const MAX_MESSAGES: usize = 10_000_000;
/// The most folders imported.
const MAX_FOLDERS: usize = 10_000;

/// Imports the user's Maildir, if any, into `a` (not saved by this function).
pub(crate) fn import_account(
    store: &StoreInner,
    user: &str,
    location: &str,
    a: &mut Account,
    _udir: &Path,
) -> Result<()> {
    if user.is_empty() || user.contains(['/', '\0']) || user.starts_with('.') {
        tracing::warn!("user name unusable in a Maildir path; import skipped");
        return Ok(());
    }
    let root = PathBuf::from(location.replace("%u", user));
    if !root.is_dir() {
        return Ok(());
    }
    let mut folders: Vec<(MailboxName, PathBuf)> = Vec::new();
    folders.push((MailboxName::inbox(), root.clone()));
    if let Ok(rd) = fs::read_dir(&root) {
        for e in rd.flatten() {
            if folders.len() >= MAX_FOLDERS {
                tracing::warn!(maildir = %root.display(), "too many folders; the rest are skipped");
                break;
            }
            let Some(fname) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(rest) = fname.strip_prefix('.') else {
                continue;
            };
            if rest.is_empty() || rest == "." || !e.path().is_dir() {
                continue;
            }
            let decoded: Option<Vec<String>> =
                rest.split('.').map(mailroom_core::utf7::decode).collect();
            match decoded
                .map(|parts| parts.join("/"))
                .and_then(|n| MailboxName::new(&n).ok())
            {
                Some(name) if !name.is_inbox() => folders.push((name, e.path())),
                _ => tracing::warn!(folder = %fname, "Maildir folder name unusable; skipped"),
            }
        }
    }
    for (name, path) in folders {
        if a.mailboxes.contains_key(&name) {
            continue;
        }
        let special_use = DEFAULT_MAILBOXES
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .and_then(|(_, su)| *su);
        import_folder(store, user, a, &name, special_use, &path)?;
        a.subscriptions.insert(name);
    }
    Ok(())
}

/// One parsed `dovecot-uidlist`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UidList {
    pub(crate) uid_validity: Option<u32>,
    pub(crate) next_uid: Option<u32>,
    /// base file name → UID
    pub(crate) uids: HashMap<String, u32>,
    pub(crate) bad_lines: u32,
}

/// Parses a `dovecot-uidlist` (versions 1 and 3).
pub(crate) fn parse_uidlist(text: &str) -> UidList {
    let mut out = UidList::default();
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return out;
    };
    let mut head = first.split_ascii_whitespace();
    let version = head.next().unwrap_or("");
    match version {
        "1" => {
            out.uid_validity = head.next().and_then(|v| v.parse().ok());
            out.next_uid = head.next().and_then(|v| v.parse().ok());
        }
        "3" => {
            for t in head {
                if let Some(v) = t.strip_prefix('V') {
                    out.uid_validity = v.parse().ok();
                } else if let Some(v) = t.strip_prefix('N') {
                    out.next_uid = v.parse().ok();
                }
            }
        }
        _ => {
            out.bad_lines += 1;
            return out;
        }
    }
    let mut used = std::collections::HashSet::new();
    for line in lines {
        if out.uids.len() >= MAX_MESSAGES {
            break;
        }
        let parsed = if version == "3" {
            line.split_once(' ').and_then(|(uid, rest)| {
                let name = rest.split_once(':').map(|(_, n)| n)?;
                Some((uid, name))
            })
        } else {
            line.split_once(' ')
        };
        match parsed.and_then(|(u, n)| Some((u.parse::<u32>().ok().filter(|u| *u > 0)?, n.trim())))
        {
            Some((uid, name)) if !name.is_empty() && used.insert(uid) => {
                let base = name.split(':').next().unwrap_or(name).to_owned();
                out.uids.entry(base).or_insert(uid);
            }
            _ => out.bad_lines += 1,
        }
    }
    out
}

/// Parses `dovecot-keywords` (`<index> <keyword>` per line).
pub(crate) fn parse_keywords(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let (i, k) = l.split_once(' ')?;
            let k = mailroom_core::Flag::parse(k.trim()).ok()?;
            match k {
                mailroom_core::Flag::Keyword(k) => Some((i.parse().ok()?, k)),
                _ => None,
            }
        })
        .filter(|(i, _)| *i < 26)
        .collect()
}

/// Flags from the part of a Maildir file name after `:2,`.
pub(crate) fn parse_flags(info: &str, keywords: &HashMap<u32, String>) -> (u8, Vec<String>) {
    let mut bits = 0u8;
    let mut kws = Vec::new();
    for c in info.chars() {
        match c {
            'D' => bits |= mailroom_core::Flags::DRAFT,
            'F' => bits |= mailroom_core::Flags::FLAGGED,
            'R' => bits |= mailroom_core::Flags::ANSWERED,
            'S' => bits |= mailroom_core::Flags::SEEN,
            'T' => bits |= mailroom_core::Flags::DELETED,
            'P' => kws.push("$Forwarded".to_owned()),
            'a'..='z' => {
                if let Some(k) = keywords.get(&(c as u32 - 'a' as u32)) {
                    kws.push(k.clone());
                }
            }
            _ => {}
        }
    }
    kws.sort();
    kws.dedup();
    (bits, kws)
}

fn read_small(path: &Path) -> Option<String> {
    let f = fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(MAX_LIST_FILE).read_to_string(&mut s).ok()?;
    Some(s)
}

fn import_folder(
    store: &StoreInner,
    user: &str,
    a: &mut Account,
    name: &MailboxName,
    special_use: Option<SpecialUse>,
    path: &Path,
) -> Result<()> {
    let uidlist = match read_small(&path.join("dovecot-uidlist")) {
        Some(t) => parse_uidlist(&t),
        None => UidList::default(),
    };
    let keywords = read_small(&path.join("dovecot-keywords"))
        .map(|t| parse_keywords(&t))
        .unwrap_or_default();
    let mut skipped = uidlist.bad_lines;
    if uidlist.bad_lines > 0 {
        tracing::warn!(folder = %path.display(), lines = uidlist.bad_lines, "malformed dovecot-uidlist lines skipped");
    }
    // (base name, path, flags info, in new/)
    let mut files: Vec<(String, PathBuf, String, bool)> = Vec::new();
    for (sub, is_new) in [("cur", false), ("new", true)] {
        let Ok(rd) = fs::read_dir(path.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            if files.len() >= MAX_MESSAGES {
                break;
            }
            let Some(fname) = e.file_name().to_str().map(str::to_owned) else {
                skipped += 1;
                continue;
            };
            if fname.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let (base, info) = match fname.split_once(":2,") {
                Some((b, i)) => (b.to_owned(), i.to_owned()),
                None => (
                    fname.split(':').next().unwrap_or(&fname).to_owned(),
                    String::new(),
                ),
            };
            files.push((base, e.path(), info, is_new));
        }
    }
    let uv = match uidlist.uid_validity.filter(|v| *v > 0) {
        Some(v) => {
            a.last_uid_validity = a.last_uid_validity.max(v);
            v
        }
        None => a.next_uid_validity(),
    };
    let (_, dir) = store.import_dir(a, user, name, special_use)?;
    // UIDs: the uidlist's, then new ones in name order (Maildir names start
    // with the delivery time)
    let mut next = uidlist.next_uid.unwrap_or(1).max(1);
    for uid in uidlist.uids.values() {
        next = next.max(uid.saturating_add(1));
    }
    files.sort_by(|x, y| x.0.cmp(&y.0));
    let mut records: BTreeMap<u32, HintRecord> = BTreeMap::new();
    let mut lowest_new: Option<u32> = None;
    for (base, src, info, is_new) in files {
        let uid = match uidlist.uids.get(&base) {
            Some(u) if !records.contains_key(u) => *u,
            _ => {
                let u = next;
                next = next.saturating_add(1);
                u
            }
        };
        if uid == u32::MAX {
            skipped += 1;
            continue;
        }
        let mtime = fs::metadata(&src)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        if let Err(e) = fs::copy(&src, crate::mailbox::msg_path(&dir, uid)) {
            tracing::warn!(file = %src.display(), error = %e, "Maildir message unreadable; skipped");
            skipped += 1;
            continue;
        }
        let (system_flags, keywords) = parse_flags(&info, &keywords);
        if is_new {
            lowest_new = Some(lowest_new.map_or(uid, |l| l.min(uid)));
        }
        records.insert(
            uid,
            HintRecord {
                expunged: false,
                system_flags,
                keywords,
                internal_date: mtime.map(|t| InternalDate {
                    timestamp: t,
                    offset_minutes: 0,
                }),
                modseq: None,
                guid: None,
                save_date: mtime,
            },
        );
    }
    let header = HintHeader {
        uid_validity: uv,
        uid_next: next,
        highest_modseq: 1,
        recent_uid: Some(lowest_new.unwrap_or(next)),
        expunge_horizon: 0,
        mailbox_id: None,
    };
    let report = build_imported(&dir, header, records, skipped, store.ctx())?;
    tracing::info!(user, mailbox = %name, ?report, "Maildir folder imported");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mutf7() {
        assert_eq!(
            mailroom_core::utf7::decode("Entw&APw-rfe").unwrap(),
            "Entwürfe"
        );
        assert_eq!(mailroom_core::utf7::decode("a&-b").unwrap(), "a&b");
        assert_eq!(mailroom_core::utf7::decode("plain").unwrap(), "plain");
        assert!(mailroom_core::utf7::decode("bad&AP").is_none());
        assert!(mailroom_core::utf7::decode("bad&*-").is_none());
    }

    #[test]
    fn uidlist_v3_and_v1() {
        let l = parse_uidlist(
            "3 V1234 N10 Gabc\n1 :111.M1.host\n5 W200 S190 :555.M2.host:2,S\ngarbage\n7 :\n",
        );
        assert_eq!(l.uid_validity, Some(1234));
        assert_eq!(l.next_uid, Some(10));
        assert_eq!(l.uids.get("111.M1.host"), Some(&1));
        assert_eq!(l.uids.get("555.M2.host"), Some(&5));
        assert_eq!(l.bad_lines, 2);
        let l = parse_uidlist("1 99 4\n3 abc\n");
        assert_eq!((l.uid_validity, l.next_uid), (Some(99), Some(4)));
        assert_eq!(l.uids.get("abc"), Some(&3));
        assert_eq!(parse_uidlist("zz").bad_lines, 1);
    }

    #[test]
    fn flags_from_names() {
        let kw: HashMap<u32, String> = [(0, "$Label1".to_owned())].into_iter().collect();
        let (bits, k) = parse_flags("FRSTaP", &kw);
        assert_eq!(bits, 2 | 1 | 4 | 8);
        assert_eq!(k, vec!["$Forwarded".to_owned(), "$Label1".to_owned()]);
    }

    proptest! {
        #[test]
        fn garbage_uidlists_never_panic(s in "\\PC{0,200}") {
            let _ = parse_uidlist(&s);
            let _ = parse_keywords(&s);
            let _ = mailroom_core::utf7::decode(&s);
        }
    }
}
