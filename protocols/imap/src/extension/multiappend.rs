//! MULTIAPPEND (RFC 3502): one APPEND carries several messages, stored as
//! one atomic step: all of them, with ascending UIDs, or none (RFC 3502
//! §6.3.11: "if the server cannot append all messages, none are
//! appended"). The store does it with [`mailroom_core::Storage::append_all`]
//! (one commit in the CRC store, one lock in the memory store), through
//! [`mailroom_core::access::MailAccess::append_all`], which checks the
//! `i` right, filters flags the user may not set, charges the quota for
//! the whole set at once and archives each message.
//!
//! The answer names every UID: `OK [APPENDUID <uidvalidity> <uid-set>]`
//! (RFC 4315 §3). The messages of one command count against the decoder's
//! literal limits together (at most [`crate::parser::MAX_LITERALS`]
//! messages, their total at most the literal limit plus a line), so a
//! MULTIAPPEND cannot hold more memory than a single large APPEND.
//!
//! This module also turns each `append-message` into what the store
//! takes: a literal as it is, a CATENATE joined from its parts
//! ([`super::catenate`]); REPLACE ([`super::replace`]) shares it.

use bytes::Bytes;
use mailroom_core::access::MailAccess;
use mailroom_core::{Appended, Error, NewMessage, SeqSet};

use super::catenate::{self, CatError};
use crate::command::{AppendContent, AppendMessage};
use crate::response::{Code, StatusResponse};

/// The capability.
pub(crate) const CAPABILITY: &str = "MULTIAPPEND";

/// Why messages could not be appended; each is a tagged `NO`.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// A CATENATE could not be built.
    Catenate(CatError),
    /// A message with no bytes.
    Empty,
    /// The store refused.
    Store(Error),
}

impl AppendError {
    /// The tagged response.
    pub(crate) fn response(&self, tag: &str) -> crate::response::Response {
        match self {
            AppendError::Catenate(CatError::BadUrl(url)) => StatusResponse::no(
                tag,
                Some(Code::BadUrl(url.clone())),
                "CATENATE URL names nothing you can read",
            ),
            AppendError::Catenate(CatError::TooBig) => StatusResponse::no(
                tag,
                Some(Code::TooBig),
                "message larger than the APPENDLIMIT",
            ),
            AppendError::Catenate(CatError::Store(e)) => crate::session::error_response(tag, e),
            AppendError::Empty => StatusResponse::no(tag, Some(Code::Cannot), "empty message"),
            AppendError::Store(Error::NoSuchMailbox(_)) => {
                StatusResponse::no(tag, Some(Code::TryCreate), "no such mailbox")
            }
            AppendError::Store(e) => crate::session::error_response(tag, e),
        }
    }
}

/// The messages as the store takes them: CATENATEs joined (URLs read
/// with `access`'s rights, relative ones in `selected`), each at most
/// `limit` bytes and none empty.
pub(crate) async fn prepare(
    access: &MailAccess,
    selected: Option<&str>,
    messages: Vec<AppendMessage>,
    limit: u64,
) -> Result<Vec<NewMessage>, AppendError> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let content: Bytes = match m.content {
            AppendContent::Literal(b) => b,
            AppendContent::Catenate(parts) => catenate::build(access, selected, &parts, limit)
                .await
                .map_err(AppendError::Catenate)?,
        };
        if content.is_empty() {
            return Err(AppendError::Empty);
        }
        out.push(NewMessage {
            flags: m.flags.into_iter().collect(),
            internal_date: m.date,
            content,
        });
    }
    Ok(out)
}

/// Appends `messages` to `mailbox`: one through the ordinary APPEND path
/// (group commit), several as one atomic step.
pub(crate) async fn append(
    access: &MailAccess,
    mailbox: &str,
    mut messages: Vec<NewMessage>,
) -> Result<Vec<Appended>, AppendError> {
    if messages.len() == 1
        && let Some(one) = messages.pop()
    {
        return access
            .append(mailbox, one)
            .await
            .map(|a| vec![a])
            .map_err(AppendError::Store);
    }
    access
        .append_all(mailbox, messages)
        .await
        .map_err(AppendError::Store)
}

/// `APPENDUID` for what was appended (one UID, or the set of them).
pub(crate) fn append_uid(appended: &[Appended]) -> Option<Code> {
    let first = appended.first()?;
    if appended.len() == 1 {
        return Some(Code::AppendUid(first.uid_validity, first.uid));
    }
    SeqSet::from_numbers(appended.iter().map(|a| a.uid.0))
        .map(|set| Code::AppendUids(first.uid_validity, set))
}
