//! SUBSCRIBE (RFC 3501 §6.3.6); UNSUBSCRIBE is in [`super::unsubscribe`].

use super::super::{Reply, State};

/// SUBSCRIBE (`subscribe` true) or UNSUBSCRIBE.
pub(crate) async fn set(state: &mut State, tag: &str, mailbox: &str, subscribe: bool) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.set_subscribed(mailbox, subscribe).await {
        Ok(()) if subscribe => super::ok(tag, "SUBSCRIBE completed"),
        Ok(()) => super::ok(tag, "UNSUBSCRIBE completed"),
        Err(e) => super::fail(tag, &e),
    }
}

/// SUBSCRIBE.
pub(crate) async fn handle(state: &mut State, tag: &str, mailbox: &str) -> Reply {
    set(state, tag, mailbox, true).await
}
