//! [`Replication`] for [`MemoryStore`]: the primary's reads and the
//! replica's writes, under the same locks as every other operation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::replication::{
    AccountState, Applied, ApplyBatch, ChangePosition, ChangeWatch, ChangedAccounts, MailboxHead,
    MailboxState as MailboxSyncState, NamespaceOp, PendingSyncPoint, RecordsSince, ReplicaRecord,
    SyncPoint,
};
use mailroom_core::{
    Error, MailboxRef, MessageGuid, ModSeq, Replication, Result, Uid, UidValidity,
};

use super::{MemoryStore, no_such};
use crate::state::{MailboxCell, MailboxState, poisoned};

impl MemoryStore {
    /// The cell of `mailbox` if it is the incarnation with `uid_validity`.
    fn incarnation(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Arc<MailboxCell>> {
        let cell = self.live_cell(mailbox)?;
        if cell.lock_live(mailbox.name.as_str())?.uid_validity() != uid_validity {
            return Err(no_such(mailbox));
        }
        Ok(cell)
    }
}

#[async_trait]
impl Replication for MemoryStore {
    async fn accounts(&self) -> Result<Vec<String>> {
        let mut users: Vec<String> = self.shared.read()?.keys().cloned().collect();
        users.sort_unstable();
        Ok(users)
    }

    fn watch_changes(&self) -> ChangeWatch {
        self.shared.feed.watch()
    }

    async fn changed_accounts(&self, since: ChangePosition) -> Result<ChangedAccounts> {
        let (mut changed, _) = self.shared.feed.changed_since(since)?;
        if since.0 == 0 {
            changed.users.extend(self.accounts().await?);
            changed.users.sort_unstable();
            changed.users.dedup();
        }
        Ok(changed)
    }

    async fn account_state(&self, user: &str) -> Result<Option<AccountState>> {
        let accounts = self.shared.read()?;
        let Some(account) = accounts.get(user) else {
            return Ok(None);
        };
        let mut mailboxes = Vec::with_capacity(account.mailboxes.len());
        for (name, cell) in &account.mailboxes {
            let state = cell.lock()?;
            let mut acl = state.acl.clone();
            acl.entries.sort_by(|a, b| a.0.cmp(&b.0));
            mailboxes.push(MailboxSyncState {
                name: name.clone(),
                head: state.head(),
                special_use: state.special_use,
                acl,
                mailbox_id: Some(state.mailbox_id),
                sync_point: state.sync_point,
            });
        }
        let subscriptions = account.subscriptions.iter().cloned().collect();
        drop(accounts);
        let quota = self
            .shared
            .limits
            .lock()
            .map_err(|_| poisoned())?
            .get(user)
            .copied()
            .unwrap_or_default();
        Ok(Some(AccountState {
            user: user.to_owned(),
            mailboxes,
            subscriptions,
            quota,
        }))
    }

    async fn records_since(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        since: ModSeq,
        after: Uid,
        limit: usize,
    ) -> Result<RecordsSince> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        let state = cell.lock_live(mailbox.name.as_str())?;
        Ok(state.records_since(since, after, limit))
    }

    async fn records(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<ReplicaRecord>> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        let state = cell.lock_live(mailbox.name.as_str())?;
        Ok(state.replica_records(uids))
    }

    async fn record_digests(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<(MailboxHead, Vec<(Uid, u32)>)> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        let state = cell.lock_live(mailbox.name.as_str())?;
        Ok((state.head(), state.digests()))
    }

    async fn message_content(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uid: Uid,
    ) -> Result<Bytes> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        let state = cell.lock_live(mailbox.name.as_str())?;
        let content = state.content(uid)?;
        let guid = state
            .replica_records(&[uid])
            .first()
            .map(|r| r.guid)
            .ok_or(Error::NoSuchMessage(uid))?;
        drop(state);
        if MessageGuid::of(&content) != guid {
            return Err(Error::Corruption(format!(
                "{mailbox} UID {uid}: GUID mismatch"
            )));
        }
        Ok(content)
    }

    async fn sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<SyncPoint>> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        Ok(cell.lock_live(mailbox.name.as_str())?.sync_point)
    }

    async fn set_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        point: SyncPoint,
    ) -> Result<()> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        let mut state = cell.lock_live(mailbox.name.as_str())?;
        state.sync_point = Some(point);
        state.pending_sync_point = None;
        Ok(())
    }

    async fn pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<PendingSyncPoint>> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        Ok(cell.lock_live(mailbox.name.as_str())?.pending_sync_point)
    }

    async fn set_pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        pending: PendingSyncPoint,
    ) -> Result<()> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        cell.lock_live(mailbox.name.as_str())?.pending_sync_point = Some(pending);
        Ok(())
    }

    async fn apply_namespace(&self, user: &str, op: NamespaceOp) -> Result<()> {
        let mailbox_of = |name| MailboxRef::new(user, name);
        {
            let mut accounts = self.shared.write()?;
            let account = accounts.entry(user.to_owned()).or_default();
            // A replica's account is the primary's: no default mailboxes
            // are added behind replication's back.
            account.initialised = true;
            match op {
                NamespaceOp::Create {
                    name,
                    uid_validity,
                    special_use,
                    mailbox_id,
                } => {
                    if account.mailboxes.contains_key(&name) {
                        return Err(Error::MailboxExists(name.to_string()));
                    }
                    // Keep this store's own UIDVALIDITYs (after a promotion)
                    // above every replicated one.
                    self.shared
                        .next_uid_validity
                        .fetch_max(uid_validity.0.saturating_add(1), Ordering::Relaxed);
                    let mut state = MailboxState::new(uid_validity, special_use);
                    if let Some(id) = mailbox_id {
                        state.mailbox_id = id;
                    }
                    let cell = self.shared.new_cell(state);
                    account.mailboxes.insert(name, cell);
                }
                NamespaceOp::Delete { name } => {
                    let cell = account
                        .mailboxes
                        .remove(&name)
                        .ok_or_else(|| no_such(&mailbox_of(name.clone())))?;
                    cell.lock()?.close();
                }
                NamespaceOp::Rename { from, to } => {
                    if account.mailboxes.contains_key(&to) {
                        return Err(Error::MailboxExists(to.to_string()));
                    }
                    let cell = account
                        .mailboxes
                        .remove(&from)
                        .ok_or_else(|| no_such(&mailbox_of(from.clone())))?;
                    account.mailboxes.insert(to, cell);
                }
                NamespaceOp::SetAttributes {
                    name,
                    special_use,
                    acl,
                    mailbox_id,
                } => {
                    let cell = account
                        .mailboxes
                        .get(&name)
                        .ok_or_else(|| no_such(&mailbox_of(name.clone())))?;
                    let mut state = cell.lock()?;
                    state.special_use = special_use;
                    state.acl = acl;
                    if let Some(id) = mailbox_id {
                        state.mailbox_id = id;
                    }
                }
                NamespaceOp::SetSubscriptions(names) => {
                    account.subscriptions = names.into_iter().collect();
                }
                NamespaceOp::SetQuota(limits) => {
                    drop(accounts);
                    let mut map = self.shared.limits.lock().map_err(|_| poisoned())?;
                    if limits == mailroom_core::QuotaLimits::default() {
                        map.remove(user);
                    } else {
                        map.insert(user.to_owned(), limits);
                    }
                }
                _ => return Err(Error::Unsupported("namespace operation")),
            }
        }
        self.shared.namespace_changed(user);
        Ok(())
    }

    async fn apply_messages(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        batch: ApplyBatch,
    ) -> Result<Applied> {
        let cell = self.incarnation(mailbox, uid_validity)?;
        let applied = cell.lock_live(mailbox.name.as_str())?.apply(batch)?;
        self.shared.feed.touch(&mailbox.owner);
        Ok(applied)
    }
}
