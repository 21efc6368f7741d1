//! FETCH and UID FETCH (RFC 3501 §6.4.5), with CHANGEDSINCE and VANISHED
//! (RFC 7162).
//!
//! ENVELOPE, BODY, BODYSTRUCTURE, RFC822.HEADER and `BODY[HEADER...]` are
//! answered from the cached [`MessageSummary`] without opening the message;
//! other body sections are slices of [`Mailbox::content`]. Every response
//! is built as the driver writes it (see [`ResponseStream`]): summaries
//! are loaded a batch at a time, message content one message at a time.
//! A body fetch without `.PEEK` sets `\Seen` and reports the new FLAGS.

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{
    Error, Flag, Flags, Mailbox, MessageMeta, MessageSummary, ModSeq, SeqSet, StoreOp, Uid,
};

use super::super::body::{apply_partial, from_summary_only, section_bytes};
use super::super::{Reply, ResponseStream, State, error_response};
use crate::command::{FetchAttr, Section};
use crate::extension::binary::{self, Undecodable};
use crate::extension::{preview, uidonly};
use crate::response::{Data, FetchItem, Response, SectionLabel, StatusResponse};

/// What is known about one message before its response is built.
struct Prepared {
    seq: u32,
    meta: MessageMeta,
    summary: Option<Arc<MessageSummary>>,
    recent: bool,
    /// `\Seen` was just set: report FLAGS even if not asked (and MODSEQ
    /// with CONDSTORE, RFC 7162 §3.1.4).
    flags_changed: bool,
    /// CONDSTORE is enabled.
    condstore: bool,
}

/// FETCH / UID FETCH.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    mut items: Vec<FetchAttr>,
    changed_since: Option<ModSeq>,
    vanished: bool,
) -> Reply {
    if changed_since.is_some() || items.contains(&FetchAttr::ModSeq) {
        state.enabled.condstore = true;
    }
    let enabled = state.enabled;
    let Some(sel) = state.selected.as_mut() else {
        return super::bad(tag, "no mailbox selected");
    };
    if vanished && (!uid || changed_since.is_none() || !enabled.qresync) {
        return super::bad(
            tag,
            "VANISHED needs UID FETCH with CHANGEDSINCE after ENABLE QRESYNC",
        );
    }
    if !uid && sel.seq_set_out_of_range(set) {
        return super::bad(tag, "invalid message sequence number");
    }
    // RFC 3501 §6.4.8: a UID FETCH answer carries UID, asked for or not;
    // with UIDONLY the UIDFETCH's leading number is the UID, and the item
    // comes only when asked for (`extension::uidonly::fetch_response`).
    if uid && !enabled.uidonly && !items.contains(&FetchAttr::Uid) {
        items.insert(0, FetchAttr::Uid);
    }
    if changed_since.is_some() && !items.contains(&FetchAttr::ModSeq) {
        items.push(FetchAttr::ModSeq);
    }
    let mailbox = sel.handle.mailbox().clone();
    let targets = sel.resolve(set, uid);
    let uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
    let mut out = Vec::new();

    if vanished && let Some(since) = changed_since {
        match mailbox.changes_since(since).await {
            Ok(changes) => {
                let gone = changes
                    .expunged
                    .iter()
                    .map(|(u, _)| u.0)
                    .filter(|u| set.contains(*u, u32::MAX));
                if let Some(uids) = SeqSet::from_numbers(gone) {
                    out.push(Response::Data(Data::Vanished {
                        earlier: true,
                        uids,
                    }));
                }
            }
            Err(e) => return super::fail(tag, &e),
        }
    }

    // Records come back for the UIDs still present; both they and `targets`
    // ascend by UID, so everything below is a merge, never a lookup per
    // message (this path answers `FETCH 1:* (FLAGS)` on 100,000 messages).
    let mut metas = match mailbox.fetch_meta(&uids).await {
        Ok(m) => m,
        Err(e) => return super::fail(tag, &e),
    };
    metas.sort_unstable_by_key(|m| m.uid);
    if let Some(since) = changed_since {
        metas.retain(|m| m.modseq > since);
    }

    // Body fetches without .PEEK set \Seen (RFC 3501 §6.4.5).
    let mut flags_changed = std::collections::HashSet::new();
    let sets_seen = items.iter().any(|i| {
        matches!(
            i,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
        )
    });
    if sets_seen && !sel.read_only && sel.handle.may_set(&Flag::Seen) {
        let unseen: Vec<Uid> = metas
            .iter()
            .filter(|m| !m.flags.contains(&Flag::Seen))
            .map(|m| m.uid)
            .collect();
        if !unseen.is_empty() {
            let seen: Flags = [Flag::Seen].into_iter().collect();
            match sel.handle.store(&unseen, &StoreOp::Add(seen), None).await {
                Ok(result) => {
                    for m in result.changed {
                        sel.note_reported(&m);
                        flags_changed.insert(m.uid);
                        if let Ok(i) = metas.binary_search_by_key(&m.uid, |x| x.uid) {
                            metas[i] = m;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not set \\Seen on FETCH"),
            }
        }
    }

    // FLAGS may show a keyword this session was never told about (set by
    // another session since): announce it before the first FETCH.
    if items.contains(&FetchAttr::Flags) || !flags_changed.is_empty() {
        out.extend(sel.announce_keywords(&metas));
    }

    let needs_summary = items.iter().any(|i| {
        matches!(
            i,
            FetchAttr::Envelope
                | FetchAttr::Body
                | FetchAttr::BodyStructure
                | FetchAttr::Rfc822Header
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { .. }
                | FetchAttr::Binary { .. }
                | FetchAttr::BinarySize { .. }
        )
    });
    let needs_content = items.iter().any(|i| match i {
        FetchAttr::Rfc822
        | FetchAttr::Rfc822Text
        | FetchAttr::Binary { .. }
        | FetchAttr::BinarySize { .. }
        | FetchAttr::Preview => true,
        FetchAttr::BodySection { section, .. } => !from_summary_only(section),
        _ => false,
    });
    let mut prepared = Vec::with_capacity(metas.len());
    let mut metas = metas.into_iter().peekable();
    for (seq, u) in targets {
        while metas.next_if(|m| m.uid < u).is_some() {}
        let Some(meta) = metas.next_if(|m| m.uid == u) else {
            continue;
        };
        prepared.push(Prepared {
            seq,
            recent: sel.is_recent(u),
            flags_changed: flags_changed.contains(&u),
            condstore: enabled.condstore,
            meta,
            summary: None,
        });
    }
    let mut reply = Reply::new(out);
    reply.tail = Some(response_stream(
        tag.to_owned(),
        mailbox,
        Arc::new(items),
        prepared,
        enabled.uidonly,
        needs_summary,
        needs_content,
    ));
    reply
}

/// How many messages' summaries are loaded at a time while streaming.
const SUMMARY_BATCH: usize = 256;

/// The FETCH responses, built as the driver writes them: summaries
/// (ENVELOPE, BODYSTRUCTURE, cached headers) are loaded [`SUMMARY_BATCH`]
/// messages at a time and message content one message at a time, so
/// `FETCH 1:* (ENVELOPE)` on 100,000 messages never holds 100,000 summaries
/// or responses at once. A message expunged meanwhile is left out; a failed
/// load makes the tagged response a `NO` after what could be sent.
fn response_stream(
    tag: String,
    mailbox: Arc<dyn Mailbox>,
    items: Arc<Vec<FetchAttr>>,
    prepared: Vec<Prepared>,
    uidonly: bool,
    needs_summary: bool,
    needs_content: bool,
) -> ResponseStream {
    struct St {
        queue: std::vec::IntoIter<Prepared>,
        ready: std::collections::VecDeque<Prepared>,
        mailbox: Arc<dyn Mailbox>,
        items: Arc<Vec<FetchAttr>>,
        tag: String,
        uidonly: bool,
        needs_summary: bool,
        needs_content: bool,
        failed: Option<Error>,
        /// A BINARY part could not be decoded (RFC 3516 §4.3: the
        /// command ends `NO [UNKNOWN-CTE]`).
        undecodable: Option<Undecodable>,
        done: bool,
    }
    impl St {
        /// Moves the next batch from `queue` to `ready`, with summaries.
        async fn refill(&mut self) {
            let batch: Vec<Prepared> = self.queue.by_ref().take(SUMMARY_BATCH).collect();
            if !self.needs_summary || batch.is_empty() {
                self.ready.extend(batch);
                return;
            }
            let uids: Vec<Uid> = batch.iter().map(|p| p.meta.uid).collect();
            let mut summaries = match self.mailbox.summaries(&uids).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read message summaries");
                    self.failed.get_or_insert(e);
                    return;
                }
            };
            summaries.sort_unstable_by_key(|(u, _)| *u);
            let mut summaries = summaries.into_iter().peekable();
            for mut p in batch {
                let u = p.meta.uid;
                while summaries.next_if(|(su, _)| *su < u).is_some() {}
                // none: expunged meanwhile, nothing to say about it
                if let Some((_, s)) = summaries.next_if(|(su, _)| *su == u) {
                    p.summary = Some(s);
                    self.ready.push_back(p);
                }
            }
        }

        async fn next_response(&mut self) -> Option<Response> {
            loop {
                if self.ready.is_empty() {
                    if self.failed.is_some() || self.queue.len() == 0 {
                        return None;
                    }
                    self.refill().await;
                    continue;
                }
                let p = self.ready.pop_front()?;
                let content = if self.needs_content {
                    match self.mailbox.content(p.meta.uid).await {
                        Ok(c) => Some(c),
                        Err(Error::NoSuchMessage(_)) => continue,
                        Err(e) => {
                            tracing::warn!(uid = p.meta.uid.0, error = %e, "could not read message");
                            self.failed.get_or_insert(e);
                            continue;
                        }
                    }
                } else {
                    None
                };
                match build_items(&self.items, &p, content.as_ref()) {
                    Ok(items) => {
                        return Some(uidonly::fetch_response(
                            self.uidonly,
                            p.seq,
                            p.meta.uid,
                            items,
                        ));
                    }
                    Err(e) => {
                        self.undecodable.get_or_insert(e);
                        continue;
                    }
                }
            }
        }
    }
    let st = St {
        queue: prepared.into_iter(),
        ready: std::collections::VecDeque::new(),
        mailbox,
        items,
        tag,
        uidonly,
        needs_summary,
        needs_content,
        failed: None,
        undecodable: None,
        done: false,
    };
    Box::pin(futures::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(r) = st.next_response().await {
            return Some((r, st));
        }
        st.done = true;
        let last = match (&st.failed, st.undecodable) {
            (Some(e), _) => error_response(&st.tag, e),
            (None, Some(u)) => StatusResponse::no(&st.tag, Some(u.code()), u.to_string()),
            (None, None) => StatusResponse::ok(&st.tag, None, "FETCH completed"),
        };
        Some((last, st))
    }))
}

/// The items of one FETCH response, in the order asked; `Err` when a
/// BINARY part cannot be decoded.
fn build_items(
    items: &[FetchAttr],
    p: &Prepared,
    content: Option<&Bytes>,
) -> Result<Vec<FetchItem>, Undecodable> {
    let mut out = Vec::with_capacity(items.len() + 1);
    let mut has_flags = false;
    for item in items {
        let fi = match item {
            FetchAttr::Uid => FetchItem::Uid(p.meta.uid),
            FetchAttr::Flags => {
                has_flags = true;
                FetchItem::Flags {
                    flags: p.meta.flags.clone(),
                    recent: p.recent,
                }
            }
            FetchAttr::InternalDate => FetchItem::InternalDate(p.meta.internal_date),
            FetchAttr::Rfc822Size => FetchItem::Rfc822Size(p.meta.size),
            FetchAttr::ModSeq => FetchItem::ModSeq(p.meta.modseq),
            FetchAttr::EmailId => FetchItem::EmailId(p.meta.guid),
            FetchAttr::ThreadId => FetchItem::ThreadId,
            FetchAttr::SaveDate => FetchItem::SaveDate(p.meta.save_date),
            FetchAttr::Preview => {
                FetchItem::Preview(content.map(|c| preview::preview(c)).unwrap_or_default())
            }
            FetchAttr::Envelope => match &p.summary {
                Some(s) => FetchItem::Envelope(s.clone()),
                None => continue,
            },
            FetchAttr::Body => match &p.summary {
                Some(s) => FetchItem::Body(s.clone()),
                None => continue,
            },
            FetchAttr::BodyStructure => match &p.summary {
                Some(s) => FetchItem::BodyStructure(s.clone()),
                None => continue,
            },
            FetchAttr::Rfc822 => FetchItem::BodySection {
                label: SectionLabel::Rfc822,
                origin: None,
                data: content.cloned(),
            },
            FetchAttr::Rfc822Header => FetchItem::BodySection {
                label: SectionLabel::Rfc822Header,
                origin: None,
                data: p
                    .summary
                    .as_ref()
                    .map(|s| Bytes::copy_from_slice(&s.header)),
            },
            FetchAttr::Rfc822Text => FetchItem::BodySection {
                label: SectionLabel::Rfc822Text,
                origin: None,
                data: match (&p.summary, content) {
                    (Some(s), Some(c)) => section_bytes(
                        s,
                        Some(c),
                        &Section {
                            part: Vec::new(),
                            text: Some(crate::command::SectionText::Text),
                        },
                    ),
                    _ => None,
                },
            },
            FetchAttr::BodySection {
                section,
                partial: range,
                ..
            } => {
                // A part the message does not have is an empty string, as
                // Dovecot answers (and BINARY here); NIL only when the
                // message itself could not be read.
                let data = p.summary.as_ref().and_then(|s| {
                    if content.is_none() && !from_summary_only(section) {
                        return None;
                    }
                    Some(section_bytes(s, content, section).unwrap_or_default())
                });
                let (origin, data) = apply_partial(*range, data);
                FetchItem::BodySection {
                    label: SectionLabel::Body(section.clone()),
                    origin,
                    data,
                }
            }
            FetchAttr::Binary {
                part,
                partial: range,
                ..
            } => {
                let data = match (&p.summary, content) {
                    (Some(s), Some(c)) => Some(binary::decoded_part(s, c, part)?),
                    _ => None,
                };
                let (origin, data) = apply_partial(*range, data);
                FetchItem::Binary {
                    part: part.clone(),
                    origin,
                    data,
                }
            }
            FetchAttr::BinarySize { part } => {
                let data = match (&p.summary, content) {
                    (Some(s), Some(c)) => Some(binary::decoded_part(s, c, part)?),
                    _ => None,
                };
                FetchItem::BinarySize {
                    part: part.clone(),
                    size: data.map_or(0, |d| d.len() as u64),
                }
            }
        };
        out.push(fi);
    }
    if p.flags_changed && !has_flags {
        out.push(FetchItem::Flags {
            flags: p.meta.flags.clone(),
            recent: p.recent,
        });
    }
    if p.flags_changed && p.condstore && !items.contains(&FetchAttr::ModSeq) {
        out.push(FetchItem::ModSeq(p.meta.modseq));
    }
    Ok(out)
}
