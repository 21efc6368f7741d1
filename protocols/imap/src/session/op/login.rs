//! LOGIN (RFC 3501 §6.2.3), refused with `[PRIVACYREQUIRED]` on a
//! connection without TLS unless the operator allows plaintext logins.

use mailroom_core::access::MailAccess;
use mailroom_core::{Credentials, Error, Principal};

use super::super::{Context, LoginAttempt, Reply, State};
use super::capability::{capabilities, plaintext_auth_allowed};
use crate::response::{Code, StatusResponse};

/// LOGIN.
pub(crate) async fn handle(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    username: String,
    password: String,
) -> Reply {
    if !plaintext_auth_allowed(state, ctx) {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::PrivacyRequired),
            "LOGIN is disabled before STARTTLS",
        ));
    }
    let credentials = Credentials {
        authzid: None,
        authcid: username,
        password,
    };
    complete(state, ctx, tag, &credentials).await
}

/// Checks credentials and, on success, enters the authenticated state.
pub(crate) async fn complete(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    credentials: &Credentials,
) -> Reply {
    let user = credentials.authcid.clone();
    match ctx.auth.authenticate(credentials).await {
        Ok(principal) => succeeded(state, ctx, tag, user, principal).await,
        Err(Error::AuthFailed | Error::NoSuchUser) => refused(tag, user),
        Err(e) => unavailable(tag, &e),
    }
}

/// Enters the authenticated state as `principal` (`user` as the client
/// named it, for the throttle). Shared by LOGIN and AUTHENTICATE.
pub(crate) async fn succeeded(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    user: String,
    principal: Principal,
) -> Reply {
    if let Err(e) = ctx.storage.ensure_account(&principal.user).await {
        return super::fail(tag, &e);
    }
    tracing::info!(user = %principal.user, "logged in");
    state.access = Some(MailAccess::new(
        ctx.storage.clone(),
        ctx.quota.clone(),
        principal,
    ));
    let mut reply = super::reply(StatusResponse::ok(
        tag,
        Some(Code::Capability(capabilities(state, ctx))),
        "logged in",
    ));
    reply.login = Some(LoginAttempt {
        user,
        success: true,
    });
    reply
}

/// `NO [AUTHENTICATIONFAILED]`, counted by the throttle against `user`.
pub(crate) fn refused(tag: &str, user: String) -> Reply {
    tracing::info!(user = %user, "login failed");
    let mut reply = super::reply(StatusResponse::no(
        tag,
        Some(Code::AuthenticationFailed),
        "authentication failed",
    ));
    reply.login = Some(super::authenticate::failed_attempt(user));
    reply
}

/// The authenticator failed: `NO [UNAVAILABLE]`, not counted.
pub(crate) fn unavailable(tag: &str, e: &Error) -> Reply {
    if let Error::Unavailable(_) = e {
        tracing::warn!(error = %e, "login refused: service unavailable");
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::Unavailable),
            "service temporarily unavailable, try again later",
        ));
    }
    tracing::error!(error = %e, "authenticator failed");
    super::reply(StatusResponse::no(
        tag,
        Some(Code::Unavailable),
        "authentication is temporarily unavailable",
    ))
}
