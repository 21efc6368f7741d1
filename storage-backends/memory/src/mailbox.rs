//! [`MemoryMailbox`]: an open mailbox of a [`MemoryStore`](crate::MemoryStore).

use std::sync::Arc;

use async_trait::async_trait;
use mailroom_core::{
    Changes, CopyResult, Mailbox, MailboxRef, MailboxSnapshot, MailboxWatch, MessageContent,
    MessageMeta, MessageSummary, ModSeq, QuotaLimits, Result, StoreOp, StoreResult, Uid,
};

use crate::state::{CopyParties, MailboxCell, MailboxState, Viewer, poisoned};
use crate::store::Shared;

/// An open mailbox: a handle on the mailbox's shared state, seen through one
/// viewer's eyes (their `\Seen`). Every handle on the same mailbox shares the
/// messages and the change notifier, so a change through one wakes the
/// watches of all.
///
/// A handle follows its mailbox through a RENAME (other than of INBOX, whose
/// messages move away and show up here as expunged). Once the mailbox is
/// deleted, every operation fails with [`mailroom_core::Error::NoSuchMailbox`]
/// and [`MailboxWatch::changed`] returns `None`.
pub struct MemoryMailbox {
    shared: Arc<Shared>,
    cell: Arc<MailboxCell>,
    reference: MailboxRef,
    viewer: String,
}

impl std::fmt::Debug for MemoryMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMailbox")
            .field("mailbox", &self.reference.to_string())
            .field("viewer", &self.viewer)
            .finish()
    }
}

impl MemoryMailbox {
    pub(crate) fn new(
        shared: Arc<Shared>,
        cell: Arc<MailboxCell>,
        reference: MailboxRef,
        viewer: String,
    ) -> MemoryMailbox {
        MemoryMailbox {
            shared,
            cell,
            reference,
            viewer,
        }
    }

    fn viewer(&self) -> Viewer<'_> {
        Viewer::new(&self.reference.owner, &self.viewer)
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, MailboxState>> {
        self.cell.lock_live(self.reference.name.as_str())
    }

    /// COPY or MOVE charged to the quota of `dest`'s owner: the usage is
    /// counted and the copies stored under the store's charge lock, so no
    /// other charged write comes in between. A move within one owner frees
    /// what it takes and is not charged.
    fn transfer_within(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        remove_source: bool,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        if limits.is_unlimited() || (remove_source && dest.owner == self.reference.owner) {
            return self.transfer(uids, dest, remove_source, None);
        }
        let _charging = self.shared.charges.lock().map_err(|_| poisoned())?;
        let used = self.shared.usage_of(&dest.owner)?;
        self.transfer(uids, dest, remove_source, Some((limits, used)))
    }

    /// COPY, and with `remove_source` MOVE, under both mailboxes' locks;
    /// with `charge` (limits and the destination owner's usage), nothing is
    /// stored if the copies do not fit.
    fn transfer(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        remove_source: bool,
        charge: Option<(QuotaLimits, (u64, u64))>,
    ) -> Result<CopyResult> {
        let fits = |picked: &[crate::state::Picked]| {
            charge.is_none_or(|(limits, (bytes, messages))| {
                let (add, count) = MailboxState::picked_usage(picked);
                limits.allow(bytes, messages, add, count)
            })
        };
        let dest_cell = self.shared.cell(dest)?;
        let parties = CopyParties {
            viewer: &self.viewer,
            source_owner: &self.reference.owner,
            dest_owner: &dest.owner,
        };
        let dest_name = dest.name.as_str();
        if Arc::ptr_eq(&dest_cell, &self.cell) {
            let mut state = self.state()?;
            let picked = state.pick(self.viewer(), uids);
            if !fits(&picked) {
                return Err(mailroom_core::Error::OverQuota);
            }
            let result = state.insert_copies(&picked, parties)?;
            if remove_source {
                state.remove(&MailboxState::picked_uids(&picked));
            }
            return Ok(result);
        }
        let (mut source, mut target) = MailboxCell::lock_pair(&self.cell, &dest_cell)?;
        if source.is_deleted() {
            return Err(mailroom_core::Error::NoSuchMailbox(
                self.reference.name.to_string(),
            ));
        }
        if target.is_deleted() {
            return Err(mailroom_core::Error::NoSuchMailbox(dest_name.to_owned()));
        }
        let picked = source.pick(self.viewer(), uids);
        if !fits(&picked) {
            return Err(mailroom_core::Error::OverQuota);
        }
        let result = target.insert_copies(&picked, parties)?;
        if remove_source {
            source.remove(&MailboxState::picked_uids(&picked));
        }
        Ok(result)
    }
}

#[async_trait]
impl Mailbox for MemoryMailbox {
    fn reference(&self) -> &MailboxRef {
        &self.reference
    }

    async fn snapshot(&self) -> Result<MailboxSnapshot> {
        Ok(self.state()?.snapshot(self.viewer()))
    }

    async fn changes_since(&self, since: ModSeq) -> Result<Changes> {
        Ok(self.state()?.changes_since(self.viewer(), since))
    }

    fn watch(&self) -> MailboxWatch {
        self.cell.watch()
    }

    async fn claim_recent(&self) -> Result<Uid> {
        Ok(self.state()?.claim_recent())
    }

    async fn fetch_meta(&self, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        Ok(self.state()?.fetch_meta(self.viewer(), uids))
    }

    async fn summaries(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<MessageSummary>)>> {
        Ok(self.state()?.summaries(uids))
    }

    async fn content(&self, uid: Uid) -> Result<MessageContent> {
        self.state()?.content(uid)
    }

    async fn store(
        &self,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let result = self
            .state()?
            .store(self.viewer(), uids, op, unchanged_since);
        self.shared.feed.touch(&self.reference.owner);
        Ok(result)
    }

    async fn expunge(&self, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let expunged = self.state()?.expunge(uids);
        self.shared.feed.touch(&self.reference.owner);
        Ok(expunged)
    }

    async fn copy_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult> {
        let result = self.transfer(uids, dest, false, None)?;
        self.shared.feed.touch(&dest.owner);
        Ok(result)
    }

    async fn move_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult> {
        let result = self.transfer(uids, dest, true, None)?;
        self.shared.feed.touch(&self.reference.owner);
        self.shared.feed.touch(&dest.owner);
        Ok(result)
    }

    async fn copy_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        let result = self.transfer_within(uids, dest, false, limits)?;
        self.shared.feed.touch(&dest.owner);
        Ok(result)
    }

    async fn move_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        let result = self.transfer_within(uids, dest, true, limits)?;
        self.shared.feed.touch(&self.reference.owner);
        self.shared.feed.touch(&dest.owner);
        Ok(result)
    }
}
