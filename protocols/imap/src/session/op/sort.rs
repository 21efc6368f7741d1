//! SORT and UID SORT (RFC 5256 §3, SORT=DISPLAY of RFC 5957): the messages
//! that match the search criteria (found as SEARCH finds them), ordered by
//! the sort criteria (see [`crate::extension::sort`] for the values
//! compared and the collation), ties by sequence number; answered
//! `* SORT n n ...`, with `(MODSEQ m)` when the criteria used MODSEQ
//! (RFC 7162 §3.1.5). The values come from the cache (envelope, `Date:`,
//! INTERNALDATE, size): no message file is opened unless a search key
//! needs the body. With `RETURN (...)` (ESORT, RFC 5267, see
//! [`crate::extension::esort`]) the answer is an ESEARCH response.

use super::super::{Reply, State};
use super::search::{Match, matching};
use crate::command::{SearchKey, SearchReturn, SortCriterion, SortKey};
use crate::extension::sort::{SortValue, compare, sort_value};
use crate::extension::{context, esort, searchres};
use crate::response::{Data, Response, StatusResponse};
use mailroom_core::Uid;

/// SORT / UID SORT.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    return_options: Option<&[SearchReturn]>,
    criteria: &[SortCriterion],
    charset: &str,
    search: &SearchKey,
) -> Reply {
    if context::tag_in_use(state, return_options, tag) {
        return super::bad(tag, "UPDATE with the tag of a search still updated");
    }
    let save = return_options.is_some_and(|o| o.contains(&SearchReturn::Save));
    let needs_summary = criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    let found = match matching(state, tag, Some(charset), search, needs_summary).await {
        Ok(found) => found,
        Err(reply) => {
            if let (true, Some(sel)) = (save, state.selected.as_mut()) {
                sel.set_saved(Vec::new());
            }
            return reply;
        }
    };
    let uses_modseq = uses_modseq(search);
    let modseq = if uses_modseq {
        found.iter().map(|m| m.meta.modseq).max()
    } else {
        None
    };
    let found = sorted(criteria, found);
    if let (true, Some(opts), Some(sel)) = (save, return_options, state.selected.as_mut()) {
        // RFC 5267 §3 with RFC 5182 §2.4: MIN and MAX are the first and
        // last in sort order; the saved result is a set (no order).
        let uids: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
        sel.set_saved(searchres::to_save(&uids, opts));
        if searchres::save_only(opts) {
            return super::ok(tag, "SORT completed (result saved)");
        }
    }
    let result: Vec<Uid> = found.iter().map(|m| m.meta.uid).collect();
    let ids: Vec<u32> = found
        .into_iter()
        .map(|m| if uid { m.meta.uid.0 } else { m.seq })
        .collect();
    let data = match return_options {
        None => Data::Sort { ids, modseq },
        Some(opts) => {
            let want = |o: SearchReturn| opts.is_empty() || opts.contains(&o);
            Data::ESearch {
                tag: tag.to_owned(),
                uid,
                min: want(SearchReturn::Min)
                    .then(|| ids.first().copied())
                    .flatten(),
                max: want(SearchReturn::Max)
                    .then(|| ids.last().copied())
                    .flatten(),
                count: want(SearchReturn::Count)
                    .then(|| u32::try_from(ids.len()).unwrap_or(u32::MAX)),
                all: if want(SearchReturn::All) {
                    esort::ordered_set(&ids)
                } else {
                    None
                },
                modseq,
                partial: context::partial_option(opts)
                    .map(|r| context::partial_data(&ids, r, true)),
            }
        }
    };
    let mut out = vec![Response::Data(data)];
    out.extend(context::register(
        state,
        tag,
        uid,
        return_options,
        search,
        Some(criteria),
        result,
    ));
    out.push(StatusResponse::ok(tag, None, "SORT completed"));
    Reply::new(out)
}

/// The matches in the order the criteria give, ties by sequence number.
pub(crate) fn sorted(criteria: &[SortCriterion], found: Vec<Match>) -> Vec<Match> {
    let mut keyed: Vec<(Vec<SortValue>, Match)> = found
        .into_iter()
        .map(|m| {
            let values = criteria
                .iter()
                .map(|c| sort_value(c.key, &m.meta, m.summary.as_deref()))
                .collect();
            (values, m)
        })
        .collect();
    keyed.sort_by(|(va, a), (vb, b)| compare(criteria, va, vb).then(a.seq.cmp(&b.seq)));
    keyed.into_iter().map(|(_, m)| m).collect()
}

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(v) => v.iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        _ => false,
    }
}
