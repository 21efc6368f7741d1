//! LIST (RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258), LIST-STATUS
//! (RFC 5819), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes.
//! LSUB and XLIST ([`super::lsub`], [`super::xlist`]) share `entries`.

use std::collections::BTreeMap;

use mailroom_core::access::{ListEntry, MailAccess};
use mailroom_core::mailbox::DELIMITER;
use mailroom_core::{Result, SpecialUse};

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
    if recursive && !subscribed_only {
        return super::bad(tag, "RECURSIVEMATCH needs another selection option");
    }
    let extended =
        !args.selection.is_empty() || args.patterns.len() > 1 || args.returns != Default::default();
    let flavour = if extended {
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
    let rows = match entries(&access, &args.reference, &args.patterns, subscribed_only).await {
        Ok(r) => r,
        Err(e) => return super::fail(tag, &e),
    };
    let with_subscribed = subscribed_only || args.returns.subscribed;
    for e in rows {
        if special_only && e.special_use.is_none() {
            continue;
        }
        out.push(Response::Data(Data::List {
            kind: ListKind::List,
            attributes: attributes(&e, flavour, with_subscribed),
            delimiter: Some(DELIMITER),
            name: e.name.clone(),
        }));
        if let Some(items) = &args.returns.status
            && !e.non_existent
        {
            // A mailbox the user may list but not read simply has no STATUS row.
            if let Ok(status) = access.status(&e.name).await {
                out.push(status_data(&e.name, &status, items));
            }
        }
    }
    out.push(StatusResponse::ok(tag, None, "LIST completed"));
    Reply::new(out)
}
