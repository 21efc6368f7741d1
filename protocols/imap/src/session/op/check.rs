//! CHECK (RFC 3501 §6.4.1): every change is durable when it is
//! acknowledged, so there is nothing to flush; updates follow as for NOOP.

use super::super::{Reply, State};

/// CHECK.
pub(crate) async fn handle(state: &State, tag: &str) -> Reply {
    super::poll_selected(state).await;
    super::ok(tag, "CHECK completed")
}
