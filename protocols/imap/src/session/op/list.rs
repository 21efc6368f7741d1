//! LIST (RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258), LIST-STATUS
//! (RFC 5819), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes.
//! LSUB and XLIST ([`super::lsub`], [`super::xlist`]) share `entries`.

use std::collections::{BTreeMap, HashSet};

use mailroom_core::access::{ListEntry, MailAccess};
use mailroom_core::mailbox::{DELIMITER, list_matches};
use mailroom_core::{MailboxName, Result, SpecialUse};

use super::super::{Reply, State};
use super::status::status_data;
use crate::command::ListArgs;
use crate::response::{Data, ListKind, Response, StatusResponse};

/// Which attribute vocabulary to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// RFC 3501 LIST: `\Noselect` for placeholders.
    Classic,
    /// RFC 5258 extended LIST: `\NonExistent`.
    Extended,
    /// LSUB.
    Lsub,
    /// XLIST: Gmail's attribute names, `\Inbox`.
    Xlist,
}

/// The LIST rows matching any of the patterns, sorted and without duplicates.
pub(crate) async fn entries(
    access: &MailAccess,
    reference: &str,
    patterns: &[String],
    subscribed_only: bool,
) -> Result<Vec<ListEntry>> {
    let mut rows: BTreeMap<String, ListEntry> = BTreeMap::new();
    for pattern in patterns {
        let found = if subscribed_only {
            access.lsub(reference, pattern).await?
        } else {
            access.list(reference, pattern).await?
        };
        for e in found {
            rows.entry(e.name.clone()).or_insert(e);
        }
    }
    Ok(rows.into_values().collect())
}

/// The attributes of one row.
pub(crate) fn attributes(e: &ListEntry, flavour: Flavour, with_subscribed: bool) -> Vec<String> {
    let mut attrs = Vec::new();
    if e.non_existent {
        attrs.push(
            match flavour {
                Flavour::Extended => "\\NonExistent",
                _ => "\\Noselect",
            }
            .to_owned(),
        );
    }
    if flavour != Flavour::Lsub {
        attrs.push(
            if e.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }
            .to_owned(),
        );
    }
    if flavour == Flavour::Xlist {
        if e.name == "INBOX" {
            attrs.push("\\Inbox".to_owned());
        }
        if let Some(u) = e.special_use {
            attrs.push(
                match u {
                    SpecialUse::All => "\\AllMail",
                    SpecialUse::Junk => "\\Spam",
                    SpecialUse::Flagged => "\\Starred",
                    other => other.as_str(),
                }
                .to_owned(),
            );
        }
    } else if let Some(u) = e.special_use {
        attrs.push(u.as_str().to_owned());
    }
    if with_subscribed && e.subscribed {
        attrs.push("\\Subscribed".to_owned());
    }
    attrs
}

/// `* LIST (\Noselect) "/" ""`: the answer to an empty pattern.
pub(crate) fn delimiter_row(kind: ListKind) -> Response {
    Response::Data(Data::List {
        kind,
        attributes: vec!["\\Noselect".to_owned()],
        delimiter: Some(DELIMITER),
        name: String::new(),
        child_info: Vec::new(),
    })
}

/// LIST.
pub(crate) async fn handle(state: &mut State, tag: &str, args: &ListArgs) -> Reply {
    let Some(access) = state.access.clone() else {
        return super::bad(tag, "log in first");
    };
    let mut subscribed_only = false;
    let mut special_only = false;
    let mut recursive = false;
    for opt in &args.selection {
        match opt.to_ascii_uppercase().as_str() {
            "SUBSCRIBED" => subscribed_only = true,
            "SPECIAL-USE" => special_only = true,
            "RECURSIVEMATCH" => recursive = true,
            "REMOTE" => {}
            _ => return super::bad(tag, "unknown LIST selection option"),
        }
    }
    // RFC 5258 §3.1: never alone (or with REMOTE only); RFC 6154 §6: not
    // with SPECIAL-USE either, so SUBSCRIBED is the one base option it works with.
    if recursive && (!subscribed_only || special_only) {
        return super::bad(
            tag,
            "RECURSIVEMATCH works with the SUBSCRIBED selection option only",
        );
    }
    let extended =
        !args.selection.is_empty() || args.patterns.len() > 1 || args.returns != Default::default();
    // IMAP4rev2 has `\NonExistent` in its base LIST (RFC 9051 §6.3.9).
    let flavour = if extended || state.enabled.imap4rev2 {
        Flavour::Extended
    } else {
        Flavour::Classic
    };
    if args.returns.status.is_some() {
        state.enabled.condstore |= args
            .returns
            .status
            .as_ref()
            .is_some_and(|s| s.contains(&crate::command::StatusItem::HighestModSeq));
    }
    let mut out = Vec::new();
    if args.patterns.len() == 1 && args.patterns[0].is_empty() {
        out.push(delimiter_row(ListKind::List));
        out.push(StatusResponse::ok(tag, None, "LIST completed"));
        return Reply::new(out);
    }
    let mut rows = match entries(&access, &args.reference, &args.patterns, subscribed_only).await {
        Ok(r) => r,
        Err(e) => return super::fail(tag, &e),
    };
    if special_only {
        rows.retain(|e| e.special_use.is_some());
    }
    let mut with_child_info = HashSet::new();
    if recursive {
        match recursive_match(&access, args, &mut rows).await {
            Ok(parents) => with_child_info = parents,
            Err(e) => return super::fail(tag, &e),
        }
    }
    let with_subscribed = subscribed_only || args.returns.subscribed;
    for e in rows {
        let child_info = if with_child_info.contains(&e.name) {
            vec!["SUBSCRIBED".to_owned()]
        } else {
            Vec::new()
        };
        out.push(Response::Data(Data::List {
            kind: ListKind::List,
            attributes: attributes(&e, flavour, with_subscribed),
            delimiter: Some(DELIMITER),
            name: e.name.clone(),
            child_info,
        }));
        if let Some(items) = &args.returns.status
            && !e.non_existent
        {
            // A mailbox the user may list but not read simply has no STATUS row.
            if let Ok(status) = access.status(&e.name).await {
                out.push(status_data(&e.name, &status, items, state.append_limit));
            }
        }
    }
    out.push(StatusResponse::ok(tag, None, "LIST completed"));
    Reply::new(out)
}

/// RECURSIVEMATCH (RFC 5258 §3.1, §3.5). Every listed mailbox with a
/// subscribed descendant carries `("CHILDINFO" ("SUBSCRIBED"))`; the names of
/// those parents are returned. A parent that is not subscribed itself is
/// added to `rows` when it matches a pattern and a subscribed descendant of
/// it does not (with `%`, say): otherwise the descendant is listed on its
/// own and the client needs no hint. Dovecot and Cyrus draw the same line.
async fn recursive_match(
    access: &MailAccess,
    args: &ListArgs,
    rows: &mut Vec<ListEntry>,
) -> Result<HashSet<String>> {
    let meeting = entries(access, "", &["*".to_owned()], true).await?;
    let patterns: Vec<String> = args
        .patterns
        .iter()
        .map(|p| format!("{}{p}", args.reference))
        .collect();
    let matches = |name: &str| patterns.iter().any(|p| list_matches(p, name));
    let mut parents: HashSet<String> = HashSet::new();
    let mut hidden_parents: HashSet<String> = HashSet::new();
    for e in &meeting {
        let Ok(name) = MailboxName::new(&e.name) else {
            continue;
        };
        let hidden = !matches(&e.name);
        for a in name.ancestors() {
            if hidden {
                hidden_parents.insert(a.as_str().to_owned());
            }
            parents.insert(a.as_str().to_owned());
        }
    }
    let listed: HashSet<String> = rows.iter().map(|e| e.name.clone()).collect();
    let missing: Vec<&String> = hidden_parents
        .iter()
        .filter(|a| !listed.contains(*a) && matches(a))
        .collect();
    if !missing.is_empty() {
        // What the store knows of them: whether they exist, their special use.
        let known: BTreeMap<String, ListEntry> =
            entries(access, &args.reference, &args.patterns, false)
                .await?
                .into_iter()
                .map(|e| (e.name.clone(), e))
                .collect();
        for name in missing {
            rows.push(known.get(name).cloned().unwrap_or_else(|| ListEntry {
                name: name.clone(),
                special_use: None,
                non_existent: true,
                has_children: true,
                subscribed: false,
            }));
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(parents)
}
