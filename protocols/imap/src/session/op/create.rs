//! CREATE (RFC 3501 §6.3.3) with the USE parameter of RFC 6154
//! (CREATE-SPECIAL-USE). Missing parents are created too.

use mailroom_core::SpecialUse;

use super::super::{Reply, State};
use crate::response::{Code, StatusResponse};

/// CREATE.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    special_use: &[SpecialUse],
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    if special_use.len() > 1 {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::Cannot),
            "only one special use per mailbox is supported",
        ));
    }
    match access.create(mailbox, special_use.first().copied()).await {
        Ok(()) => super::ok(tag, "CREATE completed"),
        Err(e) => super::fail(tag, &e),
    }
}
