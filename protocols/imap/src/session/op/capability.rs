//! CAPABILITY (RFC 3501 §6.1.1), and the capability list used by the
//! greeting and after login.

use super::super::{Context, Reply, State};
use crate::extension::{
    binary, catenate, compress, context, i18nlevel, imap4rev2, literal_minus, multiappend, notify,
    replace, uidonly,
};
use crate::response::{Code, Data, Response, StatusKind, StatusResponse};

/// Extensions offered once authenticated (each is implemented in `op/`).
/// The literal capability (LITERAL+ or LITERAL-) goes after IMAP4rev2.
const AUTHENTICATED: &[&str] = &[
    "IMAP4rev1",
    imap4rev2::CAPABILITY,
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "XLIST",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "SEARCHRES",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    context::CAPABILITIES[0],
    context::CAPABILITIES[1],
    i18nlevel::CAPABILITY,
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "ACL",
    "RIGHTS=texk",
    "STATUS=SIZE",
    "UTF8=ACCEPT",
    "WITHIN",
    multiappend::CAPABILITY,
    catenate::CAPABILITY,
    binary::CAPABILITY,
    replace::CAPABILITY,
    notify::CAPABILITY,
    "OBJECTID",
    "SAVEDATE",
    "PREVIEW",
    uidonly::CAPABILITY,
];

/// Quota extensions, offered when the server has a quota policy.
const QUOTA: &[&str] = &["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"];

/// The capabilities to advertise in the current state.
pub(crate) fn capabilities(state: &State, ctx: &Context) -> Vec<String> {
    if state.access.is_some() {
        let mut caps: Vec<String> = AUTHENTICATED.iter().map(|s| (*s).to_owned()).collect();
        caps.insert(2, literal_minus::capability(&ctx.config.limits).to_owned());
        caps.push(crate::extension::appendlimit::capability(
            &ctx.config.limits,
        ));
        if ctx.quota.is_some() {
            caps.extend(QUOTA.iter().map(|s| (*s).to_owned()));
        }
        if !state.compressed {
            caps.push(compress::CAPABILITY.to_owned());
        }
        return caps;
    }
    let literal = literal_minus::capability(&ctx.config.limits);
    let mut caps: Vec<String> = [
        "IMAP4rev1",
        imap4rev2::CAPABILITY,
        literal,
        "SASL-IR",
        "ID",
        "ENABLE",
        "IDLE",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if ctx.tls_available && !state.tls {
        caps.push("STARTTLS".into());
    }
    caps.extend(super::authenticate::capabilities(state, ctx));
    if !plaintext_auth_allowed(state, ctx) {
        caps.push("LOGINDISABLED".into());
    }
    caps
}

/// Whether LOGIN and the mechanisms that send a secret (PLAIN, LOGIN,
/// OAUTHBEARER, XOAUTH2) are allowed on this connection.
pub(crate) fn plaintext_auth_allowed(state: &State, ctx: &Context) -> bool {
    state.tls || ctx.config.allow_plaintext_auth
}

/// `* OK [CAPABILITY ...] greeting`.
pub(crate) fn greeting(state: &State, ctx: &Context) -> Response {
    StatusResponse::untagged(
        StatusKind::Ok,
        Some(Code::Capability(capabilities(state, ctx))),
        ctx.config.greeting.clone(),
    )
}

/// CAPABILITY.
pub(crate) fn handle(state: &State, ctx: &Context, tag: &str) -> Reply {
    Reply::new(vec![
        Response::Data(Data::Capability(capabilities(state, ctx))),
        StatusResponse::ok(tag, None, "CAPABILITY completed"),
    ])
}
