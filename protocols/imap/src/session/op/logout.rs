//! LOGOUT (RFC 3501 §6.1.3).

use super::super::{Action, Reply};
use crate::response::{StatusKind, StatusResponse};

/// LOGOUT: `* BYE`, the tagged OK, then the connection closes.
pub(crate) fn handle(tag: &str) -> Reply {
    Reply::new(vec![
        StatusResponse::untagged(StatusKind::Bye, None, "logging out"),
        StatusResponse::ok(tag, None, "LOGOUT completed"),
    ])
    .with_action(Action::Close)
}
