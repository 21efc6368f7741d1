//! STARTTLS (RFC 3501 §6.2.1). The session only says yes or no; the driver
//! throws away whatever the client pipelined after the command (the STARTTLS
//! command-injection defence of RFC 7817/CVE-2011-0411) and does the handshake.

use super::super::{Action, Context, Reply, State};
use crate::response::StatusResponse;

/// STARTTLS.
pub(crate) fn handle(state: &mut State, ctx: &Context, tag: &str) -> Reply {
    if state.tls {
        return super::bad(tag, "TLS is already active");
    }
    if !ctx.tls_available {
        return super::bad(tag, "STARTTLS is not available on this server");
    }
    state.tls = true;
    Reply::new(vec![StatusResponse::ok(
        tag,
        None,
        "begin TLS negotiation now",
    )])
    .with_action(Action::StartTls)
}
