//! SEARCHRES (RFC 5182): `SEARCH RETURN (SAVE)` (and `SORT RETURN (SAVE)`,
//! RFC 5267 §3) keeps the result in the session, and `$` names it wherever
//! a sequence set may stand: FETCH, STORE, COPY, MOVE, UID EXPUNGE (and
//! their UID forms) and as a SEARCH, SORT or THREAD key (`$`, `UID $`).
//!
//! Rules, as the RFC gives them:
//! - The saved result is a set of messages (kept as UIDs), not numbers: a
//!   message expunged since drops out of it, and `$` in a command that
//!   takes sequence numbers stands for the current numbers of the messages
//!   still there (§2.1).
//! - It is empty after SELECT and EXAMINE (it lives with the selection)
//!   and until the first SAVE; `$` naming an empty result is not an error,
//!   it names no message (§2.1).
//! - SAVE alone sends no ESEARCH response; with MIN and/or MAX and neither
//!   ALL nor COUNT only the message(s) MIN and MAX name are saved (§2.4).
//! - A SEARCH with SAVE that fails (NO, or BAD after parsing) leaves the
//!   result empty (§2.1).

use mailroom_core::{SeqSet, Uid};

use crate::command::{Command, SearchKey, SearchReturn};
use crate::session::SelectedMailbox;

/// A command from its parsed set: the command itself for a sequence set,
/// or [`Command::SavedResult`] around it (with a placeholder set) for `$`.
pub(crate) fn wrap(set: Option<SeqSet>, make: impl FnOnce(SeqSet) -> Command) -> Command {
    match set {
        Some(set) => make(set),
        None => Command::SavedResult {
            command: Box::new(make(SeqSet { ranges: Vec::new() })),
        },
    }
}

/// The set that stands for the saved messages in a command: their UIDs
/// (`uid`) or their sequence numbers. `None` when no saved message is
/// left in the session's view.
fn saved_set(sel: &SelectedMailbox, uid: bool) -> Option<SeqSet> {
    let present = sel
        .saved()
        .iter()
        .filter_map(|u| sel.seq_of(*u).map(|s| (s, *u)));
    if uid {
        SeqSet::from_numbers(present.map(|(_, u)| u.0))
    } else {
        SeqSet::from_numbers(present.map(|(s, _)| s))
    }
}

/// The command inside a [`Command::SavedResult`] with the saved messages
/// in place of `$`. An empty result becomes the UID form of the command
/// over UID 0, which no message has: it acts on nothing, without the
/// "invalid sequence number" a sequence set over nothing would get.
pub(crate) fn resolve(sel: &SelectedMailbox, command: Command) -> Command {
    let fill = |uid: bool| match saved_set(sel, uid) {
        Some(set) => (uid, set),
        None => (true, SeqSet::single(0)),
    };
    match command {
        Command::Fetch {
            uid,
            items,
            changed_since,
            vanished,
            ..
        } => {
            let (uid, set) = fill(uid);
            Command::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            }
        }
        Command::Store {
            uid,
            kind,
            silent,
            flags,
            unchanged_since,
            ..
        } => {
            let (uid, set) = fill(uid);
            Command::Store {
                uid,
                set,
                kind,
                silent,
                flags,
                unchanged_since,
            }
        }
        Command::Copy { uid, mailbox, .. } => {
            let (uid, set) = fill(uid);
            Command::Copy { uid, set, mailbox }
        }
        Command::Move { uid, mailbox, .. } => {
            let (uid, set) = fill(uid);
            Command::Move { uid, set, mailbox }
        }
        Command::Expunge { .. } => Command::Expunge {
            uids: Some(fill(true).1),
        },
        Command::SavedResult { command } => resolve(sel, *command),
        other => other,
    }
}

/// `criteria` with every `$` key replaced by the saved messages (`UID
/// set`), or by a key no message matches when the result is empty.
pub(crate) fn substitute(criteria: &SearchKey, sel: &SelectedMailbox) -> SearchKey {
    use SearchKey as K;
    match criteria {
        K::SavedResult => match saved_set(sel, true) {
            Some(set) => K::Uid(set),
            None => K::Not(Box::new(K::All)),
        },
        K::And(v) => K::And(v.iter().map(|k| substitute(k, sel)).collect()),
        K::Not(k) => K::Not(Box::new(substitute(k, sel))),
        K::Or(a, b) => K::Or(Box::new(substitute(a, sel)), Box::new(substitute(b, sel))),
        other => other.clone(),
    }
}

/// What `RETURN (SAVE ...)` keeps of the matches `uids` (given in the
/// order MIN and MAX refer to: ascending for SEARCH, sort order for SORT).
pub(crate) fn to_save(uids: &[Uid], opts: &[SearchReturn]) -> Vec<Uid> {
    let has = |o: SearchReturn| opts.contains(&o);
    if (has(SearchReturn::Min) || has(SearchReturn::Max))
        && !has(SearchReturn::All)
        && !has(SearchReturn::Count)
    {
        let mut out = Vec::new();
        if has(SearchReturn::Min) {
            out.extend(uids.first().copied());
        }
        if has(SearchReturn::Max) {
            out.extend(uids.last().copied());
        }
        out.sort_unstable();
        out.dedup();
        return out;
    }
    let mut out = uids.to_vec();
    out.sort_unstable();
    out
}

/// Whether the return options ask only for SAVE (no ESEARCH response).
pub(crate) fn save_only(opts: &[SearchReturn]) -> bool {
    opts.iter().all(|o| *o == SearchReturn::Save)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(v: &[u32]) -> Vec<Uid> {
        v.iter().copied().map(Uid).collect()
    }

    #[test]
    fn min_and_max_alone_save_only_what_they_name() {
        use SearchReturn as R;
        let hits = u(&[7, 3, 9, 5]);
        assert_eq!(to_save(&hits, &[R::Save]), u(&[3, 5, 7, 9]));
        assert_eq!(to_save(&hits, &[R::Save, R::Min]), u(&[7]));
        assert_eq!(to_save(&hits, &[R::Max, R::Save]), u(&[5]));
        assert_eq!(to_save(&hits, &[R::Save, R::Min, R::Max]), u(&[5, 7]));
        assert_eq!(
            to_save(&hits, &[R::Save, R::Min, R::Count]),
            u(&[3, 5, 7, 9])
        );
        assert_eq!(to_save(&hits, &[R::Save, R::Max, R::All]), u(&[3, 5, 7, 9]));
        assert_eq!(to_save(&[], &[R::Save, R::Min]), Vec::<Uid>::new());
        assert!(save_only(&[R::Save]));
        assert!(!save_only(&[R::Save, R::Count]));
    }

    #[test]
    fn dollar_wraps_the_command_with_a_placeholder() {
        let c = wrap(None, |set| Command::Copy {
            uid: false,
            set,
            mailbox: "x".into(),
        });
        match c {
            Command::SavedResult { command } => {
                assert!(matches!(*command, Command::Copy { ref set, .. } if set.ranges.is_empty()));
            }
            other => panic!("not wrapped: {other:?}"),
        }
        let c = wrap(Some(SeqSet::single(4)), |set| Command::Expunge {
            uids: Some(set),
        });
        assert_eq!(
            c,
            Command::Expunge {
                uids: Some(SeqSet::single(4))
            }
        );
    }
}
