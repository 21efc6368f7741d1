//! CLOSE (RFC 3501 §6.4.2): silently expunge `\Deleted` messages (unless
//! read-only) and leave the selected state.

use super::super::{Reply, State};

/// CLOSE.
pub(crate) async fn handle(state: &mut State, tag: &str) -> Reply {
    if let Some(sel) = state.selected.take()
        && !sel.read_only
        && sel.handle.rights().contains(mailroom_core::Right::Expunge)
        && let Err(e) = sel.handle.expunge(None).await
    {
        tracing::warn!(error = %e, "expunge on CLOSE failed");
        return super::fail(tag, &e);
    }
    super::ok(tag, "CLOSE completed")
}
