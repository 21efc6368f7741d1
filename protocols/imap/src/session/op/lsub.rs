//! LSUB (RFC 3501 §6.3.9): subscribed mailboxes matching a pattern.

use mailroom_core::mailbox::DELIMITER;

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
    let rows = match entries(access, reference, &[pattern.to_owned()], true).await {
        Ok(r) => r,
        Err(e) => return super::fail(tag, &e),
    };
    let mut out: Vec<Response> = rows
        .iter()
        .map(|e| {
            Response::Data(Data::List {
                kind: ListKind::Lsub,
                attributes: attributes(e, Flavour::Lsub, false),
                delimiter: Some(DELIMITER),
                name: e.name.clone(),
            })
        })
        .collect();
    out.push(StatusResponse::ok(tag, None, "LSUB completed"));
    Reply::new(out)
}
