//! XLIST: Gmail's predecessor of SPECIAL-USE, still used by some clients.
//! LIST with `\Inbox`, `\AllMail`, `\Spam`, `\Starred`, ... attributes.

use mailroom_core::mailbox::DELIMITER;

use super::super::{Reply, State};
use super::list::{Flavour, attributes, delimiter_row, entries};
use crate::response::{Data, ListKind, Response, StatusResponse};

/// XLIST.
pub(crate) async fn handle(state: &mut State, tag: &str, reference: &str, pattern: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    if pattern.is_empty() {
        return Reply::new(vec![
            delimiter_row(ListKind::Xlist),
            StatusResponse::ok(tag, None, "XLIST completed"),
        ]);
    }
    let rows = match entries(access, reference, &[pattern.to_owned()], false).await {
        Ok(r) => r,
        Err(e) => return super::fail(tag, &e),
    };
    let mut out: Vec<Response> = rows
        .iter()
        .map(|e| {
            Response::Data(Data::List {
                kind: ListKind::Xlist,
                attributes: attributes(e, Flavour::Xlist, false),
                delimiter: Some(DELIMITER),
                name: e.name.clone(),
                child_info: Vec::new(),
            })
        })
        .collect();
    out.push(StatusResponse::ok(tag, None, "XLIST completed"));
    Reply::new(out)
}
