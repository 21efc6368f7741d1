//! MOVE and UID MOVE (RFC 6851): COPYUID in an untagged OK, then the
//! EXPUNGEs (or VANISHED with QRESYNC), then the tagged OK.

use mailroom_core::SeqSet;

use super::super::{Reply, State};
use super::copy::{copy_error, copyuid, targets};
use crate::response::{StatusKind, StatusResponse};

/// MOVE / UID MOVE.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    mailbox: &str,
) -> Reply {
    let enabled = state.enabled;
    let Some(sel) = state.selected.as_mut() else {
        return super::bad(tag, "no mailbox selected");
    };
    let uids = match targets(sel, tag, uid, set) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if uids.is_empty() {
        return super::ok(tag, "MOVE completed (no messages)");
    }
    match sel.handle.move_to(&uids, mailbox).await {
        Ok(result) => {
            let mut out = Vec::new();
            if let Some(code) = copyuid(&result) {
                out.push(StatusResponse::untagged(
                    StatusKind::Ok,
                    Some(code),
                    "moved",
                ));
            }
            let moved: Vec<_> = result.mapping.iter().map(|(s, _)| *s).collect();
            out.extend(sel.expunged_here(&moved, enabled));
            out.push(StatusResponse::ok(tag, None, "MOVE completed"));
            Reply::new(out)
        }
        Err(e) => copy_error(tag, &e),
    }
}
