//! COMPRESS (RFC 4978): answers the command; the driver then wraps the
//! connection (see [`crate::extension::compress`]).

use crate::extension::compress;
use crate::response::{Code, StatusResponse};

use super::super::{Action, Reply, State};

/// COMPRESS `mechanism` (upper-cased).
pub(crate) fn handle(state: &mut State, tag: &str, mechanism: &str) -> Reply {
    if state.compressed {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::CompressionActive),
            "DEFLATE is already active",
        ));
    }
    if mechanism != compress::DEFLATE {
        return super::bad(tag, "unknown compression mechanism (DEFLATE is offered)");
    }
    state.compressed = true;
    super::reply(StatusResponse::ok(tag, None, "DEFLATE active")).with_action(Action::Compress)
}
