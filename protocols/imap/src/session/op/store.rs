//! STORE and UID STORE (RFC 3501 §6.4.6), with UNCHANGEDSINCE and
//! `[MODIFIED]` (RFC 7162 §3.1.3).

use mailroom_core::{Flag, Flags, ModSeq, SeqSet, StoreOp};

use super::super::{Reply, State};
use crate::command::StoreKind;
use crate::response::{Code, StatusResponse};

/// STORE / UID STORE.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    kind: StoreKind,
    silent: bool,
    flags: Vec<Flag>,
    unchanged_since: Option<ModSeq>,
) -> Reply {
    if unchanged_since.is_some() {
        state.enabled.condstore = true;
    }
    let enabled = state.enabled;
    let Some(sel) = state.selected.as_mut() else {
        return super::bad(tag, "no mailbox selected");
    };
    if !uid && sel.seq_set_out_of_range(set) {
        return super::bad(tag, "invalid message sequence number");
    }
    if sel.read_only {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::Cannot),
            "mailbox is read-only",
        ));
    }
    let targets = sel.resolve(set, uid);
    let uids: Vec<_> = targets
        .iter()
        .map(|(_, u)| *u)
        .filter(|u| !sel.is_pending_expunge(*u))
        .collect();
    let flags: Flags = flags.into_iter().collect();
    let op = match kind {
        StoreKind::Replace => StoreOp::Replace(flags),
        StoreKind::Add => StoreOp::Add(flags),
        StoreKind::Remove => StoreOp::Remove(flags),
    };
    if uids.is_empty() {
        return super::ok(tag, "STORE completed (no messages)");
    }
    let result = match sel.handle.store(&uids, &op, unchanged_since).await {
        Ok(r) => r,
        Err(e) => return super::fail(tag, &e),
    };
    // A keyword new to the mailbox is announced before anything shows it.
    let mut out = sel.announce_keywords(&result.changed);
    for meta in &result.changed {
        sel.note_reported(meta);
        // RFC 7162 §3.1.3: with UNCHANGEDSINCE the FETCH is sent even when silent.
        if silent && unchanged_since.is_none() {
            continue;
        }
        if let Some(seq) = sel.seq_of(meta.uid) {
            out.push(sel.flags_fetch(seq, meta, enabled, uid));
        }
    }
    let modified: Vec<u32> = result
        .modified
        .iter()
        .filter_map(|u| if uid { Some(u.0) } else { sel.seq_of(*u) })
        .collect();
    let code = SeqSet::from_numbers(modified).map(Code::Modified);
    out.push(StatusResponse::ok(tag, code, "STORE completed"));
    Reply::new(out)
}
