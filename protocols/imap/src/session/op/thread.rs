//! THREAD and UID THREAD (RFC 5256 §3): the messages that match the search
//! criteria (found as SEARCH finds them), threaded by ORDEREDSUBJECT,
//! REFERENCES or REFS (see [`crate::extension::thread`]) from the store's
//! sort fields (subject, `Date:`, Message-ID, In-Reply-To, References; see
//! `Mailbox::sort_fields`, read a chunk of messages at a time) and the
//! INTERNALDATE; answered `* THREAD (...)...`.

use super::super::{Reply, State};
use super::search::{Match, matching};
use super::sort::{FIELDS_CHUNK, sort_fields};
use crate::command::{SearchKey, ThreadAlgorithm};
use crate::extension::i18nlevel::unicode_casemap_bytes;
use crate::extension::sort::{base_subject, decode_words};
use crate::extension::thread::{
    MAX_REFERENCES, ThreadMessage, message_ids, ordered_subject, references, refs,
};
use crate::response::{Data, Response, StatusResponse};
use mailroom_core::mime::SortFields;

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
    let mut messages: Vec<ThreadMessage> = Vec::with_capacity(found.len());
    for chunk in found.chunks(FIELDS_CHUNK) {
        let fields = match sort_fields(&*mailbox, chunk).await {
            Ok(f) => f,
            Err(e) => return super::fail(tag, &e),
        };
        messages.extend(
            chunk
                .iter()
                .map(|m| thread_message(m, fields.get(&m.meta.uid), uid)),
        );
    }
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

/// What threading knows of a match (`fields` is `None` only when the store
/// had none: no subject, no IDs, the INTERNALDATE as sent date).
fn thread_message(m: &Match, fields: Option<&SortFields>, uid: bool) -> ThreadMessage {
    let subject = fields
        .and_then(|f| f.subject.as_deref())
        .map(decode_words)
        .unwrap_or_default();
    let (base, reply) = base_subject(&subject);
    let message_id = fields
        .and_then(|f| f.message_id.as_deref())
        .and_then(|raw| message_ids(raw).into_iter().next());
    let mut refs = fields
        .and_then(|f| f.references.as_deref())
        .map(message_ids)
        .unwrap_or_default();
    if refs.is_empty() {
        refs = fields
            .and_then(|f| f.in_reply_to.as_deref())
            .map(message_ids)
            .unwrap_or_default();
        refs.truncate(1);
    }
    // Only the last MAX_REFERENCES count (see there): keep no more.
    refs.drain(..refs.len().saturating_sub(MAX_REFERENCES));
    ThreadMessage {
        id: if uid { m.meta.uid.0 } else { m.seq },
        seq: m.seq,
        date: fields
            .and_then(|f| f.sent_date)
            .unwrap_or(m.meta.internal_date.timestamp),
        base_subject: unicode_casemap_bytes(base.as_bytes()),
        reply,
        message_id,
        references: refs,
    }
}
