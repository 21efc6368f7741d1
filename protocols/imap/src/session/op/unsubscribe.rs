//! UNSUBSCRIBE (RFC 3501 §6.3.7).

use super::super::{Reply, State};

/// UNSUBSCRIBE.
pub(crate) async fn handle(state: &mut State, tag: &str, mailbox: &str) -> Reply {
    super::subscribe::set(state, tag, mailbox, false).await
}
