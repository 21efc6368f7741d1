//! SELECT (RFC 3501 §6.3.1), with the CONDSTORE and QRESYNC parameters of
//! RFC 7162. EXAMINE ([`super::examine`]) is the same with `read_only`.

use mailroom_core::{Flag, MessageMeta, SeqSet, Uid};

use super::super::selected::permanent_flags;
use super::super::{Reply, SelectedMailbox, State, error_response};
use crate::command::{QresyncParams, SelectParams};
use crate::response::{Code, Data, FetchItem, Response, StatusKind, StatusResponse};

/// The most UIDs a QRESYNC `VANISHED (EARLIER)` may list when the store
/// has forgotten old expunges (a bound on the work a client can ask for).
const MAX_VANISHED_SCAN: u32 = 10_000_000;

/// SELECT, or EXAMINE when `read_only`.
pub(crate) async fn handle(
    state: &mut State,
    tag: &str,
    mailbox: &str,
    params: &SelectParams,
    read_only: bool,
) -> Reply {
    let verb = if read_only { "EXAMINE" } else { "SELECT" };
    if params.qresync.is_some() && !state.enabled.qresync {
        return super::bad(tag, "QRESYNC parameter requires ENABLE QRESYNC first");
    }
    let mut out = Vec::new();
    // Selecting again (even a failing SELECT) leaves the old mailbox.
    // IMAP4rev2 sends CLOSED without QRESYNC too (RFC 9051 §6.3.2).
    let rev2 = state.enabled.imap4rev2;
    if state.selected.take().is_some() && (state.enabled.qresync || rev2) {
        out.push(StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::Closed),
            "previous mailbox closed",
        ));
    }
    if params.condstore {
        state.enabled.condstore = true;
    }
    let Some(access) = state.access.clone() else {
        return super::bad(tag, "log in first");
    };
    // EXAMINE claims no \Recent but reports what the mailbox has: what
    // STATUS counts now (before the snapshot, see `peek_recent`).
    let unclaimed = if read_only {
        access.status(mailbox).await.ok()
    } else {
        None
    };
    let opened = match access.select(mailbox, read_only).await {
        Ok(h) => SelectedMailbox::open(h, mailbox.to_owned(), read_only).await,
        Err(e) => Err(e),
    };
    let (mut sel, snapshot) = match opened {
        Ok(x) => x,
        Err(e) => {
            out.push(error_response(tag, &e));
            return Reply::new(out);
        }
    };
    if let Some(status) = &unclaimed {
        sel.peek_recent(status);
    }
    sel.rev2 = rev2;
    let flags = sel.flags();
    let permanent = permanent_flags(&sel, &flags);
    out.push(Response::Data(Data::Flags(flags)));
    out.push(Response::Data(Data::Exists(sel.exists())));
    if rev2 {
        out.extend(crate::extension::imap4rev2::select_list(&access, mailbox).await);
    } else {
        out.push(Response::Data(Data::Recent(sel.recent_count())));
    }
    if let Some(pos) = snapshot
        .messages
        .iter()
        .position(|m| !m.flags.contains(&Flag::Seen))
        && !rev2
        && !state.enabled.uidonly
    {
        out.push(StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::Unseen(u32::try_from(pos + 1).unwrap_or(u32::MAX))),
            "first unseen message",
        ));
    }
    out.push(StatusResponse::untagged(
        StatusKind::Ok,
        Some(Code::PermanentFlags(permanent)),
        "flags permitted",
    ));
    out.push(StatusResponse::untagged(
        StatusKind::Ok,
        Some(Code::UidValidity(snapshot.uid_validity)),
        "UIDs valid",
    ));
    out.push(StatusResponse::untagged(
        StatusKind::Ok,
        Some(Code::UidNext(snapshot.uid_next)),
        "predicted next UID",
    ));
    out.push(StatusResponse::untagged(
        StatusKind::Ok,
        Some(Code::HighestModSeq(snapshot.highest_modseq)),
        "highest modseq",
    ));
    // OBJECTID (RFC 8474 §4.1).
    out.push(StatusResponse::untagged(
        StatusKind::Ok,
        Some(Code::MailboxId(snapshot.mailbox_id)),
        "mailbox id",
    ));
    if let Some(q) = &params.qresync
        && q.uid_validity == snapshot.uid_validity
    {
        match qresync(&mut sel, q, state.enabled.uidonly).await {
            Ok(r) => out.extend(r),
            Err(e) => {
                out.push(error_response(tag, &e));
                return Reply::new(out);
            }
        }
    }
    let code = if sel.read_only {
        Code::ReadOnly
    } else {
        Code::ReadWrite
    };
    state.selected = Some(sel);
    out.push(StatusResponse::ok(
        tag,
        Some(code),
        format!("{verb} completed"),
    ));
    Reply::new(out)
}

/// The QRESYNC resynchronisation (RFC 7162 §3.2.5): `VANISHED (EARLIER)`
/// for what the client may still hold, FETCH for what changed.
async fn qresync(
    sel: &mut SelectedMailbox,
    q: &QresyncParams,
    uidonly: bool,
) -> mailroom_core::Result<Vec<Response>> {
    let mut out = Vec::new();
    let changes = sel.handle.mailbox().changes_since(q.modseq).await?;
    let known = |u: Uid| {
        q.known_uids
            .as_ref()
            .is_none_or(|k| k.contains(u.0, u32::MAX))
    };
    let vanished: Vec<u32> = if changes.expunged_complete {
        changes
            .expunged
            .iter()
            .map(|(u, _)| *u)
            .filter(|u| known(*u))
            .map(|u| u.0)
            .collect()
    } else {
        // Old expunges are forgotten: every UID the client may know that is
        // not present now.
        let top = sel.uids().last().map_or(0, |u| u.0);
        let set = q
            .known_uids
            .clone()
            .unwrap_or_else(|| SeqSet::range(1, top.max(1)));
        let mut v = Vec::new();
        for r in &set.ranges {
            let (a, b) = r.resolve(top);
            let b = b.min(top).min(a.saturating_add(MAX_VANISHED_SCAN));
            for u in a..=b {
                if u > 0 && sel.seq_of(Uid(u)).is_none() {
                    v.push(u);
                }
            }
        }
        v
    };
    if let Some(set) = SeqSet::from_numbers(vanished) {
        out.push(Response::Data(Data::Vanished {
            earlier: true,
            uids: set,
        }));
    }
    let present: Vec<&MessageMeta> = changes
        .changed
        .iter()
        .filter(|m| sel.seq_of(m.uid).is_some())
        .collect();
    out.extend(sel.announce_keywords(present.iter().copied()));
    for meta in present {
        if let Some(seq) = sel.seq_of(meta.uid) {
            // RFC 7162 §3.2.5.1: with UID, which UIDONLY puts first instead.
            let uid = (!uidonly).then_some(FetchItem::Uid(meta.uid));
            let items = uid
                .into_iter()
                .chain([
                    FetchItem::Flags {
                        flags: meta.flags.clone(),
                        recent: sel.is_recent(meta.uid),
                    },
                    FetchItem::ModSeq(meta.modseq),
                ])
                .collect();
            out.push(crate::extension::uidonly::fetch_response(
                uidonly, seq, meta.uid, items,
            ));
        }
    }
    Ok(out)
}
