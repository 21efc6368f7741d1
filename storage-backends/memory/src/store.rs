//! [`MemoryStore`]: the namespace of every user and the [`Storage`] and
//! [`Quota`] implementations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use mailroom_core::access::{MAX_SHARED_MAILBOXES, identifier_applies};
use mailroom_core::mailbox::DEFAULT_MAILBOXES;
use mailroom_core::maildrop::{MaildropLock, MaildropLocks};
use mailroom_core::{
    Acl, Appended, Error, Mailbox, MailboxInfo, MailboxName, MailboxRef, MailboxStatus,
    NamespaceWatch, NamespaceWatches, NewMessage, Quota, QuotaLimits, QuotaUsage, Result, Rights,
    SpecialUse, Storage, UidValidity,
};

use crate::mailbox::MemoryMailbox;
use crate::state::{MailboxCell, MailboxState, Viewer, poisoned};
use mailroom_core::replication::ChangeFeed;

mod replication;

/// One user's namespace.
#[derive(Debug, Default)]
struct Account {
    mailboxes: BTreeMap<MailboxName, Arc<MailboxCell>>,
    subscriptions: BTreeSet<MailboxName>,
    /// Whether [`Storage::ensure_account`] has created the default mailboxes
    /// (once: a user who later deletes `Junk` does not get it back at login).
    initialised: bool,
}

/// What every clone of a store and every open mailbox share.
///
/// Lock order: `charges` first; then `accounts` before any mailbox; two
/// mailboxes by cell id ([`MailboxCell::lock_pair`]); `limits` alone. No
/// lock is ever held across an `.await` (no method here awaits at all).
#[derive(Debug)]
pub(crate) struct Shared {
    accounts: RwLock<HashMap<String, Account>>,
    limits: Mutex<HashMap<String, QuotaLimits>>,
    /// Held by every write charged to a quota (an APPEND or a COPY within
    /// quota) from counting the owner's usage to storing the message, so
    /// that counting, checking and storing are one atomic step: two charged
    /// writes can never both count the usage before either adds to it.
    /// Store-wide (writes here take microseconds, so serializing the charged
    /// ones costs nothing worth a table of per-owner locks).
    pub(crate) charges: Mutex<()>,
    next_uid_validity: AtomicU32,
    next_cell_id: AtomicU64,
    /// Which accounts changed when, for replication.
    pub(crate) feed: ChangeFeed,
    /// The POP3 maildrop locks held.
    maildrops: MaildropLocks,
    /// Who watches which user's namespace ([`Storage::watch_namespace`]).
    namespace: NamespaceWatches,
}

impl Shared {
    /// After a change to `user`'s mailbox names or subscriptions: tells
    /// replication and wakes the user's namespace watches.
    pub(crate) fn namespace_changed(&self, user: &str) {
        self.feed.touch(user);
        self.namespace.bump(user);
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, HashMap<String, Account>>> {
        self.accounts.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, HashMap<String, Account>>> {
        self.accounts.write().map_err(|_| poisoned())
    }

    /// The current incarnation of a mailbox.
    pub(crate) fn cell(&self, mailbox: &MailboxRef) -> Result<Arc<MailboxCell>> {
        self.read()?
            .get(&mailbox.owner)
            .and_then(|a| a.mailboxes.get(&mailbox.name))
            .cloned()
            .ok_or_else(|| no_such(mailbox))
    }

    /// Bytes and messages in every mailbox of `owner` (takes each mailbox's
    /// lock in turn: the caller holds none).
    pub(crate) fn usage_of(&self, owner: &str) -> Result<(u64, u64)> {
        let (mut bytes, mut messages) = (0u64, 0u64);
        let accounts = self.read()?;
        if let Some(account) = accounts.get(owner) {
            for cell in account.mailboxes.values() {
                let (b, m) = cell.lock()?.usage();
                bytes = bytes.saturating_add(b);
                messages = messages.saturating_add(m);
            }
        }
        Ok((bytes, messages))
    }

    /// A fresh UIDVALIDITY: never the same twice in one store, never zero.
    fn uid_validity(&self) -> UidValidity {
        let previous = self
            .next_uid_validity
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.checked_add(1).unwrap_or(1))
            })
            .unwrap_or(1);
        UidValidity(previous.max(1))
    }

    fn new_cell(&self, state: MailboxState) -> Arc<MailboxCell> {
        let id = self.next_cell_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(MailboxCell::new(id, state))
    }

    fn new_mailbox(&self, special_use: Option<SpecialUse>) -> Arc<MailboxCell> {
        self.new_cell(MailboxState::new(self.uid_validity(), special_use))
    }
}

fn no_such(mailbox: &MailboxRef) -> Error {
    Error::NoSuchMailbox(mailbox.name.to_string())
}

/// An in-memory mailbox store: every user's mailboxes, messages, flags,
/// subscriptions, ACLs and quota limits, held in this process.
///
/// Cloning is cheap and gives another handle on the same data. See the
/// [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryStore {
    // Counts only: never dumps messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.shared.accounts.read().map(|a| a.len()).ok();
        f.debug_struct("MemoryStore")
            .field("users", &users)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store. UIDVALIDITY values start from the current time in
    /// seconds, so a restarted process hands out larger ones than before.
    pub fn new() -> MemoryStore {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        let start = u32::try_from(now).unwrap_or(1).max(1);
        MemoryStore {
            shared: Arc::new(Shared {
                accounts: RwLock::new(HashMap::new()),
                limits: Mutex::new(HashMap::new()),
                charges: Mutex::new(()),
                next_uid_validity: AtomicU32::new(start),
                next_cell_id: AtomicU64::new(0),
                feed: ChangeFeed::default(),
                maildrops: MaildropLocks::default(),
                namespace: NamespaceWatches::default(),
            }),
        }
    }

    fn live_cell(&self, mailbox: &MailboxRef) -> Result<Arc<MailboxCell>> {
        self.shared.cell(mailbox)
    }
}

#[async_trait]
impl Storage for MemoryStore {
    async fn ensure_account(&self, user: &str) -> Result<()> {
        if self.shared.read()?.get(user).is_some_and(|a| a.initialised) {
            return Ok(());
        }
        let mut accounts = self.shared.write()?;
        let account = accounts.entry(user.to_owned()).or_default();
        if account.initialised {
            return Ok(());
        }
        for (name, special_use) in DEFAULT_MAILBOXES {
            let name = MailboxName::new(name)?;
            if !account.mailboxes.contains_key(&name) {
                let cell = self.shared.new_mailbox(special_use);
                account.mailboxes.insert(name.clone(), cell);
            }
            account.subscriptions.insert(name);
        }
        account.initialised = true;
        tracing::debug!(user, "account created");
        self.shared.namespace_changed(user);
        Ok(())
    }

    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        let accounts = self.shared.read()?;
        let Some(account) = accounts.get(owner) else {
            return Ok(Vec::new());
        };
        account
            .mailboxes
            .iter()
            .map(|(name, cell)| {
                Ok(MailboxInfo {
                    name: name.clone(),
                    special_use: cell.lock()?.special_use,
                })
            })
            .collect()
    }

    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()> {
        let mut accounts = self.shared.write()?;
        let account = accounts.entry(mailbox.owner.clone()).or_default();
        if account.mailboxes.contains_key(&mailbox.name) {
            return Err(Error::MailboxExists(mailbox.name.to_string()));
        }
        let cell = self.shared.new_mailbox(special_use);
        account.mailboxes.insert(mailbox.name.clone(), cell);
        tracing::debug!(%mailbox, "mailbox created");
        self.shared.namespace_changed(&mailbox.owner);
        Ok(())
    }

    async fn delete(&self, mailbox: &MailboxRef) -> Result<()> {
        if mailbox.name.is_inbox() {
            return Err(Error::Cannot("INBOX cannot be deleted"));
        }
        let mut accounts = self.shared.write()?;
        let account = accounts
            .get_mut(&mailbox.owner)
            .ok_or_else(|| no_such(mailbox))?;
        let cell = account
            .mailboxes
            .get(&mailbox.name)
            .ok_or_else(|| no_such(mailbox))?;
        cell.lock()?.close();
        account.mailboxes.remove(&mailbox.name);
        tracing::debug!(%mailbox, "mailbox deleted");
        self.shared.namespace_changed(&mailbox.owner);
        Ok(())
    }

    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        let mut accounts = self.shared.write()?;
        let account = accounts.get_mut(&from.owner).ok_or_else(|| no_such(from))?;
        let source = account
            .mailboxes
            .get(&from.name)
            .cloned()
            .ok_or_else(|| no_such(from))?;
        if account.mailboxes.contains_key(to) {
            return Err(Error::MailboxExists(to.to_string()));
        }
        if from.name.is_inbox() {
            // RFC 3501 §6.3.5: the messages move to a new mailbox and INBOX
            // stays, empty. Sessions with INBOX selected see them expunged.
            let mut inbox = source.lock()?;
            let target = inbox.clone_contents(self.shared.uid_validity());
            inbox.empty();
            drop(inbox);
            account
                .mailboxes
                .insert(to.clone(), self.shared.new_cell(target));
        } else {
            account.mailboxes.remove(&from.name);
            account.mailboxes.insert(to.clone(), source);
        }
        tracing::debug!(%from, to = %to, "mailbox renamed");
        self.shared.namespace_changed(&from.owner);
        Ok(())
    }

    async fn set_special_use(
        &self,
        mailbox: &MailboxRef,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let cell = self.live_cell(mailbox)?;
        cell.lock_live(mailbox.name.as_str())?.special_use = special_use;
        self.shared.namespace_changed(&mailbox.owner);
        Ok(())
    }

    fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        self.shared.namespace.watch(user.to_owned())
    }

    /// Every change goes through this store, which wakes the watches
    /// before it returns.
    fn namespace_watch_is_complete(&self) -> bool {
        true
    }

    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        Ok(self
            .shared
            .read()?
            .get(user)
            .map(|a| a.subscriptions.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn set_subscribed(&self, user: &str, name: &MailboxName, subscribed: bool) -> Result<()> {
        let mut accounts = self.shared.write()?;
        if subscribed {
            accounts
                .entry(user.to_owned())
                .or_default()
                .subscriptions
                .insert(name.clone());
        } else if let Some(account) = accounts.get_mut(user) {
            account.subscriptions.remove(name);
        }
        self.shared.namespace_changed(user);
        Ok(())
    }

    async fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        // Every other account's mailboxes: a scan, which is what an
        // in-memory store can afford (no index to keep in step).
        let accounts = self.shared.read()?;
        let mut out = Vec::new();
        for (owner, account) in accounts.iter().filter(|(o, _)| o.as_str() != user) {
            for (name, cell) in &account.mailboxes {
                // (the map holds live mailboxes only)
                if cell
                    .lock()?
                    .acl
                    .entries
                    .iter()
                    .any(|(id, _)| identifier_applies(id, user))
                {
                    out.push(MailboxRef::new(owner.clone(), name.clone()));
                    if out.len() >= MAX_SHARED_MAILBOXES {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl> {
        let cell = self.live_cell(mailbox)?;
        Ok(cell.lock_live(mailbox.name.as_str())?.acl.clone())
    }

    async fn set_acl(
        &self,
        mailbox: &MailboxRef,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()> {
        let cell = self.live_cell(mailbox)?;
        cell.lock_live(mailbox.name.as_str())?
            .acl
            .set(identifier, rights);
        self.shared.feed.touch(&mailbox.owner);
        Ok(())
    }

    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        let cell = self.live_cell(mailbox)?;
        let state = cell.lock_live(mailbox.name.as_str())?;
        Ok(state.status(Viewer::new(&mailbox.owner, viewer)))
    }

    async fn open(&self, mailbox: &MailboxRef, viewer: &str) -> Result<Arc<dyn Mailbox>> {
        let cell = self.live_cell(mailbox)?;
        drop(cell.lock_live(mailbox.name.as_str())?);
        Ok(Arc::new(MemoryMailbox::new(
            Arc::clone(&self.shared),
            cell,
            mailbox.clone(),
            viewer.to_owned(),
        )))
    }

    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        let cell = self.live_cell(mailbox)?;
        let appended = cell.lock_live(mailbox.name.as_str())?.append(message)?;
        self.shared.feed.touch(&mailbox.owner);
        Ok(appended)
    }

    async fn lock_maildrop(&self, user: &str) -> Result<MaildropLock> {
        self.shared.maildrops.try_lock(user)
    }

    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        if limits.is_unlimited() {
            return self.append(mailbox, message).await;
        }
        let charging = self.shared.charges.lock().map_err(|_| poisoned())?;
        let cell = self.live_cell(mailbox)?;
        let (bytes, messages) = self.shared.usage_of(&mailbox.owner)?;
        if !limits.allow(bytes, messages, message.content.len() as u64, 1) {
            return Err(Error::OverQuota);
        }
        let appended = cell.lock_live(mailbox.name.as_str())?.append(message)?;
        drop(charging);
        self.shared.feed.touch(&mailbox.owner);
        Ok(appended)
    }

    /// MULTIAPPEND: every message is added under one lock of the mailbox
    /// (so no reader sees part of them), after one quota check for all.
    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        let limits = limits.filter(|l| !l.is_unlimited());
        let charging = match limits {
            Some(_) => Some(self.shared.charges.lock().map_err(|_| poisoned())?),
            None => None,
        };
        let cell = self.live_cell(mailbox)?;
        if let Some(limits) = limits {
            let (bytes, count) = self.shared.usage_of(&mailbox.owner)?;
            let add: u64 = messages.iter().map(|m| m.content.len() as u64).sum();
            if !limits.allow(bytes, count, add, messages.len() as u64) {
                return Err(Error::OverQuota);
            }
        }
        let appended = cell
            .lock_live(mailbox.name.as_str())?
            .append_all(messages)?;
        drop(charging);
        self.shared.feed.touch(&mailbox.owner);
        Ok(appended)
    }
}

#[async_trait]
impl Quota for MemoryStore {
    async fn usage(&self, root: &str) -> Result<QuotaUsage> {
        let limits = self.limits(root).await?;
        let (storage_bytes, messages) = self.shared.usage_of(root)?;
        Ok(QuotaUsage {
            root: root.to_owned(),
            storage_bytes,
            messages,
            limits,
        })
    }

    async fn limits(&self, root: &str) -> Result<QuotaLimits> {
        Ok(self
            .shared
            .limits
            .lock()
            .map_err(|_| poisoned())?
            .get(root)
            .copied()
            .unwrap_or_default())
    }

    async fn set_limits(&self, root: &str, limits: QuotaLimits) -> Result<()> {
        let mut map = self.shared.limits.lock().map_err(|_| poisoned())?;
        if limits == QuotaLimits::default() {
            map.remove(root);
        } else {
            map.insert(root.to_owned(), limits);
        }
        drop(map);
        self.shared.feed.touch(root);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mailroom_core::{Flags, Uid};

    const SECRET: &str = "a body that must never reach a log";

    async fn store_with_message() -> (MemoryStore, MailboxRef, Bytes) {
        let store = MemoryStore::new();
        store.ensure_account("alice").await.unwrap();
        let inbox = MailboxRef::new("alice", MailboxName::inbox());
        let content = Bytes::from(format!("Subject: s\r\n\r\n{SECRET}\r\n"));
        store
            .append(
                &inbox,
                NewMessage {
                    flags: Flags::default(),
                    internal_date: None,
                    content: content.clone(),
                },
            )
            .await
            .unwrap();
        (store, inbox, content)
    }

    #[tokio::test]
    async fn content_and_summaries_are_shared_not_copied() {
        let (store, inbox, content) = store_with_message().await;
        let mailbox = store.open(&inbox, "alice").await.unwrap();
        let fetched = mailbox.content(Uid(1)).await.unwrap();
        assert_eq!(
            fetched.as_ptr(),
            content.as_ptr(),
            "FETCH hands out the appended buffer"
        );
        let first = mailbox.summaries(&[Uid(1)]).await.unwrap();
        let second = mailbox.summaries(&[Uid(1)]).await.unwrap();
        assert!(
            Arc::ptr_eq(&first[0].1, &second[0].1),
            "the summary is parsed once"
        );

        let sent = MailboxRef::new("alice", MailboxName::new("Sent").unwrap());
        let copy = mailbox.copy_to(&[Uid(1)], &sent).await.unwrap();
        let sent_box = store.open(&sent, "alice").await.unwrap();
        let dest_uid = copy.mapping[0].1;
        let copied = sent_box.content(dest_uid).await.unwrap();
        assert_eq!(copied.as_ptr(), content.as_ptr(), "a copy shares the bytes");
        let copied_summary = sent_box.summaries(&[dest_uid]).await.unwrap();
        assert!(
            Arc::ptr_eq(&first[0].1, &copied_summary[0].1),
            "and the summary"
        );
    }

    #[tokio::test]
    async fn debug_output_never_contains_bodies() {
        let (store, inbox, _) = store_with_message().await;
        let mailbox = store.open(&inbox, "alice").await.unwrap();
        for text in [format!("{store:?}"), format!("{mailbox:?}")] {
            assert!(!text.contains(SECRET), "Debug leaked a body: {text}");
        }
        let state = store.shared.cell(&inbox).unwrap();
        let text = format!("{:?}", state);
        assert!(!text.contains(SECRET), "Debug of the state leaked a body");
    }

    #[tokio::test]
    async fn uid_validity_never_repeats() {
        let store = MemoryStore::new();
        let mut seen = std::collections::HashSet::new();
        let name = MailboxRef::new("alice", MailboxName::new("Box").unwrap());
        for _ in 0..50 {
            store.create(&name, None).await.unwrap();
            let v = store.status(&name, "alice").await.unwrap().uid_validity;
            assert!(v.0 != 0 && seen.insert(v), "UIDVALIDITY {v} repeated");
            store.delete(&name).await.unwrap();
        }
    }

    #[tokio::test]
    async fn inbox_cannot_be_deleted() {
        let (store, inbox, _) = store_with_message().await;
        assert!(matches!(store.delete(&inbox).await, Err(Error::Cannot(_))));
        assert_eq!(store.status(&inbox, "alice").await.unwrap().messages, 1);
    }
}
