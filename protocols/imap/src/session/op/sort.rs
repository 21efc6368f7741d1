//! SORT and UID SORT (RFC 5256 §3, SORT=DISPLAY of RFC 5957): the messages
//! that match the search criteria (found as SEARCH finds them), ordered by
//! the sort criteria (see [`crate::extension::sort`] for the values
//! compared and the collation), ties by sequence number; answered
//! `* SORT n n ...`, with `(MODSEQ m)` when the criteria used MODSEQ
//! (RFC 7162 §3.1.5). The values come from the cache (envelope, `Date:`,
//! INTERNALDATE, size): no message file is opened unless a search key
//! needs the body.

use super::super::{Reply, State};
use super::search::{Match, matching};
use crate::command::{SearchKey, SortCriterion, SortKey};
use crate::extension::sort::{SortValue, compare, sort_value};
use crate::response::{Data, Response, StatusResponse};

/// SORT / UID SORT.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    criteria: &[SortCriterion],
    charset: &str,
    search: &SearchKey,
) -> Reply {
    let needs_summary = criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    let found = match matching(state, tag, Some(charset), search, needs_summary).await {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let uses_modseq = uses_modseq(search);
    let modseq = if uses_modseq {
        found.iter().map(|m| m.meta.modseq).max()
    } else {
        None
    };
    let ids = sorted(criteria, found)
        .into_iter()
        .map(|m| if uid { m.meta.uid.0 } else { m.seq })
        .collect();
    Reply::new(vec![
        Response::Data(Data::Sort { ids, modseq }),
        StatusResponse::ok(tag, None, "SORT completed"),
    ])
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
