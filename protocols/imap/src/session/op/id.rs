//! ID (RFC 2971): the client names itself (kept for logs and quirks), the
//! server answers with its own name and version.

use super::super::{Reply, State};
use crate::response::{Data, Response, StatusResponse};

/// Most fields and longest value accepted from a client (RFC 2971 §3.3: 30 fields, 1024 bytes).
const MAX_FIELDS: usize = 30;
const MAX_VALUE: usize = 1024;

/// ID.
pub(crate) fn handle(
    state: &mut State,
    tag: &str,
    params: Option<Vec<(String, Option<String>)>>,
) -> Reply {
    if let Some(params) = &params {
        if params.len() > MAX_FIELDS
            || params
                .iter()
                .any(|(k, v)| k.len() > 30 || v.as_ref().is_some_and(|v| v.len() > MAX_VALUE))
        {
            return super::bad(tag, "ID: too many or too long fields");
        }
        for (k, v) in params {
            if k.eq_ignore_ascii_case("name") {
                state.client.name = v.clone();
            } else if k.eq_ignore_ascii_case("version") {
                state.client.version = v.clone();
            }
        }
        tracing::debug!(
            client = state.client.name.as_deref().unwrap_or("?"),
            version = state.client.version.as_deref().unwrap_or("?"),
            "client identified itself"
        );
    }
    Reply::new(vec![
        Response::Data(Data::Id(Some(vec![
            ("name".into(), "Mailroom".into()),
            ("version".into(), env!("CARGO_PKG_VERSION").into()),
        ]))),
        StatusResponse::ok(tag, None, "ID completed"),
    ])
}
