//! The state of one mailbox incarnation and every operation on it.
//!
//! Everything here is synchronous and runs under the mailbox's mutex; the
//! async trait methods in [`crate::store`] and [`crate::mailbox`] only find
//! the right [`MailboxCell`], lock it and call in here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use mailroom_core::replication::{PendingSyncPoint, StateCrc, SyncPoint};
use mailroom_core::{
    Acl, Appended, Changes, CopyResult, Error, Flag, Flags, InternalDate, MailboxId,
    MailboxSnapshot, MailboxStatus, MailboxWatch, MessageGuid, MessageMeta, MessageSummary, ModSeq,
    NewMessage, Result, SpecialUse, StoreOp, StoreResult, Uid, UidValidity,
    storage::MailboxNotifier,
};

mod replica;

/// The modseq a new, empty mailbox starts with (RFC 7162 wants it non-zero).
const INITIAL_MODSEQ: ModSeq = ModSeq(1);

/// One mailbox incarnation behind its lock. Open handles, the namespace map
/// and in-flight operations all share it through an `Arc`.
#[derive(Debug)]
pub(crate) struct MailboxCell {
    /// A store-wide unique id, used to order locks when two mailboxes are
    /// locked together (COPY, MOVE).
    id: u64,
    state: Mutex<MailboxState>,
}

impl MailboxCell {
    pub(crate) fn new(id: u64, state: MailboxState) -> MailboxCell {
        MailboxCell {
            id,
            state: Mutex::new(state),
        }
    }

    /// Locks the state, whether or not the mailbox still exists.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, MailboxState>> {
        self.state.lock().map_err(|_| poisoned())
    }

    /// Locks the state of a mailbox that must still exist.
    pub(crate) fn lock_live(&self, name: &str) -> Result<MutexGuard<'_, MailboxState>> {
        let guard = self.lock()?;
        if guard.deleted {
            return Err(Error::NoSuchMailbox(name.to_owned()));
        }
        Ok(guard)
    }

    /// Locks two different mailboxes in a fixed order (by id), so two
    /// opposite COPYs cannot deadlock. Returns the guards in argument order.
    pub(crate) fn lock_pair<'a>(
        a: &'a MailboxCell,
        b: &'a MailboxCell,
    ) -> Result<(MutexGuard<'a, MailboxState>, MutexGuard<'a, MailboxState>)> {
        if a.id < b.id {
            let ga = a.lock()?;
            let gb = b.lock()?;
            Ok((ga, gb))
        } else {
            let gb = b.lock()?;
            let ga = a.lock()?;
            Ok((ga, gb))
        }
    }

    /// A watch, even on a poisoned lock (it only reads the notifier).
    pub(crate) fn watch(&self) -> MailboxWatch {
        let guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.watch()
    }
}

/// The error a poisoned lock becomes: a panic inside the store is a bug,
/// never a client's doing, but it must not take the server down with it.
pub(crate) fn poisoned() -> Error {
    Error::Backend("memory store lock poisoned".into())
}

/// Whose eyes a mailbox is seen through: the owner (whose `\Seen` is the one
/// on the message) or another user with their own `\Seen` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Viewer<'a> {
    /// The mailbox's owner.
    Owner,
    /// Someone else, by user name.
    Other(&'a str),
}

impl<'a> Viewer<'a> {
    pub(crate) fn new(owner: &str, viewer: &'a str) -> Viewer<'a> {
        if owner == viewer {
            Viewer::Owner
        } else {
            Viewer::Other(viewer)
        }
    }
}

/// A stored message. Cloning is cheap: the bytes and the summary are shared.
#[derive(Clone)]
pub(crate) struct StoredMessage {
    uid: Uid,
    /// Shared flags; the `\Seen` bit is the owner's.
    flags: Flags,
    modseq: ModSeq,
    internal_date: InternalDate,
    guid: MessageGuid,
    /// SAVEDATE (RFC 8514): when it was saved in this mailbox, Unix seconds.
    save_date: i64,
    content: Bytes,
    summary: Arc<MessageSummary>,
}

impl std::fmt::Debug for StoredMessage {
    // Never prints the body.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("uid", &self.uid)
            .field("flags", &self.flags)
            .field("modseq", &self.modseq)
            .field("size", &self.content.len())
            .field("guid", &self.guid)
            .finish()
    }
}

/// A message picked for COPY or MOVE, with its flags split the way the
/// destination needs them.
#[derive(Debug)]
pub(crate) struct Picked {
    message: StoredMessage,
    /// Whether the copying viewer sees it `\Seen`.
    viewer_seen: bool,
}

/// Who takes part in a COPY or MOVE, for carrying `\Seen` over correctly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyParties<'a> {
    /// The user copying.
    pub(crate) viewer: &'a str,
    /// Owner of the source mailbox.
    pub(crate) source_owner: &'a str,
    /// Owner of the destination mailbox.
    pub(crate) dest_owner: &'a str,
}

/// Everything a mailbox holds.
#[derive(Debug)]
pub(crate) struct MailboxState {
    /// Set when the mailbox is deleted; every later operation on a handle fails.
    deleted: bool,
    /// Wakes watchers; dropped on delete so that watches end.
    notifier: Option<MailboxNotifier>,
    uid_validity: UidValidity,
    /// MAILBOXID (RFC 8474), made with the mailbox.
    pub(crate) mailbox_id: MailboxId,
    uid_next: Uid,
    highest_modseq: ModSeq,
    /// Messages with this UID or above are recent for the next claim.
    recent_from: Uid,
    messages: BTreeMap<Uid, StoredMessage>,
    /// Sum of the sizes of `messages`, kept up to date on every insert and
    /// removal (STATUS SIZE and quota usage without a scan).
    bytes: u64,
    /// The replication state CRC of `messages`, kept up to date the same
    /// way (see `mailroom_core::replication::StateCrc`).
    state_crc: StateCrc,
    /// Every expunge of this incarnation, in the order it happened.
    expunged: Vec<(Uid, ModSeq)>,
    /// `\Seen` of users other than the owner.
    seen: HashMap<String, BTreeSet<Uid>>,
    /// The special use.
    pub(crate) special_use: Option<SpecialUse>,
    /// The ACL (entries for users other than the owner).
    pub(crate) acl: Acl,
    /// The last state replication verified both ends share.
    pub(crate) sync_point: Option<SyncPoint>,
    /// The sync point a primary is about to propose (cleared by the next
    /// sync point).
    pub(crate) pending_sync_point: Option<PendingSyncPoint>,
}

impl MailboxState {
    /// A new, empty mailbox.
    pub(crate) fn new(uid_validity: UidValidity, special_use: Option<SpecialUse>) -> MailboxState {
        let (notifier, _) = MailboxWatch::channel(INITIAL_MODSEQ);
        MailboxState {
            deleted: false,
            notifier: Some(notifier),
            uid_validity,
            mailbox_id: MailboxId::generate(&uid_validity.0.to_le_bytes()),
            uid_next: Uid(1),
            highest_modseq: INITIAL_MODSEQ,
            recent_from: Uid(1),
            messages: BTreeMap::new(),
            bytes: 0,
            state_crc: StateCrc::default(),
            expunged: Vec::new(),
            seen: HashMap::new(),
            special_use,
            acl: Acl::default(),
            sync_point: None,
            pending_sync_point: None,
        }
    }

    /// Marks the mailbox deleted, frees its messages and ends every watch.
    pub(crate) fn close(&mut self) {
        self.deleted = true;
        self.messages.clear();
        self.bytes = 0;
        self.state_crc = StateCrc::default();
        self.expunged.clear();
        self.seen.clear();
        self.notifier = None;
    }

    /// A watch on this mailbox; one that reports "gone" if it was deleted.
    pub(crate) fn watch(&self) -> MailboxWatch {
        match &self.notifier {
            Some(n) => n.subscribe(),
            None => {
                let (notifier, watch) = MailboxWatch::channel(self.highest_modseq);
                drop(notifier);
                watch
            }
        }
    }

    fn notify(&self) {
        if let Some(n) = &self.notifier {
            n.notify(self.highest_modseq);
        }
    }

    /// Takes the next modseq for a change.
    fn bump(&mut self) -> ModSeq {
        self.highest_modseq = self.highest_modseq.next();
        self.highest_modseq
    }

    /// Takes the next UID.
    fn take_uid(&mut self) -> Result<Uid> {
        if self.uid_next.0 == u32::MAX {
            return Err(Error::Cannot("mailbox has run out of UIDs"));
        }
        let uid = self.uid_next;
        self.uid_next = Uid(uid.0 + 1);
        Ok(uid)
    }

    /// Whether the mailbox was deleted.
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// Total bytes and number of messages.
    pub(crate) fn usage(&self) -> (u64, u64) {
        (self.bytes, self.messages.len() as u64)
    }

    fn insert(&mut self, message: StoredMessage) {
        self.bytes = self.bytes.saturating_add(message.content.len() as u64);
        self.state_crc.toggle(message.state_crc());
        if let Some(old) = self.messages.insert(message.uid, message) {
            // UIDs are never reused (except by a replica's repair); stay exact.
            self.bytes = self.bytes.saturating_sub(old.content.len() as u64);
            self.state_crc.toggle(old.state_crc());
        }
    }

    fn viewer_seen(&self, viewer: Viewer<'_>, message: &StoredMessage) -> bool {
        match viewer {
            Viewer::Owner => message.flags.contains(&Flag::Seen),
            Viewer::Other(user) => self
                .seen
                .get(user)
                .is_some_and(|set| set.contains(&message.uid)),
        }
    }

    /// The flags of a message as `viewer` sees them.
    fn flags_for(&self, viewer: Viewer<'_>, message: &StoredMessage) -> Flags {
        match viewer {
            Viewer::Owner => message.flags.clone(),
            Viewer::Other(_) => {
                let mut flags = message.flags.clone();
                flags.remove(&Flag::Seen);
                if self.viewer_seen(viewer, message) {
                    flags.insert(Flag::Seen);
                }
                flags
            }
        }
    }

    fn meta(&self, viewer: Viewer<'_>, message: &StoredMessage) -> MessageMeta {
        MessageMeta {
            uid: message.uid,
            flags: self.flags_for(viewer, message),
            modseq: message.modseq,
            internal_date: message.internal_date,
            size: message.content.len() as u64,
            guid: message.guid,
            save_date: Some(message.save_date),
        }
    }

    /// Appends a new message and wakes watchers.
    pub(crate) fn append(&mut self, message: NewMessage) -> Result<Appended> {
        let mut one = self.append_all(vec![message])?;
        one.pop()
            .ok_or_else(|| Error::Backend("append stored nothing".into()))
    }

    /// Appends several messages in one step (MULTIAPPEND): all get
    /// consecutive UIDs, or none is added (the only failure, running out
    /// of UIDs, is checked before anything changes). Watchers wake once.
    pub(crate) fn append_all(&mut self, messages: Vec<NewMessage>) -> Result<Vec<Appended>> {
        if u64::from(self.uid_next.0) + messages.len() as u64 > u64::from(u32::MAX) {
            return Err(Error::Cannot("mailbox has run out of UIDs"));
        }
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            let uid = self.take_uid()?;
            let modseq = self.bump();
            let stored = StoredMessage {
                uid,
                flags: message.flags,
                modseq,
                internal_date: message.internal_date.unwrap_or_else(InternalDate::now),
                guid: MessageGuid::of(&message.content),
                save_date: InternalDate::now().timestamp,
                summary: Arc::new(MessageSummary::parse(&message.content)),
                content: message.content,
            };
            self.insert(stored);
            out.push(Appended {
                uid_validity: self.uid_validity,
                uid,
                modseq,
            });
        }
        self.notify();
        Ok(out)
    }

    /// STATUS figures for `viewer`.
    pub(crate) fn status(&self, viewer: Viewer<'_>) -> MailboxStatus {
        let mut status = MailboxStatus {
            messages: count_u32(self.messages.len()),
            recent: count_u32(self.messages.range(self.recent_from..).count()),
            uid_next: self.uid_next,
            uid_validity: self.uid_validity,
            unseen: 0,
            deleted: 0,
            highest_modseq: self.highest_modseq,
            size: self.bytes,
            mailbox_id: self.mailbox_id,
        };
        for m in self.messages.values() {
            if !self.viewer_seen(viewer, m) {
                status.unseen += 1;
            }
            if m.flags.contains(&Flag::Deleted) {
                status.deleted += 1;
            }
        }
        status
    }

    /// Every message as `viewer` sees it.
    pub(crate) fn snapshot(&self, viewer: Viewer<'_>) -> MailboxSnapshot {
        MailboxSnapshot {
            mailbox_id: self.mailbox_id,
            uid_validity: self.uid_validity,
            uid_next: self.uid_next,
            highest_modseq: self.highest_modseq,
            messages: self
                .messages
                .values()
                .map(|m| self.meta(viewer, m))
                .collect(),
        }
    }

    /// Records with a modseq above `since`, and expunges after it.
    pub(crate) fn changes_since(&self, viewer: Viewer<'_>, since: ModSeq) -> Changes {
        let mut expunged: Vec<(Uid, ModSeq)> = self
            .expunged
            .iter()
            .copied()
            .filter(|(_, m)| *m > since)
            .collect();
        expunged.sort_unstable();
        Changes {
            highest_modseq: self.highest_modseq,
            changed: self
                .messages
                .values()
                .filter(|m| m.modseq > since)
                .map(|m| self.meta(viewer, m))
                .collect(),
            expunged,
            expunged_complete: true,
        }
    }

    /// Claims `\Recent`: returns the old boundary and moves it past every message.
    pub(crate) fn claim_recent(&mut self) -> Uid {
        let from = self.recent_from;
        self.recent_from = self.uid_next;
        from
    }

    /// Metadata of the present UIDs among `uids`, in the order asked.
    pub(crate) fn fetch_meta(&self, viewer: Viewer<'_>, uids: &[Uid]) -> Vec<MessageMeta> {
        uids.iter()
            .filter_map(|u| self.messages.get(u))
            .map(|m| self.meta(viewer, m))
            .collect()
    }

    /// Summaries of the present UIDs among `uids`, in the order asked.
    pub(crate) fn summaries(&self, uids: &[Uid]) -> Vec<(Uid, Arc<MessageSummary>)> {
        uids.iter()
            .filter_map(|u| self.messages.get(u))
            .map(|m| (m.uid, Arc::clone(&m.summary)))
            .collect()
    }

    /// The bytes of one message, shared.
    pub(crate) fn content(&self, uid: Uid) -> Result<Bytes> {
        self.messages
            .get(&uid)
            .map(|m| m.content.clone())
            .ok_or(Error::NoSuchMessage(uid))
    }

    /// STORE with optional UNCHANGEDSINCE. One modseq for the whole command,
    /// taken only if some flags really change.
    pub(crate) fn store(
        &mut self,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> StoreResult {
        let mut result = StoreResult::default();
        // (uid, new shared flags, new viewer \Seen)
        let mut updates: Vec<(Uid, Flags, bool)> = Vec::new();
        for uid in sorted_unique(uids) {
            let Some(message) = self.messages.get(&uid) else {
                continue;
            };
            if unchanged_since.is_some_and(|u| message.modseq > u) {
                result.modified.push(uid);
                continue;
            }
            let mut view = self.flags_for(viewer, message);
            if !view.apply(op) {
                continue;
            }
            let seen = view.contains(&Flag::Seen);
            let shared = match viewer {
                Viewer::Owner => view,
                Viewer::Other(_) => {
                    // Only the viewer's own \Seen changes; the owner's stays.
                    let mut shared = view;
                    shared.remove(&Flag::Seen);
                    if message.flags.contains(&Flag::Seen) {
                        shared.insert(Flag::Seen);
                    }
                    shared
                }
            };
            updates.push((uid, shared, seen));
        }
        if updates.is_empty() {
            return result;
        }
        let modseq = self.bump();
        for (uid, shared, seen) in updates {
            if let Viewer::Other(user) = viewer {
                let set = self.seen.entry(user.to_owned()).or_default();
                if seen {
                    set.insert(uid);
                } else {
                    set.remove(&uid);
                }
            }
            if let Some(message) = self.messages.get_mut(&uid) {
                self.state_crc.toggle(message.state_crc());
                message.flags = shared;
                message.modseq = modseq;
                self.state_crc.toggle(message.state_crc());
            }
            if let Some(message) = self.messages.get(&uid) {
                result.changed.push(self.meta(viewer, message));
            }
        }
        self.notify();
        result
    }

    /// EXPUNGE: removes the `\Deleted` messages (among `uids` if given).
    pub(crate) fn expunge(&mut self, uids: Option<&[Uid]>) -> Vec<Uid> {
        let candidates: Vec<Uid> = match uids {
            Some(uids) => sorted_unique(uids),
            None => self.messages.keys().copied().collect(),
        };
        let doomed: Vec<Uid> = candidates
            .into_iter()
            .filter(|u| {
                self.messages
                    .get(u)
                    .is_some_and(|m| m.flags.contains(&Flag::Deleted))
            })
            .collect();
        self.remove(&doomed);
        doomed
    }

    /// Removes the given present UIDs (sorted, unique) with one modseq,
    /// remembering them, and wakes watchers. Does nothing for an empty list.
    pub(crate) fn remove(&mut self, uids: &[Uid]) {
        if uids.is_empty() {
            return;
        }
        let modseq = self.bump();
        for uid in uids {
            if let Some(gone) = self.messages.remove(uid) {
                self.bytes = self.bytes.saturating_sub(gone.content.len() as u64);
                self.state_crc.toggle(gone.state_crc());
                self.expunged.push((*uid, modseq));
            }
        }
        for set in self.seen.values_mut() {
            for uid in uids {
                set.remove(uid);
            }
        }
        self.seen.retain(|_, set| !set.is_empty());
        self.notify();
    }

    /// The present messages among `uids`, ascending, for COPY or MOVE.
    pub(crate) fn pick(&self, viewer: Viewer<'_>, uids: &[Uid]) -> Vec<Picked> {
        sorted_unique(uids)
            .into_iter()
            .filter_map(|u| self.messages.get(&u))
            .map(|m| Picked {
                viewer_seen: self.viewer_seen(viewer, m),
                message: m.clone(),
            })
            .collect()
    }

    /// Inserts copies of picked messages with new UIDs (one modseq for all)
    /// and wakes watchers. Either every message is inserted or none.
    pub(crate) fn insert_copies(
        &mut self,
        picked: &[Picked],
        parties: CopyParties<'_>,
    ) -> Result<CopyResult> {
        let mut result = CopyResult {
            uid_validity: self.uid_validity,
            mapping: Vec::with_capacity(picked.len()),
        };
        if picked.is_empty() {
            return Ok(result);
        }
        let room = u32::MAX - self.uid_next.0;
        if u32::try_from(picked.len()).map_or(true, |n| n > room) {
            return Err(Error::Cannot("mailbox has run out of UIDs"));
        }
        let modseq = self.bump();
        let viewer_owns_dest = parties.viewer == parties.dest_owner;
        for p in picked {
            let uid = self.take_uid()?;
            let source_owner_seen = p.message.flags.contains(&Flag::Seen);
            // The destination owner's \Seen: the copier's own if they own the
            // destination, the source owner's if the mailbox stays with the
            // same owner, otherwise the message is new to them.
            let owner_seen = if viewer_owns_dest {
                p.viewer_seen
            } else {
                parties.source_owner == parties.dest_owner && source_owner_seen
            };
            let mut flags = p.message.flags.clone();
            flags.remove(&Flag::Seen);
            if owner_seen {
                flags.insert(Flag::Seen);
            }
            if !viewer_owns_dest && p.viewer_seen {
                self.seen
                    .entry(parties.viewer.to_owned())
                    .or_default()
                    .insert(uid);
            }
            let copy = StoredMessage {
                uid,
                flags,
                modseq,
                save_date: InternalDate::now().timestamp,
                ..p.message.clone()
            };
            self.insert(copy);
            result.mapping.push((p.message.uid, uid));
        }
        self.notify();
        Ok(result)
    }

    /// The UIDs of picked messages, for removing them after a MOVE.
    /// Bytes and messages the picked messages add where they are copied.
    pub(crate) fn picked_usage(picked: &[Picked]) -> (u64, u64) {
        let bytes = picked.iter().map(|p| p.message.content.len() as u64).sum();
        (bytes, picked.len() as u64)
    }

    pub(crate) fn picked_uids(picked: &[Picked]) -> Vec<Uid> {
        picked.iter().map(|p| p.message.uid).collect()
    }

    /// A new incarnation holding every message of this one, with the same
    /// UIDs, flags, modseqs and per-user `\Seen` (for RENAME of INBOX).
    pub(crate) fn clone_contents(&self, uid_validity: UidValidity) -> MailboxState {
        let mut target = MailboxState::new(uid_validity, None);
        target.uid_next = self.uid_next;
        target.highest_modseq = self.highest_modseq;
        target.recent_from = self.recent_from;
        target.messages = self.messages.clone();
        target.bytes = self.bytes;
        target.state_crc = self.state_crc;
        target.seen = self.seen.clone();
        if let Some(n) = &target.notifier {
            n.notify(target.highest_modseq);
        }
        target
    }

    /// Expunges every message (the INBOX side of RENAME INBOX).
    pub(crate) fn empty(&mut self) {
        let all: Vec<Uid> = self.messages.keys().copied().collect();
        self.remove(&all);
    }
}

/// Sorted, deduplicated copy of a UID list.
fn sorted_unique(uids: &[Uid]) -> Vec<Uid> {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_message(flags: &[Flag]) -> NewMessage {
        NewMessage {
            flags: flags.iter().cloned().collect(),
            internal_date: Some(InternalDate {
                timestamp: 1_700_000_000,
                offset_minutes: 60,
            }),
            content: Bytes::from_static(b"Subject: t\r\n\r\nbody\r\n"),
        }
    }

    #[test]
    fn append_takes_uid_and_modseq() {
        let mut s = MailboxState::new(UidValidity(7), None);
        let a = s.append(new_message(&[])).unwrap();
        let b = s.append(new_message(&[Flag::Seen])).unwrap();
        assert_eq!((a.uid, b.uid), (Uid(1), Uid(2)));
        assert!(a.modseq > INITIAL_MODSEQ && b.modseq > a.modseq);
        assert_eq!(s.status(Viewer::Owner).unseen, 1);
        assert_eq!(s.status(Viewer::Other("bob")).unseen, 2);
    }

    #[test]
    fn other_viewer_store_keeps_owner_seen() {
        let mut s = MailboxState::new(UidValidity(7), None);
        s.append(new_message(&[Flag::Seen])).unwrap();
        let bob = Viewer::Other("bob");
        let r = s.store(
            bob,
            &[Uid(1)],
            &StoreOp::Replace([Flag::Flagged].into_iter().collect()),
            None,
        );
        assert_eq!(r.changed.len(), 1);
        let owner = s.fetch_meta(Viewer::Owner, &[Uid(1)]);
        assert!(owner[0].flags.contains(&Flag::Seen));
        assert!(owner[0].flags.contains(&Flag::Flagged));
        let seen_by_bob = s.fetch_meta(bob, &[Uid(1)]);
        assert!(!seen_by_bob[0].flags.contains(&Flag::Seen));
    }

    #[test]
    fn expunge_forgets_seen_sets() {
        let mut s = MailboxState::new(UidValidity(7), None);
        s.append(new_message(&[Flag::Deleted])).unwrap();
        let bob = Viewer::Other("bob");
        s.store(
            bob,
            &[Uid(1)],
            &StoreOp::Add([Flag::Seen].into_iter().collect()),
            None,
        );
        assert_eq!(s.expunge(None), vec![Uid(1)]);
        assert!(s.seen.is_empty());
        assert_eq!(s.changes_since(bob, ModSeq(0)).expunged.len(), 1);
    }

    #[test]
    fn deleted_mailbox_watch_ends() {
        let mut s = MailboxState::new(UidValidity(7), None);
        let mut w = s.watch();
        s.close();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(w.changed()), None);
        let mut w2 = s.watch();
        assert_eq!(rt.block_on(w2.changed()), None);
    }
}
