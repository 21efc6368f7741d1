//! The selected mailbox as one session sees it: the sequence-number-to-UID
//! map, the per-session `\Recent` set, and the bookkeeping that turns the
//! store's change feed into EXISTS / EXPUNGE / VANISHED / FETCH responses.

use std::collections::BTreeSet;

use mailroom_core::access::Selected;
use mailroom_core::{
    Flag, MailboxSnapshot, MailboxStatus, MailboxWatch, MessageMeta, ModSeq, Result, SeqBound,
    SeqSet, Uid,
};

use super::state::Enabled;
use crate::response::{Code, Data, FetchItem, Response, StatusKind, StatusResponse};

/// The selected mailbox.
#[derive(Debug)]
pub(crate) struct SelectedMailbox {
    /// The open mailbox with the rights it was selected with.
    pub(crate) handle: Selected,
    /// The name as the client gave it (UTF-8).
    pub(crate) name: String,
    /// Selected with EXAMINE (or without rights to change anything).
    pub(crate) read_only: bool,
    /// UIDs by sequence number (index 0 is message 1), ascending. Includes
    /// messages expunged elsewhere that the client has not been told about.
    uids: Vec<Uid>,
    /// The modseq of each message as last reported to the client.
    modseqs: Vec<ModSeq>,
    /// Expunged in the store, still numbered in this session.
    pending_expunge: BTreeSet<Uid>,
    /// `\Recent` in this session.
    recent: BTreeSet<Uid>,
    /// The mailbox's HIGHESTMODSEQ as far as this session has caught up.
    highest_modseq: ModSeq,
    /// The keywords the client was told about in the last `FLAGS`: one
    /// new to it is announced (`FLAGS`, `OK [PERMANENTFLAGS]`) before any
    /// FETCH shows it.
    keywords: BTreeSet<String>,
    /// The saved search result of SEARCHRES (RFC 5182), ascending UIDs;
    /// empty after SELECT/EXAMINE.
    saved: Vec<Uid>,
    /// The searches kept updated (CONTEXT=SEARCH/SORT, RFC 5267; see
    /// [`crate::extension::context`]).
    pub(crate) contexts: Vec<crate::extension::context::UpdateContext>,
    /// IMAP4rev2 is enabled: no `\Recent` and no RECENT
    /// ([`crate::extension::imap4rev2`]).
    pub(crate) rev2: bool,
    watch: MailboxWatch,
}

impl SelectedMailbox {
    /// Builds the session view from a snapshot; claims `\Recent` unless read-only.
    pub(crate) async fn open(
        handle: Selected,
        name: String,
        read_only: bool,
    ) -> Result<(SelectedMailbox, MailboxSnapshot)> {
        let read_only = read_only || handle.read_only();
        // The watch first, so no change between the snapshot and it is lost.
        let watch = handle.mailbox().watch();
        let snapshot = handle.mailbox().snapshot().await?;
        let mut recent = BTreeSet::new();
        if !read_only {
            let first = handle.mailbox().claim_recent().await?;
            recent.extend(
                snapshot
                    .messages
                    .iter()
                    .map(|m| m.uid)
                    .filter(|u| *u >= first),
            );
        }
        let sel = SelectedMailbox {
            handle,
            name,
            read_only,
            uids: snapshot.messages.iter().map(|m| m.uid).collect(),
            modseqs: snapshot.messages.iter().map(|m| m.modseq).collect(),
            pending_expunge: BTreeSet::new(),
            recent,
            highest_modseq: snapshot.highest_modseq,
            keywords: snapshot
                .messages
                .iter()
                .flat_map(|m| m.flags.keywords())
                .map(str::to_owned)
                .collect(),
            saved: Vec::new(),
            contexts: Vec::new(),
            rev2: false,
            watch,
        };
        Ok((sel, snapshot))
    }

    /// For a read-only selection (EXAMINE), which claims nothing: marks as
    /// `\Recent` in this session the messages no session has claimed yet,
    /// from a STATUS taken just before the snapshot (RFC 3501 §6.3.2:
    /// EXAMINE still reports the RECENT count). Recent messages are always
    /// the newest: the last `status.recent` of those below the UIDNEXT
    /// STATUS saw, and any that arrived after it.
    pub(crate) fn peek_recent(&mut self, status: &MailboxStatus) {
        let older = self.uids.partition_point(|u| *u < status.uid_next);
        let first = older.saturating_sub(status.recent as usize);
        self.recent.extend(self.uids[first..].iter().copied());
    }

    /// The `FLAGS` list: the system flags, then every keyword the client
    /// knows of.
    pub(crate) fn flags(&self) -> Vec<String> {
        let mut out: Vec<String> = SYSTEM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        out.extend(self.keywords.iter().cloned());
        out
    }

    /// If any of `metas` carries a keyword the client has not been told
    /// about, the untagged `FLAGS` and `OK [PERMANENTFLAGS ...]` that
    /// announce it (RFC 3501 §7.2.6: FLAGS lists the flags the mailbox
    /// uses; a client may ignore a keyword it was never told of), to be
    /// sent before the responses that show it; otherwise nothing.
    pub(crate) fn announce_keywords<'a>(
        &mut self,
        metas: impl IntoIterator<Item = &'a MessageMeta>,
    ) -> Vec<Response> {
        let mut grew = false;
        for m in metas {
            for k in m.flags.keywords() {
                if !self.keywords.contains(k) {
                    grew |= self.keywords.insert(k.to_owned());
                }
            }
        }
        if !grew {
            return Vec::new();
        }
        let flags = self.flags();
        let permanent = permanent_flags(self, &flags);
        vec![
            Response::Data(Data::Flags(flags)),
            StatusResponse::untagged(
                StatusKind::Ok,
                Some(Code::PermanentFlags(permanent)),
                "flags permitted",
            ),
        ]
    }

    /// Number of messages in the session's view.
    pub(crate) fn exists(&self) -> u32 {
        u32::try_from(self.uids.len()).unwrap_or(u32::MAX)
    }

    /// Number of `\Recent` messages.
    pub(crate) fn recent_count(&self) -> u32 {
        if self.rev2 {
            return 0;
        }
        u32::try_from(self.recent.len()).unwrap_or(u32::MAX)
    }

    /// Whether the message is `\Recent` in this session.
    pub(crate) fn is_recent(&self, uid: Uid) -> bool {
        !self.rev2 && self.recent.contains(&uid)
    }

    /// The saved search result (RFC 5182), ascending UIDs (some may have
    /// been expunged since).
    pub(crate) fn saved(&self) -> &[Uid] {
        &self.saved
    }

    /// Replaces the saved search result.
    pub(crate) fn set_saved(&mut self, uids: Vec<Uid>) {
        self.saved = uids;
    }

    /// The UIDs in sequence order.
    pub(crate) fn uids(&self) -> &[Uid] {
        &self.uids
    }

    /// The sequence number of a UID.
    pub(crate) fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids
            .binary_search(&uid)
            .ok()
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// Whether the UID was expunged elsewhere and not yet reported.
    pub(crate) fn is_pending_expunge(&self, uid: Uid) -> bool {
        self.pending_expunge.contains(&uid)
    }

    /// Resolves a sequence set (or a UID set) to `(seq, uid)` pairs in
    /// ascending order. UIDs not in the mailbox are left out.
    pub(crate) fn resolve(&self, set: &SeqSet, uid: bool) -> Vec<(u32, Uid)> {
        if uid {
            set.select_from(&self.uids, |u| u.0)
                .into_iter()
                .filter_map(|u| self.seq_of(u).map(|s| (s, u)))
                .collect()
        } else {
            let n = self.exists();
            let mut spans: Vec<(u32, u32)> = set
                .ranges
                .iter()
                .filter(|_| n > 0)
                .map(|r| r.resolve(n))
                .filter(|(a, _)| *a <= n)
                .map(|(a, b)| (a.max(1), b.min(n)))
                .collect();
            spans.sort_unstable();
            let mut out = Vec::new();
            let mut next = 1u32;
            for (a, b) in spans {
                let a = a.max(next);
                if a > b {
                    continue;
                }
                for s in a..=b {
                    out.push((s, self.uids[(s - 1) as usize]));
                }
                next = b.saturating_add(1);
            }
            out
        }
    }

    /// Whether a sequence set names numbers beyond the mailbox (RFC 3501
    /// says such a set is invalid). A range with `*` is always valid, so
    /// `1:*` on an empty mailbox simply matches nothing.
    pub(crate) fn seq_set_out_of_range(&self, set: &SeqSet) -> bool {
        let n = self.exists();
        set.ranges.iter().any(|r| match (r.start, r.end) {
            (SeqBound::Value(a), SeqBound::Value(b)) => a.max(b) > n,
            _ => false,
        })
    }

    /// Records that the client was told about a message's new state (after
    /// our own STORE), so the change feed does not repeat it.
    pub(crate) fn note_reported(&mut self, meta: &MessageMeta) {
        if let Ok(i) = self.uids.binary_search(&meta.uid)
            && self.modseqs[i] < meta.modseq
        {
            self.modseqs[i] = meta.modseq;
        }
    }

    /// Removes messages this session expunged itself and returns the
    /// responses announcing it (EXPUNGE per message, or one VANISHED).
    pub(crate) fn expunged_here(&mut self, uids: &[Uid], enabled: Enabled) -> Vec<Response> {
        let known: Vec<Uid> = uids
            .iter()
            .copied()
            .filter(|u| self.seq_of(*u).is_some())
            .collect();
        self.pending_expunge.extend(known);
        self.flush_expunges(enabled)
    }

    /// A watch on the mailbox (for IDLE).
    pub(crate) fn watch(&self) -> MailboxWatch {
        self.watch.clone()
    }

    /// The mailbox's HIGHESTMODSEQ as far as this session has caught up.
    pub(crate) fn highest_modseq(&self) -> ModSeq {
        self.highest_modseq
    }

    /// Whether the store has changes this session has not looked at.
    pub(crate) fn has_news(&self) -> bool {
        self.watch.current() != self.highest_modseq || !self.pending_expunge.is_empty()
    }

    /// Catches up with the store: returns EXISTS/RECENT for new messages,
    /// FETCH for flag changes (with UID if `with_uid`) and, if
    /// `allow_expunge`, EXPUNGE or VANISHED.
    pub(crate) async fn sync(
        &mut self,
        allow_expunge: bool,
        enabled: Enabled,
        with_uid: bool,
    ) -> Result<Vec<Response>> {
        let mut out = Vec::new();
        if self.watch.current() != self.highest_modseq {
            // Read-only, nothing is claimed: new messages no session has
            // claimed are `\Recent` here too (as in Dovecot). STATUS comes
            // first, so whatever arrives after it counts as unclaimed.
            let unclaimed = if self.read_only {
                self.handle.status().await.ok()
            } else {
                None
            };
            let changes = self
                .handle
                .mailbox()
                .changes_since(self.highest_modseq)
                .await?;
            for (uid, _) in &changes.expunged {
                if self.seq_of(*uid).is_some() {
                    self.pending_expunge.insert(*uid);
                }
            }
            let expunged: BTreeSet<Uid> = changes.expunged.iter().map(|(u, _)| *u).collect();
            let last = self.uids.last().copied().unwrap_or(Uid(0));
            let mut new = Vec::new();
            let mut flag_updates = Vec::new();
            for meta in changes.changed {
                if expunged.contains(&meta.uid) || self.pending_expunge.contains(&meta.uid) {
                    continue;
                }
                match self.uids.binary_search(&meta.uid) {
                    Ok(i) => {
                        if meta.modseq > self.modseqs[i] {
                            self.modseqs[i] = meta.modseq;
                            flag_updates.push((i, meta));
                        }
                    }
                    Err(_) if meta.uid > last => new.push(meta),
                    Err(_) => {}
                }
            }
            if changes.highest_modseq > self.highest_modseq {
                self.highest_modseq = changes.highest_modseq;
            }
            out.extend(
                self.announce_keywords(flag_updates.iter().map(|(_, m)| m).chain(new.iter())),
            );
            for (i, meta) in flag_updates {
                let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
                out.push(self.flags_fetch(seq, &meta, enabled, with_uid));
            }
            if !new.is_empty() {
                new.sort_by_key(|m| m.uid);
                for m in &new {
                    self.uids.push(m.uid);
                    self.modseqs.push(m.modseq);
                }
                if !self.read_only {
                    let first = self.handle.mailbox().claim_recent().await?;
                    self.recent
                        .extend(new.iter().map(|m| m.uid).filter(|u| *u >= first));
                } else if let Some(status) = &unclaimed {
                    self.peek_recent(status);
                }
                out.push(Response::Data(Data::Exists(self.exists())));
                if !self.rev2 {
                    out.push(Response::Data(Data::Recent(self.recent_count())));
                }
            }
        }
        if allow_expunge {
            out.extend(self.flush_expunges(enabled));
        }
        Ok(out)
    }

    /// A `* n FETCH (FLAGS ...)` for a flag change, with UID when QRESYNC
    /// (RFC 7162 §3.2.4) or IMAP4rev2 (RFC 9051 §7.5.2) is on, or
    /// `with_uid`; MODSEQ with CONDSTORE. With UIDONLY a `* uid UIDFETCH
    /// (FLAGS ...)`, whose leading number is the UID, without the item.
    pub(crate) fn flags_fetch(
        &self,
        seq: u32,
        meta: &MessageMeta,
        enabled: Enabled,
        with_uid: bool,
    ) -> Response {
        let mut items = vec![FetchItem::Flags {
            flags: meta.flags.clone(),
            recent: self.is_recent(meta.uid),
        }];
        // IMAP4rev2 (RFC 9051 §7.5.2): unsolicited FETCH responses MUST
        // carry UID.
        if !enabled.uidonly && (with_uid || enabled.qresync || enabled.imap4rev2) {
            items.push(FetchItem::Uid(meta.uid));
        }
        if enabled.condstore {
            items.push(FetchItem::ModSeq(meta.modseq));
        }
        crate::extension::uidonly::fetch_response(enabled.uidonly, seq, meta.uid, items)
    }

    fn flush_expunges(&mut self, enabled: Enabled) -> Vec<Response> {
        if self.pending_expunge.is_empty() {
            return Vec::new();
        }
        let gone = std::mem::take(&mut self.pending_expunge);
        let mut out = Vec::new();
        // UIDONLY (RFC 9586) reports expunges as VANISHED too.
        if enabled.qresync || enabled.uidonly {
            if let Some(set) = SeqSet::from_numbers(gone.iter().map(|u| u.0)) {
                out.push(Response::Data(Data::Vanished {
                    earlier: false,
                    uids: set,
                }));
            }
        } else {
            let mut seqs: Vec<u32> = gone.iter().filter_map(|u| self.seq_of(*u)).collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            out.extend(seqs.into_iter().map(|s| Response::Data(Data::Expunge(s))));
        }
        let mut keep_uids = Vec::with_capacity(self.uids.len());
        let mut keep_mod = Vec::with_capacity(self.uids.len());
        for (u, m) in self.uids.iter().zip(&self.modseqs) {
            if !gone.contains(u) {
                keep_uids.push(*u);
                keep_mod.push(*m);
            }
        }
        self.uids = keep_uids;
        self.modseqs = keep_mod;
        self.recent.retain(|u| !gone.contains(u));
        out
    }
}

/// The system flags, in the order `FLAGS` lists them.
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// `PERMANENTFLAGS` for a selected mailbox: what this principal may change.
pub(crate) fn permanent_flags(sel: &SelectedMailbox, in_use: &[String]) -> Vec<String> {
    if sel.read_only {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (flag, name) in [
        (Flag::Answered, "\\Answered"),
        (Flag::Flagged, "\\Flagged"),
        (Flag::Deleted, "\\Deleted"),
        (Flag::Seen, "\\Seen"),
        (Flag::Draft, "\\Draft"),
    ] {
        if sel.handle.may_set(&flag) {
            out.push(name.to_owned());
        }
    }
    if sel.handle.may_set(&Flag::Keyword("x".into())) {
        out.extend(in_use.iter().filter(|f| !f.starts_with('\\')).cloned());
        out.push("\\*".to_owned());
    }
    out
}
