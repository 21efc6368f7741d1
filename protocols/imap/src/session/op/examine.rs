//! EXAMINE (RFC 3501 §6.3.2): SELECT read-only; see [`super::select`].

use super::super::{Reply, State};
use crate::command::SelectParams;

/// EXAMINE.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    params: &SelectParams,
) -> Reply {
    super::select::handle(state, tag, mailbox, params, true).await
}
