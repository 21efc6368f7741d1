//! IDLE (RFC 2177): the session answers `+ idling` and hands the driver an
//! [`IdleHandle`] that pushes updates as soon as
//! the store's watch fires, until the client sends `DONE`.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::super::{Action, IdleHandle, Reply, State};
use crate::response::Response;

/// IDLE. The store is first asked for changes its watch may not have seen
/// (`Mailbox::poll_changes`), so what was acknowledged anywhere before the
/// IDLE is pushed at once.
pub(crate) async fn handle(state: &mut State, shared: &Arc<Mutex<State>>, tag: &str) -> Reply {
    super::poll_selected(state).await;
    Reply::new(vec![Response::Continue("idling".to_owned())]).with_action(Action::Idle(
        IdleHandle::new(tag.to_owned(), shared.clone()),
    ))
}
