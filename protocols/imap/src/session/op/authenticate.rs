//! AUTHENTICATE (RFC 3501 §6.2.2) with the PLAIN mechanism (RFC 4616),
//! with an initial response (SASL-IR, RFC 4959) or after a `+`
//! continuation. A client answering the continuation with `*` cancels.

use mailroom_core::Credentials;

use super::super::{Action, Context, Reply, State};
use super::capability::plaintext_auth_allowed;
use crate::response::{Code, Response, StatusResponse};

/// The longest SASL response accepted, base64 (a PLAIN message of two names
/// and a password fits easily).
const MAX_RESPONSE: usize = 8 * 1024;

/// AUTHENTICATE.
pub(crate) async fn handle(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    mechanism: &str,
    initial_response: Option<&str>,
) -> Reply {
    if !mechanism.eq_ignore_ascii_case("PLAIN") {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::Cannot),
            "unsupported SASL mechanism",
        ));
    }
    if !plaintext_auth_allowed(state, ctx) {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::PrivacyRequired),
            "AUTHENTICATE PLAIN is disabled before STARTTLS",
        ));
    }
    let Some(response) = initial_response else {
        return Reply::new(vec![Response::Continue(String::new())])
            .with_action(Action::SaslContinuation);
    };
    let response = response.trim();
    if response == "*" {
        return super::bad(tag, "AUTHENTICATE cancelled");
    }
    if response.len() > MAX_RESPONSE {
        return super::bad(tag, "SASL response too long");
    }
    let decoded = if response == "=" {
        Some(Vec::new())
    } else {
        mailroom_core::base64::decode(response)
    };
    let Some(decoded) = decoded else {
        return super::bad(tag, "invalid base64 in SASL response");
    };
    let Some(credentials) = Credentials::from_sasl_plain(&decoded) else {
        return super::bad(tag, "malformed SASL PLAIN message");
    };
    super::login::complete(state, ctx, tag, &credentials).await
}
