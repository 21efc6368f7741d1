//! ENABLE (RFC 5161): CONDSTORE, QRESYNC (which implies CONDSTORE),
//! IMAP4rev2 (RFC 9051, [`crate::extension::imap4rev2`]), UIDONLY
//! (RFC 9586, [`crate::extension::uidonly`]) and
//! UTF8=ACCEPT (RFC 6855: the driver switches its decoder and encoder to
//! UTF-8 mailbox names and strings after this command's answer). Unknown
//! names are ignored, as the RFC says.

use super::super::{Action, Reply, State};
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
            "IMAP4REV2" if !state.enabled.imap4rev2 => {
                state.enabled.imap4rev2 = true;
                if let Some(sel) = state.selected.as_mut() {
                    sel.rev2 = true;
                }
                enabled.push(crate::extension::imap4rev2::CAPABILITY.to_owned());
            }
            "UIDONLY" if !state.enabled.uidonly => {
                state.enabled.uidonly = true;
                enabled.push(crate::extension::uidonly::CAPABILITY.to_owned());
            }
            "UTF8=ACCEPT" if !state.enabled.utf8 => {
                state.enabled.utf8 = true;
                enabled.push("UTF8=ACCEPT".to_owned());
            }
            _ => {}
        }
    }
    // IMAP4rev2 names mailboxes in UTF-8 too (RFC 9051 §5.1).
    let utf8 = enabled
        .iter()
        .any(|e| e == "UTF8=ACCEPT" || e == crate::extension::imap4rev2::CAPABILITY);
    let reply = Reply::new(vec![
        Response::Data(Data::Enabled(enabled)),
        StatusResponse::ok(tag, None, "ENABLE completed"),
    ]);
    if utf8 {
        reply.with_action(Action::EnableUtf8)
    } else {
        reply
    }
}
