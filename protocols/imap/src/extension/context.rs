//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): the PARTIAL, UPDATE and
//! CONTEXT return options of SEARCH and SORT (ESEARCH, ESORT) and the
//! CANCELUPDATE command.
//!
//! - **PARTIAL** (§4.4) returns `PARTIAL (range set)`: the results at
//!   those positions of the result list (mailbox order for SEARCH, sort
//!   order for SORT), the range echoed, `NIL` when no result falls in it.
//!   The range follows RFC 9394, which updates RFC 5267 here: besides
//!   `m:n` (first result is 1; `500:400` is `400:500`), `-m:-n` counts from
//!   the last result (`-1` is the last). Where they agree (positive
//!   ranges) the two RFCs give the same answer. At most one of PARTIAL and
//!   ALL in one command, else BAD.
//! - **UPDATE** (§4.3) keeps a context: after every command, and during
//!   IDLE, when the mailbox changed (this session's changes, other
//!   sessions', LMTP deliveries: anything the store's change feed reports)
//!   the search is run again and the difference is sent as
//!   `* ESEARCH (TAG "t") UID REMOVEFROM (pos set) ADDTO (pos set)`. For a
//!   SEARCH the positions are 0 and the sets in mailbox order; for a SORT
//!   they are the 1-based places in the sorted list, removals applied
//!   first, then insertions in ascending position, each run of adjacent
//!   results one pair (§4.3.3, §4.3.4).
//! - Contexts are bounded: at most [`MAX_UPDATE_CONTEXTS`] per session
//!   (RFC 5267 asks for at least one). Beyond that, and for the
//!   sequence-number forms (`SEARCH` and `SORT` without `UID`, whose
//!   notifications would have to be ordered around each EXPUNGE and
//!   EXISTS), the server refuses the update with an untagged
//!   `NO [NOUPDATE "tag"]` and still answers the search (§4.3.1 allows
//!   both; the RFC suggests the client retry with UID SEARCH). UPDATE with
//!   the tag of a live context is BAD (§4.3).
//! - Each update matches again only the messages that changed since the
//!   context's result was made (new ones, flag changes; expunged ones
//!   leave the result), as the store's `changes_since` reports them; a
//!   SORT context with new results is put in order again from the
//!   store's sort keys. Criteria whose answer can change without the
//!   message changing (sequence numbers, UID sets, `$`, OLDER/YOUNGER)
//!   and expunges the store no longer remembers re-run the search over
//!   the mailbox (at most [`MAX_UPDATE_CONTEXTS`] per change).
//!   Contexts die with the selection (SELECT, EXAMINE, CLOSE, UNSELECT)
//!   and with CANCELUPDATE (§4.3.5), which names them by their quoted tags.
//! - CONTEXT (§4.2) is a hint and changes nothing. UPDATE does not
//!   interact with the other options: `RETURN (UPDATE)` alone answers
//!   `* ESEARCH (TAG "t") UID` and then notifies about the whole result.

use std::collections::HashSet;

use mailroom_core::{ModSeq, SeqSet, Uid};

use crate::command::{PartialRange, SearchKey, SearchReturn, SortCriterion};
use crate::extension::esort::ordered_set;
use crate::response::{Code, Data, Response, StatusKind, StatusResponse};
use crate::session::State;
use crate::session::op::search::{matching, matching_in};
use crate::session::op::sort::sorted;

/// The capabilities.
pub const CAPABILITIES: [&str; 2] = ["CONTEXT=SEARCH", "CONTEXT=SORT"];

/// The most update contexts one session keeps at once.
pub const MAX_UPDATE_CONTEXTS: usize = 8;

/// A search or sort whose result the client is kept told about.
#[derive(Debug, Clone)]
pub(crate) struct UpdateContext {
    /// The tag of the command that asked for UPDATE.
    tag: String,
    /// The search criteria.
    criteria: SearchKey,
    /// The sort criteria, for SORT; `None` for SEARCH.
    sort: Option<Vec<SortCriterion>>,
    /// The result as the client knows it (UIDs, in result order).
    result: Vec<Uid>,
    /// The session's HIGHESTMODSEQ when `result` was made: the next
    /// update re-matches only what changed after it (see [`updates`]).
    modseq: ModSeq,
}

/// `m:n` or `-m:-n`.
pub(crate) fn range_text(r: &PartialRange) -> String {
    if r.from_end {
        format!("-{}:-{}", r.lo, r.hi)
    } else {
        format!("{}:{}", r.lo, r.hi)
    }
}

/// The PARTIAL option among `opts`, if any.
pub(crate) fn partial_option(opts: &[SearchReturn]) -> Option<PartialRange> {
    opts.iter().find_map(|o| match o {
        SearchReturn::Partial(r) => Some(*r),
        _ => None,
    })
}

/// The results at the positions of `range`, in result order.
pub(crate) fn window(ids: &[u32], range: PartialRange) -> Vec<u32> {
    let n = ids.len();
    let lo = range.lo as usize;
    let hi = range.hi as usize;
    let (start, end) = if range.from_end {
        // -lo is the lo-th from the end, -hi the hi-th: positions
        // n-hi+1 ..= n-lo+1 (1-based).
        (n.saturating_sub(hi), n.saturating_sub(lo.saturating_sub(1)))
    } else {
        (lo.saturating_sub(1).min(n), hi.min(n))
    };
    ids.get(start..end).map(<[u32]>::to_vec).unwrap_or_default()
}

/// `PARTIAL (range set)` of a result (`sorted`: the set keeps the order).
pub(crate) fn partial_data(
    ids: &[u32],
    range: PartialRange,
    sorted: bool,
) -> (PartialRange, Option<SeqSet>) {
    let part = window(ids, range);
    let set = if sorted {
        ordered_set(&part)
    } else {
        SeqSet::from_numbers(part.iter().copied())
    };
    (range, set)
}

/// Whether UPDATE with this tag must be refused with BAD: a live context
/// already has it (RFC 5267 §4.3).
pub(crate) fn tag_in_use(state: &State, opts: Option<&[SearchReturn]>, tag: &str) -> bool {
    opts.is_some_and(|o| o.contains(&SearchReturn::Update))
        && state
            .selected
            .as_ref()
            .is_some_and(|sel| sel.contexts.iter().any(|c| c.tag == tag))
}

/// Keeps a context for a search or sort that asked for UPDATE; returns
/// the untagged `NO [NOUPDATE]` when it is refused.
pub(crate) fn register(
    state: &mut State,
    tag: &str,
    uid: bool,
    opts: Option<&[SearchReturn]>,
    criteria: &SearchKey,
    sort: Option<&[SortCriterion]>,
    result: Vec<Uid>,
) -> Option<Response> {
    if !opts.is_some_and(|o| o.contains(&SearchReturn::Update)) {
        return None;
    }
    let sel = state.selected.as_mut()?;
    let refuse = |why: &str| {
        Some(StatusResponse::untagged(
            StatusKind::No,
            Some(Code::NoUpdate(tag.to_owned())),
            why.to_owned(),
        ))
    };
    if !uid {
        return refuse("updates only for UID SEARCH and UID SORT");
    }
    if sel.contexts.len() >= MAX_UPDATE_CONTEXTS {
        return refuse("too many update contexts");
    }
    let modseq = sel.highest_modseq();
    sel.contexts.push(UpdateContext {
        tag: tag.to_owned(),
        criteria: criteria.clone(),
        sort: sort.map(<[SortCriterion]>::to_vec),
        result,
        modseq,
    });
    None
}

/// CANCELUPDATE: ends the contexts with these tags.
pub(crate) fn cancel(state: &mut State, tag: &str, tags: &[String]) -> crate::session::Reply {
    if let Some(sel) = state.selected.as_mut() {
        sel.contexts.retain(|c| !tags.contains(&c.tag));
    }
    crate::session::op::ok(tag, "CANCELUPDATE completed")
}

/// The notifications for every context whose result changed; called
/// after the session caught up with the store (`changed`: the mailbox
/// changed since the last call).
pub(crate) async fn updates(state: &mut State, changed: bool) -> Vec<Response> {
    if !changed {
        return Vec::new();
    }
    let Some(contexts) = state
        .selected
        .as_mut()
        .map(|sel| std::mem::take(&mut sel.contexts))
    else {
        return Vec::new();
    };
    if contexts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut kept = Vec::with_capacity(contexts.len());
    for mut ctx in contexts {
        let now = state
            .selected
            .as_ref()
            .map_or(ModSeq(0), |s| s.highest_modseq());
        let new = match incremental(state, &ctx).await {
            Ok(Some(new)) => new,
            Ok(None) => match rerun(state, &ctx).await {
                Some(new) => new,
                None => {
                    // The store failed: keep the context, try at the next change.
                    kept.push(ctx);
                    continue;
                }
            },
            Err(()) => {
                kept.push(ctx);
                continue;
            }
        };
        let (remove, add) = diff(&ctx.result, &new, ctx.sort.is_some());
        if !remove.is_empty() || !add.is_empty() {
            out.push(Response::Data(Data::ESearchUpdate {
                tag: ctx.tag.clone(),
                uid: true,
                remove,
                add,
            }));
        }
        ctx.result = new;
        ctx.modseq = now;
        kept.push(ctx);
    }
    if let Some(sel) = state.selected.as_mut() {
        // A context registered meanwhile (none can be: the session runs
        // one command at a time) would be kept too.
        kept.append(&mut sel.contexts);
        sel.contexts = kept;
    }
    out
}

/// The result of a context's search run again over the whole mailbox
/// (`None`: the store failed).
async fn rerun(state: &mut State, ctx: &UpdateContext) -> Option<Vec<Uid>> {
    let found = matching(state, &ctx.tag, None, &ctx.criteria).await.ok()?;
    let found = match (&ctx.sort, state.selected.as_ref()) {
        (Some(criteria), Some(sel)) => {
            let mailbox = sel.handle.mailbox().clone();
            sorted(&*mailbox, criteria, found).await.ok()?
        }
        _ => found,
    };
    Some(found.iter().map(|m| m.meta.uid).collect())
}

/// Whether a message's match can change only when the message does:
/// no key depends on sequence numbers, the largest UID, the saved result
/// or the clock.
fn stable(k: &SearchKey) -> bool {
    match k {
        SearchKey::SeqSet(_)
        | SearchKey::Uid(_)
        | SearchKey::SavedResult
        | SearchKey::Older(_)
        | SearchKey::Younger(_) => false,
        SearchKey::And(v) => v.iter().all(stable),
        SearchKey::Not(k) => stable(k),
        SearchKey::Or(a, b) => stable(a) && stable(b),
        _ => true,
    }
}

/// The context's new result from the messages that changed since it was
/// last made (new, flags changed, expunged; `Mailbox::changes_since`):
/// only those are matched again, the others keep their place. `Ok(None)`
/// when that cannot give the answer a full run would (criteria that
/// depend on more than the message, expunges no longer remembered);
/// `Err` when the store failed.
async fn incremental(state: &mut State, ctx: &UpdateContext) -> Result<Option<Vec<Uid>>, ()> {
    if !stable(&ctx.criteria) {
        return Ok(None);
    }
    let Some(sel) = state.selected.as_ref() else {
        return Ok(None);
    };
    let mailbox = sel.handle.mailbox().clone();
    let changes = mailbox.changes_since(ctx.modseq).await.map_err(|_| ())?;
    if !changes.expunged_complete {
        return Ok(None);
    }
    let view: HashSet<Uid> = sel.uids().iter().copied().collect();
    let changed: HashSet<Uid> = changes
        .changed
        .iter()
        .map(|m| m.uid)
        .filter(|u| view.contains(u))
        .collect();
    let expunged: HashSet<Uid> = changes.expunged.iter().map(|(u, _)| *u).collect();
    let keep = |u: &Uid| view.contains(u) && !changed.contains(u) && !expunged.contains(u);
    let added = if changed.is_empty() {
        Vec::new()
    } else {
        matching_in(state, &ctx.tag, None, &ctx.criteria, Some(&changed))
            .await
            .map_err(|_| ())?
    };
    let Some(criteria) = &ctx.sort else {
        // SEARCH: mailbox order, which is UID order.
        let mut new: Vec<Uid> = ctx.result.iter().copied().filter(keep).collect();
        new.extend(added.iter().map(|m| m.meta.uid));
        new.sort_unstable();
        return Ok(Some(new));
    };
    let kept: Vec<Uid> = ctx.result.iter().copied().filter(keep).collect();
    if added.is_empty() {
        // Removing keeps the order of the rest.
        return Ok(Some(kept));
    }
    // SORT: the kept results with the added ones, in order again (the
    // keys come from the store's cache; no search is run on the rest).
    let mut set: HashSet<Uid> = kept.into_iter().collect();
    set.extend(added.iter().map(|m| m.meta.uid));
    let all = matching_in(state, &ctx.tag, None, &SearchKey::All, Some(&set))
        .await
        .map_err(|_| ())?;
    let found = sorted(&*mailbox, criteria, all).await.map_err(|_| ())?;
    Ok(Some(found.iter().map(|m| m.meta.uid).collect()))
}

type Pairs = Vec<(u32, SeqSet)>;

/// The REMOVEFROM and ADDTO pairs that turn `old` into `new`. Unsorted
/// (SEARCH): position 0, sets in mailbox order. Sorted: positions in the
/// list as it is when each pair is applied, removals first.
pub(crate) fn diff(old: &[Uid], new: &[Uid], sorted: bool) -> (Pairs, Pairs) {
    let old_set: HashSet<Uid> = old.iter().copied().collect();
    let new_set: HashSet<Uid> = new.iter().copied().collect();
    if !sorted {
        let gone = old.iter().filter(|u| !new_set.contains(u)).map(|u| u.0);
        let came = new.iter().filter(|u| !old_set.contains(u)).map(|u| u.0);
        let remove = SeqSet::from_numbers(gone).map(|s| (0, s)).into_iter();
        let add = SeqSet::from_numbers(came).map(|s| (0, s)).into_iter();
        return (remove.collect(), add.collect());
    }
    // The results in both keep their relative order (sort keys do not
    // change and ties go by mailbox order); if not, start over.
    let kept_old: Vec<Uid> = old
        .iter()
        .copied()
        .filter(|u| new_set.contains(u))
        .collect();
    let kept_new: Vec<Uid> = new
        .iter()
        .copied()
        .filter(|u| old_set.contains(u))
        .collect();
    let (removals, keep): (Vec<usize>, HashSet<Uid>) = if kept_old == kept_new {
        let idx = old
            .iter()
            .enumerate()
            .filter(|(_, u)| !new_set.contains(u))
            .map(|(i, _)| i)
            .collect();
        (idx, kept_old.into_iter().collect())
    } else {
        ((0..old.len()).collect(), HashSet::new())
    };
    // Removals: the i-th removed element (0-based, in old order) sits at
    // old index - i once the earlier ones are gone.
    let mut remove: Vec<(u32, Vec<u32>)> = Vec::new();
    for (done, &i) in removals.iter().enumerate() {
        let pos = u32::try_from(i - done + 1).unwrap_or(u32::MAX);
        match remove.last_mut() {
            Some((p, run)) if *p == pos => run.push(old[i].0),
            _ => remove.push((pos, vec![old[i].0])),
        }
    }
    // Insertions in ascending position: everything before it in `new`
    // is in place by then.
    let mut add: Vec<(u32, Vec<u32>)> = Vec::new();
    for (i, u) in new.iter().enumerate() {
        if keep.contains(u) {
            continue;
        }
        let pos = u32::try_from(i + 1).unwrap_or(u32::MAX);
        match add.last_mut() {
            Some((p, run)) if *p as usize + run.len() == pos as usize => run.push(u.0),
            _ => add.push((pos, vec![u.0])),
        }
    }
    let pairs = |v: Vec<(u32, Vec<u32>)>| {
        v.into_iter()
            .filter_map(|(p, run)| ordered_set(&run).map(|s| (p, s)))
            .collect()
    };
    (pairs(remove), pairs(add))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(v: &[u32]) -> Vec<Uid> {
        v.iter().map(|n| Uid(*n)).collect()
    }

    fn text(p: &Pairs) -> String {
        p.iter()
            .map(|(pos, s)| format!("{pos} {s}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Applies pairs as RFC 5267 §4.3.3/§4.3.4 tell a client to.
    fn apply(list: &[Uid], remove: &Pairs, add: &Pairs) -> Vec<Uid> {
        let mut l = list.to_vec();
        let expand = |s: &SeqSet| -> Vec<Uid> {
            s.ranges
                .iter()
                .flat_map(|r| {
                    let (a, b) = r.resolve(u32::MAX);
                    let v: Vec<u32> = if a <= b {
                        (a..=b).collect()
                    } else {
                        (b..=a).rev().collect()
                    };
                    v
                })
                .map(Uid)
                .collect()
        };
        for (pos, set) in remove {
            for u in expand(set) {
                assert_eq!(l[*pos as usize - 1], u, "REMOVEFROM position");
                l.remove(*pos as usize - 1);
            }
        }
        for (pos, set) in add {
            for (k, u) in expand(set).into_iter().enumerate() {
                l.insert(*pos as usize - 1 + k, u);
            }
        }
        l
    }

    #[test]
    fn unsorted_changes_use_position_zero() {
        let (r, a) = diff(&uids(&[1, 2, 3, 5]), &uids(&[1, 3, 5, 6, 7]), false);
        assert_eq!(text(&r), "0 2");
        assert_eq!(text(&a), "0 6:7");
    }

    #[test]
    fn sorted_changes_apply_to_the_new_list() {
        let cases: [(&[u32], &[u32]); 5] = [
            (&[9, 3, 7, 1], &[9, 4, 3, 1, 8]),
            (&[], &[5, 2, 6]),
            (&[5, 2, 6], &[]),
            (&[2734, 2735], &[2731, 2732, 2733, 2734, 2735]),
            (&[1, 2, 3, 4, 5, 6], &[2, 10, 11, 5]),
        ];
        for (old, new) in cases {
            let (old, new) = (uids(old), uids(new));
            let (r, a) = diff(&old, &new, true);
            assert_eq!(apply(&old, &r, &a), new, "{old:?} -> {new:?}: {r:?} {a:?}");
        }
        // The RFC's preferred form: one run at one position.
        let (_, a) = diff(
            &uids(&[2734, 2735]),
            &uids(&[2731, 2732, 2733, 2734, 2735]),
            true,
        );
        assert_eq!(text(&a), "1 2731:2733");
    }

    #[test]
    fn windows_count_from_either_end() {
        let ids = [10, 20, 30, 40, 50];
        let r = |from_end, lo, hi| PartialRange { from_end, lo, hi };
        assert_eq!(window(&ids, r(false, 2, 3)), vec![20, 30]);
        assert_eq!(window(&ids, r(false, 4, 9)), vec![40, 50]);
        assert_eq!(window(&ids, r(false, 6, 9)), Vec::<u32>::new());
        assert_eq!(window(&ids, r(true, 1, 2)), vec![40, 50]);
        assert_eq!(window(&ids, r(true, 4, 100)), vec![10, 20]);
        assert_eq!(range_text(&r(true, 1, 2)), "-1:-2");
    }
}
