//! SEARCH and UID SEARCH (RFC 3501 §6.4.4), with ESEARCH return options
//! (RFC 4731), the MODSEQ key (RFC 7162) and the OLDER/YOUNGER keys of
//! WITHIN (RFC 5032, see [`crate::extension::within`]) and `RETURN (SAVE)`
//! and `$` of SEARCHRES (RFC 5182, see [`crate::extension::searchres`]).
//!
//! Every key is evaluated as the RFC says:
//! - header keys (FROM, TO, CC, BCC, SUBJECT, HEADER) are case-insensitive
//!   substring matches under `i;unicode-casemap` (RFC 5051, I18NLEVEL=1,
//!   see [`crate::extension::i18nlevel`]) on the header's value, decoded (RFC 2047 words,
//!   address lists as `Name <addr>`) or raw, read from the cached header
//!   without opening the message;
//! - BODY matches the decoded text parts of the message, delimited by the
//!   same MIME structure BODYSTRUCTURE shows (base64 and quoted-printable
//!   undone, charsets converted with `mail-parser`'s decoders; preambles,
//!   epilogues and parts other than text/* and message/* are not searched,
//!   as in Dovecot); TEXT also matches the headers of the message, of its
//!   MIME parts and of embedded messages.
//!   The message is only read when cheaper keys have not already decided
//!   (three-valued evaluation);
//! - BEFORE/ON/SINCE compare the INTERNALDATE's day, SENT* the `Date:`
//!   header's day, in their own time zones, ignoring the time of day.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::mime::{BodyPart, HeaderTexts, PartKind, SEARCH_FIELDS, SortKeys, unfold};
use mailroom_core::{Flag, InternalDate, MessageMeta, MessageSummary, ModSeq, SeqSet, Uid};

use super::super::{Reply, State};
use crate::command::{SearchDate, SearchKey, SearchReturn};
use crate::extension::i18nlevel::unicode_casemap;
use crate::extension::{context, objectid, savedate, searchres, within};
use crate::response::{Code, Data, Response, StatusResponse};

/// The most messages one nested search key may have (a bound on recursion).
const MAX_DEPTH: usize = 64;

/// SEARCH / UID SEARCH.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    charset: Option<&str>,
    return_options: Option<&[SearchReturn]>,
    criteria: &SearchKey,
) -> Reply {
    // RFC 6855 §3: after ENABLE UTF8=ACCEPT a SEARCH names no charset
    // (everything is UTF-8); one that does SHOULD get BAD.
    if charset.is_some() && state.enabled.utf8 {
        return super::bad(tag, "no CHARSET after ENABLE UTF8=ACCEPT");
    }
    // IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 §6.4.4).
    let return_options = match return_options {
        None if state.enabled.imap4rev2 => Some(&[][..]),
        other => other,
    };
    if context::tag_in_use(state, return_options, tag) {
        return super::bad(tag, "UPDATE with the tag of a search still updated");
    }
    let save = return_options.is_some_and(|o| o.contains(&SearchReturn::Save));
    let uses_modseq = uses(criteria, &|k| matches!(k, SearchKey::ModSeq(_)));
    let found = match matching(state, tag, charset, criteria).await {
        Ok(found) => found,
        Err(reply) => {
            if save {
                // RFC 5182 §2.1: a failed SEARCH with SAVE empties it.
                if let Some(sel) = state.selected.as_mut() {
                    sel.set_saved(Vec::new());
                }
            }
            return reply;
        }
    };
    if let (true, Some(opts), Some(sel)) = (save, return_options, state.selected.as_mut()) {
        let uids: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
        sel.set_saved(searchres::to_save(&uids, opts));
        if searchres::save_only(opts) {
            return super::ok(tag, "SEARCH completed (result saved)");
        }
    }
    let hits: Vec<(u32, Uid, ModSeq)> = found
        .iter()
        .map(|m| (m.seq, m.meta.uid, m.meta.modseq))
        .collect();
    let ids: Vec<u32> = hits
        .iter()
        .map(|(s, u, _)| if uid { u.0 } else { *s })
        .collect();
    let top_modseq = if uses_modseq {
        hits.iter().map(|(_, _, m)| *m).max()
    } else {
        None
    };
    // RFC 7162 §3.1.5 (and RFC 4731 §3.2): with MIN and/or MAX but neither
    // ALL nor COUNT, MODSEQ is that of the message(s) returned, not the
    // highest among every match.
    let returned_modseq = |opts: &[SearchReturn]| {
        if !uses_modseq || opts.contains(&SearchReturn::All) || opts.contains(&SearchReturn::Count)
        {
            return top_modseq;
        }
        let mut returned = Vec::new();
        if opts.contains(&SearchReturn::Min) {
            returned.extend(hits.first());
        }
        if opts.contains(&SearchReturn::Max) {
            returned.extend(hits.last());
        }
        returned.iter().map(|(_, _, m)| *m).max()
    };
    let data = match return_options {
        None => Data::Search {
            ids,
            modseq: top_modseq,
        },
        Some(opts) => {
            let opts: &[SearchReturn] = if opts.is_empty() {
                &[SearchReturn::All]
            } else {
                opts
            };
            let want = |o: SearchReturn| opts.contains(&o);
            Data::ESearch {
                tag: tag.to_owned(),
                uid,
                min: want(SearchReturn::Min)
                    .then(|| ids.iter().copied().min())
                    .flatten(),
                max: want(SearchReturn::Max)
                    .then(|| ids.iter().copied().max())
                    .flatten(),
                count: want(SearchReturn::Count)
                    .then(|| u32::try_from(ids.len()).unwrap_or(u32::MAX)),
                all: if want(SearchReturn::All) {
                    SeqSet::from_numbers(ids.iter().copied())
                } else {
                    None
                },
                modseq: returned_modseq(opts),
                partial: context::partial_option(opts)
                    .map(|r| context::partial_data(&ids, r, false)),
            }
        }
    };
    let mut out = vec![Response::Data(data)];
    let result: Vec<Uid> = hits.iter().map(|(_, u, _)| *u).collect();
    out.extend(context::register(
        state,
        tag,
        uid,
        return_options,
        criteria,
        None,
        result,
    ));
    out.push(StatusResponse::ok(tag, None, "SEARCH completed"));
    Reply::new(out)
}

/// A message that matched the search criteria.
pub(crate) struct Match {
    /// Its sequence number.
    pub(crate) seq: u32,
    /// Its UID, flags, modseq, INTERNALDATE and size.
    pub(crate) meta: MessageMeta,
}

/// The messages of the selected mailbox that match `criteria`, in
/// mailbox order, for SEARCH, SORT and THREAD (which then ask the store
/// for the matches' sort ranks or fields: `Mailbox::sort_ranks`,
/// `Mailbox::sort_fields`). Header keys on From/To/Cc/Bcc/Subject read
/// the store's cached header texts (`Mailbox::search_headers`).
/// `Err` is the reply to send instead (bad charset, nesting, store
/// failure).
pub(crate) async fn matching(
    state: &mut State,
    tag: &str,
    charset: Option<&str>,
    criteria: &SearchKey,
) -> Result<Vec<Match>, Reply> {
    matching_in(state, tag, charset, criteria, None).await
}

/// [`matching`] among the messages of `only` (all when `None`): the
/// others are not looked at (a CONTEXT update re-matches the changed
/// messages only). Sequence numbers are those of the whole mailbox.
pub(crate) async fn matching_in(
    state: &mut State,
    tag: &str,
    charset: Option<&str>,
    criteria: &SearchKey,
    only: Option<&HashSet<Uid>>,
) -> Result<Vec<Match>, Reply> {
    if let Some(cs) = charset
        && !cs.eq_ignore_ascii_case("UTF-8")
        && !cs.eq_ignore_ascii_case("US-ASCII")
    {
        return Err(super::reply(StatusResponse::no(
            tag,
            Some(Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()])),
            "unsupported charset",
        )));
    }
    if depth(criteria) > MAX_DEPTH {
        return Err(super::bad(tag, "search key nested too deeply"));
    }
    if uses(criteria, &|k| matches!(k, SearchKey::ModSeq(_))) {
        state.enabled.condstore = true;
    }
    let Some(sel) = state.selected.as_ref() else {
        return Err(super::bad(tag, "no mailbox selected"));
    };
    let substituted;
    let criteria = if uses(criteria, &|k| matches!(k, SearchKey::SavedResult)) {
        substituted = searchres::substitute(criteria, sel);
        &substituted
    } else {
        criteria
    };
    let mailbox = sel.handle.mailbox().clone();
    let all: Vec<Uid> = sel.uids().to_vec();
    let wanted: std::borrow::Cow<'_, [Uid]> = match only {
        Some(only) => all.iter().copied().filter(|u| only.contains(u)).collect(),
        None => std::borrow::Cow::Borrowed(&all),
    };
    let mut metas = mailbox
        .fetch_meta(&wanted)
        .await
        .map_err(|e| super::fail(tag, &e))?;
    // Walked beside the (ascending) UIDs of the session: no table.
    if !metas.is_sorted_by_key(|m| m.uid) {
        metas.sort_unstable_by_key(|m| m.uid);
    }
    let needs_summary = uses(criteria, &|k| match k {
        SearchKey::Header(name, _) => !is_search_field(name),
        SearchKey::Text(_) | SearchKey::Body(_) => true,
        _ => false,
    });
    // FROM, TO, CC, BCC and SUBJECT (and HEADER of those fields) need
    // only those header fields, decoded and casemapped: the store's
    // header texts (`Mailbox::search_headers`, kept per message by the CRC
    // store), without the body structure and the rest of the header a
    // summary holds, and without parsing a header per command.
    let needs_texts = !needs_summary
        && uses(criteria, &|k| {
            matches!(
                k,
                SearchKey::Bcc(_)
                    | SearchKey::Cc(_)
                    | SearchKey::From(_)
                    | SearchKey::To(_)
                    | SearchKey::Subject(_)
                    | SearchKey::Header(..)
            )
        });
    // SENTBEFORE/ON/SINCE need only the sent date: the store's sort keys
    // have it (kept per message by the CRC store), without decoding every
    // summary.
    let needs_sent_day = !needs_summary
        && uses(criteria, &|k| {
            matches!(
                k,
                SearchKey::SentBefore(_) | SearchKey::SentOn(_) | SearchKey::SentSince(_)
            )
        });
    let mut summaries: HashMap<Uid, Arc<MessageSummary>> = HashMap::new();
    // In UID order, as asked (a message expunged meanwhile left out):
    // walked beside the metadata, no table.
    let mut texts: Vec<(Uid, Arc<HeaderTexts>)> = Vec::new();
    let mut keys: Vec<(Uid, Arc<SortKeys>)> = Vec::new();
    if !metas.is_empty() && (needs_summary || needs_texts || needs_sent_day) {
        let present: Vec<Uid> = metas.iter().map(|m| m.uid).collect();
        let fail = |e: mailroom_core::Error| super::fail(tag, &e);
        if needs_summary {
            summaries.extend(mailbox.summaries(&present).await.map_err(fail)?);
        }
        if needs_texts {
            texts = mailbox.search_headers(&present).await.map_err(fail)?;
        }
        if needs_sent_day {
            keys = mailbox.sort_keys(&present).await.map_err(fail)?;
        }
    }
    let (mut texts, mut keys) = (Beside::new(&texts), Beside::new(&keys));
    let needle_key = prepare(criteria);
    let largest_seq = sel.exists();
    let largest_uid = all.last().map_or(0, |u| u.0);
    let now = InternalDate::now().timestamp;
    // Room for every candidate: a SORT or SEARCH ALL of 100,000 messages
    // grew this vector of ~100-byte matches a dozen times otherwise
    // (copies and page faults, `perf record` of `mailroom-bench sort`).
    let mut hits: Vec<Match> = Vec::with_capacity(metas.len());
    let mut metas = metas.into_iter().peekable();
    for (i, u) in all.iter().enumerate() {
        while metas.next_if(|m| m.uid < *u).is_some() {}
        let Some(meta) = metas.next_if(|m| m.uid == *u) else {
            continue;
        };
        let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut msg = Candidate {
            seq,
            meta: &meta,
            summary: if summaries.is_empty() {
                None
            } else {
                summaries.get(u).map(Arc::as_ref)
            },
            texts: texts.of(*u),
            keys: keys.of(*u),
            recent: sel.is_recent(*u),
            largest_seq,
            largest_uid,
            now,
            content: None,
            headers: OnceCell::new(),
            top_header_raw: OnceCell::new(),
            body_text: OnceCell::new(),
        };
        let matched = match eval(&needle_key, &msg) {
            Some(b) => b,
            None => {
                match mailbox.content(*u).await {
                    Ok(c) => msg.content = Some(c),
                    Err(mailroom_core::Error::NoSuchMessage(_)) => continue,
                    Err(e) => return Err(super::fail(tag, &e)),
                }
                eval(&needle_key, &msg).unwrap_or(false)
            }
        };
        if matched {
            hits.push(Match { seq, meta });
        }
    }
    Ok(hits)
}

/// Whether a header field is one of [`SEARCH_FIELDS`] (`name` lower
/// case, as [`prepare`] leaves it): HEADER of it is matched from the
/// store's header texts, without a summary.
fn is_search_field(name: &str) -> bool {
    SEARCH_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// Values per UID, in ascending UID order, looked up by ascending UIDs.
struct Beside<'a, T> {
    rest: &'a [(Uid, Arc<T>)],
}

impl<'a, T> Beside<'a, T> {
    fn new(items: &'a [(Uid, Arc<T>)]) -> Self {
        Beside { rest: items }
    }

    /// The value of `uid`, if there is one; every UID asked after it must
    /// be higher.
    fn of(&mut self, uid: Uid) -> Option<&'a T> {
        while let Some(((u, v), rest)) = self.rest.split_first() {
            if *u > uid {
                return None;
            }
            self.rest = rest;
            if *u == uid {
                return Some(v);
            }
        }
        None
    }
}

fn depth(k: &SearchKey) -> usize {
    match k {
        SearchKey::And(v) => 1 + v.iter().map(depth).max().unwrap_or(0),
        SearchKey::Not(k) => 1 + depth(k),
        SearchKey::Or(a, b) => 1 + depth(a).max(depth(b)),
        _ => 1,
    }
}

fn uses(k: &SearchKey, pred: &dyn Fn(&SearchKey) -> bool) -> bool {
    if pred(k) {
        return true;
    }
    match k {
        SearchKey::And(v) => v.iter().any(|k| uses(k, pred)),
        SearchKey::Not(k) => uses(k, pred),
        SearchKey::Or(a, b) => uses(a, pred) || uses(b, pred),
        _ => false,
    }
}

/// Puts every string argument in its `i;unicode-casemap` form once
/// (I18NLEVEL=1, see [`crate::extension::i18nlevel`]), so matching
/// compares forms.
fn prepare(k: &SearchKey) -> SearchKey {
    use SearchKey as K;
    let lc = |s: &String| unicode_casemap(s);
    match k {
        K::And(v) => K::And(v.iter().map(prepare).collect()),
        K::Not(k) => K::Not(Box::new(prepare(k))),
        K::Or(a, b) => K::Or(Box::new(prepare(a)), Box::new(prepare(b))),
        K::Bcc(s) => K::Bcc(lc(s)),
        K::Cc(s) => K::Cc(lc(s)),
        K::From(s) => K::From(lc(s)),
        K::To(s) => K::To(lc(s)),
        K::Subject(s) => K::Subject(lc(s)),
        K::Body(s) => K::Body(lc(s)),
        K::Text(s) => K::Text(lc(s)),
        K::Header(n, s) => K::Header(n.to_ascii_lowercase(), lc(s)),
        other => other.clone(),
    }
}

/// A message under evaluation, with lazily decoded headers and text.
struct Candidate<'a> {
    seq: u32,
    meta: &'a MessageMeta,
    summary: Option<&'a MessageSummary>,
    /// The store's header texts, asked for instead of the summary when
    /// the header keys need only [`SEARCH_FIELDS`].
    texts: Option<&'a HeaderTexts>,
    /// The sort keys, asked for instead of the summary when only the sent
    /// date is needed.
    keys: Option<&'a SortKeys>,
    recent: bool,
    largest_seq: u32,
    largest_uid: u32,
    /// When the SEARCH started, in Unix seconds (OLDER/YOUNGER).
    now: i64,
    content: Option<Bytes>,
    /// The header texts of the summary's header, made when first needed.
    headers: OnceCell<HeaderTexts>,
    top_header_raw: OnceCell<String>,
    body_text: OnceCell<BodyText>,
}

impl Candidate<'_> {
    /// The decoded header fields: all of them from the summary, or those
    /// SEARCH's FROM, TO, CC, BCC and SUBJECT look at from the store.
    fn headers(&self) -> Option<&HeaderTexts> {
        match (self.summary, self.texts) {
            (Some(s), _) => Some(
                self.headers
                    .get_or_init(|| HeaderTexts::of_header(&s.header)),
            ),
            (None, texts) => texts,
        }
    }

    fn header_contains(&self, name: &str, needle: &str) -> Option<bool> {
        Some(self.headers()?.contains(name, needle))
    }

    /// `None` when the message content is needed and not loaded yet.
    fn body_contains(&self, needle: &str, with_part_headers: bool) -> Option<bool> {
        if needle.is_empty() {
            return Some(true);
        }
        let content = self.content.as_ref()?;
        let text = self
            .body_text
            .get_or_init(|| decode_body_text(content, self.summary));
        Some(
            text.body.contains(needle) || (with_part_headers && text.part_headers.contains(needle)),
        )
    }

    /// Whether the raw or decoded top-level header contains the needle
    /// (TEXT). `None` without a summary.
    fn any_header_contains(&self, needle: &str) -> Option<bool> {
        let summary = self.summary?;
        let raw = self
            .top_header_raw
            .get_or_init(|| unicode_casemap(&unfold(&String::from_utf8_lossy(&summary.header))));
        if raw.contains(needle) {
            return Some(true);
        }
        Some(self.headers()?.iter().any(|h| h.decoded.contains(needle)))
    }
}

/// What BODY and TEXT search besides the top-level header, in the
/// `i;unicode-casemap` form.
struct BodyText {
    /// The decoded content of every text part (RFC 3501 BODY).
    body: String,
    /// The header blocks of every MIME part and embedded message (TEXT only).
    part_headers: String,
}

/// Decodes the text parts of a message as the summary's MIME structure
/// (the one BODYSTRUCTURE shows) delimits them: preambles and epilogues are
/// not part of any body, non-text parts are not searched, transfer
/// encodings and charsets are undone.
fn decode_body_text(content: &[u8], summary: Option<&MessageSummary>) -> BodyText {
    let mut out = BodyText {
        body: String::new(),
        part_headers: String::new(),
    };
    match summary {
        Some(s) => collect_part(content, &s.structure, &mut out, 0, true),
        None => out.body = String::from_utf8_lossy(content).into_owned(),
    }
    out.body = unicode_casemap(&out.body);
    out.part_headers = unicode_casemap(&out.part_headers);
    out
}

fn bytes_of(content: &[u8], offset: u64, len: u64) -> &[u8] {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(content.len());
    let end = start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .min(content.len());
    &content[start..end]
}

fn collect_part(content: &[u8], part: &BodyPart, out: &mut BodyText, depth: usize, top: bool) {
    if depth > 64 {
        return;
    }
    if !top {
        let header = bytes_of(
            content,
            part.header_offset,
            part.body_offset.saturating_sub(part.header_offset),
        );
        out.part_headers
            .push_str(&unfold(&String::from_utf8_lossy(header)));
        out.part_headers.push('\n');
    }
    match &part.kind {
        PartKind::Multipart(children) => {
            for child in children {
                collect_part(content, child, out, depth + 1, false);
            }
        }
        PartKind::Message { body, .. } => {
            // The embedded message's header is searched by TEXT, not BODY.
            collect_part(content, body, out, depth + 1, false);
        }
        PartKind::Single => {
            // Text, and message/* bodies that are not parsed as messages
            // (external-body, delivery-status), as Dovecot searches them.
            if !part.media_type.eq_ignore_ascii_case("text")
                && !part.media_type.eq_ignore_ascii_case("message")
            {
                return;
            }
            let raw = bytes_of(content, part.body_offset, part.body_len);
            let decoded: Option<Vec<u8>> = match part.encoding.to_ascii_lowercase().as_str() {
                "base64" => mail_parser::decoders::base64::base64_decode(raw),
                "quoted-printable" => {
                    mail_parser::decoders::quoted_printable::quoted_printable_decode(raw)
                }
                _ => None,
            };
            let bytes = decoded.as_deref().unwrap_or(raw);
            let charset = part
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.as_str());
            let text = match charset
                .filter(|c| !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("us-ascii"))
                .and_then(|c| mail_parser::decoders::charsets::map::charset_decoder(c.as_bytes()))
            {
                Some(decode) => decode(bytes),
                None => String::from_utf8_lossy(bytes).into_owned(),
            };
            out.body.push_str(&text);
            out.body.push('\n');
        }
    }
}

fn and(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match a {
        Some(false) => Some(false),
        Some(true) => b(),
        None => match b() {
            Some(false) => Some(false),
            _ => None,
        },
    }
}

/// Evaluates a key: `Some(answer)`, or `None` if the answer needs the
/// message content, which is not loaded.
fn eval(key: &SearchKey, m: &Candidate<'_>) -> Option<bool> {
    use SearchKey as K;
    let flag = |f: Flag| Some(m.meta.flags.contains(&f));
    let day = m.meta.internal_date.local_day();
    let sent_day = || {
        m.summary
            .and_then(|s| s.sent_date)
            .map(|(ts, off)| (ts + i64::from(off) * 60).div_euclid(86_400))
            .or_else(|| m.keys.and_then(SortKeys::sent_day))
            .unwrap_or(day)
    };
    let saved_day = || savedate::saved_day(m.meta, day);
    match key {
        K::And(keys) => {
            let mut acc = Some(true);
            for k in keys {
                acc = and(acc, || eval(k, m));
                if acc == Some(false) {
                    break;
                }
            }
            acc
        }
        K::Or(a, b) => match (eval(a, m), eval(b, m)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        K::Not(k) => eval(k, m).map(|b| !b),
        K::SeqSet(set) => Some(set.contains(m.seq, m.largest_seq)),
        K::Uid(set) => Some(set.contains(m.meta.uid.0, m.largest_uid)),
        K::SavedResult => Some(false),
        K::All => Some(true),
        K::Answered => flag(Flag::Answered),
        K::Unanswered => flag(Flag::Answered).map(|b| !b),
        K::Deleted => flag(Flag::Deleted),
        K::Undeleted => flag(Flag::Deleted).map(|b| !b),
        K::Draft => flag(Flag::Draft),
        K::Undraft => flag(Flag::Draft).map(|b| !b),
        K::Flagged => flag(Flag::Flagged),
        K::Unflagged => flag(Flag::Flagged).map(|b| !b),
        K::Seen => flag(Flag::Seen),
        K::Unseen => flag(Flag::Seen).map(|b| !b),
        K::Keyword(k) => Some(keyword(m, k)),
        K::Unkeyword(k) => Some(!keyword(m, k)),
        K::Recent => Some(m.recent),
        K::New => Some(m.recent && !m.meta.flags.contains(&Flag::Seen)),
        K::Old => Some(!m.recent),
        K::Larger(n) => Some(m.meta.size > *n),
        K::Smaller(n) => Some(m.meta.size < *n),
        K::Older(n) => Some(within::older(*n, &m.meta.internal_date, m.now)),
        K::Younger(n) => Some(within::younger(*n, &m.meta.internal_date, m.now)),
        K::Before(SearchDate(d)) => Some(day < *d),
        K::On(SearchDate(d)) => Some(day == *d),
        K::Since(SearchDate(d)) => Some(day >= *d),
        K::SentBefore(SearchDate(d)) => Some(sent_day() < *d),
        K::SentOn(SearchDate(d)) => Some(sent_day() == *d),
        K::SentSince(SearchDate(d)) => Some(sent_day() >= *d),
        K::ModSeq(n) => Some(m.meta.modseq >= *n),
        // SAVEDATE (RFC 8514, see `extension::savedate`).
        K::SavedBefore(SearchDate(d)) => Some(saved_day() < *d),
        K::SavedOn(SearchDate(d)) => Some(saved_day() == *d),
        K::SavedSince(SearchDate(d)) => Some(saved_day() >= *d),
        K::SaveDateSupported => Some(m.meta.save_date.is_some()),
        // OBJECTID (RFC 8474, see `extension::objectid`).
        K::EmailId(id) => Some(objectid::email_id(m.meta) == *id),
        K::ThreadId(_) => Some(false),
        K::From(s) => Some(m.header_contains("from", s).unwrap_or(false)),
        K::To(s) => Some(m.header_contains("to", s).unwrap_or(false)),
        K::Cc(s) => Some(m.header_contains("cc", s).unwrap_or(false)),
        K::Bcc(s) => Some(m.header_contains("bcc", s).unwrap_or(false)),
        K::Subject(s) => Some(m.header_contains("subject", s).unwrap_or(false)),
        K::Header(name, s) => Some(m.header_contains(name, s).unwrap_or(false)),
        K::Body(s) => m.body_contains(s, false),
        K::Text(s) => {
            if m.any_header_contains(s) == Some(true) {
                Some(true)
            } else {
                m.body_contains(s, true)
            }
        }
    }
}

fn keyword(m: &Candidate<'_>, k: &str) -> bool {
    match Flag::parse(k) {
        Ok(f) => m.meta.flags.contains(&f),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::mime::SortFields;
    use mailroom_core::{Flags, InternalDate, MessageGuid};

    fn meta(flags: Flags) -> MessageMeta {
        MessageMeta {
            uid: Uid(7),
            flags,
            modseq: ModSeq(5),
            internal_date: InternalDate {
                timestamp: 1_700_000_000,
                offset_minutes: 0,
            },
            size: 100,
            guid: MessageGuid::default(),
            save_date: None,
        }
    }

    fn candidate<'a>(meta: &'a MessageMeta, summary: Option<&'a MessageSummary>) -> Candidate<'a> {
        Candidate {
            seq: 3,
            meta,
            summary,
            texts: None,
            keys: None,
            recent: false,
            largest_seq: 10,
            largest_uid: 20,
            now: 0,
            content: None,
            headers: OnceCell::new(),
            top_header_raw: OnceCell::new(),
            body_text: OnceCell::new(),
        }
    }

    #[test]
    fn sent_dates_from_sort_keys() {
        let m = meta(Flags::default());
        let raw = b"Date: Thu, 1 Jan 1970 23:00:00 -0200\r\n\r\n";
        let fields = mailroom_core::mime::SortFields::of(&MessageSummary::parse(raw));
        let k = SortKeys::of(Some(&fields));
        let mut c = candidate(&m, None);
        c.keys = Some(&k);
        // 01:00 UTC on day 1 is still day 0 in the message's own zone.
        let on = |d| prepare(&SearchKey::SentOn(SearchDate(d)));
        assert_eq!(eval(&on(0), &c), Some(true));
        assert_eq!(eval(&on(1), &c), Some(false));
        let since = prepare(&SearchKey::SentSince(SearchDate(1)));
        assert_eq!(eval(&since, &c), Some(false));
        // Without keys or summary: the INTERNALDATE's day.
        let c = candidate(&m, None);
        assert_eq!(eval(&on(1_700_000_000 / 86_400), &c), Some(true));
    }

    #[test]
    fn three_valued_logic_avoids_loading_content() {
        let m = meta(Flags::default());
        let c = candidate(&m, None);
        let key = prepare(&SearchKey::And(vec![
            SearchKey::Seen,
            SearchKey::Body("x".into()),
        ]));
        assert_eq!(eval(&key, &c), Some(false));
        let key = prepare(&SearchKey::Or(
            Box::new(SearchKey::Unseen),
            Box::new(SearchKey::Body("x".into())),
        ));
        assert_eq!(eval(&key, &c), Some(true));
        let key = prepare(&SearchKey::Body("x".into()));
        assert_eq!(eval(&key, &c), None);
    }

    #[test]
    fn header_and_body_matching_is_decoded_and_case_insensitive() {
        let raw = b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: =?utf-8?b?SMOkbGxv?=\r\nX-Tag: Blue\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZSBhdXMgQmVybGlu\r\n";
        let summary = MessageSummary::parse(raw);
        let m = meta(Flags::default());
        let mut c = candidate(&m, Some(&summary));
        let t = |k: SearchKey, c: &Candidate<'_>| eval(&prepare(&k), c);
        assert_eq!(t(SearchKey::From("jürgen".into()), &c), Some(true));
        assert_eq!(t(SearchKey::From("J@EXAMPLE".into()), &c), Some(true));
        assert_eq!(t(SearchKey::Subject("HÄLLO".into()), &c), Some(true));
        assert_eq!(
            t(SearchKey::Header("x-tag".into(), "blu".into()), &c),
            Some(true)
        );
        assert_eq!(
            t(SearchKey::Header("X-Other".into(), String::new()), &c),
            Some(false)
        );
        assert_eq!(
            t(SearchKey::Header("X-TAG".into(), String::new()), &c),
            Some(true)
        );
        assert_eq!(t(SearchKey::Text("hällo".into()), &c), Some(true));
        c.content = Some(Bytes::from_static(raw));
        assert_eq!(t(SearchKey::Body("grüße aus".into()), &c), Some(true));
        assert_eq!(t(SearchKey::Body("R3LD".into()), &c), Some(false));
        assert_eq!(t(SearchKey::Text("BERLIN".into()), &c), Some(true));
    }

    /// FROM, TO, CC, BCC and SUBJECT answer the same from the sort fields
    /// as from the whole summary; the other header keys are not theirs.
    #[test]
    fn header_keys_from_sort_fields() {
        let raw = b"From: \"Ann\" <ann@example.org>, =?utf-8?q?J=C3=BCrgen?= <j@x>\r\n\
To: undisclosed:;\r\nCc: c@x\r\nBcc: b@x\r\nX-Tag: Blue\r\nSubject: =?utf-8?b?SMOkbGxv?=\r\n\
 world\r\nfrom: second@x\r\nDate: Thu, 1 Jan 1970 23:00:00 -0200\r\n\r\nbody\r\n";
        let summary = MessageSummary::parse(raw);
        let fields = SortFields::of(&summary);
        let (texts, keys) = (HeaderTexts::of(Some(&fields)), SortKeys::of(Some(&fields)));
        let m = meta(Flags::default());
        let whole = candidate(&m, Some(&summary));
        let mut cut = candidate(&m, None);
        cut.texts = Some(&texts);
        cut.keys = Some(&keys);
        let keys = [
            (SearchKey::From("jürgen".into()), true),
            (SearchKey::From("\"ann\"".into()), true),
            (SearchKey::From("ann <ann@".into()), true),
            (SearchKey::From("SECOND@".into()), true),
            (SearchKey::From("c@x".into()), false),
            (SearchKey::To("undisclosed".into()), true),
            (SearchKey::Cc("C@X".into()), true),
            (SearchKey::Bcc("b@".into()), true),
            (SearchKey::Bcc("c@".into()), false),
            (SearchKey::Subject("hällo".into()), true),
            (SearchKey::Subject("SMOk".into()), true),
            (SearchKey::Subject("blue".into()), false),
            (SearchKey::SentOn(SearchDate(0)), true),
            (SearchKey::Header("From".into(), "jürgen".into()), true),
            (SearchKey::Header("SUBJECT".into(), "hällo".into()), true),
            (SearchKey::Header("bcc".into(), String::new()), true),
            (SearchKey::Header("Cc".into(), "b@".into()), false),
        ];
        for (k, want) in keys {
            let k = prepare(&k);
            assert_eq!(eval(&k, &whole), Some(want), "{k:?} on the summary");
            assert_eq!(eval(&k, &cut), Some(want), "{k:?} on the sort fields");
        }
        let tag = prepare(&SearchKey::Header("x-tag".into(), "blue".into()));
        assert_eq!(eval(&tag, &whole), Some(true));
        assert_eq!(eval(&tag, &cut), Some(false), "not in the sort fields");
    }

    #[test]
    fn dates_and_sizes() {
        let m = meta([Flag::Seen].into_iter().collect());
        let c = candidate(&m, None);
        // 1_700_000_000 is 2023-11-14 (day 19675).
        assert_eq!(eval(&SearchKey::On(SearchDate(19675)), &c), Some(true));
        assert_eq!(eval(&SearchKey::Before(SearchDate(19675)), &c), Some(false));
        assert_eq!(eval(&SearchKey::Since(SearchDate(19675)), &c), Some(true));
        assert_eq!(eval(&SearchKey::Larger(99), &c), Some(true));
        assert_eq!(eval(&SearchKey::Smaller(100), &c), Some(false));
        assert_eq!(eval(&SearchKey::Unseen, &c), Some(false));
        assert_eq!(
            eval(&SearchKey::SeqSet("2:*".parse().unwrap()), &c),
            Some(true)
        );
        assert_eq!(
            eval(&SearchKey::Uid("8:*".parse().unwrap()), &c),
            Some(false)
        );
        assert_eq!(eval(&SearchKey::ModSeq(ModSeq(5)), &c), Some(true));
    }
}
