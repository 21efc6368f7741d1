//! AUTHENTICATE (RFC 3501 §6.2.2) with every mechanism the connection
//! offers ([`mailroom_core::sasl::offered`]: PLAIN, LOGIN, SCRAM-SHA-256,
//! SCRAM-SHA-256-PLUS, OAUTHBEARER, XOAUTH2), with an initial response
//! (SASL-IR, RFC 4959) or after a `+` continuation. The exchange itself is
//! [`mailroom_core::sasl::Exchange`]'s; this file frames it: each challenge
//! is a `+ base64` line and the driver calls again with the client's next
//! line, while the exchange waits in the session state. A client answering
//! with `*` cancels (BAD, as is bad base64); a message the mechanism
//! cannot parse is `NO [AUTHENTICATIONFAILED]`, as Dovecot answers it. A
//! SCRAM server-final goes out as a last challenge, answered by an empty
//! line (IMAP has no success data).

use mailroom_core::Mechanism;
use mailroom_core::sasl::{self, Exchange, Security, Step};

use super::super::{Action, Context, LoginAttempt, Reply, State};
use super::capability::plaintext_auth_allowed;
use crate::response::{Code, Response, StatusResponse};

/// The longest SASL response accepted, base64 (a bearer token fits).
const MAX_RESPONSE: usize = 8 * 1024;

/// What this connection offers.
pub(crate) fn security(state: &State, ctx: &Context) -> Security {
    Security {
        plaintext_allowed: plaintext_auth_allowed(state, ctx),
        exporter: state.exporter.get(),
    }
}

/// AUTHENTICATE, or the next line of an exchange in progress.
pub(crate) async fn handle(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    mechanism: &str,
    response: Option<&str>,
) -> Reply {
    let exchange = match state.sasl.take() {
        Some(exchange) => exchange,
        None => {
            let known =
                Mechanism::from_name(mechanism).filter(|m| ctx.auth.mechanisms().contains(m));
            let Some(m) = known else {
                return super::reply(StatusResponse::no(
                    tag,
                    Some(Code::Cannot),
                    "unsupported SASL mechanism",
                ));
            };
            let Some(exchange) = Exchange::start(ctx.auth.as_ref(), m, security(state, ctx)) else {
                let (code, text) = match m {
                    Mechanism::ScramSha256Plus => (
                        Code::Cannot,
                        "SCRAM-SHA-256-PLUS needs a TLS 1.3 connection",
                    ),
                    _ if !plaintext_auth_allowed(state, ctx) => (
                        Code::PrivacyRequired,
                        "this mechanism is disabled before STARTTLS",
                    ),
                    _ => (Code::Cannot, "unsupported SASL mechanism"),
                };
                return super::reply(StatusResponse::no(tag, Some(code), text));
            };
            let Some(_) = response else {
                let first = exchange.first_challenge();
                return challenge(state, exchange, &first);
            };
            exchange
        }
    };
    let Some(response) = response else {
        return super::bad(tag, "AUTHENTICATE needs a response");
    };
    let response = response.trim();
    if response == "*" {
        return super::bad(tag, "AUTHENTICATE cancelled");
    }
    if response.len() > MAX_RESPONSE {
        return super::bad(tag, "SASL response too long");
    }
    let decoded = if response == "=" || response.is_empty() {
        Some(Vec::new())
    } else {
        mailroom_core::base64::decode(response)
    };
    let Some(decoded) = decoded else {
        return super::bad(tag, "invalid base64 in SASL response");
    };
    let mut exchange = exchange;
    match exchange.step(ctx.auth.as_ref(), &decoded).await {
        Step::Challenge(data) => challenge(state, exchange, &data),
        Step::Success { principal, user } => {
            super::login::succeeded(state, ctx, tag, user, principal).await
        }
        Step::Refused { user, reason } => {
            tracing::info!(
                mechanism = exchange.mechanism().name(),
                reason = %reason,
                "AUTHENTICATE refused"
            );
            super::login::refused(tag, user.unwrap_or_default())
        }
        // As Dovecot answers a message its mechanism cannot parse: NO, a
        // failed attempt (only IMAP-level faults, bad base64 or `*`, are BAD).
        Step::Malformed(why) => {
            tracing::info!(
                mechanism = exchange.mechanism().name(),
                reason = why,
                "AUTHENTICATE refused"
            );
            let mut reply = super::reply(StatusResponse::no(
                tag,
                Some(Code::AuthenticationFailed),
                format!("authentication failed: {why}"),
            ));
            reply.login = Some(failed_attempt(String::new()));
            reply
        }
        Step::Unavailable(e) => super::login::unavailable(tag, &e),
        _ => super::bad(tag, "unexpected SASL step"),
    }
}

/// Sends `+ base64(data)` and keeps the exchange for the next line.
fn challenge(state: &mut State, exchange: Exchange, data: &[u8]) -> Reply {
    state.sasl = Some(exchange);
    Reply::new(vec![Response::Continue(mailroom_core::base64::encode(
        data,
    ))])
    .with_action(Action::SaslContinuation)
}

/// The `AUTH=` capabilities of this connection.
pub(crate) fn capabilities(state: &State, ctx: &Context) -> Vec<String> {
    sasl::offered(ctx.auth.as_ref(), security(state, ctx))
        .into_iter()
        .map(|m| format!("AUTH={}", m.name()))
        .collect()
}

/// For throttles: an attempt that a refused exchange counts.
pub(crate) fn failed_attempt(user: String) -> LoginAttempt {
    LoginAttempt {
        user,
        success: false,
    }
}
