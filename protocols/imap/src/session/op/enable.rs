//! ENABLE (RFC 5161): CONDSTORE and QRESYNC (which implies CONDSTORE).
//! Unknown names are ignored, as the RFC says. UTF8=ACCEPT (RFC 6855) is not
//! offered: it needs APPEND's `UTF8 (literal8)` form, which the parser does
//! not take yet.

use super::super::{Reply, State};
use crate::response::{Data, Response, StatusResponse};

/// ENABLE.
pub(crate) fn handle(state: &mut State, tag: &str, caps: &[String]) -> Reply {
    let mut enabled = Vec::new();
    for cap in caps {
        match cap.to_ascii_uppercase().as_str() {
            "CONDSTORE" if !state.enabled.condstore => {
                state.enabled.condstore = true;
                enabled.push("CONDSTORE".to_owned());
            }
            "QRESYNC" if !state.enabled.qresync => {
                state.enabled.qresync = true;
                state.enabled.condstore = true;
                enabled.push("QRESYNC".to_owned());
            }
            _ => {}
        }
    }
    Reply::new(vec![
        Response::Data(Data::Enabled(enabled)),
        StatusResponse::ok(tag, None, "ENABLE completed"),
    ])
}
