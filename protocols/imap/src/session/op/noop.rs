//! NOOP (RFC 3501 §6.1.2): nothing, but pending updates are reported after
//! it (see `dispatch` in the `op` module).

use super::super::Reply;

/// NOOP.
pub(crate) fn handle(tag: &str) -> Reply {
    super::ok(tag, "NOOP completed")
}
