//! THREAD and UID THREAD (RFC 5256 §3): the messages that match the search
//! criteria (found as SEARCH finds them), threaded by ORDEREDSUBJECT,
//! REFERENCES or REFS (see [`crate::extension::thread`]) from what the cache holds
//! (envelope, header, INTERNALDATE); answered `* THREAD (...)...`.

use super::super::{Reply, State};
use super::search::matching;
use crate::command::{SearchKey, ThreadAlgorithm};
use crate::extension::i18nlevel::unicode_casemap_bytes;
use crate::extension::sort::{base_subject, decode_words};
use crate::extension::thread::{
    ThreadMessage, header_field, message_ids, ordered_subject, references, refs,
};
use crate::response::{Data, Response, StatusResponse};

/// THREAD / UID THREAD.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    algorithm: ThreadAlgorithm,
    charset: &str,
    search: &SearchKey,
) -> Reply {
    let found = match matching(state, tag, Some(charset), search, true).await {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let messages: Vec<ThreadMessage> = found
        .iter()
        .map(|m| {
            let summary = m.summary.as_deref();
            let env = summary.map(|s| &s.envelope);
            let subject = env
                .and_then(|e| e.subject.as_deref())
                .map(decode_words)
                .unwrap_or_default();
            let (base, reply) = base_subject(&subject);
            let message_id = env
                .and_then(|e| e.message_id.as_deref())
                .and_then(|raw| message_ids(raw).into_iter().next());
            let mut refs = summary
                .and_then(|s| header_field(&s.header, "References"))
                .map(|v| message_ids(&v))
                .unwrap_or_default();
            if refs.is_empty() {
                refs = env
                    .and_then(|e| e.in_reply_to.as_deref())
                    .map(message_ids)
                    .unwrap_or_default();
                refs.truncate(1);
            }
            ThreadMessage {
                id: if uid { m.meta.uid.0 } else { m.seq },
                seq: m.seq,
                date: summary
                    .and_then(|s| s.sent_date)
                    .map_or(m.meta.internal_date.timestamp, |(ts, _)| ts),
                base_subject: unicode_casemap_bytes(base.as_bytes()),
                reply,
                message_id,
                references: refs,
            }
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
