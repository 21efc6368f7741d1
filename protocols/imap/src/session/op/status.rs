//! STATUS (RFC 3501 §6.3.10) with HIGHESTMODSEQ (RFC 7162), SIZE (RFC 8438)
//! DELETED (RFC 9051) and APPENDLIMIT (RFC 7889). Read from the mailbox
//! header only.

use mailroom_core::MailboxStatus;

use super::super::{Reply, State};
use crate::command::StatusItem;
use crate::response::{Data, Response, StatusResponse};

/// STATUS.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    items: &[StatusItem],
) -> Reply {
    let Some(access) = &state.access else {
        return super::bad(tag, "log in first");
    };
    if items.contains(&StatusItem::HighestModSeq) {
        state.enabled.condstore = true;
    }
    match access.status(mailbox).await {
        Ok(status) => Reply::new(vec![
            status_data(mailbox, &status, items, state.append_limit),
            StatusResponse::ok(tag, None, "STATUS completed"),
        ]),
        Err(e) => super::fail(tag, &e),
    }
}

/// `* STATUS name (items)`, also used by LIST-STATUS.
pub(crate) fn status_data(
    mailbox: &str,
    status: &MailboxStatus,
    items: &[StatusItem],
    append_limit: u64,
) -> Response {
    let values = items
        .iter()
        .map(|i| {
            let v = match i {
                StatusItem::Messages => u64::from(status.messages),
                StatusItem::Recent => u64::from(status.recent),
                StatusItem::UidNext => u64::from(status.uid_next.0),
                StatusItem::UidValidity => u64::from(status.uid_validity.0),
                StatusItem::Unseen => u64::from(status.unseen),
                StatusItem::HighestModSeq => status.highest_modseq.0,
                StatusItem::Size => status.size,
                StatusItem::Deleted => u64::from(status.deleted),
                StatusItem::AppendLimit => append_limit,
                StatusItem::MailboxId => 0,
            };
            (*i, v)
        })
        .collect();
    Response::Data(Data::Status {
        mailbox: mailbox.to_owned(),
        items: values,
        mailbox_id: Some(status.mailbox_id),
    })
}
