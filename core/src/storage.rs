//! The `Storage` and `Mailbox` traits: what a mailbox store provides.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::acl::{Acl, Rights};
use crate::error::Result;
use crate::flags::StoreOp;
use crate::mailbox::{MailboxInfo, MailboxName, MailboxRef, MailboxStatus, SpecialUse};
use crate::maildrop::MaildropLock;
use crate::message::{
    Appended, Changes, CopyResult, MailboxSnapshot, MessageContent, MessageMeta, NewMessage,
    StoreResult,
};
use crate::mime::{HeaderTexts, MessageSummary, SortFields, SortKeys, SortText, rank_keys};
use crate::quota::QuotaLimits;
use crate::types::{ModSeq, Uid};

/// A mailbox store: the namespace of every user and the way into each
/// mailbox. Implementations check nothing about who asks; access control is
/// applied once, above this trait, by [`crate::access::MailAccess`].
///
/// A wrapper over another store (adding a journal, waiting for a replica,
/// injecting faults in a test) implements [`Delegate`] rather than this
/// trait: it writes the methods it changes and every other one, including
/// any added here later, reaches the wrapped store. A method added here is
/// added to [`Delegate`] and its blanket impl too.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// Makes sure the user's account exists with its default mailboxes
    /// ([`crate::mailbox::DEFAULT_MAILBOXES`]); called at every login and
    /// delivery, so it must be cheap when the account exists. A backend that
    /// imports older formats does so here.
    async fn ensure_account(&self, user: &str) -> Result<()>;

    /// Every mailbox of `owner`, in no particular order.
    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>>;

    /// Creates a mailbox (not its missing parents: the caller creates those).
    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()>;

    /// Deletes a mailbox and its messages. Children are left alone.
    async fn delete(&self, mailbox: &MailboxRef) -> Result<()>;

    /// Renames a mailbox to `to` of the same owner. Renaming INBOX moves its
    /// messages into a new mailbox and leaves INBOX empty (RFC 3501 §6.3.5).
    /// Children are renamed by the caller, one call each.
    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()>;

    /// Sets or clears a mailbox's special use.
    async fn set_special_use(
        &self,
        mailbox: &MailboxRef,
        special_use: Option<SpecialUse>,
    ) -> Result<()>;

    /// The user's subscriptions (which may name mailboxes that do not exist).
    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>>;

    /// Subscribes or unsubscribes.
    async fn set_subscribed(&self, user: &str, name: &MailboxName, subscribed: bool) -> Result<()>;

    /// The mailbox's ACL (entries for users other than the owner).
    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl>;

    /// Sets (`Some`) or removes (`None`) an identifier's rights.
    async fn set_acl(
        &self,
        mailbox: &MailboxRef,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()>;

    /// Candidates for the other-users namespace of `user`: every mailbox of
    /// another owner whose ACL has an entry for an identifier that may apply
    /// to `user` ([`crate::access::identifier_applies`]: the user's own name
    /// or `anyone`), in no particular order, at most
    /// [`crate::access::MAX_SHARED_MAILBOXES`] of them. The store only
    /// proposes: [`crate::access::MailAccess`] evaluates the rights of each
    /// candidate and lists only those with `l` (RFC 4314 §4), so an extra
    /// candidate costs work, never a leak. Mailboxes of `user` themselves
    /// are not candidates.
    ///
    /// The default finds nothing (a backend without sharing support keeps
    /// working; shared mailboxes stay reachable by their full name).
    async fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        let _ = user;
        Ok(Vec::new())
    }

    /// STATUS figures, as seen by `viewer` (whose `\Seen` counts for UNSEEN),
    /// read without opening message or cache files.
    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus>;

    /// Opens a mailbox for `viewer` (whose `\Seen` state is used on shared mailboxes).
    async fn open(&self, mailbox: &MailboxRef, viewer: &str) -> Result<Arc<dyn Mailbox>>;

    /// Appends a message. Durable when this returns `Ok`. Charges no quota
    /// (administrative writes, replication); clients' APPENDs and
    /// deliveries go through [`Storage::append_within_quota`].
    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended>;

    /// Takes the POP3 maildrop lock of `user` ([`crate::maildrop`]): one
    /// POP3 session per maildrop, across every server over this store. The
    /// lock is released when the returned guard is dropped.
    ///
    /// # Errors
    ///
    /// [`crate::maildrop::in_use`] (a [`crate::Error::Busy`]) when another
    /// session holds it; an I/O error if the lock cannot be taken.
    async fn lock_maildrop(&self, user: &str) -> Result<MaildropLock>;

    /// Appends a message charged to its owner's quota: fails with
    /// [`crate::Error::OverQuota`], storing nothing, if the message would
    /// take the owner's usage (every mailbox of theirs, with the charged
    /// writes still in flight) past `limits`. The check and the charge are
    /// one atomic step with the append, so no interleaving of concurrent
    /// charged appends and copies, to one mailbox or several, can exceed a
    /// limit. Durable when this returns `Ok`.
    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended>;

    /// Appends several messages to one mailbox as one atomic step
    /// (MULTIAPPEND, RFC 3502): either every message is stored, in order
    /// with ascending UIDs, and they become visible together, or none is
    /// stored. With `limits`, all of them are charged to the owner's quota
    /// at once, under the same rule as [`Storage::append_within_quota`]
    /// (the check, the charge and the append are one step). Durable when
    /// this returns `Ok`.
    ///
    /// The default stores a single message with `append` /
    /// `append_within_quota` and refuses more with
    /// [`crate::Error::Unsupported`]: a store that cannot make several
    /// appends one step must not pretend to (the memory and CRC stores
    /// implement it).
    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        mut messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        if messages.len() > 1 {
            return Err(crate::Error::Unsupported(
                "this store cannot append several messages atomically",
            ));
        }
        let Some(message) = messages.pop() else {
            return Ok(Vec::new());
        };
        let appended = match limits {
            Some(limits) => self.append_within_quota(mailbox, message, limits).await?,
            None => self.append(mailbox, message).await?,
        };
        Ok(vec![appended])
    }

    /// The archive journal every [`crate::access::MailAccess`] over this
    /// store applies (APPENDs into archived users' mailboxes, the archive's
    /// own rights and visibility). The default has none; the
    /// [`crate::archive::JournaledStorage`] wrapper provides one.
    fn archive_journal(&self) -> Option<Arc<crate::archive::ArchiveJournal>> {
        None
    }

    /// A handle that wakes when `user`'s namespace changes: a mailbox of
    /// theirs created, deleted or renamed, its special-use changed, or
    /// their subscriptions changed, whoever made the change (another
    /// session, another frontend on a shared database, replication, an
    /// admin command). What NOTIFY's MailboxName and SubscriptionChange
    /// events (RFC 5465) wait on, as IDLE waits on [`Mailbox::watch`].
    ///
    /// The default returns [`NamespaceWatch::never`]: a store that cannot
    /// tell still works, and its clients see such changes when they poll
    /// (NOOP, CHECK). Stores keep a [`NamespaceWatches`] and bump it after
    /// every namespace change they commit.
    fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        let _ = user;
        NamespaceWatch::never()
    }

    /// Whether [`Storage::watch_namespace`] can be trusted: `true` only if
    /// every namespace change wakes the user's watches before it is
    /// acknowledged to whoever made it, wherever that was (so a watch that
    /// has not fired means nothing changed that a client could know of).
    /// Then a client's poll (NOOP, CHECK) need not list the namespace again
    /// to catch what the watch missed.
    ///
    /// The default is `false`: a store that says nothing is listed again
    /// on every poll. The memory and CRC stores, whose every change goes
    /// through the one process, say `true`; the PostgreSQL store says
    /// `false` (another frontend's change reaches this one's watches by a
    /// notification that may still be on its way).
    fn namespace_watch_is_complete(&self) -> bool {
        false
    }

    /// Brings the watches of the open `mailboxes` up to date with changes
    /// made where this process cannot see them commit by commit, as
    /// [`Mailbox::poll_changes`] does for one mailbox, in one call: what a
    /// client's poll (NOOP, CHECK) in a session watching many mailboxes
    /// (NOTIFY) asks. The handles may be of any owners; a mailbox deleted
    /// since it was opened is skipped (its watch has ended) and does not
    /// fail the call. Polls every mailbox and returns `Err` only when the
    /// store could not be asked at all.
    ///
    /// The default calls [`Mailbox::poll_changes`] on each; a store that
    /// can read every mailbox's state at once overrides it (the PostgreSQL
    /// store: one statement for all of them).
    async fn poll_changes(&self, mailboxes: &[Arc<dyn Mailbox>]) -> Result<()> {
        poll_each(mailboxes).await
    }
}

/// [`Storage::poll_changes`] one mailbox at a time: each one's
/// [`Mailbox::poll_changes`], a deleted mailbox skipped, the first other
/// error returned once every mailbox was polled.
async fn poll_each(mailboxes: &[Arc<dyn Mailbox>]) -> Result<()> {
    let mut first = None;
    for mailbox in mailboxes {
        match mailbox.poll_changes().await {
            Ok(()) | Err(crate::Error::NoSuchMailbox(_)) => {}
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// How many full summaries the default [`Mailbox::sort_fields`] asks for
/// (and holds) at once.
pub const SORT_FIELDS_CHUNK: usize = 1024;

/// What the default `sort_keys` and `search_headers` share: `make` of
/// each UID's [`Mailbox::sort_fields`], read [`SORT_FIELDS_CHUNK`] UIDs at
/// a time.
async fn from_sort_fields<M, T>(
    mailbox: &M,
    uids: &[Uid],
    make: impl Fn(&SortFields) -> T,
) -> Result<Vec<(Uid, T)>>
where
    M: Mailbox + ?Sized,
{
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(SORT_FIELDS_CHUNK) {
        out.extend(
            mailbox
                .sort_fields(chunk)
                .await?
                .into_iter()
                .map(|(uid, f)| (uid, make(&f))),
        );
    }
    Ok(out)
}

/// One open mailbox. Cheap to clone behind an `Arc`; every session that
/// selects the mailbox holds one.
#[async_trait]
pub trait Mailbox: Send + Sync + Debug {
    /// Which mailbox this is.
    fn reference(&self) -> &MailboxRef;

    /// The full state: every message's metadata.
    async fn snapshot(&self) -> Result<MailboxSnapshot>;

    /// What changed after `since`: new and changed records, expunged UIDs.
    async fn changes_since(&self, since: ModSeq) -> Result<Changes>;

    /// A handle that wakes when anything in the mailbox changes, whoever
    /// changed it (another session, a delivery, a replica).
    fn watch(&self) -> MailboxWatch;

    /// Brings [`watch`](Mailbox::watch) up to date with changes made where
    /// this process cannot see them commit by commit (another frontend on a
    /// shared database), so that a client's explicit poll (NOOP, CHECK)
    /// reports every change acknowledged anywhere before the poll was sent.
    /// The default does nothing: it suits stores whose every commit goes
    /// through this process and bumps the watch itself.
    async fn poll_changes(&self) -> Result<()> {
        Ok(())
    }

    /// Claims `\Recent` for the caller: returns the lowest UID that is recent
    /// for this session (messages with this UID or above are recent), and
    /// marks every present message as no longer recent for any later claim.
    async fn claim_recent(&self) -> Result<Uid>;

    /// Metadata of the given UIDs; UIDs no longer present are left out.
    async fn fetch_meta(&self, uids: &[Uid]) -> Result<Vec<MessageMeta>>;

    /// Cached MIME summaries of the given UIDs, in the same order; UIDs no
    /// longer present are left out. Must not open message files when the
    /// cache holds them.
    async fn summaries(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<MessageSummary>)>>;

    /// What SORT and THREAD read of the given UIDs ([`SortFields`]), in the
    /// same order; UIDs no longer present are left out. Must not open
    /// message files when the cache holds their summaries. The default
    /// takes them from [`Mailbox::summaries`], [`SORT_FIELDS_CHUNK`] UIDs at
    /// a time, so no more than that many full summaries are held at once; a
    /// store that can read them without building summaries overrides it
    /// (the CRC store decodes them straight from its cache records).
    async fn sort_fields(&self, uids: &[Uid]) -> Result<Vec<(Uid, SortFields)>> {
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(SORT_FIELDS_CHUNK) {
            out.extend(
                self.summaries(chunk)
                    .await?
                    .into_iter()
                    .map(|(uid, s)| (uid, SortFields::of(&s))),
            );
        }
        Ok(out)
    }

    /// The sort and thread keys ([`SortKeys`]) of the given UIDs, in the
    /// same order; UIDs no longer present are left out. The default
    /// computes them from [`Mailbox::sort_fields`], [`SORT_FIELDS_CHUNK`]
    /// UIDs at a time; a store may keep them per message while the
    /// mailbox is open (the CRC store does), since a message's keys never
    /// change.
    async fn sort_keys(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<SortKeys>)>> {
        from_sort_fields(self, uids, |f| Arc::new(SortKeys::of(Some(f)))).await
    }

    /// What SEARCH's FROM, TO, CC, BCC and SUBJECT keys (and HEADER of
    /// those fields) match of the given UIDs: the [`HeaderTexts`] of their
    /// [`SortFields::search_header`], in the same order; UIDs no longer
    /// present are left out. The default computes them from
    /// [`Mailbox::sort_fields`], [`SORT_FIELDS_CHUNK`] UIDs at a time; a
    /// store may keep them per message while the mailbox is open (the CRC
    /// store does, with its sort keys), since a message's header never
    /// changes.
    async fn search_headers(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<HeaderTexts>)>> {
        from_sort_fields(self, uids, |f| Arc::new(HeaderTexts::of(Some(f)))).await
    }

    /// The rank of the `text` string of each given UID's keys
    /// ([`SortKeys::text`]), in the same order; UIDs no longer present are
    /// left out. Ranks order the messages as their strings do (equal
    /// strings equal ranks, the empty string 0; see
    /// [`crate::mime::text_ranks`]), so that SORT orders integers. The
    /// default ranks the keys of [`Mailbox::sort_keys`] at each call; a
    /// store that keeps the keys may keep the ranks with them (the CRC
    /// store does) as long as every answer's ranks come from one ranking.
    async fn sort_ranks(&self, uids: &[Uid], text: SortText) -> Result<Vec<(Uid, u32)>> {
        Ok(rank_keys(&self.sort_keys(uids).await?, text))
    }

    /// The whole message, verified against its GUID.
    async fn content(&self, uid: Uid) -> Result<MessageContent>;

    /// Changes flags. With `unchanged_since`, messages whose modseq is higher
    /// are left alone and reported in [`StoreResult::modified`].
    async fn store(
        &self,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult>;

    /// Expunges the messages flagged `\Deleted` (only among `uids` if given).
    /// Returns the expunged UIDs, ascending.
    async fn expunge(&self, uids: Option<&[Uid]>) -> Result<Vec<Uid>>;

    /// Copies messages to another mailbox of the same store.
    async fn copy_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult>;

    /// Moves messages to another mailbox atomically (RFC 6851): they appear
    /// in `dest` and are expunged here.
    async fn move_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult>;

    /// [`Mailbox::copy_to`] charged to the quota of `dest`'s owner, as
    /// [`Storage::append_within_quota`] charges an append: nothing is copied
    /// and [`crate::Error::OverQuota`] returned if the copies would exceed
    /// `limits`; the check and the charge are atomic with the copy.
    async fn copy_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult>;

    /// [`Mailbox::move_to`] charged to the quota of `dest`'s owner (for a
    /// move between two owners; within one owner a move frees what it
    /// takes, and [`Mailbox::move_to`] is enough).
    async fn move_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult>;
}

/// Wakes a session when a mailbox changes. Backends create one with
/// [`MailboxWatch::channel`] per mailbox and bump it after every commit.
#[derive(Debug, Clone)]
pub struct MailboxWatch {
    rx: tokio::sync::watch::Receiver<ModSeq>,
}

/// The sending side of a [`MailboxWatch`], kept by the backend.
#[derive(Debug)]
pub struct MailboxNotifier {
    tx: tokio::sync::watch::Sender<ModSeq>,
}

impl MailboxWatch {
    /// A notifier and a first watch.
    pub fn channel(initial: ModSeq) -> (MailboxNotifier, MailboxWatch) {
        let (tx, rx) = tokio::sync::watch::channel(initial);
        (MailboxNotifier { tx }, MailboxWatch { rx })
    }

    /// Waits until the mailbox changes after the last call (or since the
    /// watch was made). Returns the new HIGHESTMODSEQ, or `None` if the
    /// mailbox went away.
    pub async fn changed(&mut self) -> Option<ModSeq> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }

    /// HIGHESTMODSEQ as last published.
    pub fn current(&self) -> ModSeq {
        *self.rx.borrow()
    }
}

impl MailboxNotifier {
    /// Publishes a change.
    pub fn notify(&self, highest_modseq: ModSeq) {
        self.tx.send_replace(highest_modseq);
    }

    /// Another watch on the same mailbox.
    pub fn subscribe(&self) -> MailboxWatch {
        MailboxWatch {
            rx: self.tx.subscribe(),
        }
    }
}

/// Wakes a session when a user's namespace (mailbox names, special-use
/// attributes, subscriptions) changes: see [`Storage::watch_namespace`].
/// It says only that something changed; the session lists again to learn
/// what.
#[derive(Debug, Clone)]
pub struct NamespaceWatch {
    /// `None`: a watch that never fires.
    rx: Option<tokio::sync::watch::Receiver<u64>>,
}

impl NamespaceWatch {
    /// A watch that never fires (a store that cannot tell).
    pub fn never() -> NamespaceWatch {
        NamespaceWatch { rx: None }
    }

    /// Waits until the namespace changes after the last call to this or to
    /// [`NamespaceWatch::mark_seen`] (or since the watch was made). Never
    /// resolves on a watch that cannot fire, nor once the store that made
    /// it is gone. Cancel-safe.
    pub async fn changed(&mut self) {
        match self.rx.as_mut() {
            Some(rx) => {
                if rx.changed().await.is_ok() {
                    rx.borrow_and_update();
                    return;
                }
                // The store is gone: nothing will change any more.
                self.rx = None;
                std::future::pending::<()>().await;
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Whether a change came since the last [`NamespaceWatch::changed`] or
    /// [`NamespaceWatch::mark_seen`], without waiting.
    pub fn has_changed(&self) -> bool {
        self.rx
            .as_ref()
            .is_some_and(|rx| rx.has_changed().unwrap_or(false))
    }

    /// Takes every change so far as seen (call it before listing, so a
    /// change made during the listing still wakes the next wait).
    pub fn mark_seen(&mut self) {
        if let Some(rx) = self.rx.as_mut() {
            rx.borrow_and_update();
        }
    }
}

/// The per-user namespace notifiers a store keeps: [`watch`] for
/// [`Storage::watch_namespace`], [`bump`] after every namespace change.
/// Holds one small entry per user with a live watch (entries without
/// watchers are dropped as new ones are made).
///
/// [`watch`]: NamespaceWatches::watch
/// [`bump`]: NamespaceWatches::bump
#[derive(Debug)]
pub struct NamespaceWatches<K = String> {
    users: std::sync::Mutex<std::collections::HashMap<K, tokio::sync::watch::Sender<u64>>>,
}

impl<K> Default for NamespaceWatches<K> {
    fn default() -> Self {
        NamespaceWatches {
            users: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq> NamespaceWatches<K> {
    fn users(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, tokio::sync::watch::Sender<u64>>>
    {
        // The map holds no invariant a panic could break.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A watch on `key`'s namespace.
    pub fn watch(&self, key: K) -> NamespaceWatch {
        let mut users = self.users();
        users.retain(|_, tx| tx.receiver_count() > 0);
        let rx = users
            .entry(key)
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe();
        NamespaceWatch { rx: Some(rx) }
    }

    /// Wakes every watch on `key`'s namespace. Costs a map look-up when
    /// nobody watches.
    pub fn bump<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(tx) = self.users().get(key) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Wakes every watch on every namespace (after a change whose owner is
    /// not known, such as a rebuild of everything).
    pub fn bump_all(&self) {
        for tx in self.users().values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

/// A [`Storage`] wrapper that overrides a few methods and hands every other
/// one to the store it wraps ([`Delegate::inner`]).
///
/// Every type implementing `Delegate` is a [`Storage`] (a blanket impl):
/// each `Storage` method calls the `Delegate` method of the same name, whose
/// default forwards to `inner()`. A wrapper therefore writes only what it
/// changes, and a method added to [`Storage`] later reaches the wrapped
/// store instead of being answered, silently, by the trait's own default
/// (as a wrapper that forwards each method by hand would let happen).
///
/// Whoever adds a method to [`Storage`] adds it here too, with a default
/// forwarding to `inner()`, and to the blanket impl below; the compiler
/// insists on the blanket impl for a required method, this comment for a
/// provided one.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use mailroom_core::storage::{Delegate, Storage};
/// use mailroom_core::Result;
///
/// /// Refuses every new account, serves the rest from `inner`.
/// #[derive(Debug)]
/// struct NoNewAccounts(Arc<dyn Storage>);
///
/// #[async_trait]
/// impl Delegate for NoNewAccounts {
///     fn inner(&self) -> &dyn Storage {
///         &*self.0
///     }
///     async fn ensure_account(&self, _user: &str) -> Result<()> {
///         Err(mailroom_core::Error::Unsupported("no new accounts"))
///     }
/// }
///
/// fn as_store(inner: Arc<dyn Storage>) -> Arc<dyn Storage> {
///     Arc::new(NoNewAccounts(inner))
/// }
/// ```
#[async_trait]
pub trait Delegate: Send + Sync + Debug {
    /// The wrapped store, which serves every method not overridden.
    fn inner(&self) -> &dyn Storage;

    /// [`Storage::ensure_account`].
    async fn ensure_account(&self, user: &str) -> Result<()> {
        self.inner().ensure_account(user).await
    }
    /// [`Storage::list`].
    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        self.inner().list(owner).await
    }
    /// [`Storage::create`].
    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()> {
        self.inner().create(mailbox, special_use).await
    }
    /// [`Storage::delete`].
    async fn delete(&self, mailbox: &MailboxRef) -> Result<()> {
        self.inner().delete(mailbox).await
    }
    /// [`Storage::rename`].
    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        self.inner().rename(from, to).await
    }
    /// [`Storage::set_special_use`].
    async fn set_special_use(
        &self,
        mailbox: &MailboxRef,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        self.inner().set_special_use(mailbox, special_use).await
    }
    /// [`Storage::subscriptions`].
    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        self.inner().subscriptions(user).await
    }
    /// [`Storage::set_subscribed`].
    async fn set_subscribed(&self, user: &str, name: &MailboxName, subscribed: bool) -> Result<()> {
        self.inner().set_subscribed(user, name, subscribed).await
    }
    /// [`Storage::acl`].
    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl> {
        self.inner().acl(mailbox).await
    }
    /// [`Storage::set_acl`].
    async fn set_acl(
        &self,
        mailbox: &MailboxRef,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()> {
        self.inner().set_acl(mailbox, identifier, rights).await
    }
    /// [`Storage::shared_mailboxes`].
    async fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        self.inner().shared_mailboxes(user).await
    }
    /// [`Storage::status`].
    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        self.inner().status(mailbox, viewer).await
    }
    /// [`Storage::open`].
    async fn open(&self, mailbox: &MailboxRef, viewer: &str) -> Result<Arc<dyn Mailbox>> {
        self.inner().open(mailbox, viewer).await
    }
    /// [`Storage::append`].
    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        self.inner().append(mailbox, message).await
    }
    /// [`Storage::lock_maildrop`].
    async fn lock_maildrop(&self, user: &str) -> Result<MaildropLock> {
        self.inner().lock_maildrop(user).await
    }
    /// [`Storage::append_within_quota`].
    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        self.inner()
            .append_within_quota(mailbox, message, limits)
            .await
    }
    /// [`Storage::append_all`].
    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        self.inner().append_all(mailbox, messages, limits).await
    }
    /// [`Storage::archive_journal`].
    fn archive_journal(&self) -> Option<Arc<crate::archive::ArchiveJournal>> {
        self.inner().archive_journal()
    }
    /// [`Storage::watch_namespace`].
    fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        self.inner().watch_namespace(user)
    }
    /// [`Storage::namespace_watch_is_complete`].
    fn namespace_watch_is_complete(&self) -> bool {
        self.inner().namespace_watch_is_complete()
    }
    /// [`Storage::poll_changes`].
    async fn poll_changes(&self, mailboxes: &[Arc<dyn Mailbox>]) -> Result<()> {
        self.inner().poll_changes(mailboxes).await
    }
}

#[async_trait]
impl<T: Delegate> Storage for T {
    async fn ensure_account(&self, user: &str) -> Result<()> {
        Delegate::ensure_account(self, user).await
    }
    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        Delegate::list(self, owner).await
    }
    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()> {
        Delegate::create(self, mailbox, special_use).await
    }
    async fn delete(&self, mailbox: &MailboxRef) -> Result<()> {
        Delegate::delete(self, mailbox).await
    }
    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        Delegate::rename(self, from, to).await
    }
    async fn set_special_use(
        &self,
        mailbox: &MailboxRef,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        Delegate::set_special_use(self, mailbox, special_use).await
    }
    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        Delegate::subscriptions(self, user).await
    }
    async fn set_subscribed(&self, user: &str, name: &MailboxName, subscribed: bool) -> Result<()> {
        Delegate::set_subscribed(self, user, name, subscribed).await
    }
    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl> {
        Delegate::acl(self, mailbox).await
    }
    async fn set_acl(
        &self,
        mailbox: &MailboxRef,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()> {
        Delegate::set_acl(self, mailbox, identifier, rights).await
    }
    async fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        Delegate::shared_mailboxes(self, user).await
    }
    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        Delegate::status(self, mailbox, viewer).await
    }
    async fn open(&self, mailbox: &MailboxRef, viewer: &str) -> Result<Arc<dyn Mailbox>> {
        Delegate::open(self, mailbox, viewer).await
    }
    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        Delegate::append(self, mailbox, message).await
    }
    async fn lock_maildrop(&self, user: &str) -> Result<MaildropLock> {
        Delegate::lock_maildrop(self, user).await
    }
    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        Delegate::append_within_quota(self, mailbox, message, limits).await
    }
    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        Delegate::append_all(self, mailbox, messages, limits).await
    }
    fn archive_journal(&self) -> Option<Arc<crate::archive::ArchiveJournal>> {
        Delegate::archive_journal(self)
    }
    fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        Delegate::watch_namespace(self, user)
    }
    fn namespace_watch_is_complete(&self) -> bool {
        Delegate::namespace_watch_is_complete(self)
    }
    async fn poll_changes(&self, mailboxes: &[Arc<dyn Mailbox>]) -> Result<()> {
        Delegate::poll_changes(self, mailboxes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_namespace_watch_wakes_for_its_user_only() {
        let watches = NamespaceWatches::<String>::default();
        let mut alice = watches.watch("alice".to_owned());
        let bob = watches.watch("bob".to_owned());
        assert!(!alice.has_changed());
        watches.bump("alice");
        assert!(alice.has_changed());
        assert!(!bob.has_changed());
        // resolves at once for the change already made, then is seen
        alice.changed().await;
        assert!(!alice.has_changed());
        watches.bump("carol"); // nobody watches: nothing to wake, nothing kept
        assert!(!alice.has_changed());
        watches.bump_all();
        assert!(alice.has_changed() && bob.has_changed());
        alice.mark_seen();
        assert!(!alice.has_changed());
    }

    #[tokio::test]
    async fn a_never_watch_and_a_watch_whose_store_is_gone_stay_quiet() {
        let never = NamespaceWatch::never();
        assert!(!never.has_changed());
        let watches = NamespaceWatches::<String>::default();
        let mut orphan = watches.watch("alice".to_owned());
        drop(watches);
        assert!(!orphan.has_changed());
        let mut never = never;
        tokio::select! {
            biased;
            () = never.changed() => panic!("a never watch fired"),
            () = orphan.changed() => panic!("a watch of a dropped store fired"),
            () = tokio::task::yield_now() => {}
        }
    }

    #[test]
    fn watches_nobody_holds_are_dropped() {
        let watches = NamespaceWatches::<String>::default();
        for i in 0..100 {
            drop(watches.watch(format!("u{i}")));
        }
        let _kept = watches.watch("last".to_owned());
        assert_eq!(watches.users().len(), 1);
    }
}
