//! DELETE (RFC 3501 §6.3.4). INBOX and mailboxes with children cannot be
//! deleted (the rules live in `mailroom_core::access`).

use super::super::{Reply, State};

/// DELETE.
pub(crate) async fn handle(state: &mut State, tag: &str, mailbox: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.delete(mailbox).await {
        Ok(()) => {
            if state
                .selected
                .as_ref()
                .is_some_and(|s| same_mailbox(&s.name, mailbox))
            {
                // The selected mailbox is gone: leave it (RFC 3501 lets the server choose).
                state.selected = None;
            }
            super::ok(tag, "DELETE completed")
        }
        Err(e) => super::fail(tag, &e),
    }
}

fn same_mailbox(a: &str, b: &str) -> bool {
    match (
        mailroom_core::MailboxName::new(a),
        mailroom_core::MailboxName::new(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
