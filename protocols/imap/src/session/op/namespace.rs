//! NAMESPACE (RFC 2342): the personal namespace with `/`, and the
//! other-users namespace through which shared mailboxes are reached.

use mailroom_core::access::OTHER_USERS_PREFIX;
use mailroom_core::mailbox::DELIMITER;

use super::super::Reply;
use crate::response::{Data, Response, StatusResponse};

/// NAMESPACE.
pub(crate) fn handle(tag: &str) -> Reply {
    Reply::new(vec![
        Response::Data(Data::Namespace {
            personal: vec![(String::new(), DELIMITER)],
            other: vec![(format!("{OTHER_USERS_PREFIX}{DELIMITER}"), DELIMITER)],
            shared: Vec::new(),
        }),
        StatusResponse::ok(tag, None, "NAMESPACE completed"),
    ])
}
