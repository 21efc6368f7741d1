//! COPY and UID COPY (RFC 3501 §6.4.7) with COPYUID (RFC 4315) and
//! `[TRYCREATE]`.

use mailroom_core::{CopyResult, Error, SeqSet, Uid};

use super::super::{Reply, SelectedMailbox, State};
use crate::response::{Code, StatusResponse};

/// The UIDs a COPY/MOVE acts on, or the BAD reply for an invalid set.
pub(crate) fn targets(
    sel: &SelectedMailbox,
    tag: &str,
    uid: bool,
    set: &SeqSet,
) -> Result<Vec<Uid>, Box<Reply>> {
    if !uid && sel.seq_set_out_of_range(set) {
        return Err(Box::new(super::bad(tag, "invalid message sequence number")));
    }
    Ok(sel
        .resolve(set, uid)
        .into_iter()
        .map(|(_, u)| u)
        .filter(|u| !sel.is_pending_expunge(*u))
        .collect())
}

/// `[COPYUID validity src dst]` for a copy result, if anything was copied.
pub(crate) fn copyuid(result: &CopyResult) -> Option<Code> {
    let src = SeqSet::from_numbers(result.mapping.iter().map(|(s, _)| s.0))?;
    let dst = SeqSet::from_numbers(result.mapping.iter().map(|(_, d)| d.0))?;
    Some(Code::CopyUid(result.uid_validity, src, dst))
}

/// The NO for a failed COPY/MOVE (`[TRYCREATE]` for a missing destination).
pub(crate) fn copy_error(tag: &str, e: &Error) -> Reply {
    match e {
        Error::NoSuchMailbox(_) => super::reply(StatusResponse::no(
            tag,
            Some(Code::TryCreate),
            "destination mailbox does not exist",
        )),
        e => super::fail(tag, e),
    }
}

/// COPY / UID COPY.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    mailbox: &str,
) -> Reply {
    let Some(sel) = state.selected.as_mut() else {
        return super::bad(tag, "no mailbox selected");
    };
    let uids = match targets(sel, tag, uid, set) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if uids.is_empty() {
        return super::ok(tag, "COPY completed (no messages)");
    }
    match sel.handle.copy_to(&uids, mailbox).await {
        Ok(result) => super::reply(StatusResponse::ok(tag, copyuid(&result), "COPY completed")),
        Err(e) => copy_error(tag, &e),
    }
}
