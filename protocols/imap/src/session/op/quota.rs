//! The QUOTA commands of RFC 9208: GETQUOTA, GETQUOTAROOT and SETQUOTA
//! (server administrators only). STORAGE is reported in KiB, as the RFC says.

use mailroom_core::{Error, QuotaLimits, QuotaUsage};

use super::super::{Reply, State};
use crate::response::{Code, Data, Response, StatusResponse};

/// `* QUOTA root (...)` with the resources that have a limit.
fn quota_data(u: &QuotaUsage) -> Response {
    let mut resources = Vec::new();
    if let Some(limit) = u.limits.storage_bytes {
        resources.push((
            "STORAGE".to_owned(),
            u.storage_bytes.div_ceil(1024),
            limit / 1024,
        ));
    }
    if let Some(limit) = u.limits.messages {
        resources.push(("MESSAGE".to_owned(), u.messages, limit));
    }
    Response::Data(Data::Quota {
        root: u.root.clone(),
        resources,
    })
}

/// GETQUOTA.
pub(crate) async fn get_quota(state: &mut State, tag: &str, root: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.quota_usage(root).await {
        Ok(u) => Reply::new(vec![
            quota_data(&u),
            StatusResponse::ok(tag, None, "GETQUOTA completed"),
        ]),
        Err(Error::Unsupported(_)) => super::reply(StatusResponse::no(
            tag,
            Some(Code::NonExistent),
            "no such quota root",
        )),
        Err(e) => super::fail(tag, &e),
    }
}

/// GETQUOTAROOT.
pub(crate) async fn get_quota_root(state: &mut State, tag: &str, mailbox: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.quota_root(mailbox).await {
        Ok(usages) => {
            let mut out = vec![Response::Data(Data::QuotaRoot {
                mailbox: mailbox.to_owned(),
                roots: usages.iter().map(|u| u.root.clone()).collect(),
            })];
            out.extend(usages.iter().map(quota_data));
            out.push(StatusResponse::ok(tag, None, "GETQUOTAROOT completed"));
            Reply::new(out)
        }
        Err(e) => super::fail(tag, &e),
    }
}

/// SETQUOTA (server administrators only).
pub(crate) async fn set_quota(
    state: &mut State,
    tag: &str,
    root: &str,
    limits: &[(String, u64)],
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    if !access.principal().roles.server_admin {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::NoPerm),
            "only server administrators may set quotas",
        ));
    }
    let Some(quota) = access.quota() else {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::Cannot),
            "no quota policy on this server",
        ));
    };
    let mut new = QuotaLimits::default();
    for (resource, limit) in limits {
        match resource.to_ascii_uppercase().as_str() {
            "STORAGE" => new.storage_bytes = Some(limit.saturating_mul(1024)),
            "MESSAGE" => new.messages = Some(*limit),
            _ => {
                return super::reply(StatusResponse::no(
                    tag,
                    Some(Code::Cannot),
                    "unsupported quota resource",
                ));
            }
        }
    }
    if let Err(e) = quota.set_limits(root, new).await {
        return super::fail(tag, &e);
    }
    match quota.usage(root).await {
        Ok(u) => Reply::new(vec![
            quota_data(&u),
            StatusResponse::ok(tag, None, "SETQUOTA completed"),
        ]),
        Err(e) => super::fail(tag, &e),
    }
}
