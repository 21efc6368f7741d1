//! [`Replication`] for [`PgStore`]: a PostgreSQL deployment as a
//! replication primary (to an off-site CRC node, say) or as a replica.
//!
//! What the schema keeps for it (SCHEMA.md, "Replication"):
//!
//! - **State CRCs**: every `messages` row carries its
//!   [`ReplicaRecord::state_crc`] (`state_crc`, computed by the frontend
//!   that writes the row), and statement triggers XOR the rows gone and
//!   come into `mailboxes.state_crc` and count them into
//!   `mailboxes.messages`, in the transaction of the change: no write path
//!   can forget them. Rows from before schema version 5 have none; the
//!   mailbox's CRC is then null (unknown) and computed here on first need
//!   (`ensure_state_crc`).
//! - **Change positions**: every write transaction sets its accounts'
//!   `changed_xid` to its own transaction id (`store::lock_accounts`,
//!   `store::charge`). [`Replication::changed_accounts`] answers the
//!   accounts at or above the asked position, and as the next position the
//!   oldest transaction id still running in this database when it read
//!   (or, with none, the next one to be given): a transaction that had not
//!   committed then has an id at or above it, so it is found next time,
//!   and one that had is seen by the read.
//! - **Sync points**: the `sync_points` table, one row per mailbox row
//!   (an incarnation: a mailbox made again is another row).
//! - **The replica's writes** keep the primary's UIDVALIDITY, MAILBOXID
//!   (`object_id`), UIDs, modseqs and SAVEDATE. One that writes a modseq
//!   at or below the mailbox's HIGHESTMODSEQ, or lowers it, moves the
//!   mailbox's `generation`, and every frontend's view of it is read again
//!   (`view.rs`): views otherwise read only what is above their
//!   HIGHESTMODSEQ.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::Transaction;
use mailroom_core::replication::{
    AccountState, Applied, ApplyBatch, ChangePosition, ChangeWatch, ChangedAccounts, MailboxHead,
    MailboxState, NamespaceOp, PendingSyncPoint, RecordsSince, ReplicaMessage, ReplicaRecord,
    StateCrc, SyncPoint,
};
use mailroom_core::{
    Acl, Error, Flags, InternalDate, MailboxName, MailboxRef, ModSeq, QuotaLimits, Replication,
    Result, Rights, SpecialUse, Uid, UidValidity,
};
use tokio_postgres::Row;

use crate::db::{self, Cached, db, is_unique_violation, uid, uid_validity};
use crate::store::{
    ANNOUNCE, MailboxRow, PgStore, TOUCH, account_id, announce_namespace, lock_accounts, no_such,
    remove_mailbox,
};

/// The columns [`record`] reads, for a `messages` row aliased `x`.
const RECORD_COLUMNS: &str = "x.uid, x.modseq, x.flags, x.keywords, x.internal_date, \
     x.date_offset, x.size, x.guid, x.save_date, \
     ARRAY(SELECT s.viewer FROM seen s WHERE s.mailbox_id = x.mailbox_id AND s.uid = x.uid \
           ORDER BY s.viewer)";

/// A `messages` row (see [`RECORD_COLUMNS`]) as replication sees it: the
/// owner's flags.
fn record(row: &Row) -> Result<ReplicaRecord> {
    let bits: i16 = row.try_get(2).map_err(db)?;
    let keywords: Vec<String> = row.try_get(3).map_err(db)?;
    let mut seen_by: Vec<String> = row.try_get(9).map_err(db)?;
    seen_by.sort_unstable();
    Ok(ReplicaRecord {
        uid: uid(row.try_get(0).map_err(db)?),
        modseq: ModSeq(row.try_get::<_, i64>(1).map_err(db)?.max(0) as u64),
        flags: Flags::from_parts(bits as u8, keywords),
        internal_date: InternalDate {
            timestamp: row.try_get(4).map_err(db)?,
            offset_minutes: row.try_get(5).map_err(db)?,
        },
        size: row.try_get::<_, i64>(6).map_err(db)?.max(0) as u64,
        guid: db::guid(row.try_get(7).map_err(db)?)?,
        seen_by,
        save_date: row.try_get(8).map_err(db)?,
    })
}

/// The head of mailbox row `id` (its state CRC known), or `NoSuchMailbox`.
async fn head<C: Cached>(client: &C, id: i64, mailbox: &MailboxRef) -> Result<MailboxHead> {
    let r = client
        .cached_query_opt(
            "SELECT uid_validity, uid_next, highest_modseq, messages, state_crc \
             FROM mailboxes WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| no_such(mailbox))?;
    head_of(&r, 0)
}

/// A head from five columns starting at `at`: UIDVALIDITY, UIDNEXT,
/// HIGHESTMODSEQ, messages, state CRC.
fn head_of(r: &Row, at: usize) -> Result<MailboxHead> {
    let crc: Option<i32> = r.try_get(at + 4).map_err(db)?;
    let crc = crc.ok_or_else(|| Error::Backend("a mailbox's state CRC is not known".into()))?;
    Ok(MailboxHead {
        uid_validity: uid_validity(r.try_get(at).map_err(db)?),
        uid_next: uid(r.try_get(at + 1).map_err(db)?),
        highest_modseq: ModSeq(r.try_get::<_, i64>(at + 2).map_err(db)?.max(0) as u64),
        messages: u32::try_from(r.try_get::<_, i64>(at + 3).map_err(db)?).unwrap_or(u32::MAX),
        state_crc: StateCrc(crc as u32),
    })
}

/// A u32 kept in a `bigint` column.
fn u32_of(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The sync point of a `sync_points` row read from column `at`:
/// uid_next, highest_modseq, namespace.
fn point_of(r: &Row, at: usize) -> Result<Option<SyncPoint>> {
    let uid_next: Option<i64> = r.try_get(at).map_err(db)?;
    let highest: Option<i64> = r.try_get(at + 1).map_err(db)?;
    let namespace: Option<i64> = r.try_get(at + 2).map_err(db)?;
    Ok(match (uid_next, highest) {
        (Some(u), Some(h)) => Some(SyncPoint {
            uid_next: uid(u),
            highest_modseq: ModSeq(h.max(0) as u64),
            namespace: u32_of(namespace),
        }),
        _ => None,
    })
}

impl PgStore {
    /// The row of `mailbox` if it is the incarnation with `uid_validity`.
    async fn incarnation<C: Cached>(
        &self,
        client: &C,
        mailbox: &MailboxRef,
        uv: UidValidity,
    ) -> Result<MailboxRow> {
        Ok(self.incarnation_of(client, mailbox, uv).await?.0)
    }

    /// [`Self::incarnation`], and whether its state CRC is unknown (rows
    /// from before schema version 5).
    async fn incarnation_of<C: Cached>(
        &self,
        client: &C,
        mailbox: &MailboxRef,
        uv: UidValidity,
    ) -> Result<(MailboxRow, bool)> {
        let r = client
            .cached_query_opt(
                "SELECT m.id, m.account_id, m.uid_validity, m.state_crc IS NULL FROM mailboxes m \
                 JOIN accounts a ON a.id = m.account_id WHERE a.name = $1 AND m.name = $2",
                &[&mailbox.owner, &mailbox.name.as_str()],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| no_such(mailbox))?;
        if r.get::<_, i64>(2) != i64::from(uv.0) {
            return Err(no_such(mailbox));
        }
        let row = MailboxRow {
            id: r.get(0),
            account: r.get(1),
            object_id: None,
        };
        Ok((row, r.get(3)))
    }

    /// [`Self::incarnation`] with its state CRC known: computed first if it
    /// was not ([`ensure_state_crc`]), on the same connection.
    async fn incarnation_known(
        &self,
        client: &mut deadpool_postgres::Object,
        mailbox: &MailboxRef,
        uv: UidValidity,
    ) -> Result<MailboxRow> {
        let (row, unknown) = self.incarnation_of(&*client, mailbox, uv).await?;
        if unknown {
            ensure_state_crc(client, row.id).await?;
        }
        Ok(row)
    }
}

/// Computes the state CRC of mailbox row `id` if it is not known (rows
/// written before schema version 5): each row's, then the mailbox's, under
/// the mailbox row's lock (so once, whoever asks first).
pub(crate) async fn ensure_state_crc(
    client: &mut deadpool_postgres::Object,
    id: i64,
) -> Result<()> {
    let tx = client.transaction().await.map_err(db)?;
    let still = tx
        .cached_query_opt(
            "SELECT state_crc IS NULL FROM mailboxes WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(db)?
        .is_some_and(|r| r.get::<_, bool>(0));
    if !still {
        return Ok(());
    }
    let rows = tx
        .cached_query(
            "SELECT uid, modseq, flags, keywords, internal_date, date_offset, size, guid \
             FROM messages WHERE mailbox_id = $1 AND state_crc IS NULL",
            &[&id],
        )
        .await
        .map_err(db)?;
    let mut uids = Vec::with_capacity(rows.len());
    let mut crcs = Vec::with_capacity(rows.len());
    for r in &rows {
        let bits: i16 = r.try_get(2).map_err(db)?;
        let keywords: Vec<String> = r.try_get(3).map_err(db)?;
        let u: i64 = r.try_get(0).map_err(db)?;
        uids.push(u);
        crcs.push(db::record_crc(
            u,
            r.try_get(1).map_err(db)?,
            &Flags::from_parts(bits as u8, keywords),
            InternalDate {
                timestamp: r.try_get(4).map_err(db)?,
                offset_minutes: r.try_get(5).map_err(db)?,
            },
            r.try_get(6).map_err(db)?,
            &db::guid(r.try_get(7).map_err(db)?)?,
        ));
    }
    tx.cached_execute(
        "UPDATE messages x SET state_crc = u.crc \
         FROM unnest($2::bigint[], $3::integer[]) AS u(uid, crc) \
         WHERE x.mailbox_id = $1 AND x.uid = u.uid",
        &[&id, &uids, &crcs],
    )
    .await
    .map_err(db)?;
    tx.cached_execute(
        "UPDATE mailboxes SET state_crc = \
         (SELECT coalesce(bit_xor(state_crc), 0) FROM messages WHERE mailbox_id = $1), \
         messages = (SELECT count(*) FROM messages WHERE mailbox_id = $1) WHERE id = $1",
        &[&id],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    tracing::info!(
        mailbox = id,
        rows = rows.len(),
        "state CRC computed for rows from before schema version 5"
    );
    Ok(())
}

impl PgStore {
    /// The `sync_points` row of `mailbox`'s incarnation `uv`, found with the
    /// mailbox in one statement: the point's three columns, then the
    /// pending point's five; `None` if none was written for it,
    /// `NoSuchMailbox` if the mailbox is not that incarnation.
    async fn sync_row(&self, mailbox: &MailboxRef, uv: UidValidity) -> Result<Option<Row>> {
        let client = self.client().await?;
        let r = client
            .cached_query_opt(
                "SELECT s.point_uid_next, s.point_highest_modseq, s.point_namespace, \
                 s.pending_uid_next, s.pending_highest_modseq, s.pending_messages, \
                 s.pending_state_crc, s.pending_namespace, m.uid_validity, s.uid_validity \
                 FROM mailboxes m JOIN accounts a ON a.id = m.account_id \
                 LEFT JOIN sync_points s ON s.mailbox_id = m.id \
                 WHERE a.name = $1 AND m.name = $2",
                &[&mailbox.owner, &mailbox.name.as_str()],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| no_such(mailbox))?;
        let uv = i64::from(uv.0);
        if r.get::<_, i64>(8) != uv {
            return Err(no_such(mailbox));
        }
        Ok((r.get::<_, Option<i64>>(9) == Some(uv)).then_some(r))
    }

    /// Writes a sync point and/or a pending sync point of mailbox row `id`.
    async fn write_sync_point(
        &self,
        mailbox: &MailboxRef,
        uv: UidValidity,
        point: Option<SyncPoint>,
        pending: Option<PendingSyncPoint>,
    ) -> Result<()> {
        let client = self.client().await?;
        let row = self.incarnation(&client, mailbox, uv).await?;
        let uvi = i64::from(uv.0);
        match (point, pending) {
            (Some(p), _) => {
                let (u, h, n) = (
                    i64::from(p.uid_next.0),
                    i64_of(p.highest_modseq.0),
                    p.namespace.map(i64::from),
                );
                client
                    .cached_execute(
                        "INSERT INTO sync_points (mailbox_id, uid_validity, point_uid_next, \
                         point_highest_modseq, point_namespace) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (mailbox_id) DO UPDATE SET uid_validity = EXCLUDED.uid_validity, \
                         point_uid_next = EXCLUDED.point_uid_next, \
                         point_highest_modseq = EXCLUDED.point_highest_modseq, \
                         point_namespace = EXCLUDED.point_namespace, pending_uid_next = NULL, \
                         pending_highest_modseq = NULL, pending_messages = NULL, \
                         pending_state_crc = NULL, pending_namespace = NULL \
                         WHERE (sync_points.uid_validity, sync_points.point_uid_next, \
                                sync_points.point_highest_modseq, sync_points.point_namespace, \
                                sync_points.pending_uid_next) \
                               IS DISTINCT FROM ($2, $3, $4, $5, NULL)",
                        &[&row.id, &uvi, &u, &h, &n],
                    )
                    .await
                    .map_err(db)?;
            }
            (None, Some(p)) => {
                let h = &p.head;
                client
                    .cached_execute(
                        "INSERT INTO sync_points (mailbox_id, uid_validity, pending_uid_next, \
                         pending_highest_modseq, pending_messages, pending_state_crc, \
                         pending_namespace) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (mailbox_id) DO UPDATE SET \
                         pending_uid_next = EXCLUDED.pending_uid_next, \
                         pending_highest_modseq = EXCLUDED.pending_highest_modseq, \
                         pending_messages = EXCLUDED.pending_messages, \
                         pending_state_crc = EXCLUDED.pending_state_crc, \
                         pending_namespace = EXCLUDED.pending_namespace",
                        &[
                            &row.id,
                            &uvi,
                            &i64::from(h.uid_next.0),
                            &i64_of(h.highest_modseq.0),
                            &i64::from(h.messages),
                            &i64::from(h.state_crc.0),
                            &p.namespace.map(i64::from),
                        ],
                    )
                    .await
                    .map_err(db)?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// What a batch's rows look like to one `INSERT ... FROM unnest(...)`.
#[derive(Default)]
struct Columns {
    uid: Vec<i64>,
    modseq: Vec<i64>,
    flags: Vec<i16>,
    keywords: Vec<String>,
    date: Vec<i64>,
    offset: Vec<i16>,
    size: Vec<i64>,
    guid: Vec<Vec<u8>>,
    save_date: Vec<Option<i64>>,
    crc: Vec<i32>,
    seen_viewer: Vec<String>,
    seen_uid: Vec<i64>,
}

impl Columns {
    fn push(&mut self, r: &ReplicaRecord) {
        let u = i64::from(r.uid.0);
        let m = i64_of(r.modseq.0);
        let size = i64_of(r.size);
        self.uid.push(u);
        self.modseq.push(m);
        self.flags.push(i16::from(r.flags.system_bits()));
        self.keywords.push(db::keywords_literal(r.flags.keywords()));
        self.date.push(r.internal_date.timestamp);
        self.offset.push(r.internal_date.offset_minutes);
        self.size.push(size);
        self.guid.push(r.guid.0.to_vec());
        self.save_date.push(r.save_date);
        self.crc.push(db::record_crc(
            u,
            m,
            &r.flags,
            r.internal_date,
            size,
            &r.guid,
        ));
        for v in &r.seen_by {
            self.seen_viewer.push(v.clone());
            self.seen_uid.push(u);
        }
    }
}

#[async_trait]
impl Replication for PgStore {
    async fn accounts(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        let mut users: Vec<String> = client
            .cached_query("SELECT name FROM accounts", &[])
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        users.sort_unstable();
        Ok(users)
    }

    fn watch_changes(&self) -> ChangeWatch {
        self.inner.feed.watch_changes()
    }

    /// Positions are transaction ids: other work takes ids too.
    fn positions_count_changes(&self) -> bool {
        false
    }

    /// The accounts whose `changed_xid` is at or above `since`, and as the
    /// next position the oldest transaction id still running in this
    /// database (client backends only: other databases of the cluster and
    /// the autovacuum workers never write our rows) when the statement's
    /// snapshot was taken, or the next id to be given if none is. A running
    /// transaction whose backend cannot be seen, or whose database or
    /// backend type `pg_stat_activity` does not show this role, counts as
    /// ours: the position is only ever too old, which reports an account
    /// again, never misses it.
    async fn changed_accounts(&self, since: ChangePosition) -> Result<ChangedAccounts> {
        let client = self.client().await?;
        let since = i64_of(since.0);
        let r = client
            .cached_query_one(
                "SELECT least(pg_snapshot_xmax(q.s)::text::bigint, \
                   (SELECT min(x::text::bigint) FROM pg_snapshot_xip(q.s) x \
                    WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
                      WHERE a.backend_xid IS NOT NULL \
                        AND a.backend_xid::text::bigint = x::text::bigint % 4294967296 \
                        AND (a.datname <> current_database() \
                             OR a.backend_type <> 'client backend')))), \
                 ARRAY(SELECT name FROM accounts WHERE changed_xid >= $1) \
                 FROM (SELECT pg_current_snapshot() AS s) q",
                &[&since],
            )
            .await
            .map_err(db)?;
        let position: i64 = r.try_get(0).map_err(db)?;
        let mut users: Vec<String> = r.try_get(1).map_err(db)?;
        users.sort_unstable();
        Ok(ChangedAccounts {
            position: ChangePosition(position.max(0) as u64),
            users,
        })
    }

    async fn account_state(&self, user: &str) -> Result<Option<AccountState>> {
        let mut client = self.client().await?;
        let Some(account) = client
            .cached_query_opt(
                "SELECT id, limit_bytes, limit_messages FROM accounts WHERE name = $1",
                &[&user],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let account_id: i64 = account.get(0);
        let quota = QuotaLimits {
            storage_bytes: account.get::<_, Option<i64>>(1).map(|v| v.max(0) as u64),
            messages: account.get::<_, Option<i64>>(2).map(|v| v.max(0) as u64),
        };
        let mut computed = false;
        let (tx, rows) = loop {
            let tx = db::snapshot_tx(&mut client).await?;
            let rows = tx
                .cached_query(
                    "SELECT m.uid_validity, m.uid_next, m.highest_modseq, m.messages, \
                     m.state_crc, m.id, m.name, m.special_use, m.object_id, \
                     s.point_uid_next, s.point_highest_modseq, s.point_namespace, \
                     s.uid_validity \
                     FROM mailboxes m LEFT JOIN sync_points s ON s.mailbox_id = m.id \
                     WHERE m.account_id = $1",
                    &[&account_id],
                )
                .await
                .map_err(db)?;
            let unknown: Vec<i64> = rows
                .iter()
                .filter(|r| r.get::<_, Option<i32>>(4).is_none())
                .map(|r| r.get(5))
                .collect();
            if unknown.is_empty() || computed {
                break (tx, rows);
            }
            // rows from before schema version 5: their CRCs first, then
            // the account read again
            tx.commit().await.map_err(db)?;
            for id in unknown {
                ensure_state_crc(&mut client, id).await?;
            }
            computed = true;
        };
        let acl_rows = tx
            .cached_query(
                "SELECT acl.mailbox_id, acl.identifier, acl.rights FROM acl \
                 JOIN mailboxes m ON m.id = acl.mailbox_id WHERE m.account_id = $1",
                &[&account_id],
            )
            .await
            .map_err(db)?;
        let subscription_rows = tx
            .cached_query(
                "SELECT name FROM subscriptions WHERE account = $1",
                &[&user],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut acls: HashMap<i64, Acl> = HashMap::new();
        for r in &acl_rows {
            let rights = Rights::parse(r.get(2))
                .ok_or_else(|| Error::Corruption("bad rights in the acl table".into()))?;
            acls.entry(r.get(0))
                .or_default()
                .set(r.get(1), Some(rights));
        }
        let mut mailboxes = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.get(5);
            let head = head_of(r, 0)?;
            let mut acl = acls.remove(&id).unwrap_or_default();
            acl.entries.sort_by(|a, b| a.0.cmp(&b.0));
            let point_uv: Option<i64> = r.get(12);
            mailboxes.push(MailboxState {
                name: MailboxName::new(r.get(6))?,
                head,
                special_use: r.get::<_, Option<&str>>(7).and_then(SpecialUse::parse),
                acl,
                mailbox_id: Some(db::object_id(id, r.get::<_, Option<&[u8]>>(8))),
                sync_point: if point_uv == Some(i64::from(head.uid_validity.0)) {
                    point_of(r, 9)?
                } else {
                    None
                },
            });
        }
        mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut subscriptions = subscription_rows
            .iter()
            .map(|r| MailboxName::new(r.get(0)))
            .collect::<Result<Vec<_>>>()?;
        subscriptions.sort();
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
        let mut client = self.client().await?;
        let row = self
            .incarnation_known(&mut client, mailbox, uid_validity)
            .await?;
        let tx = db::snapshot_tx(&mut client).await?;
        let head = head(&tx, row.id, mailbox).await?;
        if head.uid_validity != uid_validity {
            return Err(no_such(mailbox));
        }
        let since = i64_of(since.0);
        let take = i64::try_from(limit.max(1)).unwrap_or(i64::MAX - 1) + 1;
        let rows = tx
            .cached_query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM messages x WHERE x.mailbox_id = $1 \
                     AND x.modseq > $2 AND x.uid > $3 ORDER BY x.uid LIMIT $4"
                ),
                &[&row.id, &since, &i64::from(after.0), &take],
            )
            .await
            .map_err(db)?;
        let mut records = rows.iter().map(record).collect::<Result<Vec<_>>>()?;
        let more = records.len() > limit.max(1);
        records.truncate(limit.max(1));
        let expunged = if more {
            Vec::new()
        } else {
            tx.cached_query(
                "SELECT uid, modseq FROM expunged WHERE mailbox_id = $1 AND modseq > $2 \
                 ORDER BY uid",
                &[&row.id, &since],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| (uid(r.get(0)), ModSeq(r.get::<_, i64>(1).max(0) as u64)))
            .collect()
        };
        tx.commit().await.map_err(db)?;
        Ok(RecordsSince {
            head,
            records,
            more,
            expunged,
            expunged_complete: true,
        })
    }

    async fn records(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<ReplicaRecord>> {
        let client = self.client().await?;
        let row = self.incarnation(&client, mailbox, uid_validity).await?;
        let p = db::uids_param(uids);
        client
            .cached_query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM messages x WHERE x.mailbox_id = $1 \
                     AND x.uid = ANY($2) ORDER BY x.uid"
                ),
                &[&row.id, &p],
            )
            .await
            .map_err(db)?
            .iter()
            .map(record)
            .collect()
    }

    /// Each row's CRC computed from its columns (as [`Replication::records`]
    /// gives them), not read from `state_crc`: a row whose stored CRC were
    /// wrong then shows as a head that disagrees with its digests.
    async fn record_digests(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<(MailboxHead, Vec<(Uid, u32)>)> {
        let mut client = self.client().await?;
        let row = self
            .incarnation_known(&mut client, mailbox, uid_validity)
            .await?;
        let tx = db::snapshot_tx(&mut client).await?;
        let head = head(&tx, row.id, mailbox).await?;
        let rows = tx
            .cached_query(
                "SELECT x.uid, x.modseq, x.flags, x.keywords, x.internal_date, x.date_offset, \
                 x.size, x.guid, NULL::bigint, '{}'::text[] FROM messages x \
                 WHERE x.mailbox_id = $1 ORDER BY x.uid",
                &[&row.id],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let digests = rows
            .iter()
            .map(|r| record(r).map(|rec| (rec.uid, rec.state_crc())))
            .collect::<Result<Vec<_>>>()?;
        Ok((head, digests))
    }

    async fn message_content(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uid: Uid,
    ) -> Result<Bytes> {
        self.message_contents(mailbox, uid_validity, &[uid])
            .await?
            .pop()
            .map(|(_, bytes)| bytes)
            .ok_or(Error::NoSuchMessage(uid))
    }

    async fn message_contents(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, Bytes)>> {
        let mut client = self.client().await?;
        let row = self.incarnation(&client, mailbox, uid_validity).await?;
        let mut out = Vec::with_capacity(uids.len());
        for u in uids {
            match crate::body::of_message(&mut client, row.id, *u).await {
                Ok(bytes) => out.push((*u, bytes)),
                Err(Error::NoSuchMessage(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn apply_namespace(&self, user: &str, op: NamespaceOp) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let account = account_id(&tx, user).await?;
        lock_accounts(&tx, &[account]).await?;
        // A replica's account is the primary's: no default mailboxes are
        // added behind replication's back.
        tx.cached_execute(
            "UPDATE accounts SET initialised = true WHERE id = $1 AND NOT initialised",
            &[&account],
        )
        .await
        .map_err(db)?;
        let mailbox_of = |name: &MailboxName| MailboxRef::new(user, name.clone());
        let mut gone = None;
        match op {
            NamespaceOp::Create {
                name,
                uid_validity,
                special_use,
                mailbox_id,
            } => {
                let uv = i64::from(uid_validity.0);
                let su = special_use.map(SpecialUse::as_str);
                let object: Option<&[u8]> = mailbox_id.as_ref().map(|m| &m.0[..]);
                let made = tx
                    .cached_query_opt(
                        "INSERT INTO mailboxes (account_id, name, uid_validity, special_use, \
                         object_id) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
                        &[&account, &name.as_str(), &uv, &su, &object],
                    )
                    .await
                    .map_err(db)?;
                if made.is_none() {
                    return Err(Error::MailboxExists(name.to_string()));
                }
                // This store's own UIDVALIDITYs (after a promotion) stay
                // above every replicated one.
                tx.cached_execute(
                    "SELECT setval('uid_validity_seq', $1) \
                     WHERE $1 > (SELECT last_value FROM uid_validity_seq)",
                    &[&uv],
                )
                .await
                .map_err(db)?;
            }
            NamespaceOp::Delete { name } => {
                let row = self.row(&tx, &mailbox_of(&name)).await?;
                gone = Some((row, remove_mailbox(&tx, row.id, row.account).await?));
            }
            NamespaceOp::Rename { from, to } => {
                let r = tx
                    .cached_execute(
                        "UPDATE mailboxes SET name = $3 WHERE account_id = $1 AND name = $2",
                        &[&account, &from.as_str(), &to.as_str()],
                    )
                    .await;
                match r {
                    Ok(0) => return Err(no_such(&mailbox_of(&from))),
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::MailboxExists(to.to_string()));
                    }
                    Err(e) => return Err(db(e)),
                }
            }
            NamespaceOp::SetAttributes {
                name,
                special_use,
                acl,
                mailbox_id,
            } => {
                let su = special_use.map(SpecialUse::as_str);
                let object: Option<&[u8]> = mailbox_id.as_ref().map(|m| &m.0[..]);
                let id: i64 = tx
                    .cached_query_opt(
                        "UPDATE mailboxes SET special_use = $3, \
                         object_id = coalesce($4, object_id) \
                         WHERE account_id = $1 AND name = $2 RETURNING id",
                        &[&account, &name.as_str(), &su, &object],
                    )
                    .await
                    .map_err(db)?
                    .ok_or_else(|| no_such(&mailbox_of(&name)))?
                    .get(0);
                tx.cached_execute("DELETE FROM acl WHERE mailbox_id = $1", &[&id])
                    .await
                    .map_err(db)?;
                let (ids, rights): (Vec<&str>, Vec<String>) = acl
                    .entries
                    .iter()
                    .filter(|(_, r)| !r.is_empty())
                    .map(|(i, r)| (i.as_str(), r.to_string()))
                    .unzip();
                tx.cached_execute(
                    "INSERT INTO acl (mailbox_id, identifier, rights) \
                     SELECT $1, i, r FROM unnest($2::text[], $3::text[]) AS t(i, r)",
                    &[&id, &ids, &rights],
                )
                .await
                .map_err(db)?;
            }
            NamespaceOp::SetSubscriptions(names) => {
                tx.cached_execute("DELETE FROM subscriptions WHERE account = $1", &[&user])
                    .await
                    .map_err(db)?;
                let names: Vec<&str> = names.iter().map(MailboxName::as_str).collect();
                tx.cached_execute(
                    "INSERT INTO subscriptions (account, name) \
                     SELECT $1, n FROM unnest($2::text[]) n ON CONFLICT DO NOTHING",
                    &[&user, &names],
                )
                .await
                .map_err(db)?;
            }
            NamespaceOp::SetQuota(limits) => {
                let b = limits.storage_bytes.map(i64_of);
                let m = limits.messages.map(i64_of);
                tx.cached_execute(
                    "UPDATE accounts SET limit_bytes = $2, limit_messages = $3 WHERE id = $1",
                    &[&account, &b, &m],
                )
                .await
                .map_err(db)?;
            }
            _ => return Err(Error::Unsupported("namespace operation")),
        }
        announce_namespace(&tx, user).await?;
        tx.commit().await.map_err(db)?;
        if let Some((row, guids)) = gone {
            self.inner.feed.remove(row.id);
            crate::body::collect(&client, row.account, guids).await;
        }
        self.inner.feed.namespace_changed(user);
        Ok(())
    }

    async fn sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<SyncPoint>> {
        match self.sync_row(mailbox, uid_validity).await? {
            Some(r) => point_of(&r, 0),
            None => Ok(None),
        }
    }

    async fn set_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        point: SyncPoint,
    ) -> Result<()> {
        self.write_sync_point(mailbox, uid_validity, Some(point), None)
            .await
    }

    async fn pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<PendingSyncPoint>> {
        let r = self
            .sync_row(mailbox, uid_validity)
            .await?
            .filter(|r| r.get::<_, Option<i64>>(3).is_some());
        let Some(r) = r else { return Ok(None) };
        let n = |i: usize| -> Result<i64> { r.try_get::<_, i64>(i).map_err(db) };
        Ok(Some(PendingSyncPoint {
            head: MailboxHead {
                uid_validity,
                uid_next: uid(n(3)?),
                highest_modseq: ModSeq(n(4)?.max(0) as u64),
                messages: u32::try_from(n(5)?).unwrap_or(u32::MAX),
                state_crc: StateCrc(u32::try_from(n(6)?).unwrap_or(0)),
            },
            namespace: u32_of(r.try_get(7).map_err(db)?),
        }))
    }

    async fn set_pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        pending: PendingSyncPoint,
    ) -> Result<()> {
        self.write_sync_point(mailbox, uid_validity, None, Some(pending))
            .await
    }

    /// One transaction: a batch applies whole or not at all.
    async fn apply_messages(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        batch: ApplyBatch,
    ) -> Result<Applied> {
        batch.check()?;
        let mut client = self.client().await?;
        let row = self
            .incarnation_known(&mut client, mailbox, uid_validity)
            .await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_accounts(&tx, &[row.account]).await?;
        let before = tx
            .cached_query_opt(
                "SELECT uid_validity, uid_next, highest_modseq FROM mailboxes \
                 WHERE id = $1 FOR UPDATE",
                &[&row.id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| no_such(mailbox))?;
        if before.get::<_, i64>(0) != i64::from(uid_validity.0) {
            return Err(no_such(mailbox));
        }
        let (uid_next_before, highest_before): (i64, i64) = (before.get(1), before.get(2));
        let (applied, missing, freed) = apply_rows(&tx, row, batch.messages).await?;
        let (expunged_top, freed_by_expunge) = expunge_rows(&tx, row, &batch.expunged).await?;
        let top_uid = applied.uid.iter().copied().max().unwrap_or(0);
        let top_modseq = applied
            .modseq
            .iter()
            .copied()
            .chain(expunged_top)
            .max()
            .unwrap_or(0);
        let floor = top_uid + 1;
        let uid_next = uid_next_before
            .max(floor)
            .max(batch.uid_next.map_or(floor, |u| i64::from(u.0)));
        // The primary's figure if given, but never below a modseq this
        // mailbox holds (a batch before the last comes without it).
        let wanted = batch.highest_modseq.map_or(highest_before, |m| i64_of(m.0));
        let highest = if wanted >= highest_before {
            wanted.max(top_modseq)
        } else {
            let held: i64 = tx
                .cached_query_one(
                    "SELECT greatest((SELECT max(modseq) FROM messages WHERE mailbox_id = $1), \
                     (SELECT max(modseq) FROM expunged WHERE mailbox_id = $1), 0)",
                    &[&row.id],
                )
                .await
                .map_err(db)?
                .get(0);
            wanted.max(top_modseq).max(held)
        };
        // Views read only what is above their HIGHESTMODSEQ: a write at
        // or below it, or a lower HIGHESTMODSEQ, makes them read it all.
        let below = applied.modseq.iter().any(|m| *m <= highest_before)
            || expunged_top.is_some_and(|m| m <= highest_before)
            || highest < highest_before;
        let r = tx
            .cached_query_one(
                "UPDATE mailboxes SET uid_next = $2, highest_modseq = $3, \
                 generation = generation + $4 WHERE id = $1 \
                 RETURNING uid_validity, uid_next, highest_modseq, messages, state_crc, \
                 pg_notify('mailroom', account_id || ' ' || id || ' ' || highest_modseq)",
                &[&row.id, &uid_next, &highest, &i64::from(below)],
            )
            .await
            .map_err(db)?;
        let head = head_of(&r, 0)?;
        tx.commit().await.map_err(db)?;
        self.inner.feed.publish(row.id, head.highest_modseq);
        let mut freed = freed;
        freed.extend(freed_by_expunge);
        crate::body::collect(&client, row.account, freed).await;
        Ok(Applied { head, missing })
    }
}

/// Writes a batch's messages into mailbox `row` (locked): the bodies
/// first, then every row in one statement each for removing the old ones
/// and inserting the new; usage follows. Returns the rows written, the
/// UIDs sent without bytes the mailbox lacks, and the GUIDs whose rows
/// were replaced (their bodies may be unused now).
async fn apply_rows(
    tx: &Transaction<'_>,
    row: MailboxRow,
    messages: Vec<ReplicaMessage>,
) -> Result<(Columns, Vec<Uid>, Vec<Vec<u8>>)> {
    let mut cols = Columns::default();
    let mut missing = Vec::new();
    if messages.is_empty() {
        return Ok((cols, missing, Vec::new()));
    }
    let asked: Vec<i64> = messages.iter().map(|m| i64::from(m.record.uid.0)).collect();
    let held: HashMap<i64, Vec<u8>> = tx
        .cached_query(
            "SELECT uid, guid FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)",
            &[&row.id, &asked],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // a UID sent twice in one batch: the last one counts
    let mut last: HashMap<Uid, usize> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        last.insert(m.record.uid, i);
    }
    for (i, m) in messages.into_iter().enumerate() {
        if last.get(&m.record.uid) != Some(&i) {
            continue;
        }
        let u = i64::from(m.record.uid.0);
        match &m.content {
            Some(content) => {
                crate::body::put_checked(tx, row.account, &m.record.guid, content).await?
            }
            None => {
                if held.get(&u).map(Vec::as_slice) != Some(&m.record.guid.0[..]) {
                    missing.push(m.record.uid);
                    continue;
                }
            }
        }
        cols.push(&m.record);
    }
    if cols.uid.is_empty() {
        return Ok((cols, missing, Vec::new()));
    }
    let replaced = tx
        .cached_query(
            "WITH gone AS (DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) \
             RETURNING guid, size) \
             SELECT count(*), coalesce(sum(size), 0)::bigint, \
             coalesce(array_agg(DISTINCT guid), '{}') FROM gone",
            &[&row.id, &cols.uid],
        )
        .await
        .map_err(db)?;
    let (old_count, old_bytes, old_guids): (i64, i64, Vec<Vec<u8>>) = replaced
        .first()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap_or_default();
    tx.cached_execute(
        "INSERT INTO messages (mailbox_id, account_id, uid, modseq, flags, keywords, \
         internal_date, date_offset, size, guid, save_date, state_crc) \
         SELECT $1, $2, u.uid, u.modseq, u.flags, u.keywords::text[], u.date, u.offset_, \
         u.size, u.guid, coalesce(u.save_date, extract(epoch FROM now())::bigint), u.crc \
         FROM unnest($3::bigint[], $4::bigint[], $5::smallint[], $6::text[], $7::bigint[], \
                     $8::smallint[], $9::bigint[], $10::bytea[], $11::bigint[], $12::integer[]) \
         AS u(uid, modseq, flags, keywords, date, offset_, size, guid, save_date, crc)",
        &[
            &row.id,
            &row.account,
            &cols.uid,
            &cols.modseq,
            &cols.flags,
            &cols.keywords,
            &cols.date,
            &cols.offset,
            &cols.size,
            &cols.guid,
            &cols.save_date,
            &cols.crc,
        ],
    )
    .await
    .map_err(db)?;
    // a UID written again is not expunged any more; its viewers' \Seen
    // are the primary's
    tx.cached_execute(
        "DELETE FROM expunged WHERE mailbox_id = $1 AND uid = ANY($2)",
        &[&row.id, &cols.uid],
    )
    .await
    .map_err(db)?;
    tx.cached_execute(
        "DELETE FROM seen WHERE mailbox_id = $1 AND uid = ANY($2)",
        &[&row.id, &cols.uid],
    )
    .await
    .map_err(db)?;
    tx.cached_execute(
        "INSERT INTO seen (mailbox_id, viewer, uid) \
         SELECT $1, v, u FROM unnest($2::text[], $3::bigint[]) AS t(v, u) ON CONFLICT DO NOTHING",
        &[&row.id, &cols.seen_viewer, &cols.seen_uid],
    )
    .await
    .map_err(db)?;
    let new_bytes: i64 = cols.size.iter().sum();
    let new_count = cols.uid.len() as i64;
    tx.cached_execute(
        &format!(
            "UPDATE accounts SET used_bytes = used_bytes + $2, \
             used_messages = used_messages + $3, {TOUCH} WHERE id = $1 RETURNING {ANNOUNCE}"
        ),
        &[
            &row.account,
            &(new_bytes - old_bytes),
            &(new_count - old_count),
        ],
    )
    .await
    .map_err(db)?;
    Ok((cols, missing, old_guids))
}

/// Expunges a batch's UIDs from mailbox `row` (locked), remembering each
/// with the modseq the primary gave it; UIDs not held are left alone.
/// Returns the highest modseq of an expunge applied, and the GUIDs freed.
async fn expunge_rows(
    tx: &Transaction<'_>,
    row: MailboxRow,
    expunged: &[(Uid, ModSeq)],
) -> Result<(Option<i64>, Vec<Vec<u8>>)> {
    if expunged.is_empty() {
        return Ok((None, Vec::new()));
    }
    let uids: Vec<i64> = expunged.iter().map(|(u, _)| i64::from(u.0)).collect();
    let modseqs: Vec<i64> = expunged.iter().map(|(_, m)| i64_of(m.0)).collect();
    let r = tx
        .cached_query_one(
            "WITH gone AS (DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) \
             RETURNING uid, size, guid), \
             ins AS (INSERT INTO expunged (mailbox_id, uid, modseq) \
               SELECT $1, g.uid, max(e.m) FROM gone g \
               JOIN unnest($2::bigint[], $3::bigint[]) AS e(u, m) ON e.u = g.uid GROUP BY g.uid \
               ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq \
               RETURNING modseq) \
             SELECT (SELECT count(*) FROM gone), \
                    (SELECT coalesce(sum(size), 0)::bigint FROM gone), \
                    (SELECT coalesce(array_agg(DISTINCT guid), '{}') FROM gone), \
                    (SELECT max(modseq) FROM ins), \
                    (SELECT coalesce(array_agg(uid), '{}') FROM gone)",
            &[&row.id, &uids, &modseqs],
        )
        .await
        .map_err(db)?;
    let (count, bytes, guids, top, gone): (i64, i64, Vec<Vec<u8>>, Option<i64>, Vec<i64>) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    if count == 0 {
        return Ok((None, Vec::new()));
    }
    tx.cached_execute(
        "DELETE FROM seen WHERE mailbox_id = $1 AND uid = ANY($2)",
        &[&row.id, &gone],
    )
    .await
    .map_err(db)?;
    tx.cached_execute(
        "UPDATE accounts SET used_bytes = used_bytes - $2, used_messages = used_messages - $3 \
         WHERE id = $1",
        &[&row.account, &bytes, &count],
    )
    .await
    .map_err(db)?;
    Ok((top, guids))
}
