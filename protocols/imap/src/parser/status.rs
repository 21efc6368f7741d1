//! STATUS (RFC 3501 §6.3.10, with HIGHESTMODSEQ, SIZE, DELETED and
//! APPENDLIMIT).

use crate::command::{Command, StatusItem};

use super::primitives::{Cursor, PResult, err};

/// One `status-att`.
pub(super) fn status_item(c: &mut Cursor<'_>) -> PResult<StatusItem> {
    Ok(match c.keyword()?.as_str() {
        "MESSAGES" => StatusItem::Messages,
        "RECENT" => StatusItem::Recent,
        "UIDNEXT" => StatusItem::UidNext,
        "UIDVALIDITY" => StatusItem::UidValidity,
        "UNSEEN" => StatusItem::Unseen,
        "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        "SIZE" => StatusItem::Size,
        "DELETED" => StatusItem::Deleted,
        "APPENDLIMIT" => StatusItem::AppendLimit,
        "MAILBOXID" => StatusItem::MailboxId,
        _ => return err("unknown STATUS item"),
    })
}

/// `STATUS SP mailbox SP "(" status-att *(SP status-att) ")"`
pub(super) fn status(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    c.enter()?;
    let items = c.list(false, status_item)?;
    c.leave();
    Ok(Command::Status { mailbox, items })
}
