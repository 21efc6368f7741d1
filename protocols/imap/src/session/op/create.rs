//! CREATE (RFC 3501 §6.3.3) with the USE parameter of RFC 6154
//! (CREATE-SPECIAL-USE) and the `[MAILBOXID]` of OBJECTID (RFC 8474).
//! Missing parents are created too.

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
        // OBJECTID (RFC 8474 §4.1): the new mailbox's id in the OK.
        Ok(()) => match access.status(mailbox).await {
            Ok(status) => super::reply(StatusResponse::ok(
                tag,
                Some(Code::MailboxId(status.mailbox_id)),
                "CREATE completed",
            )),
            Err(_) => super::ok(tag, "CREATE completed"),
        },
        Err(e) => super::fail(tag, &e),
    }
}
