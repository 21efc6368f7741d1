//! UNSELECT (RFC 3691): leave the selected mailbox without expunging.

use super::super::{Reply, State};

/// UNSELECT.
pub(crate) fn handle(state: &mut State, tag: &str) -> Reply {
    state.selected = None;
    super::ok(tag, "UNSELECT completed")
}
