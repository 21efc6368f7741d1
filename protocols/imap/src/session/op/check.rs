//! CHECK (RFC 3501 §6.4.1): every change is durable when it is
//! acknowledged, so there is nothing to flush; updates follow as for NOOP.

use super::super::Reply;

/// CHECK.
pub(crate) fn handle(tag: &str) -> Reply {
    super::ok(tag, "CHECK completed")
}
