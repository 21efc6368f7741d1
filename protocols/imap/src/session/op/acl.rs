//! The ACL commands of RFC 4314: GETACL, SETACL, DELETEACL, LISTRIGHTS and
//! MYRIGHTS. Who may do what is decided in `mailroom_core::access`, once for
//! every protocol; this file only speaks IMAP.

use mailroom_core::{Right, Rights};

use super::super::{Reply, State};
use crate::response::{Code, Data, Response, StatusResponse};

/// Every right, each separately grantable (`RIGHTS=texk`).
const OPTIONAL: [&str; 11] = ["l", "r", "s", "w", "i", "p", "k", "x", "t", "e", "a"];

/// GETACL.
pub(crate) async fn get_acl(state: &mut State, tag: &str, mailbox: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.get_acl(mailbox).await {
        Ok((_, acl)) => Reply::new(vec![
            Response::Data(Data::Acl {
                mailbox: mailbox.to_owned(),
                entries: acl
                    .entries
                    .iter()
                    .map(|(id, r)| (id.clone(), r.to_string()))
                    .collect(),
            }),
            StatusResponse::ok(tag, None, "GETACL completed"),
        ]),
        Err(e) => super::fail(tag, &e),
    }
}

/// SETACL, with `+rights` / `-rights` changes relative to the current entry.
pub(crate) async fn set_acl(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    identifier: &str,
    rights: &str,
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    let (mode, letters) = match rights.as_bytes().first() {
        Some(b'+') => (1, &rights[1..]),
        Some(b'-') => (-1, &rights[1..]),
        _ => (0, rights),
    };
    let Some(given) = Rights::parse(letters) else {
        return super::bad(tag, "invalid rights string");
    };
    let new = if mode == 0 {
        given
    } else {
        let current = match access.get_acl(mailbox).await {
            Ok((_, acl)) => acl
                .entries
                .iter()
                .find(|(id, _)| id == identifier)
                .map_or(Rights::none(), |(_, r)| *r),
            Err(e) => return super::fail(tag, &e),
        };
        if mode > 0 {
            current.union(given)
        } else {
            current.without(given)
        }
    };
    let new = (!new.is_empty()).then_some(new);
    match access.set_acl(mailbox, identifier, new).await {
        Ok(()) => super::ok(tag, "SETACL completed"),
        Err(e) => super::fail(tag, &e),
    }
}

/// DELETEACL.
pub(crate) async fn delete_acl(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    identifier: &str,
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.set_acl(mailbox, identifier, None).await {
        Ok(()) => super::ok(tag, "DELETEACL completed"),
        Err(e) => super::fail(tag, &e),
    }
}

/// LISTRIGHTS (needs `a`, checked by reading the ACL).
pub(crate) async fn list_rights(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    identifier: &str,
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    let owner = match access.get_acl(mailbox).await {
        Ok((mref, _)) => mref.owner,
        Err(e) => return super::fail(tag, &e),
    };
    let (required, optional) = if identifier == owner {
        (Rights::all().to_string(), Vec::new())
    } else {
        (
            String::new(),
            OPTIONAL.iter().map(|s| (*s).to_owned()).collect(),
        )
    };
    Reply::new(vec![
        Response::Data(Data::ListRights {
            mailbox: mailbox.to_owned(),
            identifier: identifier.to_owned(),
            required,
            optional,
        }),
        StatusResponse::ok(tag, None, "LISTRIGHTS completed"),
    ])
}

/// MYRIGHTS.
pub(crate) async fn my_rights(state: &mut State, tag: &str, mailbox: &str) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    match access.my_rights(mailbox).await {
        Ok(rights) if !rights.contains(Right::Lookup) && !rights.contains(Right::Read) => {
            super::reply(StatusResponse::no(
                tag,
                Some(Code::NonExistent),
                "no such mailbox",
            ))
        }
        Ok(rights) => Reply::new(vec![
            Response::Data(Data::MyRights {
                mailbox: mailbox.to_owned(),
                rights: rights.to_string(),
            }),
            StatusResponse::ok(tag, None, "MYRIGHTS completed"),
        ]),
        Err(e) => super::fail(tag, &e),
    }
}
