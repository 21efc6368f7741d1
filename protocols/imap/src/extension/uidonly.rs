//! UIDONLY (RFC 9586, experimental): after `ENABLE UIDONLY` a session
//! names messages by UID only, both ways, so neither end has to keep the
//! sequence-number-to-UID map in step.
//!
//! What it means here. The RFC's body was not at hand when this was
//! checked (issue 10): only its abstract, the §3 text quoted in its
//! last-call review ("Once the UIDONLY extension is enabled (see Section
//! 3.1), the client MUST NOT use message sequence numbers (including the
//! special marker "*") in any arguments to IMAP commands, and the server
//! MUST return tagged BAD response if the client uses message sequence
//! numbers. The server SHOULD include the UIDREQUIRED response code in
//! such BAD responses"), and two servers that implement it, Cyrus (its
//! `cassandane/tiny-tests/UIDonly` tests) and mox (its comments cite the
//! RFC by line); where a point rests on them, it says so.
//!
//! - **Commands that take sequence numbers are refused** with
//!   `BAD [UIDREQUIRED]` (§3, quoted above; Cyrus and mox refuse the
//!   same commands and QRESYNC data): FETCH, STORE, SEARCH, SORT, THREAD,
//!   COPY, MOVE and REPLACE without `UID`, whatever their set (a number,
//!   `*`, or `$`); in `UID SEARCH`, `UID SORT` and `UID THREAD` a search
//!   key that is a sequence set (`UID SEARCH 1:3`, also inside NOT, OR and
//!   parentheses); and the sequence-match data of a QRESYNC SELECT or
//!   EXAMINE (`(QRESYNC (v m uids (seqs uids)))`, RFC 7162 §3.2.5), whose
//!   first set is sequence numbers. The "special marker `*`" the RFC
//!   forbids is `*` as a sequence number (`FETCH *`); in a UID set it means
//!   the highest UID and stays allowed (mox resolves `UID REPLACE *` so),
//!   as does `$` (SEARCHRES names messages, not numbers) and EXPUNGE,
//!   which takes no set. The state checks come first: a FETCH with no
//!   mailbox selected is still `BAD` for that.
//! - **`ENABLE UIDONLY`** works before and after SELECT: RFC 5161 §3.1
//!   tells clients to ENABLE before selecting but does not make servers
//!   check; Cyrus's tests enable it with a mailbox selected.
//! - **`* uid UIDFETCH (...)` instead of `* n FETCH (...)`**,
//!   everywhere a FETCH response would go: UID FETCH and UID STORE
//!   answers, flag changes told after any command or during IDLE (with or
//!   without CONDSTORE, whose MODSEQ stays in the items), the FETCHes of a
//!   QRESYNC SELECT, and NOTIFY's `MessageNew (fetch-att)` for the
//!   selected mailbox (`fetch_response` builds them all). The leading
//!   number is the UID, so a `UID` item is sent only when the client asked
//!   for one (`UID FETCH 1:* (UID FLAGS)`, `MessageNew (UID ...)`): not
//!   the one RFC 3501 §6.4.8 adds to every UID FETCH answer, nor the one
//!   QRESYNC, IMAP4rev2 (RFC 9051 §7.5.2) or UID STORE add to flag
//!   changes. Cyrus (whose UIDONLY the RFC's shepherd wrote: "UIDFETCH
//!   response should include UID msg-att if requested", per draft -05;
//!   its tests check that flag changes and QRESYNC FETCHes carry none)
//!   and mox ("for uidonly, we only add it when explicitly requested",
//!   citing the RFC's line) do the same.
//! - **`* VANISHED uids` instead of `* n EXPUNGE`** (the VANISHED
//!   response of RFC 7162 §3.2.10, QRESYNC enabled or not, as Cyrus
//!   answers a plain EXPUNGE after `ENABLE UIDONLY`): after EXPUNGE,
//!   UID EXPUNGE, UID MOVE, UID REPLACE, expunges by other sessions, and
//!   during IDLE. `* n EXISTS` stays: it is a count, not a sequence
//!   number.
//! - **No `OK [UNSEEN n]`** after SELECT/EXAMINE: its number is a
//!   sequence number (IMAP4rev2 drops it too).
//! - **Searches** (UID SEARCH, UID SORT, UID THREAD) answer with UIDs in
//!   the form the session asked for: `* SEARCH`, `* SORT` and `* THREAD`
//!   lists of UIDs, or `* ESEARCH (TAG "t") UID ...` with RETURN options
//!   (and always after ENABLE IMAP4rev2); UIDONLY itself does not turn
//!   `* SEARCH` into ESEARCH (Cyrus and mox answer `UID SEARCH` with
//!   `* SEARCH` in a UIDONLY IMAP4rev1 session); the CONTEXT=SEARCH/SORT updates
//!   of RFC 5267 (`ADDTO`/`REMOVEFROM`) carry positions and UIDs, never
//!   sequence numbers, since only a UID search can ask for them.
//! - **IDLE and NOTIFY** push the same UIDFETCH and VANISHED responses;
//!   STATUS for other mailboxes is unchanged.
//! - **IMAP4rev2** and UIDONLY combine: ESEARCH with the UID marker, no
//!   RECENT, no UNSEEN.
//!
//! The session still keeps the sequence map internally (the store API and
//! the rest of the session are shared with sequence-number sessions);
//! UIDONLY changes only what crosses the wire.

use crate::command::{Command, SearchKey};
use crate::response::{Code, Data, FetchItem, Response, StatusResponse};
use crate::session::ResponseStream;
use mailroom_core::Uid;

/// The capability (and the name ENABLE takes).
pub const CAPABILITY: &str = "UIDONLY";

/// Why a command cannot run once UIDONLY is enabled, or `None` if it can.
pub(crate) fn refusal(command: &Command) -> Option<&'static str> {
    match command {
        Command::InvalidMailboxName { command, .. } | Command::SavedResult { command } => {
            refusal(command)
        }
        Command::Fetch { uid: false, .. } => Some("FETCH takes sequence numbers: use UID FETCH"),
        Command::Store { uid: false, .. } => Some("STORE takes sequence numbers: use UID STORE"),
        Command::Copy { uid: false, .. } => Some("COPY takes sequence numbers: use UID COPY"),
        Command::Move { uid: false, .. } => Some("MOVE takes sequence numbers: use UID MOVE"),
        Command::Replace { uid: false, .. } => {
            Some("REPLACE takes a sequence number: use UID REPLACE")
        }
        Command::Search { uid: false, .. } => {
            Some("SEARCH answers sequence numbers: use UID SEARCH")
        }
        Command::Sort { uid: false, .. } => Some("SORT answers sequence numbers: use UID SORT"),
        Command::Thread { uid: false, .. } => {
            Some("THREAD answers sequence numbers: use UID THREAD")
        }
        Command::Search { criteria: key, .. }
        | Command::Sort { search: key, .. }
        | Command::Thread { search: key, .. }
            if has_seq_set(key) =>
        {
            Some("a search key is a sequence set: use UID set")
        }
        Command::Select { params, .. } | Command::Examine { params, .. }
            if params
                .qresync
                .as_ref()
                .is_some_and(|q| q.seq_match.is_some()) =>
        {
            Some("QRESYNC sequence match data holds sequence numbers")
        }
        _ => None,
    }
}

/// Whether a search key is, or holds, a sequence-set key. Bounded by the
/// parser's nesting limit.
fn has_seq_set(key: &SearchKey) -> bool {
    match key {
        SearchKey::SeqSet(_) => true,
        SearchKey::And(keys) => keys.iter().any(has_seq_set),
        SearchKey::Not(k) => has_seq_set(k),
        SearchKey::Or(a, b) => has_seq_set(a) || has_seq_set(b),
        _ => false,
    }
}

/// The tagged `BAD [UIDREQUIRED]` for a refused command.
pub(crate) fn refuse(tag: &str, reason: &str) -> Response {
    StatusResponse::bad(Some(tag), Some(Code::UidRequired), reason)
}

/// The FETCH response for one message as the session gets it: `* seq
/// FETCH (items)`, or with UIDONLY `* uid UIDFETCH (items)`, whose
/// leading number is the UID (RFC 9586). With UIDONLY the callers
/// put a `UID` item in `items` only where the client asked for one (UID
/// FETCH with `UID` among its items, NOTIFY's `MessageNew (UID ...)`): not
/// the one RFC 3501 §6.4.8 adds to every UID FETCH answer, nor the one
/// QRESYNC, IMAP4rev2 or UID STORE add to flag changes; the leading
/// number already says it.
pub(crate) fn fetch_response(uidonly: bool, seq: u32, uid: Uid, items: Vec<FetchItem>) -> Response {
    if uidonly {
        Response::Data(Data::UidFetch { uid, items })
    } else {
        Response::Data(Data::Fetch { seq, items })
    }
}

/// The safety net under [`fetch_response`] for a UIDONLY session: a
/// `* n FETCH` that reached it anyway (a bug: every FETCH response is
/// built by [`fetch_response`]) becomes a UIDFETCH named by the `UID`
/// among its items, so no sequence number goes out; one without a `UID`
/// item is logged and left as it is rather than guessed.
pub(crate) fn rewrite(response: Response) -> Response {
    match response {
        Response::Data(Data::Fetch { seq, items }) => {
            let uid = items.iter().find_map(|i| match i {
                FetchItem::Uid(u) => Some(*u),
                _ => None,
            });
            tracing::warn!(seq, "FETCH response not built for a UIDONLY session");
            match uid {
                Some(uid) => Response::Data(Data::UidFetch { uid, items }),
                None => Response::Data(Data::Fetch { seq, items }),
            }
        }
        other => other,
    }
}

/// [`rewrite`] over a list of responses.
pub(crate) fn rewrite_all(responses: Vec<Response>) -> Vec<Response> {
    responses.into_iter().map(rewrite).collect()
}

/// [`rewrite`] over a streamed tail (FETCH bodies).
pub(crate) fn rewrite_stream(tail: ResponseStream) -> ResponseStream {
    use futures::StreamExt as _;
    Box::pin(tail.map(rewrite))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{QresyncParams, SelectParams};
    use mailroom_core::{ModSeq, SeqSet, Uid, UidValidity};

    fn set(a: u32, b: u32) -> SeqSet {
        SeqSet::range(a, b)
    }

    #[test]
    fn sequence_number_commands_are_refused_and_uid_ones_are_not() {
        let fetch = |uid| Command::Fetch {
            uid,
            set: set(1, 2),
            items: Vec::new(),
            changed_since: None,
            vanished: false,
        };
        assert!(refusal(&fetch(false)).is_some());
        assert!(refusal(&fetch(true)).is_none());
        assert!(
            refusal(&Command::SavedResult {
                command: Box::new(fetch(false))
            })
            .is_some()
        );
        assert!(
            refusal(&Command::SavedResult {
                command: Box::new(fetch(true))
            })
            .is_none()
        );
        assert!(refusal(&Command::Expunge { uids: None }).is_none());
        assert!(refusal(&Command::Noop).is_none());
    }

    #[test]
    fn a_sequence_set_search_key_is_refused_at_any_depth() {
        let search = |criteria| Command::Search {
            uid: true,
            charset: None,
            return_options: None,
            criteria,
        };
        assert!(refusal(&search(SearchKey::All)).is_none());
        assert!(refusal(&search(SearchKey::Uid(set(1, 3)))).is_none());
        assert!(refusal(&search(SearchKey::SavedResult)).is_none());
        assert!(refusal(&search(SearchKey::SeqSet(set(1, 3)))).is_some());
        let deep = SearchKey::And(vec![
            SearchKey::Seen,
            SearchKey::Or(
                Box::new(SearchKey::Deleted),
                Box::new(SearchKey::Not(Box::new(SearchKey::SeqSet(set(4, 4))))),
            ),
        ]);
        assert!(refusal(&search(deep)).is_some());
    }

    #[test]
    fn qresync_sequence_match_data_is_refused() {
        let select = |seq_match| Command::Select {
            mailbox: "INBOX".into(),
            params: SelectParams {
                condstore: false,
                qresync: Some(QresyncParams {
                    uid_validity: UidValidity(1),
                    modseq: ModSeq(1),
                    known_uids: Some(set(1, 9)),
                    seq_match,
                }),
            },
        };
        assert!(refusal(&select(None)).is_none());
        assert!(refusal(&select(Some((set(1, 3), set(1, 3))))).is_some());
    }

    #[test]
    fn fetch_response_is_named_by_uid_only_with_uidonly() {
        let items = vec![FetchItem::ModSeq(ModSeq(7))];
        assert_eq!(
            fetch_response(false, 2, Uid(40), items.clone()),
            Response::Data(Data::Fetch {
                seq: 2,
                items: items.clone()
            })
        );
        assert_eq!(
            fetch_response(true, 2, Uid(40), items.clone()),
            Response::Data(Data::UidFetch {
                uid: Uid(40),
                items
            })
        );
    }

    #[test]
    fn fetch_becomes_uidfetch_by_its_uid() {
        let r = rewrite(Response::Data(Data::Fetch {
            seq: 2,
            items: vec![FetchItem::Uid(Uid(40))],
        }));
        assert_eq!(
            r,
            Response::Data(Data::UidFetch {
                uid: Uid(40),
                items: vec![FetchItem::Uid(Uid(40))],
            })
        );
        let other = Response::Data(Data::Exists(3));
        assert_eq!(rewrite(other.clone()), other);
    }
}
