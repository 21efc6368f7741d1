//! THREAD and UID THREAD (RFC 5256 §3): the messages that match the search
//! criteria (found as SEARCH finds them), threaded by ORDEREDSUBJECT,
//! REFERENCES or REFS (see [`crate::extension::thread`]) from the store's
//! sort keys (base subject, `Date:`, Message-ID, references; see
//! `Mailbox::sort_keys`, asked for in one call) and the INTERNALDATE;
//! answered `* THREAD (...)...`.

use super::super::{Reply, State};
use super::search::{Match, matching};
use crate::command::{SearchKey, ThreadAlgorithm};
use crate::extension::thread::{ThreadMessage, ordered_subject, references, refs};
use crate::response::{Data, Response, StatusResponse};
use mailroom_core::Uid;
use mailroom_core::mime::SortKeys;

/// THREAD / UID THREAD.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    algorithm: ThreadAlgorithm,
    charset: &str,
    search: &SearchKey,
) -> Reply {
    let found = match matching(state, tag, Some(charset), search).await {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let Some(mailbox) = state.selected.as_ref().map(|s| s.handle.mailbox().clone()) else {
        return super::bad(tag, "no mailbox selected");
    };
    let uids: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
    let keys = match mailbox.sort_keys(&uids).await {
        Ok(k) => k,
        Err(e) => return super::fail(tag, &e),
    };
    // Same order as asked, the expunged left out: align by UID.
    let mut keys = keys.into_iter().peekable();
    let messages: Vec<ThreadMessage> = found
        .iter()
        .map(|m| {
            let k = keys.next_if(|(u, _)| *u == m.meta.uid).map(|(_, k)| k);
            thread_message(m, k.as_deref(), uid)
        })
        .collect();
    let threads = match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(&messages),
        ThreadAlgorithm::References => references(&messages),
        ThreadAlgorithm::Refs => refs(&messages),
    };
    Reply::new(vec![
        Response::Data(Data::Thread(threads)),
        StatusResponse::ok(tag, None, "THREAD completed"),
    ])
}

/// What threading knows of a match (`keys` is `None` only when the store
/// had none: no subject, no IDs, the INTERNALDATE as sent date).
fn thread_message(m: &Match, keys: Option<&SortKeys>, uid: bool) -> ThreadMessage {
    ThreadMessage {
        id: if uid { m.meta.uid.0 } else { m.seq },
        seq: m.seq,
        date: keys
            .and_then(SortKeys::sent_date)
            .unwrap_or(m.meta.internal_date.timestamp),
        base_subject: keys.map(|k| k.subject().to_vec()).unwrap_or_default(),
        reply: keys.is_some_and(SortKeys::reply),
        message_id: keys.and_then(SortKeys::message_id).map(<[u8]>::to_vec),
        references: keys
            .map(|k| k.references().map(<[u8]>::to_vec).collect())
            .unwrap_or_default(),
    }
}
