//! EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (RFC 4315).

use mailroom_core::SeqSet;

use super::super::{Reply, State};
use crate::response::StatusResponse;

/// EXPUNGE (`uids` None) or UID EXPUNGE.
pub(crate) async fn handle(state: &mut State, tag: &str, uids: Option<&SeqSet>) -> Reply {
    let enabled = state.enabled;
    let Some(sel) = state.selected.as_mut() else {
        return super::bad(tag, "no mailbox selected");
    };
    let only: Option<Vec<_>> =
        uids.map(|set| sel.resolve(set, true).into_iter().map(|(_, u)| u).collect());
    if only.as_ref().is_some_and(Vec::is_empty) {
        return super::ok(tag, "UID EXPUNGE completed (nothing to do)");
    }
    match sel.handle.expunge(only.as_deref()).await {
        Ok(gone) => {
            let mut out = sel.expunged_here(&gone, enabled);
            out.push(StatusResponse::ok(tag, None, "EXPUNGE completed"));
            Reply::new(out)
        }
        Err(e) => super::fail(tag, &e),
    }
}
