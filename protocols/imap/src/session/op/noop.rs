//! NOOP (RFC 3501 §6.1.2): nothing, but pending updates are reported after
//! it (see `dispatch` in the `op` module). The store is asked first for
//! changes its watch may not have seen yet (`Mailbox::poll_changes`).

use super::super::{Reply, State};

/// NOOP.
pub(crate) async fn handle(state: &State, tag: &str) -> Reply {
    super::poll_selected(state).await;
    super::ok(tag, "NOOP completed")
}
