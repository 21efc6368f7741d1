//! APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315 UIDPLUS) and
//! `[TRYCREATE]` when the mailbox does not exist; several messages at once
//! (MULTIAPPEND) and CATENATE through [`crate::extension::multiappend`].

use crate::command::AppendMessage;
use crate::extension::multiappend;
use crate::response::StatusResponse;

use super::super::{Context, Reply, State};

/// APPEND of one or more messages.
pub(crate) async fn handle(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    mailbox: &str,
    messages: Vec<AppendMessage>,
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    let selected = state.selected.as_ref().map(|s| s.name.as_str());
    let limit = ctx.config.limits.max_literal;
    let result = match multiappend::prepare(access, selected, messages, limit).await {
        Ok(new) => multiappend::append(access, mailbox, new).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(appended) => super::reply(StatusResponse::ok(
            tag,
            multiappend::append_uid(&appended),
            "APPEND completed",
        )),
        Err(e) => super::reply(e.response(tag)),
    }
}
