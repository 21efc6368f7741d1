//! `CrcStore`: the data directory, accounts, the registry of open mailboxes,
//! and the `Storage`, `Mailbox` and `Quota` implementations.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailroom_core::access::{MAX_SHARED_MAILBOXES, identifier_applies};
use mailroom_core::mailbox::DEFAULT_MAILBOXES;
use mailroom_core::{
    Acl, Appended, Changes, CopyResult, Error, MailboxInfo, MailboxName, MailboxRef,
    MailboxSnapshot, MailboxStatus, MailboxWatch, MessageContent, MessageMeta, MessageSummary,
    ModSeq, NamespaceWatch, NamespaceWatches, NewMessage, Quota, QuotaLimits, QuotaUsage, Result,
    Rights, SpecialUse, Storage, StoreOp, StoreResult, Uid, UidValidity,
};

use crate::account::{Account, MailboxEntry, MailboxMeta, decode_limits, encode_limits};
use crate::ctx::{Ctx, IoCounters, IoStats};
use crate::fsutil::{escape_component, sync_dir, write_atomic};
use crate::index::Header;
use crate::layout::{HEADER_SIZE, RECORD_SIZE, VersionLayout, layout_of};
use crate::mailbox::{
    CACHE_FILE, INDEX_FILE, KEYWORDS_FILE, MSG_DIR, Prepared, SEEN_DIR, Shared, Source, WriteGuard,
    create_empty, create_layout, has_seen, msg_path, read_full_at,
};
use crate::open::{AccountCell, OpenCounts, OpenTables, spawn_evictor};
use crate::quota::{Charge, Usage};
use crate::rebuild::{ReconstructReport, read_hints, rebuild, reconstruct_locked};
use crate::shared::SharedIndex;

mod replication;

/// Name of the data-directory lock file.
pub const LOCK_FILE: &str = "lock";
/// Name of the account file in a user directory.
pub const ACCOUNT_FILE: &str = "account";
/// Name of the quota limits file in a user directory.
pub const QUOTA_FILE: &str = "quota";
/// Name of the per-mailbox metadata file (name, special use, ACL) in a
/// mailbox directory, from which a lost account file is rebuilt.
pub const MAILBOX_FILE: &str = "mailbox";
/// Parent of the names given to recovered mailboxes whose own name is lost.
pub const RECOVERED_PARENT: &str = "Recovered";

/// Options of a [`CrcStore`].
#[derive(Debug, Clone)]
pub struct CrcOptions {
    /// Fsync at every commit step (the default). Off, a crash of the
    /// machine (not of the process) can lose acknowledged messages; only
    /// benchmarks and tests should turn it off.
    pub durability: bool,
    /// Where a user's Maildir is found for import on their first login,
    /// with `%u` standing for the user name (`/home/%u/Maildir`). `None`
    /// disables the import.
    pub maildir_location: Option<String>,
    /// How many mailboxes no session has selected any more stay loaded
    /// (index mapped, records decoded) for a quick reopen: the most recently
    /// released ones, for [`CrcOptions::open_mailbox_grace`] at most. 0 drops
    /// a mailbox's state as soon as its last user lets go. Selected mailboxes
    /// are always loaded (bounded by the connections); see the `open` module
    /// docs in the source, or "Memory follows the work" in the design.
    pub open_mailboxes: usize,
    /// How long a released mailbox stays loaded (and its account file
    /// decoded) before it is dropped; zero drops at once.
    pub open_mailbox_grace: std::time::Duration,
    /// Commit APPENDs and deliveries through the store-wide delivery
    /// journal (FORMAT.md, "Delivery journal"): one `fdatasync` of one file
    /// shared by every delivery to any mailbox that commits meanwhile,
    /// instead of two rounds of fsyncs of each mailbox's files. Only with
    /// [`CrcOptions::durability`]. Whatever this says, a journal left by an
    /// earlier process is replayed at open.
    pub journal: bool,
    /// A journal segment longer than this is checkpointed.
    pub journal_segment_bytes: u64,
    /// A journal segment whose first record is older than this is
    /// checkpointed.
    pub journal_checkpoint_interval: std::time::Duration,
}

impl Default for CrcOptions {
    fn default() -> Self {
        CrcOptions {
            durability: true,
            maildir_location: None,
            open_mailboxes: 256,
            open_mailbox_grace: std::time::Duration::from_secs(10),
            journal: false,
            journal_segment_bytes: 64 << 20,
            journal_checkpoint_interval: std::time::Duration::from_secs(30),
        }
    }
}

/// The CRC mailbox store over one data directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CrcStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
pub(crate) struct StoreInner {
    root: PathBuf,
    opts: CrcOptions,
    /// Held for the store's lifetime: one process per data directory.
    _lock: File,
    pub(crate) ctx: Arc<Ctx>,
    /// Open accounts and mailboxes (weak, plus the idle list).
    open: Arc<OpenTables>,
    /// Which identifiers appear in which mailboxes' ACLs (`<data>/shared`).
    shared_index: SharedIndex,
    /// Namespace watches, keyed by the user's directory (the account file
    /// lives there and [`StoreInner::save_account`] is told only that).
    namespace: NamespaceWatches<PathBuf>,
    /// Users found to have no account (see [`MissingAccounts`]).
    missing: MissingAccounts,
}

/// How many users without an account [`MissingAccounts`] remembers.
pub const MAX_MISSING_ACCOUNTS: usize = 4096;

/// Users looked up (without creating) and found to have no account, so
/// that the next look-up of one costs no file-system access: every LMTP
/// delivery asks after the archive account of the recipient's domain
/// (`archive@D`), which most domains never have. Kept under the user's
/// account lock, as the creation that clears it is. Bounded by
/// [`MAX_MISSING_ACCOUNTS`]: when full it is emptied (a cache; the next
/// misses read the disk once more). Right because only this process writes
/// the data directory (its lock file): every account creation goes through
/// [`StoreInner::with_account`] with `create` (sessions, deliveries,
/// replication, admin commands), which clears the user here.
#[derive(Debug, Default)]
struct MissingAccounts {
    users: Mutex<HashSet<String>>,
}

impl MissingAccounts {
    fn users(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // a set of names holds no invariant a panic could break
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn contains(&self, user: &str) -> bool {
        self.users().contains(user)
    }

    fn insert(&self, user: &str) {
        let mut users = self.users();
        if users.len() >= MAX_MISSING_ACCOUNTS {
            users.clear();
        }
        users.insert(user.to_owned());
    }

    fn remove(&self, user: &str) {
        let mut users = self.users();
        if !users.is_empty() {
            users.remove(user);
        }
    }
}

fn poisoned() -> Error {
    Error::Backend("store lock poisoned by an earlier panic".into())
}

impl CrcStore {
    /// Opens (creating if needed) a data directory. Fails with
    /// [`Error::Busy`] if another process has it open.
    pub fn open(root: impl AsRef<Path>, opts: CrcOptions) -> Result<CrcStore> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(root.join("users"))?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Busy(format!(
                    "data directory {} is in use by another process (lock file {})",
                    root.display(),
                    root.join(LOCK_FILE).display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;
        let limits = crate::journal::Limits {
            segment_bytes: opts.journal_segment_bytes.max(4096),
            max_age: opts.journal_checkpoint_interval,
        };
        let journal = if opts.journal && opts.durability {
            Some(crate::journal::Journal::open(&root, limits)?)
        } else {
            crate::journal::recover(&root)?;
            None
        };
        let ctx = Arc::new(Ctx {
            durable: opts.durability,
            journal,
            ..Ctx::default()
        });
        let shared_index = SharedIndex::new(&root, opts.durability);
        let open = Arc::new(OpenTables::default());
        spawn_evictor(&open, opts.open_mailbox_grace);
        Ok(CrcStore {
            inner: Arc::new(StoreInner {
                shared_index,
                root,
                opts,
                _lock: lock,
                ctx,
                open,
                namespace: NamespaceWatches::default(),
                missing: MissingAccounts::default(),
            }),
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The files a store over `root` keeps open for its whole life, however
    /// many accounts come and go, as they are on disk now: the
    /// data-directory lock file ([`LOCK_FILE`]) and the delivery journal's
    /// segment files (the lock file first, then the segments in order).
    /// Everything else the store opens belongs to one
    /// account or mailbox and is let go when unused (what `mailroomd`'s
    /// memory test checks, from another process, by setting these apart).
    ///
    /// # Errors
    ///
    /// The journal directory exists but cannot be read.
    pub fn store_wide_files(root: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let root = root.as_ref();
        let mut files = vec![root.join(LOCK_FILE)];
        match fs::read_dir(root.join(crate::journal::JOURNAL_DIR)) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e == "jnl") {
                        files.push(path);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        files[1..].sort();
        Ok(files)
    }

    /// [`CrcStore::store_wide_files`] of this store.
    ///
    /// # Errors
    ///
    /// As [`CrcStore::store_wide_files`].
    pub fn open_store_files(&self) -> Result<Vec<PathBuf>> {
        CrcStore::store_wide_files(&self.inner.root)
    }

    /// What the store holds in memory now: loaded mailboxes (selected,
    /// in use, or idle within their grace period) and accounts.
    pub fn open_counts(&self) -> OpenCounts {
        self.inner.open.counts()
    }

    /// Drops every idle mailbox now, as if its grace period had passed
    /// (what `mailroomd` does under memory pressure, and tests).
    pub fn close_idle(&self) {
        self.inner.open.clear_idle();
    }

    /// File-access counters (to observe lazy opening).
    pub fn io_counters(&self) -> IoCounters {
        self.inner.ctx.stats.snapshot()
    }

    /// Mailboxes found corrupt and waiting for [`CrcStore::reconstruct`].
    pub fn reconstruct_queue(&self) -> Vec<MailboxRef> {
        self.inner
            .ctx
            .queue
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Rebuilds index, cache and keyword table of one mailbox of `user`, or
    /// of all of them, from the message files (what
    /// `mailroomd reconstruct USER[/MAILBOX]` runs). UIDs and flags are kept
    /// from every record whose CRC still holds; quota usage is recomputed
    /// from the rebuilt mailboxes, never added to the old figure. Sessions
    /// with the mailbox open see the result at their next access.
    pub async fn reconstruct(
        &self,
        user: &str,
        mailbox: Option<&MailboxName>,
    ) -> Result<Vec<(MailboxName, ReconstructReport)>> {
        let user = user.to_owned();
        let mailbox = mailbox.cloned();
        self.run(move |s| s.reconstruct(&user, mailbox.as_ref()))
            .await
    }

    /// Reconstructs every mailbox in the corruption queue.
    pub async fn reconstruct_queued(&self) -> Result<Vec<(MailboxRef, ReconstructReport)>> {
        let mut out = Vec::new();
        for m in self.reconstruct_queue() {
            for (name, r) in self.reconstruct(&m.owner, Some(&m.name)).await? {
                out.push((MailboxRef::new(m.owner.clone(), name), r));
            }
        }
        Ok(out)
    }

    /// Drops expunged records of a mailbox now (they are otherwise dropped
    /// automatically once they outnumber live ones). QRESYNC clients older
    /// than the repack then get a full VANISHED list.
    pub async fn repack(&self, mailbox: &MailboxRef) -> Result<()> {
        let mailbox = mailbox.clone();
        self.run(move |s| {
            let shared = s.mailbox(&mailbox)?;
            let mut g = shared.write()?;
            let dir = shared.dir.clone();
            g.repack(&dir, &shared.ctx).map_err(|e| shared.fail(e))
        })
        .await
    }

    /// Checks a mailbox thoroughly: header and record CRCs, every live
    /// record's message file (present, right size and SHA-1) and cache
    /// record. Returns the number of live messages checked.
    pub async fn verify(&self, mailbox: &MailboxRef) -> Result<u32> {
        let mailbox = mailbox.clone();
        self.run(move |s| {
            let shared = s.mailbox(&mailbox)?;
            let g = shared.read()?;
            verify_loaded(&g, &shared.dir, &shared.ctx).map_err(|e| shared.fail(e))
        })
        .await
    }

    /// The directory of a mailbox (for tools and tests).
    pub async fn mailbox_dir(&self, mailbox: &MailboxRef) -> Result<PathBuf> {
        let mailbox = mailbox.clone();
        self.run(move |s| Ok(s.mailbox(&mailbox)?.dir.clone()))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StoreInner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Backend(format!("store task failed: {e}")))?
    }
}

/// [`CrcStore::verify`] on a loaded mailbox: header counts against the
/// records, every live record's message file (present, right size and
/// SHA-1), cache record and keywords. Errors are returned as found (the
/// caller decides whether to queue the mailbox).
pub(crate) fn verify_loaded(g: &crate::mailbox::Inner, dir: &Path, ctx: &Ctx) -> Result<u32> {
    let counts = g.recount()?;
    if !g.hdr.counts_match(&counts) {
        return Err(Error::Corruption(format!(
            "{}: header counts disagree with the records",
            dir.display()
        )));
    }
    let mut n = 0;
    for r in g.all_records()? {
        if r.is_expunged() {
            continue;
        }
        crate::mailbox::read_message(dir, ctx, &r)?;
        let payload = g.cache_payload(dir, ctx, &r)?;
        mailroom_core::mime::codec::decode(&payload)
            .map_err(|why| Error::Corruption(format!("{}: cache: {why}", dir.display())))?;
        g.record_keywords(&r)?;
        n += 1;
    }
    Ok(n)
}

impl StoreInner {
    pub(crate) fn user_dir(&self, user: &str) -> PathBuf {
        self.root.join("users").join(escape_component(user))
    }

    fn mailbox_dir(&self, user: &str, id: u64) -> PathBuf {
        self.user_dir(user).join("mailboxes").join(id.to_string())
    }

    fn account_cell(&self, user: &str) -> Result<AccountCell> {
        Ok(self.open.account(user))
    }

    /// Runs `f` on the user's account under its lock. Without `create`, a
    /// user with no account gets `Ok(None)`-like treatment via `missing`.
    fn with_account<T>(
        &self,
        user: &str,
        create: bool,
        f: impl FnOnce(&mut Account, &Path) -> Result<T>,
    ) -> Result<Option<T>> {
        let cell = self.account_cell(user)?;
        let mut guard = cell.lock().map_err(|_| poisoned())?;
        let udir = self.user_dir(user);
        if guard.is_none() {
            if !create && self.missing.contains(user) {
                return Ok(None);
            }
            let path = udir.join(ACCOUNT_FILE);
            IoStats::bump(&self.ctx.stats.account_lookups);
            match fs::read(&path) {
                Ok(data) => match Account::decode(&data, &path.display().to_string()) {
                    Ok(a) => {
                        self.upgrade_meta(user, &a);
                        *guard = Some(a);
                    }
                    Err(e) => {
                        tracing::error!(
                            user,
                            file = %path.display(),
                            error = %e,
                            "account file unreadable; rebuilding it from the mailbox directories"
                        );
                        *guard = Some(self.recover_account(user, &udir, true)?);
                    }
                },
                Err(e) if e.kind() == ErrorKind::NotFound && has_mailbox_dirs(&udir) => {
                    tracing::error!(
                        user,
                        file = %path.display(),
                        "account file missing but mailbox directories exist; rebuilding it from them"
                    );
                    *guard = Some(self.recover_account(user, &udir, false)?);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    if !create {
                        self.missing.insert(user);
                        return Ok(None);
                    }
                    fs::create_dir_all(udir.join("mailboxes"))?;
                    *guard = Some(Account {
                        next_id: 1,
                        ..Account::default()
                    });
                }
                Err(e) => return Err(e.into()),
            }
            self.missing.remove(user);
        }
        match guard.as_mut() {
            Some(a) => f(a, &udir).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the account file: every change of a user's namespace
    /// (mailboxes created, deleted, renamed, special-use, subscriptions;
    /// made by a session, replication or an admin command) ends here, so
    /// this is where the user's namespace watches are woken.
    fn save_account(&self, udir: &Path, a: &Account) -> Result<()> {
        write_atomic(&udir.join(ACCOUNT_FILE), &a.encode(), self.opts.durability)?;
        self.touch_dir(udir);
        self.namespace.bump(udir);
        Ok(())
    }

    /// Writes the metadata file of one mailbox (atomically). Called before
    /// the account file that records the same change is replaced.
    fn write_meta(&self, user: &str, name: &MailboxName, e: &MailboxEntry) -> Result<()> {
        let path = self.mailbox_dir(user, e.id).join(MAILBOX_FILE);
        write_atomic(
            &path,
            &MailboxMeta::of(name, e).encode(),
            self.opts.durability,
        )?;
        Ok(())
    }

    /// Writes the metadata file of every mailbox of a freshly loaded account
    /// that lacks one (directories made by code older than the file). Only a
    /// `stat` per mailbox when nothing is missing; a failure is logged, not
    /// fatal (the account file still holds everything).
    fn upgrade_meta(&self, user: &str, a: &Account) {
        for (name, e) in &a.mailboxes {
            let dir = self.mailbox_dir(user, e.id);
            match fs::symlink_metadata(dir.join(MAILBOX_FILE)) {
                Err(err) if err.kind() == ErrorKind::NotFound && dir.is_dir() => {
                    match self.write_meta(user, name, e) {
                        Ok(()) => tracing::info!(
                            user,
                            mailbox = %name,
                            dir = %dir.display(),
                            "wrote the missing mailbox metadata file"
                        ),
                        Err(err) => tracing::warn!(
                            user,
                            mailbox = %name,
                            dir = %dir.display(),
                            error = %err,
                            "could not write the mailbox metadata file"
                        ),
                    }
                }
                _ => {}
            }
        }
    }

    /// Rebuilds a user's account from the mailbox directories (see
    /// FORMAT.md, "Recovery of the account file"), first moving the bad
    /// account file aside if there is one (`bad_file`), and saves it.
    fn recover_account(&self, user: &str, udir: &Path, bad_file: bool) -> Result<Account> {
        if bad_file {
            let to = move_aside(&udir.join(ACCOUNT_FILE))?;
            tracing::error!(user, file = %to.display(), "corrupt account file moved aside");
        }
        let mut found: Vec<(u64, Option<MailboxMeta>, Option<u32>, bool)> = Vec::new();
        let mut corrupt_meta: Vec<u64> = Vec::new();
        for id in mailbox_ids(&udir.join("mailboxes"))? {
            let dir = self.mailbox_dir(user, id);
            let path = dir.join(MAILBOX_FILE);
            let meta = match fs::read(&path) {
                Ok(d) => match MailboxMeta::decode(&d, &path.display().to_string(), id) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::error!(user, file = %path.display(), error = %e, "mailbox metadata file corrupt");
                        corrupt_meta.push(id);
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(user, file = %path.display(), error = %e, "mailbox metadata file unreadable");
                    if e.kind() != ErrorKind::NotFound {
                        corrupt_meta.push(id);
                    }
                    None
                }
            };
            let (uv, has_index) = index_uid_validity(&dir.join(INDEX_FILE));
            found.push((id, meta, uv, has_index));
        }
        let mut a = Account {
            next_id: found.iter().map(|f| f.0).max().unwrap_or(0) + 1,
            last_uid_validity: found.iter().filter_map(|f| f.2).max().unwrap_or(0),
            initialised: true,
            ..Account::default()
        };
        // names from metadata files, the newest directory winning a clash
        let mut lost: Vec<u64> = Vec::new();
        for (id, meta, _, _) in found.iter().rev() {
            match meta {
                Some(m) if a.mailboxes.contains_key(&m.name) => {
                    tracing::warn!(user, id, mailbox = %m.name, "two mailbox directories claim one name; the older is recovered under another");
                    lost.push(*id);
                }
                Some(m) => {
                    a.mailboxes.insert(
                        m.name.clone(),
                        MailboxEntry {
                            id: *id,
                            special_use: m.special_use,
                            acl: m.acl.clone(),
                        },
                    );
                }
                _ => lost.push(*id),
            }
        }
        lost.sort_unstable();
        for id in &lost {
            let name = recovered_name(&a.mailboxes, *id)?;
            tracing::warn!(user, id, mailbox = %name, "mailbox recovered without its name");
            if corrupt_meta.contains(id) {
                let path = self.mailbox_dir(user, *id).join(MAILBOX_FILE);
                match move_aside(&path) {
                    Ok(to) => {
                        tracing::error!(user, file = %to.display(), "corrupt mailbox metadata file moved aside")
                    }
                    Err(err) => {
                        // never overwrite what could not be kept
                        tracing::warn!(user, file = %path.display(), error = %err, "could not move the corrupt mailbox metadata file aside");
                        a.mailboxes.insert(
                            name,
                            MailboxEntry {
                                id: *id,
                                special_use: None,
                                acl: Acl::default(),
                            },
                        );
                        continue;
                    }
                }
            }
            let e = MailboxEntry {
                id: *id,
                special_use: None,
                acl: Acl::default(),
            };
            if let Err(err) = self.write_meta(user, &name, &e) {
                tracing::warn!(user, id, error = %err, "could not write the mailbox metadata file");
            }
            a.mailboxes.insert(name, e);
        }
        // a directory without an index (a crash while it was made) gets one
        // from its message files
        for (id, _, _, has_index) in &found {
            if !has_index {
                let dir = self.mailbox_dir(user, *id);
                let uv = a.next_uid_validity();
                if let Err(e) = rebuild(&dir, read_hints(&dir), uv, self.opts.durability) {
                    tracing::error!(user, dir = %dir.display(), error = %e, "could not rebuild the index of a recovered mailbox");
                }
            }
        }
        if !a.mailboxes.contains_key(&MailboxName::inbox()) {
            self.create_in(&mut a, user, &MailboxName::inbox(), None)?;
        }
        a.subscriptions = a.mailboxes.keys().cloned().collect();
        self.save_account(udir, &a)?;
        self.ctx.ledgers.forget(user);
        // the recovered ACLs replace whatever the shared index held for the user
        self.shared_index.settle_owner(user, &a);
        tracing::error!(
            user,
            mailboxes = a.mailboxes.len(),
            unnamed = lost.len(),
            "account file rebuilt from the mailbox directories"
        );
        Ok(a)
    }

    /// The shared object of a mailbox directory (no I/O).
    fn shared(&self, owner: &str, id: u64, name: &MailboxRef) -> Result<Arc<Shared>> {
        let dir = self.mailbox_dir(owner, id);
        Ok(self.open.mailbox(&dir, || {
            Shared::new(owner, id, dir.clone(), name.clone(), self.ctx.clone())
        }))
    }

    fn lookup(&self, m: &MailboxRef) -> Result<u64> {
        self.with_account(&m.owner, false, |a, _| {
            a.mailboxes
                .get(&m.name)
                .map(|e| e.id)
                .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))
        })?
        .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))
    }

    pub(crate) fn mailbox(&self, m: &MailboxRef) -> Result<Arc<Shared>> {
        let id = self.lookup(m)?;
        self.shared(&m.owner, id, m)
    }

    fn forget(&self, dir: &Path) {
        self.open.forget(dir);
    }

    // ------------------------------------------------------------------

    fn ensure_account(&self, user: &str) -> Result<()> {
        if user.is_empty() || user.contains('\0') {
            return Err(Error::InvalidInput("invalid user name"));
        }
        self.with_account(user, true, |a, udir| {
            if a.initialised {
                return Ok(());
            }
            if let Some(loc) = &self.opts.maildir_location {
                crate::maildir::import_account(self, user, loc, a, udir)?;
            }
            for (name, special_use) in DEFAULT_MAILBOXES {
                let name = MailboxName::new(name)?;
                if !a.mailboxes.contains_key(&name) {
                    self.create_in(a, user, &name, special_use)?;
                }
                a.subscriptions.insert(name);
            }
            a.initialised = true;
            self.save_account(udir, a)?;
            // an import brought messages nobody counted
            self.ctx.ledgers.forget(user);
            tracing::info!(user, "account created");
            Ok(())
        })?;
        Ok(())
    }

    /// Creates a mailbox directory and enters it in `a` (not saved).
    pub(crate) fn create_in(
        &self,
        a: &mut Account,
        user: &str,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> Result<u64> {
        let id = a.next_id.max(1);
        a.next_id = id + 1;
        let uv = a.next_uid_validity();
        let dir = self.mailbox_dir(user, id);
        if dir.exists() {
            // left over from a crash before the account was saved
            fs::remove_dir_all(&dir)?;
        }
        create_empty(&dir, uv, None, self.opts.durability)?;
        let e = MailboxEntry {
            id,
            special_use,
            acl: Acl::default(),
        };
        self.write_meta(user, name, &e)?;
        sync_dir(&self.user_dir(user).join("mailboxes"), self.opts.durability)?;
        a.mailboxes.insert(name.clone(), e);
        Ok(id)
    }

    /// Allocates a mailbox directory for an import (entered in `a`, not saved).
    pub(crate) fn import_dir(
        &self,
        a: &mut Account,
        user: &str,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> Result<(u64, PathBuf)> {
        let id = a.next_id.max(1);
        a.next_id = id + 1;
        let dir = self.mailbox_dir(user, id);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        create_layout(&dir)?;
        let e = MailboxEntry {
            id,
            special_use,
            acl: Acl::default(),
        };
        self.write_meta(user, name, &e)?;
        a.mailboxes.insert(name.clone(), e);
        Ok((id, dir))
    }

    pub(crate) fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        Ok(self
            .with_account(owner, false, |a, _| {
                Ok(a.mailboxes
                    .iter()
                    .map(|(n, e)| MailboxInfo {
                        name: n.clone(),
                        special_use: e.special_use,
                    })
                    .collect())
            })?
            .unwrap_or_default())
    }

    fn create(&self, m: &MailboxRef, su: Option<SpecialUse>) -> Result<()> {
        self.with_account(&m.owner, true, |a, udir| {
            if a.mailboxes.contains_key(&m.name) {
                return Err(Error::MailboxExists(m.to_string()));
            }
            self.create_in(a, &m.owner, &m.name, su)?;
            self.save_account(udir, a)
        })?;
        Ok(())
    }

    fn delete(&self, m: &MailboxRef) -> Result<()> {
        if m.name.is_inbox() {
            return Err(Error::Cannot("INBOX cannot be deleted"));
        }
        self.with_account(&m.owner, false, |a, udir| {
            let e = a
                .mailboxes
                .remove(&m.name)
                .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))?;
            if let Err(err) = self.save_account(udir, a) {
                a.mailboxes.insert(m.name.clone(), e);
                return Err(err);
            }
            self.shared_index.settle(&m.owner, e.id, None);
            let shared = self.shared(&m.owner, e.id, m)?;
            shared.mark_deleted()?;
            self.forget(&shared.dir);
            self.ctx.ledgers.forget(&m.owner);
            if let Err(err) = fs::remove_dir_all(&shared.dir) {
                tracing::warn!(dir = %shared.dir.display(), error = %err, "could not remove deleted mailbox directory");
            }
            tracing::debug!(mailbox = %m, "mailbox deleted");
            Ok(())
        })?
        .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))
    }

    /// (The shared index needs nothing here: a renamed mailbox keeps its
    /// directory number and ACL, and the mailbox a RENAME of INBOX makes
    /// starts without ACL entries.)
    fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        self.with_account(&from.owner, false, |a, udir| {
            let e = a
                .mailboxes
                .get(&from.name)
                .cloned()
                .ok_or_else(|| Error::NoSuchMailbox(from.to_string()))?;
            if a.mailboxes.contains_key(to) {
                return Err(Error::MailboxExists(to.to_string()));
            }
            let to_ref = MailboxRef::new(from.owner.clone(), to.clone());
            if !from.name.is_inbox() {
                self.write_meta(&from.owner, to, &e)?;
                a.mailboxes.remove(&from.name);
                a.mailboxes.insert(to.clone(), e.clone());
                if let Err(err) = self.save_account(udir, a) {
                    a.mailboxes.remove(to);
                    a.mailboxes.insert(from.name.clone(), e.clone());
                    let _ = self.write_meta(&from.owner, &from.name, &e);
                    return Err(err);
                }
                let shared = self.shared(&from.owner, e.id, &to_ref)?;
                if let Ok(mut n) = shared.name.lock() {
                    *n = to_ref;
                }
                return Ok(());
            }
            // INBOX: its messages go to a new mailbox (same UIDs, flags and
            // modseqs, new UIDVALIDITY); INBOX stays, emptied.
            let inbox = self.shared(&from.owner, e.id, from)?;
            let mut g = inbox.write()?;
            let uv = a.next_uid_validity();
            let (id, dir) = self.import_dir(a, &from.owner, to, None)?;
            if let Err(err) = clone_mailbox(&inbox.dir, &dir, &g, uv, self.opts.durability) {
                a.mailboxes.remove(to);
                let _ = fs::remove_dir_all(&dir);
                return Err(err);
            }
            self.save_account(udir, a)?;
            let _ = id;
            inbox.expunge_locked(&mut g, None, false)?;
            // the new mailbox's messages were counted nowhere
            self.ctx.ledgers.forget(&from.owner);
            Ok(())
        })?
        .ok_or_else(|| Error::NoSuchMailbox(from.to_string()))
    }

    fn set_special_use(&self, m: &MailboxRef, su: Option<SpecialUse>) -> Result<()> {
        self.update_entry(m, |e| e.special_use = su)
    }

    /// Changes one mailbox's account entry: its metadata file first, then
    /// the account file (both restored if the latter cannot be written).
    fn update_entry(&self, m: &MailboxRef, f: impl FnOnce(&mut MailboxEntry)) -> Result<()> {
        self.update_entry_then(m, f, |_| {})
    }

    /// [`Self::update_entry`], calling `before` with the changed entry
    /// before anything is written, under the same account lock.
    fn update_entry_then(
        &self,
        m: &MailboxRef,
        f: impl FnOnce(&mut MailboxEntry),
        before: impl FnOnce(&MailboxEntry),
    ) -> Result<()> {
        self.with_account(&m.owner, false, |a, udir| {
            let old = a
                .mailboxes
                .get(&m.name)
                .cloned()
                .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))?;
            let mut e = old.clone();
            f(&mut e);
            before(&e);
            self.write_meta(&m.owner, &m.name, &e)?;
            a.mailboxes.insert(m.name.clone(), e);
            if let Err(err) = self.save_account(udir, a) {
                let _ = self.write_meta(&m.owner, &m.name, &old);
                a.mailboxes.insert(m.name.clone(), old);
                return Err(err);
            }
            Ok(())
        })?
        .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))
    }

    fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        Ok(self
            .with_account(user, false, |a, _| {
                Ok(a.subscriptions.iter().cloned().collect())
            })?
            .unwrap_or_default())
    }

    fn set_subscribed(&self, user: &str, name: &MailboxName, on: bool) -> Result<()> {
        self.with_account(user, on, |a, udir| {
            let changed = if on {
                a.subscriptions.insert(name.clone())
            } else {
                a.subscriptions.remove(name)
            };
            if changed {
                self.save_account(udir, a)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn acl(&self, m: &MailboxRef) -> Result<Acl> {
        self.with_account(&m.owner, false, |a, _| {
            a.mailboxes
                .get(&m.name)
                .map(|e| e.acl.clone())
                .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))
        })?
        .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))
    }

    /// SETACL. The shared index gains a new identifier before the files
    /// are written and loses a removed one after (so it is always a
    /// superset of the ACLs on disk), all under the owner's account lock.
    fn set_acl(&self, m: &MailboxRef, who: &str, rights: Option<Rights>) -> Result<()> {
        let result = self.update_entry_then(
            m,
            |e| e.acl.set(who, rights),
            |e| self.shared_index.add(&m.owner, e.id, &e.acl),
        );
        // settle on what the account holds now (the old ACL if the write failed)
        self.with_account(&m.owner, false, |a, _| {
            if let Some(e) = a.mailboxes.get(&m.name) {
                self.shared_index.settle(&m.owner, e.id, Some(&e.acl));
            }
            Ok(())
        })?;
        result
    }

    /// Other owners' mailboxes with an ACL entry that may apply to `user`,
    /// from the shared index, under their current names (entries whose
    /// directory no longer names a mailbox are skipped).
    fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        let found = self.shared_index.find(user, MAX_SHARED_MAILBOXES, |who| {
            identifier_applies(who, user)
        })?;
        let mut by_owner: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
        for (owner, id) in found {
            by_owner.entry(owner).or_default().insert(id);
        }
        let mut out = Vec::new();
        for (owner, ids) in by_owner {
            let names = self.with_account(&owner, false, |a, _| {
                Ok(a.mailboxes
                    .iter()
                    .filter(|(_, e)| ids.contains(&e.id))
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>())
            });
            // one unreadable account must not break everybody's LIST
            let names = match names {
                Ok(n) => n.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(owner, error = %e, "shared mailboxes of an unreadable account left out");
                    continue;
                }
            };
            out.extend(names.into_iter().map(|n| MailboxRef::new(owner.clone(), n)));
        }
        Ok(out)
    }

    fn status(&self, m: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        let shared = self.mailbox(m)?;
        if viewer == m.owner {
            if let Some(st) = shared.status_fast()? {
                return Ok(st);
            }
            return shared.status_full(None);
        }
        shared.status_full(Some(viewer))
    }

    fn append(&self, m: &MailboxRef, msg: NewMessage) -> Result<Appended> {
        let shared = self.mailbox(m)?;
        let p = Prepared::new(msg.content, &msg.flags, msg.internal_date);
        let appended = shared.append(p);
        self.keep_idle(shared, &m.owner);
        appended
    }

    /// After an append with no session holding the mailbox (a delivery):
    /// its state goes to the bounded idle list like a session's, so the
    /// next delivery to it within the grace period finds its index mapped
    /// and its account decoded instead of reloading both (`open_mailboxes`
    /// and `open_mailbox_grace` bound what this keeps, as for sessions).
    fn keep_idle(&self, shared: Arc<Shared>, owner: &str) {
        let account = self.open.account(owner);
        self.open.release(
            shared,
            Some(account),
            self.opts.open_mailboxes,
            self.opts.open_mailbox_grace,
        );
    }

    /// An APPEND charged to the owner's quota ledger (see `quota.rs`):
    /// reserved before the message file is written, settled by the group
    /// commit that makes it visible.
    fn append_within_quota(
        &self,
        m: &MailboxRef,
        msg: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        if limits.is_unlimited() {
            return self.append(m, msg);
        }
        let shared = self.mailbox(m)?;
        let charge = self.charge(&m.owner, Usage::new(msg.content.len() as u64, 1), limits)?;
        let p = Prepared::new(msg.content, &msg.flags, msg.internal_date);
        let appended = shared.append_charged(p, charge);
        self.keep_idle(shared, &m.owner);
        appended
    }

    /// MULTIAPPEND: one charge for all the messages, one commit.
    fn append_all(
        &self,
        m: &MailboxRef,
        msgs: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        let shared = self.mailbox(m)?;
        let charge = match limits.filter(|l| !l.is_unlimited()) {
            Some(limits) => {
                let bytes = msgs.iter().map(|x| x.content.len() as u64).sum();
                self.charge(&m.owner, Usage::new(bytes, msgs.len() as u64), limits)?
            }
            None => Charge::none(),
        };
        let ps = msgs
            .into_iter()
            .map(|msg| Prepared::new(msg.content, &msg.flags, msg.internal_date))
            .collect();
        shared.append_all(ps, charge)
    }

    /// Reserves `add` on the quota ledger of `owner` (counting their usage
    /// from the mailbox headers if the ledger has no count).
    fn charge(&self, owner: &str, add: Usage, limits: QuotaLimits) -> Result<Charge> {
        self.ctx.ledgers.get(owner).reserve(add, limits, || {
            let (bytes, messages) = self.usage(owner)?;
            Ok(Usage::new(bytes, messages))
        })
    }

    /// COPY and MOVE; with `limits`, charged to the quota of `dest`'s
    /// owner (reserved for the live messages among `uids` before any
    /// mailbox is locked, lowered to what is picked under the locks, and
    /// settled by the commit). A move within one owner is not charged.
    fn copy(
        &self,
        src: &Arc<Shared>,
        viewer: Option<&str>,
        uids: &[Uid],
        dest: &MailboxRef,
        is_move: bool,
        limits: Option<QuotaLimits>,
    ) -> Result<CopyResult> {
        let dst = self.mailbox(dest)?;
        let copier = viewer.unwrap_or(&src.owner).to_owned();
        // a move within one owner frees what it takes
        let uncharged = |l: &QuotaLimits| l.is_unlimited() || (is_move && src.owner == dest.owner);
        let mut charge = match limits.filter(|l| !uncharged(l)) {
            Some(limits) => {
                let add = {
                    let g = src.read()?;
                    let mut add = Usage::default();
                    let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
                    sorted.sort_unstable();
                    sorted.dedup();
                    for uid in sorted {
                        if let Some((_, r)) = g.find(uid).map_err(|e| src.fail(e))? {
                            add = Usage::new(add.bytes + r.size, add.messages + 1);
                        }
                    }
                    add
                };
                self.charge(&dest.owner, add, limits)?
            }
            None => Charge::none(),
        };
        if Arc::ptr_eq(src, &dst) {
            // Into the same mailbox: new UIDs (hard links to the same
            // files), and for MOVE the old UIDs expunged under the same lock.
            let mut g = src.write()?;
            let picked = pick(src, &g, viewer, uids, &copier, dest)?;
            let moved: Vec<Uid> = picked.iter().map(|(u, _)| *u).collect();
            let result = finish_copy(src, &mut g, picked, &copier, dest, &mut charge)?;
            if is_move && !moved.is_empty() {
                src.expunge_locked(&mut g, Some(&moved), false)?;
            }
            return Ok(result);
        }
        let src_first = (src.owner.as_str(), src.id) < (dst.owner.as_str(), dst.id);
        let (mut gs, mut gd) = if src_first {
            let a = src.write()?;
            let b = dst.write()?;
            (a, b)
        } else {
            let b = dst.write()?;
            let a = src.write()?;
            (a, b)
        };
        let picked = pick(src, &gs, viewer, uids, &copier, dest)?;
        let moved: Vec<Uid> = picked.iter().map(|(u, _)| *u).collect();
        let result = finish_copy(&dst, &mut gd, picked, &copier, dest, &mut charge)?;
        drop(gd);
        if is_move && !moved.is_empty() {
            src.expunge_locked(&mut gs, Some(&moved), false)?;
        }
        Ok(result)
    }

    fn reconstruct(
        &self,
        user: &str,
        only: Option<&MailboxName>,
    ) -> Result<Vec<(MailboxName, ReconstructReport)>> {
        let boxes: Vec<(MailboxName, u64)> = self
            .with_account(user, false, |a, _| {
                Ok(a.mailboxes
                    .iter()
                    .filter(|(n, _)| only.is_none_or(|o| o == *n))
                    .map(|(n, e)| (n.clone(), e.id))
                    .collect::<Vec<_>>())
            })?
            .ok_or(Error::NoSuchUser)?;
        if let Some(o) = only
            && boxes.is_empty()
        {
            return Err(Error::NoSuchMailbox(format!("{user}:{o}")));
        }
        let mut out = Vec::new();
        for (name, id) in boxes {
            let mref = MailboxRef::new(user, name.clone());
            let shared = self.shared(user, id, &mref)?;
            // (the account lock comes before any mailbox lock)
            let uv = self
                .with_account(user, false, |a, udir| {
                    let v = a.next_uid_validity();
                    self.save_account(udir, a)?;
                    Ok(v)
                })?
                .ok_or(Error::NoSuchUser)?;
            let mut slot = shared.slot_write()?;
            let report = reconstruct_locked(&shared, &mut slot, uv);
            // usage is recounted from the rebuilt headers, from scratch
            self.ctx.ledgers.forget(user);
            let report = report?;
            drop(slot);
            // load now, so watchers see the rebuilt state
            let g = shared.read()?;
            shared.notify(g.hdr.highest_modseq);
            drop(g);
            out.push((name, report));
        }
        Ok(out)
    }

    fn usage(&self, root: &str) -> Result<(u64, u64)> {
        let boxes: Vec<(MailboxName, u64)> = self
            .with_account(root, false, |a, _| {
                Ok(a.mailboxes
                    .iter()
                    .map(|(n, e)| (n.clone(), e.id))
                    .collect::<Vec<_>>())
            })?
            .unwrap_or_default();
        let (mut bytes, mut msgs) = (0u64, 0u64);
        for (name, id) in boxes {
            let shared = self.shared(root, id, &MailboxRef::new(root, name))?;
            let st = match shared.status_fast()? {
                Some(st) => st,
                None => shared.status_full(None)?,
            };
            bytes += st.size;
            msgs += u64::from(st.messages);
        }
        Ok((bytes, msgs))
    }

    /// The limits of `root` (from memory when this process has read or
    /// written them before, else from the `quota` file).
    fn limits(&self, root: &str) -> Result<QuotaLimits> {
        match self.ctx.limits.get(root) {
            Some(l) => Ok(l),
            None => self.fresh_limits(root),
        }
    }

    /// The limits of `root` read from its `quota` file (and remembered).
    fn fresh_limits(&self, root: &str) -> Result<QuotaLimits> {
        let l = self.read_limits(root)?;
        self.ctx.limits.set(root, l);
        Ok(l)
    }

    fn read_limits(&self, root: &str) -> Result<QuotaLimits> {
        let path = self.user_dir(root).join(QUOTA_FILE);
        match fs::read(&path) {
            Ok(d) => match decode_limits(&d, &path.display().to_string()) {
                Ok(l) => Ok(l),
                Err(e) => {
                    // limits cannot be recovered: none are set until an
                    // administrator sets them again
                    tracing::error!(user = root, file = %path.display(), error = %e, "quota file corrupt; treating as no limits set");
                    match move_aside(&path) {
                        Ok(to) => {
                            tracing::error!(user = root, file = %to.display(), "corrupt quota file moved aside")
                        }
                        Err(err) => {
                            tracing::warn!(user = root, file = %path.display(), error = %err, "could not move the corrupt quota file aside")
                        }
                    }
                    Ok(QuotaLimits::default())
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(QuotaLimits::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn set_limits(&self, root: &str, limits: QuotaLimits) -> Result<()> {
        let udir = self.user_dir(root);
        // whatever happens below, the file is read again next time
        self.ctx.limits.forget(root);
        fs::create_dir_all(&udir)?;
        write_atomic(
            &udir.join(QUOTA_FILE),
            &encode_limits(&limits),
            self.opts.durability,
        )?;
        self.ctx.limits.set(root, limits);
        self.ctx.feed.touch(root);
        Ok(())
    }
}

/// Renames a bad file to `<name>.corrupt-<unix seconds>` (with `.<n>` added
/// if that exists), never deleting it. Returns the new path.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!(
        "{}.corrupt-{secs}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    for n in 0..1000u32 {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}.{n}")
        };
        let to = path.with_file_name(name);
        if fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        fs::rename(path, &to)?;
        return Ok(to);
    }
    Err(Error::Backend(format!(
        "{}: too many files moved aside already",
        path.display()
    )))
}

/// The ids of the mailbox directories in `mailboxes` (names that are a
/// canonical decimal number), ascending.
fn mailbox_ids(mailboxes: &Path) -> Result<Vec<u64>> {
    let rd = match fs::read_dir(mailboxes) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut ids = Vec::new();
    for entry in rd {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Ok(id) = name.parse::<u64>() else {
            continue;
        };
        if id.to_string() == name && entry.file_type()?.is_dir() {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Whether a user directory has any mailbox directory.
fn has_mailbox_dirs(udir: &Path) -> bool {
    mailbox_ids(&udir.join("mailboxes")).is_ok_and(|ids| !ids.is_empty())
}

/// The UIDVALIDITY in an index header whose CRC holds (any known version;
/// only the header is read), and whether the index file exists at all.
fn index_uid_validity(path: &Path) -> (Option<u32>, bool) {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return (None, e.kind() != ErrorKind::NotFound),
    };
    let mut buf = [0u8; HEADER_SIZE];
    let n = read_full_at(&f, &mut buf, 0).unwrap_or(0);
    let uv = VersionLayout::detect(&buf[..n])
        .and_then(layout_of)
        .and_then(|l| l.header_field("uid_validity"))
        .and_then(|f| u32::try_from(f.read_uint(&buf)).ok());
    (uv, true)
}

/// A name under [`RECOVERED_PARENT`] for the mailbox directory `id` that no
/// mailbox of `taken` has.
fn recovered_name(taken: &BTreeMap<MailboxName, MailboxEntry>, id: u64) -> Result<MailboxName> {
    for n in 0..1000u32 {
        let s = if n == 0 {
            format!("{RECOVERED_PARENT}/{id}")
        } else {
            format!("{RECOVERED_PARENT}/{id}-{n}")
        };
        let name = MailboxName::new(&s)?;
        if !taken.contains_key(&name) {
            return Ok(name);
        }
    }
    Err(Error::Backend(format!(
        "no free name for recovered mailbox {id}"
    )))
}

/// Picks the live messages among `uids` for a copy, ascending, with their
/// flags as the destination owner will see them.
fn pick(
    src: &Shared,
    g: &WriteGuard<'_>,
    viewer: Option<&str>,
    uids: &[Uid],
    copier: &str,
    dest: &MailboxRef,
) -> Result<Vec<(Uid, Prepared)>> {
    let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let seen = match viewer {
        Some(v) => Some(g.viewer_seen(&src.dir, v).map_err(|e| src.fail(e))?),
        None => None,
    };
    let mut out = Vec::with_capacity(sorted.len());
    for uid in sorted {
        let Some((_, r)) = g.find(uid).map_err(|e| src.fail(e))? else {
            continue;
        };
        let source_owner_seen = has_seen(r.system_flags);
        let viewer_seen = seen
            .as_ref()
            .map_or(source_owner_seen, |s| s.binary_search(&uid).is_ok());
        let owner_seen = if copier == dest.owner {
            viewer_seen
        } else {
            src.owner == dest.owner && source_owner_seen
        };
        let mut bits = r.system_flags & !mailroom_core::Flags::SEEN;
        if owner_seen {
            bits |= mailroom_core::Flags::SEEN;
        }
        let summary = g
            .cache_payload(&src.dir, &src.ctx, &r)
            .map_err(|e| src.fail(e))?;
        out.push((
            Uid(uid),
            Prepared {
                source: Source::Link(msg_path(&src.dir, uid)),
                system_flags: bits,
                keywords: g.record_keywords(&r).map_err(|e| src.fail(e))?,
                viewer_seen: copier != dest.owner && viewer_seen,
                internal_date: mailroom_core::InternalDate {
                    timestamp: r.internal_date,
                    offset_minutes: r.date_offset,
                },
                sent: r.sent(),
                header_size: r.header_size,
                size: r.size,
                guid: r.guid,
                summary,
            },
        ));
    }
    Ok(out)
}

fn finish_copy(
    dst: &Shared,
    gd: &mut WriteGuard<'_>,
    picked: Vec<(Uid, Prepared)>,
    copier: &str,
    dest: &MailboxRef,
    charge: &mut Charge,
) -> Result<CopyResult> {
    let (srcs, preps): (Vec<Uid>, Vec<Prepared>) = picked.into_iter().unzip();
    let viewer = (copier != dest.owner).then_some(copier);
    let size = preps.iter().map(|p| p.size).sum();
    charge.shrink_to(Usage::new(size, preps.len() as u64));
    let done = dst.commit_new(gd, preps, true, viewer, std::slice::from_mut(charge))?;
    Ok(CopyResult {
        uid_validity: UidValidity(gd.hdr.uid_validity),
        mapping: srcs
            .into_iter()
            .zip(done)
            .map(|(s, (d, _))| (s, Uid(d)))
            .collect(),
    })
}

/// Copies a whole mailbox directory (for RENAME INBOX): message files
/// hard-linked, index copied with a new UIDVALIDITY, cache, keywords and
/// seen files copied. The caller holds the source's write lock.
fn clone_mailbox(
    src: &Path,
    dst: &Path,
    g: &WriteGuard<'_>,
    uid_validity: u32,
    durable: bool,
) -> Result<()> {
    for r in g.all_records()? {
        if r.is_expunged() {
            continue;
        }
        let to = msg_path(dst, r.uid);
        if fs::hard_link(msg_path(src, r.uid), &to).is_err() {
            fs::copy(msg_path(src, r.uid), &to)?;
        }
    }
    sync_dir(&dst.join(MSG_DIR), durable)?;
    for name in [CACHE_FILE, KEYWORDS_FILE] {
        match fs::read(src.join(name)) {
            Ok(d) => write_atomic(&dst.join(name), &d, durable)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Ok(rd) = fs::read_dir(src.join(SEEN_DIR)) {
        for e in rd.flatten() {
            let d = fs::read(e.path())?;
            write_atomic(&dst.join(SEEN_DIR).join(e.file_name()), &d, durable)?;
        }
    }
    let f = File::open(src.join(INDEX_FILE))?;
    let len = HEADER_SIZE + g.hdr.record_count as usize * RECORD_SIZE;
    let mut index = vec![0u8; len];
    if read_full_at(&f, &mut index, 0)? != len {
        return Err(Error::Corruption(format!(
            "{}: index truncated",
            src.display()
        )));
    }
    let mut h: Header = g.hdr;
    h.uid_validity = uid_validity;
    index[..HEADER_SIZE].copy_from_slice(&h.encode());
    write_atomic(&dst.join(INDEX_FILE), &index, durable)?;
    sync_dir(dst, durable)?;
    Ok(())
}

/// One open mailbox as a session holds it.
#[derive(Debug)]
pub(crate) struct CrcMailbox {
    store: Arc<StoreInner>,
    shared: Arc<Shared>,
    reference: MailboxRef,
    /// `None` for the owner.
    viewer: Option<String>,
    /// The owner's account, kept loaded while the mailbox is open.
    account: Option<AccountCell>,
}

impl Drop for CrcMailbox {
    fn drop(&mut self) {
        // the last handle of a session: keep the state a grace period
        self.store.open.release(
            self.shared.clone(),
            self.account.take(),
            self.store.opts.open_mailboxes,
            self.store.opts.open_mailbox_grace,
        );
    }
}

impl CrcMailbox {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StoreInner, &Arc<Shared>, Option<&str>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let shared = self.shared.clone();
        let viewer = self.viewer.clone();
        tokio::task::spawn_blocking(move || f(&store, &shared, viewer.as_deref()))
            .await
            .map_err(|e| Error::Backend(format!("store task failed: {e}")))?
    }
}

#[async_trait]
impl mailroom_core::Mailbox for CrcMailbox {
    fn reference(&self) -> &MailboxRef {
        &self.reference
    }

    async fn snapshot(&self) -> Result<MailboxSnapshot> {
        self.run(|_, s, v| s.snapshot(v)).await
    }

    async fn changes_since(&self, since: ModSeq) -> Result<Changes> {
        self.run(move |_, s, v| s.changes_since(v, since)).await
    }

    fn watch(&self) -> MailboxWatch {
        self.shared.watch()
    }

    async fn claim_recent(&self) -> Result<Uid> {
        self.run(|_, s, _| s.claim_recent()).await
    }

    async fn fetch_meta(&self, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        let uids = uids.to_vec();
        self.run(move |_, s, v| s.fetch_meta(v, &uids)).await
    }

    async fn summaries(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<MessageSummary>)>> {
        let uids = uids.to_vec();
        self.run(move |_, s, _| s.summaries(&uids)).await
    }

    async fn sort_fields(
        &self,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, mailroom_core::mime::SortFields)>> {
        let uids = uids.to_vec();
        self.run(move |_, s, _| s.sort_fields(&uids)).await
    }

    async fn sort_keys(
        &self,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, Arc<mailroom_core::mime::SortKeys>)>> {
        let uids = uids.to_vec();
        self.run(move |_, s, _| s.sort_keys(&uids)).await
    }

    async fn search_headers(
        &self,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, Arc<mailroom_core::mime::HeaderTexts>)>> {
        let uids = uids.to_vec();
        self.run(move |_, s, _| s.search_headers(&uids)).await
    }

    async fn sort_ranks(
        &self,
        uids: &[Uid],
        text: mailroom_core::mime::SortText,
    ) -> Result<Vec<(Uid, u32)>> {
        let uids = uids.to_vec();
        self.run(move |_, s, _| s.sort_ranks(&uids, text)).await
    }

    async fn content(&self, uid: Uid) -> Result<MessageContent> {
        self.run(move |_, s, _| s.content(uid)).await
    }

    async fn store(
        &self,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let uids = uids.to_vec();
        let op = op.clone();
        self.run(move |_, s, v| s.store(v, &uids, &op, unchanged_since))
            .await
    }

    async fn expunge(&self, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let uids = uids.map(<[Uid]>::to_vec);
        self.run(move |_, s, _| {
            let mut g = s.write()?;
            s.expunge_locked(&mut g, uids.as_deref(), true)
        })
        .await
    }

    async fn copy_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult> {
        let uids = uids.to_vec();
        let dest = dest.clone();
        self.run(move |st, s, v| st.copy(s, v, &uids, &dest, false, None))
            .await
    }

    async fn copy_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        let dest = dest.clone();
        self.run(move |st, s, v| st.copy(s, v, &uids, &dest, false, Some(limits)))
            .await
    }

    async fn move_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        let dest = dest.clone();
        self.run(move |st, s, v| st.copy(s, v, &uids, &dest, true, Some(limits)))
            .await
    }

    async fn move_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult> {
        let uids = uids.to_vec();
        let dest = dest.clone();
        self.run(move |st, s, v| st.copy(s, v, &uids, &dest, true, None))
            .await
    }
}

#[async_trait]
impl Storage for CrcStore {
    async fn ensure_account(&self, user: &str) -> Result<()> {
        let user = user.to_owned();
        self.run(move |s| s.ensure_account(&user)).await
    }

    async fn lock_maildrop(&self, user: &str) -> Result<mailroom_core::maildrop::MaildropLock> {
        let user = user.to_owned();
        self.run(move |s| s.lock_maildrop(&user)).await
    }

    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        let owner = owner.to_owned();
        self.run(move |s| s.list(&owner)).await
    }

    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()> {
        let m = mailbox.clone();
        self.run(move |s| s.create(&m, special_use)).await
    }

    async fn delete(&self, mailbox: &MailboxRef) -> Result<()> {
        let m = mailbox.clone();
        self.run(move |s| s.delete(&m)).await
    }

    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        let (from, to) = (from.clone(), to.clone());
        self.run(move |s| s.rename(&from, &to)).await
    }

    async fn set_special_use(
        &self,
        mailbox: &MailboxRef,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let m = mailbox.clone();
        self.run(move |s| s.set_special_use(&m, special_use)).await
    }

    fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        self.inner.namespace.watch(self.inner.user_dir(user))
    }

    /// Every change is made in this process (FORMAT.md: one process per
    /// store), which wakes the watches at the account file's write, before
    /// the change is acknowledged.
    fn namespace_watch_is_complete(&self) -> bool {
        true
    }

    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        let user = user.to_owned();
        self.run(move |s| s.subscriptions(&user)).await
    }

    async fn set_subscribed(&self, user: &str, name: &MailboxName, subscribed: bool) -> Result<()> {
        let (user, name) = (user.to_owned(), name.clone());
        self.run(move |s| s.set_subscribed(&user, &name, subscribed))
            .await
    }

    async fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        let user = user.to_owned();
        self.run(move |s| s.shared_mailboxes(&user)).await
    }

    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl> {
        let m = mailbox.clone();
        self.run(move |s| s.acl(&m)).await
    }

    async fn set_acl(
        &self,
        mailbox: &MailboxRef,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()> {
        let (m, who) = (mailbox.clone(), identifier.to_owned());
        self.run(move |s| s.set_acl(&m, &who, rights)).await
    }

    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        let (m, viewer) = (mailbox.clone(), viewer.to_owned());
        self.run(move |s| s.status(&m, &viewer)).await
    }

    async fn open(
        &self,
        mailbox: &MailboxRef,
        viewer: &str,
    ) -> Result<Arc<dyn mailroom_core::Mailbox>> {
        let (m, viewer) = (mailbox.clone(), viewer.to_owned());
        let store = self.inner.clone();
        self.run(move |s| {
            // held from before the lookup, so the account loaded for it stays
            let account = Some(s.open.account(&m.owner));
            let shared = s.mailbox(&m)?;
            // load now, so a broken mailbox fails at SELECT
            drop(shared.read()?);
            let viewer = (viewer != m.owner).then_some(viewer);
            Ok(Arc::new(CrcMailbox {
                store,
                shared,
                reference: m,
                viewer,
                account,
            }) as Arc<dyn mailroom_core::Mailbox>)
        })
        .await
    }

    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        let m = mailbox.clone();
        self.run(move |s| s.append(&m, message)).await
    }

    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        let m = mailbox.clone();
        self.run(move |s| s.append_within_quota(&m, message, limits))
            .await
    }

    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        let m = mailbox.clone();
        self.run(move |s| s.append_all(&m, messages, limits)).await
    }
}

#[async_trait]
impl Quota for CrcStore {
    async fn usage(&self, root: &str) -> Result<QuotaUsage> {
        let root = root.to_owned();
        self.run(move |s| {
            let (storage_bytes, messages) = s.usage(&root)?;
            Ok(QuotaUsage {
                // a report reads the file (and notices a damaged one)
                limits: s.fresh_limits(&root)?,
                root,
                storage_bytes,
                messages,
            })
        })
        .await
    }

    async fn set_limits(&self, root: &str, limits: QuotaLimits) -> Result<()> {
        let root = root.to_owned();
        self.run(move |s| s.set_limits(&root, limits)).await
    }

    /// From memory once read (no trip to the blocking pool: a delivery
    /// asks for every recipient).
    async fn limits(&self, root: &str) -> Result<QuotaLimits> {
        if let Some(l) = self.inner.ctx.limits.get(root) {
            return Ok(l);
        }
        let root = root.to_owned();
        self.run(move |s| s.limits(&root)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use mailroom_core::Flags;
    use mailroom_core::mime::{SortKeys, SortText};

    /// A store with the account "alice", durability on.
    fn alice_store(dir: &Path) -> CrcStore {
        let store = CrcStore::open(dir, CrcOptions::default()).unwrap();
        store.inner.ensure_account("alice").unwrap();
        store
    }

    fn new_message(content: String) -> NewMessage {
        NewMessage {
            flags: Flags::default(),
            internal_date: None,
            content: content.into(),
        }
    }

    /// The sort-key cache (mailbox/sort_keys.rs): filled on first use and
    /// answered from memory afterwards (the same keys, not recomputed),
    /// never answering an expunged message, pruned once keys of expunged
    /// messages pile up; prints what it costs per message for list mail
    /// (threads linked by References, as in `mailroom-bench sort`).
    #[test]
    fn sort_keys_are_cached_and_follow_expunges() {
        let dir = tempfile::tempdir().unwrap();
        let store = alice_store(dir.path());
        let inner = store.inner.clone();
        let inbox = MailboxRef::new("alice", MailboxName::inbox());
        let shared = inner.mailbox(&inbox).unwrap();
        let n = 1500u32;
        for i in 0..n {
            let refs = if i % 8 == 0 {
                String::new()
            } else {
                format!("References: <t{}@bench.example>\r\n", i - 1)
            };
            let content = format!(
                "From: Person {p} <p{p}@example.org>\r\nTo: alice@example.org\r\n\
                 Subject: Re: topic {t}\r\nDate: 14 Nov 2023 22:13:20 +0000\r\n\
                 Message-ID: <t{i}@bench.example>\r\n{refs}\r\nbody\r\n",
                p = i % 997,
                t = i / 8
            );
            inner.append(&inbox, new_message(content)).unwrap();
        }
        let all: Vec<Uid> = (1..=n).map(Uid).collect();
        assert_eq!(shared.sort_key_usage().unwrap(), (0, 0), "filled lazily");
        let first = shared.sort_keys(&all).unwrap();
        assert_eq!(first.len(), n as usize);
        assert_eq!(first[9].1.subject(), b"TOPIC 1");
        assert_eq!(
            first[9].1.references().next(),
            Some(&b"t8@bench.example"[..])
        );
        let (cached, bytes) = shared.sort_key_usage().unwrap();
        assert_eq!(cached, n as usize);
        println!(
            "sort-key cache: {} bytes per message ({cached} messages, {bytes} bytes)",
            bytes / cached
        );
        // Ranks: the order of the strings, built once and then kept.
        let by_from = |got: &[(Uid, u32)], keys: &[(Uid, Arc<SortKeys>)]| {
            got.iter().zip(keys).all(|((ua, ra), (ub, kb))| {
                ua == ub
                    && got
                        .iter()
                        .zip(keys)
                        .all(|((_, r), (_, k))| ra.cmp(r) == kb.from().cmp(k.from()))
            })
        };
        let some: Vec<Uid> = all.iter().copied().step_by(7).collect();
        let some_keys = shared.sort_keys(&some).unwrap();
        let ranks = shared.sort_ranks(&some, SortText::From).unwrap();
        assert!(by_from(&ranks, &some_keys), "ranks order as the strings");
        let (_, with_ranks) = shared.sort_key_usage().unwrap();
        assert_eq!(
            with_ranks - bytes,
            n as usize * crate::mailbox::RANK_ENTRY,
            "one table, over every cached key"
        );
        assert_eq!(shared.sort_ranks(&some, SortText::From).unwrap(), ranks);
        assert_eq!(shared.sort_key_usage().unwrap().1, with_ranks, "kept");
        let reads = store.io_counters();
        let again = shared.sort_keys(&all).unwrap();
        assert!(
            first
                .iter()
                .zip(&again)
                .all(|(a, b)| Arc::ptr_eq(&a.1, &b.1)),
            "the second lookup answers the keys kept"
        );
        assert_eq!(
            store.io_counters().cache_reads,
            reads.cache_reads,
            "no cache file read for keys kept"
        );
        // Expunge all but the last 300: never answered, and pruned.
        let del = StoreOp::Add(Flags::from_iter([mailroom_core::Flag::Deleted]));
        let gone = &all[..(n - 300) as usize];
        shared.store(None, gone, &del, None).unwrap();
        let mut g = shared.write().unwrap();
        shared.expunge_locked(&mut g, Some(gone), true).unwrap();
        drop(g);
        // A new message: ranked again, with it.
        let new_uid = inner
            .append(
                &inbox,
                new_message("From: Aaron <aaron@example.org>\r\n\r\nbody\r\n".into()),
            )
            .unwrap()
            .uid;
        let mut asked = some.clone();
        asked.push(new_uid);
        let ranks = shared.sort_ranks(&asked, SortText::From).unwrap();
        assert_eq!(ranks.last().map(|(u, _)| *u), Some(new_uid));
        assert!(by_from(&ranks, &shared.sort_keys(&asked).unwrap()));
        assert!(
            ranks
                .iter()
                .all(|(u, r)| *u == new_uid || *r > ranks[ranks.len() - 1].1)
        );
        let left = shared.sort_keys(&all).unwrap();
        assert_eq!(
            left.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            all[(n - 300) as usize..].to_vec()
        );
        assert_eq!(
            shared.sort_key_usage().unwrap().0,
            300 + 1,
            "the keys of expunged messages were dropped (the new one kept)"
        );
    }

    /// SEARCH's header texts (mailbox/sort_keys.rs) are kept beside the
    /// sort keys: computed once, answered from memory afterwards (no
    /// cache file read), counted in the same bound, never answering an
    /// expunged message, and pruned with the keys.
    #[test]
    fn search_headers_are_cached_and_follow_expunges() {
        let dir = tempfile::tempdir().unwrap();
        let store = alice_store(dir.path());
        let inner = store.inner.clone();
        let inbox = MailboxRef::new("alice", MailboxName::inbox());
        let shared = inner.mailbox(&inbox).unwrap();
        let n = 1500u32;
        for i in 0..n {
            let content = format!(
                "From: Person {i} <p{i}@example.org>\r\nTo: alice@example.org\r\n\
                 X-Other: not searched here\r\nSubject: =?utf-8?q?caf=C3=A9?= {i}\r\n\r\nbody\r\n",
            );
            inner.append(&inbox, new_message(content)).unwrap();
        }
        let all: Vec<Uid> = (1..=n).map(Uid).collect();
        let first = shared.search_headers(&all).unwrap();
        assert_eq!(first.len(), n as usize);
        let names: Vec<&str> = first[7].1.iter().map(|h| h.name).collect();
        assert_eq!(names, ["from", "to", "subject"], "the search fields only");
        assert!(first[7].1.contains("from", "P7@EXAMPLE.ORG"));
        assert!(first[7].1.contains("subject", "CAFE\u{301} 7"));
        let (cached, bytes) = shared.sort_key_usage().unwrap();
        assert_eq!(cached, 0, "no sort keys were asked for");
        println!(
            "header texts: {} bytes per message ({n} messages, {bytes} bytes)",
            bytes / n as usize
        );
        assert!(bytes >= first.iter().map(|(_, t)| t.memory()).sum::<usize>());
        let reads = store.io_counters();
        let again = shared.search_headers(&all).unwrap();
        assert!(
            first
                .iter()
                .zip(&again)
                .all(|(a, b)| Arc::ptr_eq(&a.1, &b.1)),
            "the second lookup answers the texts kept"
        );
        assert_eq!(store.io_counters().cache_reads, reads.cache_reads);
        // Keys beside them: both counted.
        shared.sort_keys(&all).unwrap();
        let (_, both) = shared.sort_key_usage().unwrap();
        assert!(both > bytes);
        // Expunge all but the last 300: never answered, and pruned.
        let del = StoreOp::Add(Flags::from_iter([mailroom_core::Flag::Deleted]));
        let gone = &all[..(n - 300) as usize];
        shared.store(None, gone, &del, None).unwrap();
        let mut g = shared.write().unwrap();
        shared.expunge_locked(&mut g, Some(gone), true).unwrap();
        drop(g);
        let left = shared.search_headers(&all).unwrap();
        assert_eq!(
            left.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            all[(n - 300) as usize..].to_vec()
        );
        let (keys, pruned) = shared.sort_key_usage().unwrap();
        assert_eq!(keys, 300, "the keys pruned with the texts");
        assert!(pruned < both / 4, "{pruned} of {both} bytes left");
    }

    /// Waits until `n` appends are queued on the mailbox.
    fn wait_for_queue(shared: &Shared, n: usize) {
        while shared.pending_count() < n {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Appends that queue up while the mailbox is locked are committed
    /// together by the leader once it gets the lock: one group commit,
    /// distinct UIDs and modseqs, every message readable with its own bytes.
    #[test]
    fn appends_waiting_for_the_lock_are_committed_as_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = alice_store(dir.path());
        let inner = store.inner.clone();
        let inbox = MailboxRef::new("alice", MailboxName::inbox());
        let shared = inner.mailbox(&inbox).unwrap();
        let before = store.io_counters();

        // hold the mailbox while five appends arrive
        let guard = shared.write().unwrap();
        let threads: Vec<_> = (0..5u8)
            .map(|i| {
                let (inner, inbox) = (inner.clone(), inbox.clone());
                std::thread::spawn(move || {
                    let content = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
                    let appended = inner.append(&inbox, new_message(content.clone()));
                    (appended.unwrap(), content)
                })
            })
            .collect();
        wait_for_queue(&shared, 5);
        drop(guard);
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();

        let after = store.io_counters();
        assert_eq!(
            after.append_commits - before.append_commits,
            1,
            "one group commit"
        );
        assert_eq!(after.appended - before.appended, 5);
        let mut uids: Vec<u32> = results.iter().map(|(a, _)| a.uid.0).collect();
        let mut modseqs: Vec<u64> = results.iter().map(|(a, _)| a.modseq.0).collect();
        uids.sort_unstable();
        uids.dedup();
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(uids.len(), 5, "distinct UIDs");
        assert_eq!(modseqs.len(), 5, "one modseq per APPEND");
        for (a, content) in &results {
            let got = shared.content(a.uid).unwrap();
            assert_eq!(&got[..], content.as_bytes());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(store.verify(&inbox)).unwrap(), 5);
        // nothing left behind in tmp/
        let tmp = shared.dir.join(crate::mailbox::TMP_DIR);
        assert_eq!(fs::read_dir(tmp).unwrap().count(), 0);
    }

    /// An append whose mailbox is deleted while it waits for the lock is
    /// answered "no such mailbox", taken out of the queue (no later batch
    /// commits it behind the client's back) and leaves no file behind.
    #[test]
    fn append_into_a_mailbox_deleted_while_waiting_is_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        let store = alice_store(dir.path());
        let inner = store.inner.clone();
        let doomed = MailboxRef::new("alice", MailboxName::new("Doomed").unwrap());
        inner.create(&doomed, None).unwrap();
        let shared = inner.mailbox(&doomed).unwrap();
        let mut slot = shared.slot_write().unwrap();
        let t = {
            let (inner, doomed) = (inner.clone(), doomed.clone());
            std::thread::spawn(move || {
                inner.append(&doomed, new_message("Subject: x\r\n\r\nx\r\n".into()))
            })
        };
        wait_for_queue(&shared, 1);
        // what DELETE does, while the append waits
        slot.deleted = true;
        slot.inner = None;
        drop(slot);
        let r = t.join().unwrap();
        assert!(matches!(r, Err(Error::NoSuchMailbox(_))), "{r:?}");
        assert_eq!(shared.pending_count(), 0);
        let tmp = shared.dir.join(crate::mailbox::TMP_DIR);
        assert_eq!(fs::read_dir(tmp).unwrap().count(), 0, "tmp file removed");
    }
}
