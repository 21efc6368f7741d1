//! RENAME (RFC 3501 §6.3.5), children included; renaming INBOX moves its
//! messages to the new mailbox and leaves INBOX empty.

use super::super::{Reply, State};

/// RENAME.
pub(crate) async fn handle(state: &mut State, tag: &str, from: &str, to: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.rename(from, to).await {
        Ok(()) => super::ok(tag, "RENAME completed"),
        Err(e) => super::fail(tag, &e),
    }
}
