//! APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315 UIDPLUS) and
//! `[TRYCREATE]` when the mailbox does not exist.

use bytes::Bytes;
use mailroom_core::{Error, Flag, InternalDate, NewMessage};

use super::super::{Context, Reply, State};
use crate::response::{Code, StatusResponse};

/// APPEND.
pub(crate) async fn handle(
    state: &mut State,
    _ctx: &Context,
    tag: &str,
    mailbox: &str,
    flags: Vec<Flag>,
    date: Option<InternalDate>,
    message: Bytes,
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    if message.is_empty() {
        return super::reply(StatusResponse::no(tag, Some(Code::Cannot), "empty message"));
    }
    let new = NewMessage {
        flags: flags.into_iter().collect(),
        internal_date: date,
        content: message,
    };
    match access.append(mailbox, new).await {
        Ok(a) => super::reply(StatusResponse::ok(
            tag,
            Some(Code::AppendUid(a.uid_validity, a.uid)),
            "APPEND completed",
        )),
        Err(Error::NoSuchMailbox(_)) => super::reply(StatusResponse::no(
            tag,
            Some(Code::TryCreate),
            "no such mailbox",
        )),
        Err(e) => super::fail(tag, &e),
    }
}
