//! LSUB (RFC 3501 §6.3.9): subscribed mailboxes matching a pattern.

use mailroom_core::MailboxName;
use mailroom_core::access::ListEntry;
use mailroom_core::mailbox::{DELIMITER, list_matches};

use super::super::{Reply, State};
use super::list::{Flavour, attributes, delimiter_row, entries};
use crate::response::{Data, ListKind, Response, StatusResponse};

/// LSUB.
pub(crate) async fn handle(state: &mut State, tag: &str, reference: &str, pattern: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    if pattern.is_empty() {
        return Reply::new(vec![
            delimiter_row(ListKind::Lsub),
            StatusResponse::ok(tag, None, "LSUB completed"),
        ]);
    }
    let mut rows = match entries(access, reference, &[pattern.to_owned()], true).await {
        Ok(r) => r,
        Err(e) => return super::fail(tag, &e),
    };
    // RFC 3501 §6.3.9: with `%`, a parent of a subscribed mailbox that
    // matches the pattern is listed `\Noselect` even if not subscribed itself.
    if pattern.contains('%') {
        let all = match entries(access, reference, &["*".to_owned()], true).await {
            Ok(r) => r,
            Err(e) => return super::fail(tag, &e),
        };
        let full = format!("{reference}{pattern}");
        let mut extra = std::collections::BTreeSet::new();
        for e in &all {
            let Ok(name) = MailboxName::new(&e.name) else {
                continue;
            };
            for a in name.ancestors() {
                let a = a.as_str();
                if list_matches(&full, a) && !rows.iter().any(|r| r.name == a) {
                    extra.insert(a.to_owned());
                }
            }
        }
        rows.extend(extra.into_iter().map(|name| ListEntry {
            name,
            special_use: None,
            non_existent: true,
            has_children: true,
            subscribed: false,
        }));
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut out: Vec<Response> = rows
        .iter()
        .map(|e| {
            Response::Data(Data::List {
                kind: ListKind::Lsub,
                attributes: attributes(e, Flavour::Lsub, false),
                delimiter: Some(DELIMITER),
                name: e.name.clone(),
                child_info: Vec::new(),
            })
        })
        .collect();
    out.push(StatusResponse::ok(tag, None, "LSUB completed"));
    Reply::new(out)
}
