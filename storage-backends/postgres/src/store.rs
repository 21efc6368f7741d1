//! [`PgStore`]: `Storage` and `Quota` over the schema of SCHEMA.md.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use mailroom_core::access::{MAX_SHARED_MAILBOXES, identifier_applies};
use mailroom_core::mailbox::DEFAULT_MAILBOXES;
use mailroom_core::maildrop::{MaildropLock, in_use};
use mailroom_core::{
    ANYONE, Acl, Appended, Error, Flag, InternalDate, Mailbox, MailboxInfo, MailboxName,
    MailboxRef, MailboxStatus, MessageGuid, ModSeq, NamespaceWatch, NewMessage, Quota, QuotaLimits,
    QuotaUsage, Result, Rights, SpecialUse, Storage,
};
use tokio_postgres::NoTls;
use tokio_postgres::types::Type;

use crate::db::{self, Cached, db, is_unique_violation, uid, uid_validity};
use crate::feed::{self, Feed};
use crate::mailbox::PgMailbox;
use crate::{PgOptions, PgStoreError, body, schema};

/// The PostgreSQL store. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) feed: Arc<Feed>,
    /// The message records of the mailboxes served lately (`view.rs`).
    pub(crate) views: crate::view::Views,
    config: tokio_postgres::Config,
    /// Maildrop locks held by this process (the advisory locks below make
    /// them exclusive across processes).
    maildrops: Mutex<HashSet<String>>,
    /// The connection holding this process's maildrop advisory locks.
    lock_conn: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PgStore")
            .field("pool_size", &status.max_size)
            .field("pool_available", &status.available)
            .finish()
    }
}

/// A mailbox row, as the store looks it up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MailboxRow {
    pub(crate) id: i64,
    pub(crate) account: i64,
    /// The `object_id` column (a MAILBOXID kept from a primary).
    pub(crate) object_id: Option<[u8; 16]>,
}

/// The account row's usage after a change, locked by the transaction.
struct Usage {
    bytes: i64,
    messages: i64,
}

impl PgStore {
    /// Connects (a pool of `pool_size`), migrates when asked, and starts the
    /// change-feed listener. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`PgStoreError`] if the URL is bad, the database cannot be reached,
    /// or the schema is not at this build's version (and `migrate` is false).
    pub async fn connect(options: &PgOptions) -> Result<PgStore, PgStoreError> {
        let (pool, config) = pool(options).await?;
        let feed = Arc::new(Feed::default());
        let (ready, listening) = tokio::sync::oneshot::channel();
        tokio::spawn(feed::listen(config.clone(), Arc::downgrade(&feed), ready));
        // Serve only once changes of other frontends are heard (the
        // listener keeps trying on its own if this takes longer).
        if tokio::time::timeout(std::time::Duration::from_secs(10), listening)
            .await
            .is_err()
        {
            tracing::warn!("the change feed is not listening yet");
        }
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                feed,
                views: crate::view::Views::new(options.view_records.min(crate::MAX_VIEW_RECORDS)),
                config,
                maildrops: Mutex::new(HashSet::new()),
                lock_conn: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// Migrates the database at `url` to this build's schema; returns the
    /// version it was at.
    ///
    /// # Errors
    ///
    /// [`PgStoreError`] if it cannot connect or a migration fails.
    pub async fn migrate(url: &str) -> Result<i32, PgStoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(PgStoreError::Url)?;
        let (mut client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let r = schema::migrate(&mut client).await;
        drop(client);
        let _ = driver.await;
        r
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.inner.pool.get().await.map_err(db::pool)
    }

    /// The users table of this store's database, on the store's pool.
    pub fn users(&self) -> crate::users::PgUsers {
        crate::users::PgUsers::from_pool(self.inner.pool.clone())
    }

    /// The mailbox row of `mailbox`, or `NoSuchMailbox`.
    pub(crate) async fn row<C: Cached>(
        &self,
        client: &C,
        mailbox: &MailboxRef,
    ) -> Result<MailboxRow> {
        client
            .cached_query_opt(
                "SELECT m.id, m.account_id, m.object_id FROM mailboxes m \
                 JOIN accounts a ON a.id = m.account_id WHERE a.name = $1 AND m.name = $2",
                &[&mailbox.owner, &mailbox.name.as_str()],
            )
            .await
            .map_err(db)?
            .map(|r| MailboxRow {
                id: r.get(0),
                account: r.get(1),
                object_id: r
                    .get::<_, Option<&[u8]>>(2)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok()),
            })
            .ok_or_else(|| no_such(mailbox))
    }
}

/// Builds a pool on `options.url` and brings the schema to this build's
/// version (or checks it is there, without `migrate`).
pub(crate) async fn pool(
    options: &PgOptions,
) -> Result<(Pool, tokio_postgres::Config), PgStoreError> {
    let config: tokio_postgres::Config = options.url.parse().map_err(PgStoreError::Url)?;
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .map_err(|e| PgStoreError::Pool(e.to_string()))?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| PgStoreError::Pool(e.to_string()))?;
    let found = schema::version(&client).await?;
    if options.migrate {
        schema::migrate(&mut client).await?;
    } else if found != schema::SCHEMA_VERSION {
        return Err(PgStoreError::WrongVersion {
            found,
            known: schema::SCHEMA_VERSION,
        });
    }
    drop(client);
    Ok((pool, config))
}

pub(crate) fn no_such(mailbox: &MailboxRef) -> Error {
    Error::NoSuchMailbox(mailbox.name.to_string())
}

/// The account row of `user`, made if missing.
pub(crate) async fn account_id(tx: &Transaction<'_>, user: &str) -> Result<i64> {
    if let Some(r) = tx
        .cached_query_opt("SELECT id FROM accounts WHERE name = $1", &[&user])
        .await
        .map_err(db)?
    {
        return Ok(r.get(0));
    }
    let r = tx
        .cached_query_one(
            "INSERT INTO accounts (name) VALUES ($1) \
             ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            &[&user],
        )
        .await
        .map_err(db)?;
    Ok(r.get(0))
}

/// Creates a mailbox row in `account`; `MailboxExists` if the name is taken.
pub(crate) async fn insert_mailbox(
    tx: &Transaction<'_>,
    account: i64,
    name: &MailboxName,
    special_use: Option<SpecialUse>,
) -> Result<i64> {
    let su = special_use.map(SpecialUse::as_str);
    tx.cached_query_opt(
        "INSERT INTO mailboxes (account_id, name, uid_validity, special_use) \
         VALUES ($1, $2, nextval('uid_validity_seq'), $3) \
         ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
        &[&account, &name.as_str(), &su],
    )
    .await
    .map_err(db)?
    .map(|row| row.get(0))
    .ok_or_else(|| Error::MailboxExists(name.to_string()))
}

/// The assignment that moves an `accounts` row's change position to this
/// transaction's (replication's `changed_accounts`; SCHEMA.md, "Change
/// positions").
pub(crate) const TOUCH: &str = "changed_xid = pg_current_xact_id()::text::bigint";

/// The expression, in a `RETURNING` list of a statement that wrote
/// [`TOUCH`], that tells every frontend's change watch
/// (`Replication::watch_changes`) when the transaction commits.
pub(crate) const ANNOUNCE: &str = "pg_notify('mailroom', 'cp ' || changed_xid)";

/// Locks the account row and adds to its usage (moving its change
/// position); returns the usage after.
async fn charge(tx: &Transaction<'_>, account: i64, bytes: i64, messages: i64) -> Result<Usage> {
    let r = tx
        .cached_query_one(
            &format!(
                "UPDATE accounts SET used_bytes = used_bytes + $2, \
                 used_messages = used_messages + $3, {TOUCH} \
                 WHERE id = $1 RETURNING used_bytes, used_messages, {ANNOUNCE}"
            ),
            &[&account, &bytes, &messages],
        )
        .await
        .map_err(db)?;
    Ok(Usage {
        bytes: r.get(0),
        messages: r.get(1),
    })
}

/// Deletes mailbox row `id` of account `account` (locked by the caller)
/// with its messages, and takes them off the account's usage; returns the
/// GUIDs of its bodies (to collect once committed).
pub(crate) async fn remove_mailbox(
    tx: &Transaction<'_>,
    id: i64,
    account: i64,
) -> Result<Vec<Vec<u8>>> {
    let r = tx
        .cached_query_one(
            "SELECT count(*), coalesce(sum(size), 0)::bigint, \
             coalesce(array_agg(DISTINCT guid) FILTER (WHERE guid IS NOT NULL), '{}') \
             FROM messages WHERE mailbox_id = $1",
            &[&id],
        )
        .await
        .map_err(db)?;
    let (count, bytes, guids): (i64, i64, Vec<Vec<u8>>) = (r.get(0), r.get(1), r.get(2));
    let gone = tx
        .cached_execute(
            "DELETE FROM mailboxes WHERE id = $1 RETURNING \
             pg_notify('mailroom', account_id || ' ' || id || ' 0')",
            &[&id],
        )
        .await
        .map_err(db)?;
    if gone == 0 {
        return Err(Error::NoSuchMailbox("(deleted)".into()));
    }
    charge(tx, account, -bytes, -count).await?;
    Ok(guids)
}

/// Announces a change of `user`'s namespace to every frontend, this one
/// included: the notification is sent when `tx` commits, not before.
pub(crate) async fn announce_namespace(tx: &Transaction<'_>, user: &str) -> Result<()> {
    tx.cached_execute(
        "SELECT pg_notify('mailroom', $1::text || $2::text)",
        &[&crate::feed::NAMESPACE_PREFIX, &user],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Locks the account rows in id order (the first lock every write takes,
/// so writes never deadlock) and moves their change positions to this
/// transaction's: every change replication must see goes through here or
/// through [`charge`].
pub(crate) async fn lock_accounts(tx: &Transaction<'_>, accounts: &[i64]) -> Result<()> {
    let mut ids = accounts.to_vec();
    ids.sort_unstable();
    ids.dedup();
    tx.cached_execute(
        &format!(
            "WITH l AS (SELECT id FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE) \
             UPDATE accounts a SET {TOUCH} FROM l WHERE a.id = l.id RETURNING {ANNOUNCE}"
        ),
        &[&ids],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Whether `usage` is within `limits`.
pub(crate) fn within(limits: &QuotaLimits, bytes: i64, messages: i64) -> bool {
    limits.allow(bytes.max(0) as u64, messages.max(0) as u64, 0, 0)
}

/// Takes `n` UIDs and one modseq in mailbox `id` (locking its row) and
/// announces the change; returns (first UID, modseq, UIDVALIDITY).
pub(crate) async fn bump(tx: &Transaction<'_>, id: i64, n: i64) -> Result<(i64, i64, i64)> {
    let r = tx
        .cached_query_opt(
            "UPDATE mailboxes SET uid_next = uid_next + $2, highest_modseq = highest_modseq + 1 \
             WHERE id = $1 RETURNING uid_next - $2, highest_modseq, uid_validity, \
             pg_notify('mailroom', account_id || ' ' || id || ' ' || highest_modseq)",
            &[&id, &n],
        )
        .await
        .map_err(db)?
        .ok_or(Error::NoSuchMailbox("(deleted)".into()))?;
    let first: i64 = r.get(0);
    if first + n > i64::from(u32::MAX) {
        return Err(Error::Cannot("mailbox has run out of UIDs"));
    }
    Ok((first, r.get(1), r.get(2)))
}

/// Inserts one message row.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_message(
    tx: &Transaction<'_>,
    mailbox: i64,
    account: i64,
    uid: i64,
    modseq: i64,
    flags: &mailroom_core::Flags,
    date: InternalDate,
    size: i64,
    guid: &MessageGuid,
) -> Result<()> {
    let bits = i16::from(flags.system_bits());
    let keywords: Vec<&str> = flags.keywords().collect();
    let g: &[u8] = &guid.0;
    let crc = db::record_crc(uid, modseq, flags, date, size, guid);
    tx.cached_execute(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
         date_offset, size, account_id, guid, save_date, state_crc) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10, extract(epoch FROM now())::bigint, $11)",
        &[
            &mailbox,
            &uid,
            &modseq,
            &bits,
            &keywords,
            &date.timestamp,
            &date.offset_minutes,
            &size,
            &account,
            &g,
            &crc,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

impl PgStore {
    async fn append_inner(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        self.append_all_inner(mailbox, vec![message], limits)
            .await?
            .pop()
            .ok_or_else(|| Error::Backend("an append stored nothing".into()))
    }

    /// MULTIAPPEND: every message in one transaction (one charge for all,
    /// each its own UID and modseq), so all commit or none does.
    async fn append_all_inner(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: QuotaLimits,
    ) -> Result<Vec<Appended>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        let tx = client.transaction().await.map_err(db)?;
        let total: i64 = messages.iter().map(|m| m.content.len() as i64).sum();
        let usage = charge(&tx, row.account, total, messages.len() as i64).await?;
        if !within(&limits, usage.bytes, usage.messages) {
            return Err(Error::OverQuota);
        }
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            let guid = MessageGuid::of(&message.content);
            body::put(&tx, row.account, &guid, &message.content).await?;
            let (first, modseq, uv) = bump(&tx, row.id, 1).await?;
            let date = message.internal_date.unwrap_or_else(InternalDate::now);
            insert_message(
                &tx,
                row.id,
                row.account,
                first,
                modseq,
                &message.flags,
                date,
                message.content.len() as i64,
                &guid,
            )
            .await?;
            out.push(Appended {
                uid_validity: uid_validity(uv),
                uid: uid(first),
                modseq: ModSeq(modseq as u64),
            });
        }
        tx.commit().await.map_err(db)?;
        if let Some(last) = out.last() {
            self.inner.feed.publish(row.id, last.modseq);
        }
        Ok(out)
    }

    /// The lock connection, connected if needed.
    async fn lock_client<'a>(
        &'a self,
        slot: &'a mut Option<tokio_postgres::Client>,
    ) -> Result<&'a tokio_postgres::Client> {
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, connection) = self.inner.config.connect(NoTls).await.map_err(db)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "maildrop lock connection lost");
                }
            });
            *slot = Some(client);
        }
        slot.as_ref().ok_or_else(db::unavailable)
    }
}

/// The advisory lock key of a user's maildrop.
fn maildrop_key(user: &str) -> i64 {
    let g = MessageGuid::of(format!("maildrop\0{user}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&g.0[..8]);
    i64::from_be_bytes(b)
}

/// A maildrop lock being taken or held: dropping it releases the
/// in-process entry at once and, if the advisory lock was taken, unlocks it
/// on the lock connection right after. A new holder in this process may
/// lock again before that unlock runs: advisory locks taken twice on one
/// connection count, so the unlock then leaves the new holder's lock.
struct MaildropGuard {
    store: PgStore,
    user: String,
    advisory: bool,
}

impl Drop for MaildropGuard {
    fn drop(&mut self) {
        self.store
            .inner
            .maildrops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.user);
        if !self.advisory {
            return;
        }
        let store = self.store.clone();
        let key = maildrop_key(&self.user);
        // Without a runtime the process is ending, and the connection's
        // close releases every lock it held.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let slot = store.inner.lock_conn.lock().await;
                if let Some(c) = slot.as_ref()
                    && let Err(e) = c
                        .query_typed("SELECT pg_advisory_unlock($1)", &[(&key, Type::INT8)])
                        .await
                {
                    tracing::warn!(error = %e, "maildrop unlock failed");
                }
            });
        }
    }
}

#[async_trait]
impl Storage for PgStore {
    async fn ensure_account(&self, user: &str) -> Result<()> {
        let mut client = self.client().await?;
        let done = client
            .cached_query_opt("SELECT initialised FROM accounts WHERE name = $1", &[&user])
            .await
            .map_err(db)?
            .is_some_and(|r| r.get::<_, bool>(0));
        if done {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(db)?;
        let account = account_id(&tx, user).await?;
        let r = tx
            .cached_query_one(
                "SELECT initialised FROM accounts WHERE id = $1 FOR UPDATE",
                &[&account],
            )
            .await
            .map_err(db)?;
        if r.get::<_, bool>(0) {
            return Ok(());
        }
        for (name, special_use) in DEFAULT_MAILBOXES {
            let name = MailboxName::new(name)?;
            match insert_mailbox(&tx, account, &name, special_use).await {
                Ok(_) | Err(Error::MailboxExists(_)) => {}
                Err(e) => return Err(e),
            }
            tx.cached_execute(
                "INSERT INTO subscriptions (account, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&user, &name.as_str()],
            )
            .await
            .map_err(db)?;
        }
        tx.cached_execute(
            &format!(
                "UPDATE accounts SET initialised = true, {TOUCH} WHERE id = $1 RETURNING {ANNOUNCE}"
            ),
            &[&account],
        )
        .await
        .map_err(db)?;
        announce_namespace(&tx, user).await?;
        tx.commit().await.map_err(db)?;
        self.inner.feed.namespace_changed(user);
        tracing::debug!(user, "account created");
        Ok(())
    }

    async fn list(&self, owner: &str) -> Result<Vec<MailboxInfo>> {
        let client = self.client().await?;
        let rows = client
            .cached_query(
                "SELECT m.name, m.special_use FROM mailboxes m JOIN accounts a \
                 ON a.id = m.account_id WHERE a.name = $1",
                &[&owner],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(MailboxInfo {
                    name: MailboxName::new(r.get(0))?,
                    special_use: r.get::<_, Option<&str>>(1).and_then(SpecialUse::parse),
                })
            })
            .collect()
    }

    async fn create(&self, mailbox: &MailboxRef, special_use: Option<SpecialUse>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let account = account_id(&tx, &mailbox.owner).await?;
        lock_accounts(&tx, &[account]).await?;
        insert_mailbox(&tx, account, &mailbox.name, special_use).await?;
        announce_namespace(&tx, &mailbox.owner).await?;
        tx.commit().await.map_err(db)?;
        self.inner.feed.namespace_changed(&mailbox.owner);
        tracing::debug!(%mailbox, "mailbox created");
        Ok(())
    }

    async fn delete(&self, mailbox: &MailboxRef) -> Result<()> {
        if mailbox.name.is_inbox() {
            return Err(Error::Cannot("INBOX cannot be deleted"));
        }
        let mut client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_accounts(&tx, &[row.account]).await?;
        let guids = remove_mailbox(&tx, row.id, row.account)
            .await
            .map_err(|e| match e {
                Error::NoSuchMailbox(_) => no_such(mailbox),
                e => e,
            })?;
        announce_namespace(&tx, &mailbox.owner).await?;
        tx.commit().await.map_err(db)?;
        self.inner.feed.remove(row.id);
        self.inner.feed.namespace_changed(&mailbox.owner);
        body::collect(&client, row.account, guids).await;
        tracing::debug!(%mailbox, "mailbox deleted");
        Ok(())
    }

    async fn rename(&self, from: &MailboxRef, to: &MailboxName) -> Result<()> {
        let mut client = self.client().await?;
        let row = self.row(&client, from).await?;
        let tx = client.transaction().await.map_err(db)?;
        if from.name.is_inbox() {
            lock_accounts(&tx, &[row.account]).await?;
            let new_id = insert_mailbox(&tx, row.account, to, None).await?;
            // the new mailbox takes INBOX's numbers, messages and seen state
            tx.cached_execute(
                "UPDATE mailboxes n SET uid_next = o.uid_next, highest_modseq = o.highest_modseq, \
                 recent_from = o.recent_from FROM mailboxes o WHERE n.id = $1 AND o.id = $2",
                &[&new_id, &row.id],
            )
            .await
            .map_err(db)?;
            let moved = tx
                .cached_query(
                    "UPDATE messages SET mailbox_id = $1 WHERE mailbox_id = $2 RETURNING uid",
                    &[&new_id, &row.id],
                )
                .await
                .map_err(db)?;
            tx.cached_execute(
                "UPDATE seen SET mailbox_id = $1 WHERE mailbox_id = $2",
                &[&new_id, &row.id],
            )
            .await
            .map_err(db)?;
            if !moved.is_empty() {
                let (_, modseq, _) = bump(&tx, row.id, 0).await?;
                let uids: Vec<i64> = moved.iter().map(|r| r.get(0)).collect();
                tx.cached_execute(
                    "INSERT INTO expunged (mailbox_id, uid, modseq) \
                     SELECT $1, u, $3 FROM unnest($2::bigint[]) u \
                     ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq",
                    &[&row.id, &uids, &modseq],
                )
                .await
                .map_err(db)?;
                announce_namespace(&tx, &from.owner).await?;
                tx.commit().await.map_err(db)?;
                self.inner.feed.publish(row.id, ModSeq(modseq as u64));
            } else {
                announce_namespace(&tx, &from.owner).await?;
                tx.commit().await.map_err(db)?;
            }
        } else {
            lock_accounts(&tx, &[row.account]).await?;
            let r = tx
                .cached_execute(
                    "UPDATE mailboxes SET name = $2 WHERE id = $1",
                    &[&row.id, &to.as_str()],
                )
                .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::MailboxExists(to.to_string()));
                }
                Err(e) => return Err(db(e)),
            }
            announce_namespace(&tx, &from.owner).await?;
            tx.commit().await.map_err(db)?;
        }
        self.inner.feed.namespace_changed(&from.owner);
        tracing::debug!(%from, to = %to, "mailbox renamed");
        Ok(())
    }

    async fn set_special_use(
        &self,
        mailbox: &MailboxRef,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        let su = special_use.map(SpecialUse::as_str);
        let tx = client.transaction().await.map_err(db)?;
        lock_accounts(&tx, &[row.account]).await?;
        tx.cached_execute(
            "UPDATE mailboxes SET special_use = $2 WHERE id = $1",
            &[&row.id, &su],
        )
        .await
        .map_err(db)?;
        announce_namespace(&tx, &mailbox.owner).await?;
        tx.commit().await.map_err(db)?;
        self.inner.feed.namespace_changed(&mailbox.owner);
        Ok(())
    }

    fn watch_namespace(&self, user: &str) -> NamespaceWatch {
        self.inner.feed.watch_namespace(user)
    }

    // `namespace_watch_is_complete` keeps the default, `false`: another
    // frontend's change reaches the watches here by a notification that
    // may arrive after the change was acknowledged.

    /// One statement for every mailbox: the HIGHESTMODSEQ of each (found by
    /// owner and name) where it is above what this process last saw, and
    /// the watches of those woken. A mailbox deleted (or renamed away)
    /// since it was opened matches no row; its deletion's notification ends
    /// its watches, and a renamed one is polled under its new name once
    /// reopened (NOTIFY watches by name).
    async fn poll_changes(&self, mailboxes: &[Arc<dyn Mailbox>]) -> Result<()> {
        if mailboxes.is_empty() {
            return Ok(());
        }
        let mut owners = Vec::with_capacity(mailboxes.len());
        let mut names = Vec::with_capacity(mailboxes.len());
        let mut seen = Vec::with_capacity(mailboxes.len());
        for m in mailboxes {
            let r = m.reference();
            owners.push(r.owner.as_str());
            names.push(r.name.as_str());
            seen.push(i64::try_from(m.watch().current().0).unwrap_or(i64::MAX));
        }
        let client = self.client().await?;
        let rows = client
            .cached_query(
                "SELECT m.id, m.highest_modseq \
                 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS q(owner, name, seen) \
                 JOIN accounts a ON a.name = q.owner \
                 JOIN mailboxes m ON m.account_id = a.id AND m.name = q.name \
                 WHERE m.highest_modseq > q.seen",
                &[&owners, &names, &seen],
            )
            .await
            .map_err(db)?;
        for row in rows {
            let modseq: i64 = row.get(1);
            self.inner
                .feed
                .publish(row.get(0), ModSeq(modseq.max(0) as u64));
        }
        Ok(())
    }

    async fn subscriptions(&self, user: &str) -> Result<Vec<MailboxName>> {
        let client = self.client().await?;
        let rows = client
            .cached_query(
                "SELECT name FROM subscriptions WHERE account = $1",
                &[&user],
            )
            .await
            .map_err(db)?;
        rows.iter().map(|r| MailboxName::new(r.get(0))).collect()
    }

    async fn set_subscribed(&self, user: &str, name: &MailboxName, subscribed: bool) -> Result<()> {
        let mut client = self.client().await?;
        let sql = if subscribed {
            "INSERT INTO subscriptions (account, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM subscriptions WHERE account = $1 AND name = $2"
        };
        let tx = client.transaction().await.map_err(db)?;
        tx.cached_execute(
            &format!("UPDATE accounts SET {TOUCH} WHERE name = $1 RETURNING {ANNOUNCE}"),
            &[&user],
        )
        .await
        .map_err(db)?;
        tx.cached_execute(sql, &[&user, &name.as_str()])
            .await
            .map_err(db)?;
        announce_namespace(&tx, user).await?;
        tx.commit().await.map_err(db)?;
        self.inner.feed.namespace_changed(user);
        Ok(())
    }

    async fn shared_mailboxes(&self, user: &str) -> Result<Vec<MailboxRef>> {
        let client = self.client().await?;
        let limit = MAX_SHARED_MAILBOXES as i64;
        let rows = client
            .cached_query(
                "SELECT DISTINCT a.name, m.name FROM acl JOIN mailboxes m ON m.id = acl.mailbox_id \
                 JOIN accounts a ON a.id = m.account_id \
                 WHERE acl.identifier IN ($1, $2) AND a.name <> $1 LIMIT $3",
                &[&user, &ANYONE, &limit],
            )
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(MailboxRef::new(
                r.get::<_, String>(0),
                MailboxName::new(r.get(1))?,
            ));
        }
        debug_assert!(identifier_applies(ANYONE, user));
        Ok(out)
    }

    async fn acl(&self, mailbox: &MailboxRef) -> Result<Acl> {
        let client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        let rows = client
            .cached_query(
                "SELECT identifier, rights FROM acl WHERE mailbox_id = $1 ORDER BY identifier",
                &[&row.id],
            )
            .await
            .map_err(db)?;
        let mut acl = Acl::default();
        for r in rows {
            let rights = Rights::parse(r.get(1))
                .ok_or_else(|| Error::Corruption("bad rights in the acl table".into()))?;
            acl.set(r.get(0), Some(rights));
        }
        Ok(acl)
    }

    async fn set_acl(
        &self,
        mailbox: &MailboxRef,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_accounts(&tx, &[row.account]).await?;
        match rights.filter(|r| !r.is_empty()) {
            Some(r) => {
                tx.cached_execute(
                        "INSERT INTO acl (mailbox_id, identifier, rights) VALUES ($1, $2, $3) \
                         ON CONFLICT (mailbox_id, identifier) DO UPDATE SET rights = EXCLUDED.rights",
                        &[&row.id, &identifier, &r.to_string()],
                    )
                    .await
                    .map_err(db)?;
            }
            None => {
                tx.cached_execute(
                    "DELETE FROM acl WHERE mailbox_id = $1 AND identifier = $2",
                    &[&row.id, &identifier],
                )
                .await
                .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn status(&self, mailbox: &MailboxRef, viewer: &str) -> Result<MailboxStatus> {
        let client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        crate::mailbox::status(&client, row.id, viewer == mailbox.owner, viewer)
            .await?
            .ok_or_else(|| no_such(mailbox))
    }

    async fn open(&self, mailbox: &MailboxRef, viewer: &str) -> Result<Arc<dyn Mailbox>> {
        let client = self.client().await?;
        let row = self.row(&client, mailbox).await?;
        let highest: i64 = client
            .cached_query_opt(
                "SELECT highest_modseq FROM mailboxes WHERE id = $1",
                &[&row.id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| no_such(mailbox))?
            .get(0);
        let watch = self.inner.feed.watch(row.id, ModSeq(highest as u64));
        Ok(Arc::new(PgMailbox::new(
            self.clone(),
            row,
            mailbox.clone(),
            viewer.to_owned(),
            watch,
        )))
    }

    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        self.append_inner(mailbox, message, QuotaLimits::UNLIMITED)
            .await
    }

    async fn lock_maildrop(&self, user: &str) -> Result<MaildropLock> {
        {
            let mut held = self
                .inner
                .maildrops
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !held.insert(user.to_owned()) {
                return Err(in_use());
            }
        }
        // from here on, any failure drops the guard and frees the entry
        let mut guard = MaildropGuard {
            store: self.clone(),
            user: user.to_owned(),
            advisory: false,
        };
        let key = maildrop_key(user);
        let mut slot = self.inner.lock_conn.lock().await;
        let client = self.lock_client(&mut slot).await?;
        let got: bool = client
            .query_typed("SELECT pg_try_advisory_lock($1)", &[(&key, Type::INT8)])
            .await
            .map_err(db)?
            .first()
            .is_some_and(|r| r.get::<_, bool>(0));
        drop(slot);
        if !got {
            return Err(in_use());
        }
        guard.advisory = true;
        Ok(MaildropLock::new(guard))
    }

    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> Result<Appended> {
        self.append_inner(mailbox, message, limits).await
    }

    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        self.append_all_inner(mailbox, messages, limits.unwrap_or(QuotaLimits::UNLIMITED))
            .await
    }
}

#[async_trait]
impl Quota for PgStore {
    async fn usage(&self, root: &str) -> Result<QuotaUsage> {
        let client = self.client().await?;
        let row = client
            .cached_query_opt(
                "SELECT used_bytes, used_messages, limit_bytes, limit_messages \
                 FROM accounts WHERE name = $1",
                &[&root],
            )
            .await
            .map_err(db)?;
        let Some(r) = row else {
            return Ok(QuotaUsage {
                root: root.to_owned(),
                storage_bytes: 0,
                messages: 0,
                limits: QuotaLimits::default(),
            });
        };
        Ok(QuotaUsage {
            root: root.to_owned(),
            storage_bytes: r.get::<_, i64>(0).max(0) as u64,
            messages: r.get::<_, i64>(1).max(0) as u64,
            limits: QuotaLimits {
                storage_bytes: r.get::<_, Option<i64>>(2).map(|v| v.max(0) as u64),
                messages: r.get::<_, Option<i64>>(3).map(|v| v.max(0) as u64),
            },
        })
    }

    async fn limits(&self, root: &str) -> Result<QuotaLimits> {
        let client = self.client().await?;
        let row = client
            .cached_query_opt(
                "SELECT limit_bytes, limit_messages FROM accounts WHERE name = $1",
                &[&root],
            )
            .await
            .map_err(db)?;
        Ok(row
            .map(|r| QuotaLimits {
                storage_bytes: r.get::<_, Option<i64>>(0).map(|v| v.max(0) as u64),
                messages: r.get::<_, Option<i64>>(1).map(|v| v.max(0) as u64),
            })
            .unwrap_or_default())
    }

    async fn set_limits(&self, root: &str, limits: QuotaLimits) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let account = account_id(&tx, root).await?;
        let b = limits
            .storage_bytes
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let m = limits
            .messages
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        tx.cached_execute(
            &format!(
                "UPDATE accounts SET limit_bytes = $2, limit_messages = $3, {TOUCH} \
                 WHERE id = $1 RETURNING {ANNOUNCE}"
            ),
            &[&account, &b, &m],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

/// Flags of a copy as its destination's owner sees them, and whether the
/// copying viewer gets a `\Seen` row of their own (see the memory store's
/// rules, fixed by the conformance suite's `per_user_seen`).
pub(crate) fn copy_flags(
    flags: &mailroom_core::Flags,
    owner_seen_in_source: bool,
    viewer_seen: bool,
    viewer: &str,
    source_owner: &str,
    dest_owner: &str,
) -> (mailroom_core::Flags, bool) {
    let viewer_owns_dest = viewer == dest_owner;
    let owner_seen = if viewer_owns_dest {
        viewer_seen
    } else {
        source_owner == dest_owner && owner_seen_in_source
    };
    let mut out = flags.clone();
    out.remove(&Flag::Seen);
    if owner_seen {
        out.insert(Flag::Seen);
    }
    (out, !viewer_owns_dest && viewer_seen)
}
