//! [`PgMailbox`]: one open mailbox (a row id, the viewer, a watch).

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use mailroom_core::{
    Changes, CopyResult, Error, Flag, Mailbox, MailboxRef, MailboxSnapshot, MailboxStatus,
    MailboxWatch, MessageContent, MessageMeta, MessageSummary, ModSeq, QuotaLimits, Result,
    StoreOp, StoreResult, Uid,
};

use crate::db::{self, Cached, db, meta, meta_columns, uid, uid_validity, uids_param};
use crate::store::{
    MailboxRow, PgStore, bump, copy_flags, insert_message, lock_accounts, no_such, within,
};

/// `fetch_meta` of at most this many UIDs of a mailbox without a view in
/// this process reads them directly instead of reading the whole mailbox
/// into a view.
const DIRECT_MAX: usize = 256;

/// An open mailbox.
pub(crate) struct PgMailbox {
    store: PgStore,
    row: MailboxRow,
    reference: MailboxRef,
    viewer: String,
    watch: MailboxWatch,
}

impl std::fmt::Debug for PgMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMailbox")
            .field("mailbox", &self.reference)
            .field("id", &self.row.id)
            .field("viewer", &self.viewer)
            .finish()
    }
}

/// STATUS figures of mailbox `id` for a viewer; `None` if it is gone.
pub(crate) async fn status<C: Cached>(
    client: &C,
    id: i64,
    owner: bool,
    viewer: &str,
) -> Result<Option<MailboxStatus>> {
    let seen = if owner {
        "(x.flags & 1) <> 0"
    } else {
        "EXISTS (SELECT 1 FROM seen s WHERE s.mailbox_id = x.mailbox_id AND s.viewer = $2 AND s.uid = x.uid)"
    };
    let sql = format!(
        "SELECT m.uid_validity, m.uid_next, m.highest_modseq, count(x.uid), \
         count(x.uid) FILTER (WHERE x.uid >= m.recent_from), \
         count(x.uid) FILTER (WHERE NOT ({seen})), \
         count(x.uid) FILTER (WHERE (x.flags & 8) <> 0), \
         coalesce(sum(x.size), 0)::bigint, m.object_id \
         FROM mailboxes m LEFT JOIN messages x ON x.mailbox_id = m.id \
         WHERE m.id = $1 AND $2::text IS NOT NULL GROUP BY m.id"
    );
    let row = client
        .cached_query_opt(&sql, &[&id, &viewer])
        .await
        .map_err(db)?;
    Ok(row.map(|r| {
        let n = |i: usize| u32::try_from(r.get::<_, i64>(i)).unwrap_or(u32::MAX);
        MailboxStatus {
            uid_validity: uid_validity(r.get(0)),
            uid_next: uid(r.get(1)),
            highest_modseq: ModSeq(r.get::<_, i64>(2) as u64),
            messages: n(3),
            recent: n(4),
            unseen: n(5),
            deleted: n(6),
            size: r.get::<_, i64>(7).max(0) as u64,
            mailbox_id: db::object_id(id, r.get::<_, Option<&[u8]>>(8)),
        }
    }))
}

/// A message picked for a copy or move.
struct Picked {
    uid: i64,
    flags: mailroom_core::Flags,
    viewer_seen: bool,
    owner_seen: bool,
    date: mailroom_core::InternalDate,
    size: i64,
    guid: mailroom_core::MessageGuid,
}

impl PgMailbox {
    pub(crate) fn new(
        store: PgStore,
        row: MailboxRow,
        reference: MailboxRef,
        viewer: String,
        watch: MailboxWatch,
    ) -> PgMailbox {
        PgMailbox {
            store,
            row,
            reference,
            viewer,
            watch,
        }
    }

    fn owner(&self) -> bool {
        self.viewer == self.reference.owner
    }

    fn gone(&self) -> Error {
        no_such(&self.reference)
    }

    /// The rows of `uids` read directly (no view), in UID order: the meta
    /// columns, the owner's seen bit in column 2.
    async fn meta_rows<C: Cached>(
        &self,
        client: &C,
        uids: &[Uid],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let cols = meta_columns(self.owner(), 2);
        let p = uids_param(uids);
        client
            .cached_query(
                &format!(
                    "SELECT {cols} FROM messages x WHERE x.mailbox_id = $1 \
                     AND $2::text IS NOT NULL AND x.uid = ANY($3) ORDER BY x.uid"
                ),
                &[&self.row.id, &self.viewer, &p],
            )
            .await
            .map_err(db)
    }

    /// The records of `uids` read directly (no view).
    async fn metas<C: Cached>(&self, client: &C, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        self.meta_rows(client, uids)
            .await?
            .iter()
            .map(meta)
            .collect()
    }

    /// The messages among `uids`, with what a copy needs.
    async fn pick(&self, tx: &Transaction<'_>, uids: &[Uid]) -> Result<Vec<Picked>> {
        let rows = self.meta_rows(tx, uids).await?;
        rows.iter()
            .map(|r| {
                let m = meta(r)?;
                let bits: i16 = r.get(2);
                Ok(Picked {
                    uid: i64::from(m.uid.0),
                    viewer_seen: m.flags.contains(&Flag::Seen),
                    owner_seen: (bits & 1) != 0,
                    flags: m.flags,
                    date: m.internal_date,
                    size: m.size as i64,
                    guid: m.guid,
                })
            })
            .collect()
    }

    /// COPY or MOVE, charged to `limits` when given.
    async fn transfer(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
        remove: bool,
    ) -> Result<CopyResult> {
        let mut client = self.store.client().await?;
        let to = self.store.row(&client, dest).await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_accounts(&tx, &[self.row.account, to.account]).await?;
        if remove {
            // both mailbox rows, in id order, before anything else
            let mut ids = vec![self.row.id, to.id];
            ids.sort_unstable();
            ids.dedup();
            tx.cached_execute(
                "SELECT 1 FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &[&ids],
            )
            .await
            .map_err(db)?;
        }
        let picked = self.pick(&tx, uids).await?;
        let (uid_validity_dest, mapping) = if picked.is_empty() {
            let r = tx
                .cached_query_opt(
                    "SELECT uid_validity FROM mailboxes WHERE id = $1",
                    &[&to.id],
                )
                .await
                .map_err(db)?
                .ok_or_else(|| no_such(dest))?;
            (r.get::<_, i64>(0), Vec::new())
        } else {
            let bytes: i64 = picked.iter().map(|p| p.size).sum();
            let count = picked.len() as i64;
            let same_account = to.account == self.row.account;
            if !(remove && same_account) {
                let r = tx
                    .cached_query_one(
                        "UPDATE accounts SET used_bytes = used_bytes + $2, \
                         used_messages = used_messages + $3 WHERE id = $1 \
                         RETURNING used_bytes, used_messages",
                        &[&to.account, &bytes, &count],
                    )
                    .await
                    .map_err(db)?;
                if !within(&limits, r.get(0), r.get(1)) {
                    return Err(Error::OverQuota);
                }
            }
            if !same_account {
                // bodies are per account: the destination gets its own
                for p in &picked {
                    let g: &[u8] = &p.guid.0;
                    tx.cached_execute(
                        "INSERT INTO bodies (account_id, guid, size, summary, content) \
                         SELECT $1, guid, size, summary, content FROM bodies \
                         WHERE account_id = $2 AND guid = $3 ON CONFLICT DO NOTHING",
                        &[&to.account, &self.row.account, &g],
                    )
                    .await
                    .map_err(db)?;
                    tx.cached_execute(
                        "INSERT INTO body_chunks (account_id, guid, seq, data) \
                         SELECT $1, guid, seq, data FROM body_chunks \
                         WHERE account_id = $2 AND guid = $3 ON CONFLICT DO NOTHING",
                        &[&to.account, &self.row.account, &g],
                    )
                    .await
                    .map_err(db)?;
                }
            }
            let (first, modseq, uv) = bump(&tx, to.id, count).await?;
            let mut mapping = Vec::with_capacity(picked.len());
            for (i, p) in picked.iter().enumerate() {
                let new_uid = first + i as i64;
                let (flags, viewer_row) = copy_flags(
                    &p.flags,
                    p.owner_seen,
                    p.viewer_seen,
                    &self.viewer,
                    &self.reference.owner,
                    &dest.owner,
                );
                insert_message(
                    &tx, to.id, to.account, new_uid, modseq, &flags, p.date, p.size, &p.guid,
                )
                .await?;
                if viewer_row {
                    tx.cached_execute(
                        "INSERT INTO seen (mailbox_id, viewer, uid) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                        &[&to.id, &self.viewer, &new_uid],
                    )
                    .await
                    .map_err(db)?;
                }
                mapping.push((uid(p.uid), uid(new_uid)));
            }
            let mut published = vec![(to.id, modseq)];
            if remove {
                let gone: Vec<i64> = picked.iter().map(|p| p.uid).collect();
                let m = self.remove_rows(&tx, &gone, !same_account).await?;
                published.push((self.row.id, m));
            }
            tx.commit().await.map_err(db)?;
            for (id, m) in published {
                self.store.inner.feed.publish(id, ModSeq(m as u64));
            }
            return Ok(CopyResult {
                uid_validity: uid_validity(uv),
                mapping,
            });
        };
        tx.commit().await.map_err(db)?;
        Ok(CopyResult {
            uid_validity: uid_validity(uid_validity_dest),
            mapping,
        })
    }

    /// Removes messages (already locked), remembering their expunge;
    /// uncharges the source account when `uncharge`. Returns the modseq.
    async fn remove_rows(&self, tx: &Transaction<'_>, uids: &[i64], uncharge: bool) -> Result<i64> {
        let (_, modseq, _) = bump(tx, self.row.id, 0).await?;
        let r = tx
            .cached_query_one(
                "WITH gone AS (DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) \
                 RETURNING uid, size), \
                 ins AS (INSERT INTO expunged (mailbox_id, uid, modseq) \
                 SELECT $1, uid, $3 FROM gone \
                 ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq) \
                 SELECT count(*), coalesce(sum(size), 0)::bigint FROM gone",
                &[&self.row.id, &uids, &modseq],
            )
            .await
            .map_err(db)?;
        let (count, bytes): (i64, i64) = (r.get(0), r.get(1));
        tx.cached_execute(
            "DELETE FROM seen WHERE mailbox_id = $1 AND uid = ANY($2)",
            &[&self.row.id, &uids],
        )
        .await
        .map_err(db)?;
        if uncharge {
            tx.cached_execute(
                "UPDATE accounts SET used_bytes = used_bytes - $2, \
                 used_messages = used_messages - $3 WHERE id = $1",
                &[&self.row.account, &bytes, &count],
            )
            .await
            .map_err(db)?;
        }
        Ok(modseq)
    }
}

#[async_trait]
impl Mailbox for PgMailbox {
    fn reference(&self) -> &MailboxRef {
        &self.reference
    }

    /// From this process's view of the mailbox, brought up to date by one
    /// statement that reads what changed since it was last used
    /// (`view.rs`).
    async fn snapshot(&self) -> Result<MailboxSnapshot> {
        let client = self.store.client().await?;
        self.store
            .inner
            .views
            .with(&client, self.row.id, self.owner(), &self.viewer, |v| {
                MailboxSnapshot {
                    mailbox_id: db::object_id(
                        self.row.id,
                        self.row.object_id.as_ref().map(|b| &b[..]),
                    ),
                    uid_validity: uid_validity(v.uid_validity),
                    uid_next: uid(v.uid_next),
                    highest_modseq: ModSeq(v.highest_modseq as u64),
                    messages: v.metas.clone(),
                }
            })
            .await?
            .ok_or_else(|| self.gone())
    }

    async fn changes_since(&self, since: ModSeq) -> Result<Changes> {
        let mut client = self.store.client().await?;
        let tx = db::snapshot_tx(&mut client).await?;
        let since = i64::try_from(since.0).unwrap_or(i64::MAX);
        let head = tx
            .cached_query_opt(
                "SELECT highest_modseq FROM mailboxes WHERE id = $1",
                &[&self.row.id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| self.gone())?;
        let cols = meta_columns(self.owner(), 2);
        let rows = tx
            .cached_query(
                &format!(
                    "SELECT {cols} FROM messages x WHERE x.mailbox_id = $1 \
                     AND $2::text IS NOT NULL AND x.modseq > $3 ORDER BY x.uid"
                ),
                &[&self.row.id, &self.viewer, &since],
            )
            .await
            .map_err(db)?;
        let changed = rows.iter().map(meta).collect::<Result<Vec<_>>>()?;
        let expunged = tx
            .cached_query(
                "SELECT uid, modseq FROM expunged WHERE mailbox_id = $1 AND modseq > $2 \
                 ORDER BY uid",
                &[&self.row.id, &since],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| (uid(r.get(0)), ModSeq(r.get::<_, i64>(1) as u64)))
            .collect();
        tx.commit().await.map_err(db)?;
        Ok(Changes {
            highest_modseq: ModSeq(head.get::<_, i64>(0) as u64),
            changed,
            expunged,
            expunged_complete: true,
        })
    }

    fn watch(&self) -> MailboxWatch {
        self.watch.clone()
    }

    /// Reads this mailbox's HIGHESTMODSEQ from the database and wakes the
    /// local watches if another frontend moved it: a NOTIFY from that
    /// frontend may still be on its way when the client polls.
    async fn poll_changes(&self) -> Result<()> {
        let client = self.store.client().await?;
        let row = client
            .cached_query_opt(
                "SELECT highest_modseq FROM mailboxes WHERE id = $1",
                &[&self.row.id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| self.gone())?;
        let m: i64 = row.get(0);
        self.store.inner.feed.publish(self.row.id, ModSeq(m as u64));
        Ok(())
    }

    /// Claims the messages from `recent_from` up. When there is nothing
    /// to claim (no message arrived since the last claim) it only reads:
    /// a SELECT of a mailbox without new mail commits no write (no WAL
    /// flush). What it returns then, `recent_from` as read, is not below
    /// any UID the caller's snapshot (taken before) holds, so it claims
    /// nothing.
    async fn claim_recent(&self) -> Result<Uid> {
        let client = self.store.client().await?;
        let r = client
            .cached_query_opt(
                "SELECT recent_from, uid_next FROM mailboxes WHERE id = $1",
                &[&self.row.id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| self.gone())?;
        let (recent_from, uid_next): (i64, i64) = (r.get(0), r.get(1));
        if recent_from >= uid_next {
            return Ok(uid(recent_from));
        }
        let r = client
            .cached_query_opt(
                "UPDATE mailboxes m SET recent_from = m.uid_next FROM \
                 (SELECT id, recent_from FROM mailboxes WHERE id = $1 FOR UPDATE) old \
                 WHERE m.id = old.id RETURNING old.recent_from",
                &[&self.row.id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| self.gone())?;
        Ok(uid(r.get(0)))
    }

    /// From the view of the mailbox (`view.rs`), except for a few UIDs of
    /// a mailbox this process holds no view of, which are read directly.
    async fn fetch_meta(&self, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        let client = self.store.client().await?;
        let views = &self.store.inner.views;
        let metas =
            if uids.len() <= DIRECT_MAX && !views.holds(self.row.id, self.owner(), &self.viewer) {
                self.metas(&client, uids).await?
            } else {
                // in the order asked
                return Ok(views
                    .with(&client, self.row.id, self.owner(), &self.viewer, |v| {
                        uids.iter()
                            .filter_map(|u| {
                                v.metas
                                    .binary_search_by_key(u, |m| m.uid)
                                    .ok()
                                    .map(|i| v.metas[i].clone())
                            })
                            .collect()
                    })
                    .await?
                    .unwrap_or_default());
            };
        // in the order asked
        let mut out = Vec::with_capacity(metas.len());
        for u in uids {
            if let Ok(i) = metas.binary_search_by_key(u, |m| m.uid) {
                out.push(metas[i].clone());
            }
        }
        Ok(out)
    }

    async fn summaries(&self, uids: &[Uid]) -> Result<Vec<(Uid, Arc<MessageSummary>)>> {
        let client = self.store.client().await?;
        let p = uids_param(uids);
        let rows = client
            .cached_query(
                "SELECT x.uid, b.summary FROM messages x JOIN bodies b \
                 ON b.account_id = x.account_id AND b.guid = x.guid \
                 WHERE x.mailbox_id = $1 AND x.uid = ANY($2) ORDER BY x.uid",
                &[&self.row.id, &p],
            )
            .await
            .map_err(db)?;
        let mut found: Vec<(Uid, Arc<MessageSummary>)> = Vec::with_capacity(rows.len());
        for r in rows {
            let s = mailroom_core::mime::codec::decode(r.get::<_, &[u8]>(1)).map_err(|why| {
                Error::Corruption(format!("summary of UID {}: {why}", r.get::<_, i64>(0)))
            })?;
            found.push((uid(r.get(0)), Arc::new(s)));
        }
        let mut out = Vec::with_capacity(found.len());
        for u in uids {
            if let Ok(i) = found.binary_search_by_key(u, |(x, _)| *x) {
                out.push(found[i].clone());
            }
        }
        Ok(out)
    }

    async fn content(&self, u: Uid) -> Result<MessageContent> {
        let mut client = self.store.client().await?;
        crate::body::of_message(&mut client, self.row.id, u).await
    }

    async fn store(
        &self,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // the account row first (every write's first lock), then the
        // mailbox row: one change at a time per mailbox
        lock_accounts(&tx, &[self.row.account]).await?;
        tx.cached_query_opt(
            "SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE",
            &[&self.row.id],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| self.gone())?;
        let mut result = StoreResult::default();
        let cols = meta_columns(self.owner(), 2);
        let p = uids_param(uids);
        let rows = tx
            .cached_query(
                &format!(
                    "SELECT {cols} FROM messages x WHERE x.mailbox_id = $1 \
                     AND $2::text IS NOT NULL AND x.uid = ANY($3) ORDER BY x.uid"
                ),
                &[&self.row.id, &self.viewer, &p],
            )
            .await
            .map_err(db)?;
        let mut updates = Vec::new();
        for r in &rows {
            let m = meta(r)?;
            if unchanged_since.is_some_and(|u| m.modseq > u) {
                result.modified.push(m.uid);
                continue;
            }
            let mut view = m.flags.clone();
            if !view.apply(op) {
                continue;
            }
            let seen = view.contains(&Flag::Seen);
            let owner_seen = (r.get::<_, i16>(2) & 1) != 0;
            let mut shared = view.clone();
            if !self.owner() {
                shared.remove(&Flag::Seen);
                if owner_seen {
                    shared.insert(Flag::Seen);
                }
            }
            updates.push((m, view, shared, seen));
        }
        if updates.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(result);
        }
        let (_, modseq, _) = bump(&tx, self.row.id, 0).await?;
        // every row in one statement (the state CRC trigger runs once)
        let mut col_uid = Vec::with_capacity(updates.len());
        let mut col_bits = Vec::with_capacity(updates.len());
        let mut col_keywords = Vec::with_capacity(updates.len());
        let mut col_crc = Vec::with_capacity(updates.len());
        for (m, _, shared, _) in &updates {
            let u = i64::from(m.uid.0);
            col_uid.push(u);
            col_bits.push(i16::from(shared.system_bits()));
            col_keywords.push(db::keywords_literal(shared.keywords()));
            col_crc.push(db::record_crc(
                u,
                modseq,
                shared,
                m.internal_date,
                m.size as i64,
                &m.guid,
            ));
        }
        tx.cached_execute(
            "UPDATE messages x SET flags = u.flags, keywords = u.keywords::text[], \
             modseq = $2, state_crc = u.crc \
             FROM unnest($3::bigint[], $4::smallint[], $5::text[], $6::integer[]) \
             AS u(uid, flags, keywords, crc) \
             WHERE x.mailbox_id = $1 AND x.uid = u.uid",
            &[
                &self.row.id,
                &modseq,
                &col_uid,
                &col_bits,
                &col_keywords,
                &col_crc,
            ],
        )
        .await
        .map_err(db)?;
        for (m, view, _, seen) in updates {
            let u = i64::from(m.uid.0);
            if !self.owner() {
                let sql = if seen {
                    "INSERT INTO seen (mailbox_id, viewer, uid) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING"
                } else {
                    "DELETE FROM seen WHERE mailbox_id = $1 AND viewer = $2 AND uid = $3"
                };
                tx.cached_execute(sql, &[&self.row.id, &self.viewer, &u])
                    .await
                    .map_err(db)?;
            }
            result.changed.push(MessageMeta {
                flags: view,
                modseq: ModSeq(modseq as u64),
                ..m
            });
        }
        tx.commit().await.map_err(db)?;
        self.store
            .inner
            .feed
            .publish(self.row.id, ModSeq(modseq as u64));
        Ok(result)
    }

    async fn expunge(&self, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let mut client = self.store.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_accounts(&tx, &[self.row.account]).await?;
        tx.cached_query_opt(
            "SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE",
            &[&self.row.id],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| self.gone())?;
        let rows = match uids {
            Some(u) => {
                let p = uids_param(u);
                tx.cached_query(
                    "SELECT uid, guid FROM messages WHERE mailbox_id = $1 AND (flags & 8) <> 0 \
                     AND uid = ANY($2) ORDER BY uid",
                    &[&self.row.id, &p],
                )
                .await
            }
            None => {
                tx.cached_query(
                    "SELECT uid, guid FROM messages WHERE mailbox_id = $1 AND (flags & 8) <> 0 \
                     ORDER BY uid",
                    &[&self.row.id],
                )
                .await
            }
        }
        .map_err(db)?;
        if rows.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        let doomed: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let guids: Vec<Vec<u8>> = rows.iter().map(|r| r.get(1)).collect();
        let modseq = self.remove_rows(&tx, &doomed, true).await?;
        tx.commit().await.map_err(db)?;
        self.store
            .inner
            .feed
            .publish(self.row.id, ModSeq(modseq as u64));
        crate::body::collect(&client, self.row.account, guids).await;
        Ok(doomed.into_iter().map(uid).collect())
    }

    async fn copy_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult> {
        self.transfer(uids, dest, QuotaLimits::UNLIMITED, false)
            .await
    }

    async fn move_to(&self, uids: &[Uid], dest: &MailboxRef) -> Result<CopyResult> {
        self.transfer(uids, dest, QuotaLimits::UNLIMITED, true)
            .await
    }

    async fn copy_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        self.transfer(uids, dest, limits, false).await
    }

    async fn move_to_within_quota(
        &self,
        uids: &[Uid],
        dest: &MailboxRef,
        limits: QuotaLimits,
    ) -> Result<CopyResult> {
        self.transfer(uids, dest, limits, true).await
    }
}
