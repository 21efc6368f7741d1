//! REPLACE (RFC 8508): `REPLACE seq mailbox message` and `UID REPLACE uid
//! mailbox message` append a new version of a message of the selected
//! mailbox (a draft being edited, say) to `mailbox` (the same one or
//! another) and then expunge the old one, in one command.
//!
//! Order and failure (RFC 8508 §3.3, §3.4): the rights to remove the old
//! message (`t` and `e`, and a mailbox selected read-write) are checked
//! first; then the new message is appended exactly as APPEND would
//! (CATENATE allowed, `[TRYCREATE]`, `[TOOBIG]`, quota); only when that
//! succeeded is the old message flagged `\Deleted` and expunged (that UID
//! alone). A failed append leaves the old message untouched. The answer
//! is `* OK [APPENDUID v uid]`, the `EXPUNGE` (or `VANISHED` under
//! QRESYNC) of the old message, then the tagged `OK`. A sequence number
//! beyond the mailbox is `BAD`; a UID that is not there is `NO`.

use mailroom_core::{Error, Flag, Flags, Right, StoreOp, Uid};

use super::multiappend;
use crate::command::AppendMessage;
use crate::response::{Code, StatusKind, StatusResponse};
use crate::session::op::{bad, fail, reply};
use crate::session::{Context, Reply, State};

/// The capability.
pub(crate) const CAPABILITY: &str = "REPLACE";

/// REPLACE / UID REPLACE.
pub(crate) async fn replace(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    uid: bool,
    target: u32,
    mailbox: &str,
    message: AppendMessage,
) -> Reply {
    let enabled = state.enabled;
    let (Some(access), Some(sel)) = (&state.access, state.selected.as_mut()) else {
        return bad(tag, "no mailbox selected");
    };
    let old = if uid {
        let u = Uid(target);
        if sel.seq_of(u).is_none() || sel.is_pending_expunge(u) {
            return reply(StatusResponse::no(
                tag,
                Some(Code::NonExistent),
                "no message with that UID",
            ));
        }
        u
    } else {
        match usize::try_from(target)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| sel.uids().get(i))
        {
            Some(u) => *u,
            None => return bad(tag, "invalid message sequence number"),
        }
    };
    if sel.read_only {
        return fail(tag, &Error::ReadOnly);
    }
    let rights = sel.handle.rights();
    for right in [Right::DeleteMessage, Right::Expunge] {
        if !rights.contains(right) {
            return fail(tag, &Error::PermissionDenied(right));
        }
    }
    let limit = ctx.config.limits.max_literal;
    let appended = match multiappend::prepare(access, Some(&sel.name), vec![message], limit).await {
        Ok(new) => multiappend::append(access, mailbox, new).await,
        Err(e) => Err(e),
    };
    let appended = match appended {
        Ok(a) => a,
        Err(e) => return reply(e.response(tag)),
    };
    let mut out = vec![StatusResponse::untagged(
        StatusKind::Ok,
        multiappend::append_uid(&appended),
        "Replacement Message ready",
    )];
    let deleted: Flags = [Flag::Deleted].into_iter().collect();
    let removed = match sel.handle.store(&[old], &StoreOp::Add(deleted), None).await {
        Ok(_) => sel.handle.expunge(Some(&[old])).await,
        Err(e) => Err(e),
    };
    match removed {
        Ok(gone) => {
            out.extend(sel.expunged_here(&gone, enabled));
            out.push(StatusResponse::ok(tag, None, "REPLACE completed"));
        }
        Err(e) => {
            tracing::warn!(error = %e, "REPLACE appended the new message but could not expunge the old one");
            out.push(crate::session::error_response(tag, &e));
        }
    }
    Reply::new(out)
}
