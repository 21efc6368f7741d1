//! [`Replication`] for [`CrcStore`]: the primary's reads come from the
//! index alone (records, expunged records with the modseq of their
//! expunge, the header's state CRC); the replica's writes keep the
//! primary's UIDVALIDITY, UIDs and modseqs and follow the store's commit
//! order (FORMAT.md, "Replication").

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::replication::{
    AccountState, Applied, ApplyBatch, ChangePosition, ChangeWatch, ChangedAccounts, MailboxHead,
    MailboxState, NamespaceOp, PendingSyncPoint, RecordsSince, ReplicaRecord, StateCrc, SyncPoint,
};
use mailroom_core::{
    Acl, Error, MailboxName, MailboxRef, ModSeq, Replication, Result, Uid, UidValidity,
};

use super::{ACCOUNT_FILE, CrcStore, StoreInner};
use crate::account::MailboxEntry;
use crate::fsutil::{sync_dir, unescape_component, write_atomic};
use crate::mailbox::{Shared, create_empty};

/// The sync point file in a mailbox directory (FORMAT.md, "Replication").
pub(crate) const SYNC_POINT_FILE: &str = "syncpoint";
/// Its magic (version 3: the sync point and a pending one).
const SYNC_POINT_MAGIC: &[u8; 8] = b"MRCRCSP3";
/// Its length: magic, uid_validity, flags, the point (uid_next,
/// highest_modseq, namespace digest), the pending point (uid_next,
/// highest_modseq, messages, state CRC, namespace digest), CRC.
const SYNC_POINT_LEN: usize = 8 + 4 + 4 + (4 + 8 + 4) + (4 + 8 + 4 + 4 + 4) + 4;
/// Version 3 flags: a sync point, its namespace digest, a pending point,
/// its namespace digest.
const SP_POINT: u32 = 1;
const SP_POINT_NS: u32 = 2;
const SP_PENDING: u32 = 4;
const SP_PENDING_NS: u32 = 8;
/// The second version's magic (a sync point with its namespace digest),
/// still read.
const SYNC_POINT_MAGIC_V2: &[u8; 8] = b"MRCRCSP2";
/// Its length.
const SYNC_POINT_LEN_V2: usize = 8 + 4 + 4 + 8 + 4 + 4 + 4;
/// The first version's magic (no namespace digest), still read.
const SYNC_POINT_MAGIC_V1: &[u8; 8] = b"MRCRCSYP";
/// Its length.
const SYNC_POINT_LEN_V1: usize = 8 + 4 + 4 + 8 + 4;

/// What a syncpoint file holds for one incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SyncPoints {
    point: Option<SyncPoint>,
    pending: Option<PendingSyncPoint>,
}

fn encode_sync_points(uv: u32, p: SyncPoints) -> Vec<u8> {
    let mut flags = 0;
    if let Some(point) = p.point {
        flags |= SP_POINT;
        if point.namespace.is_some() {
            flags |= SP_POINT_NS;
        }
    }
    if let Some(pending) = p.pending {
        flags |= SP_PENDING;
        if pending.namespace.is_some() {
            flags |= SP_PENDING_NS;
        }
    }
    let mut b = Vec::with_capacity(SYNC_POINT_LEN);
    b.extend_from_slice(SYNC_POINT_MAGIC);
    b.extend_from_slice(&uv.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&p.point.map_or(0, |x| x.uid_next.0).to_le_bytes());
    b.extend_from_slice(&p.point.map_or(0, |x| x.highest_modseq.0).to_le_bytes());
    b.extend_from_slice(&p.point.and_then(|x| x.namespace).unwrap_or(0).to_le_bytes());
    let head = p.pending.map(|x| x.head);
    b.extend_from_slice(&head.map_or(0, |h| h.uid_next.0).to_le_bytes());
    b.extend_from_slice(&head.map_or(0, |h| h.highest_modseq.0).to_le_bytes());
    b.extend_from_slice(&head.map_or(0, |h| h.messages).to_le_bytes());
    b.extend_from_slice(&head.map_or(0, |h| h.state_crc.0).to_le_bytes());
    b.extend_from_slice(
        &p.pending
            .and_then(|x| x.namespace)
            .unwrap_or(0)
            .to_le_bytes(),
    );
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// The sync points of incarnation `uv`, if the file holds them for it. A
/// damaged file counts as none (a merge then treats every message as
/// changed since the split and loses nothing).
fn decode_sync_points(b: &[u8], uv: u32) -> SyncPoints {
    decode_sync_points_checked(b, uv).unwrap_or_default()
}

fn decode_sync_points_checked(b: &[u8], uv: u32) -> Option<SyncPoints> {
    let le32 = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let le64 = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let body = match b.get(..8)? {
        m if m == SYNC_POINT_MAGIC && b.len() == SYNC_POINT_LEN => SYNC_POINT_LEN - 4,
        m if m == SYNC_POINT_MAGIC_V2 && b.len() == SYNC_POINT_LEN_V2 => SYNC_POINT_LEN_V2 - 4,
        m if m == SYNC_POINT_MAGIC_V1 && b.len() == SYNC_POINT_LEN_V1 => SYNC_POINT_LEN_V1 - 4,
        _ => return None,
    };
    if crc32fast::hash(&b[..body]) != le32(body)? || le32(8)? != uv {
        return None;
    }
    if b.get(..8)? != SYNC_POINT_MAGIC {
        // versions 1 and 2: a sync point, no pending one
        let namespace = if b.len() == SYNC_POINT_LEN_V2 {
            match le32(24)? {
                0 => None,
                1 => Some(le32(28)?),
                _ => return None,
            }
        } else {
            None
        };
        return Some(SyncPoints {
            point: Some(SyncPoint {
                uid_next: Uid(le32(12)?),
                highest_modseq: ModSeq(le64(16)?),
                namespace,
            }),
            pending: None,
        });
    }
    let flags = le32(12)?;
    if flags & !(SP_POINT | SP_POINT_NS | SP_PENDING | SP_PENDING_NS) != 0 {
        return None;
    }
    let point = (flags & SP_POINT != 0).then_some(SyncPoint {
        uid_next: Uid(le32(16)?),
        highest_modseq: ModSeq(le64(20)?),
        namespace: (flags & SP_POINT_NS != 0).then_some(le32(28)?),
    });
    let pending = (flags & SP_PENDING != 0).then_some(PendingSyncPoint {
        head: MailboxHead {
            uid_validity: UidValidity(uv),
            uid_next: Uid(le32(32)?),
            highest_modseq: ModSeq(le64(36)?),
            messages: le32(44)?,
            state_crc: StateCrc(le32(48)?),
        },
        namespace: (flags & SP_PENDING_NS != 0).then_some(le32(52)?),
    });
    Some(SyncPoints { point, pending })
}

fn read_sync_points(dir: &Path, uv: u32) -> Result<SyncPoints> {
    match fs::read(dir.join(SYNC_POINT_FILE)) {
        Ok(b) => Ok(decode_sync_points(&b, uv)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(SyncPoints::default()),
        Err(e) => Err(e.into()),
    }
}

fn read_sync_point(dir: &Path, uv: u32) -> Result<Option<SyncPoint>> {
    Ok(read_sync_points(dir, uv)?.point)
}

impl StoreInner {
    /// The mailbox if it is the incarnation with `uv`. It enters the
    /// store's bounded idle list (as a delivery's mailbox does): replication
    /// reads and writes a mailbox many times in a row (a page of records,
    /// then each message's bytes; a batch, then its sync point), and without
    /// it every call would map the index again and verify every record (a
    /// message read cost O(mailbox size): about 2.6 ms per message at
    /// 10,000 messages).
    fn incarnation(&self, m: &MailboxRef, uv: UidValidity) -> Result<Arc<Shared>> {
        let shared = self.mailbox(m)?;
        let g = shared.read()?;
        if g.hdr.uid_validity != uv.0 {
            return Err(Error::NoSuchMailbox(m.to_string()));
        }
        drop(g);
        self.keep_idle(Arc::clone(&shared), &m.owner);
        Ok(shared)
    }

    /// Records a change of the account whose directory is `udir`.
    pub(super) fn touch_dir(&self, udir: &Path) {
        match udir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(unescape_component)
        {
            Some(user) => self.ctx.feed.touch(&user),
            None => {
                tracing::debug!(dir = %udir.display(), "account directory name not reversible; change left to the periodic comparison")
            }
        }
    }

    fn accounts(&self) -> Result<Vec<String>> {
        let mut users = Vec::new();
        let rd = match fs::read_dir(self.root.join("users")) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(users),
            Err(e) => return Err(e.into()),
        };
        for e in rd {
            let e = e?;
            let path = e.path();
            if !path.join(ACCOUNT_FILE).exists() && !path.join("mailboxes").exists() {
                continue;
            }
            match e.file_name().to_str().and_then(unescape_component) {
                Some(u) => users.push(u),
                None => {
                    tracing::warn!(dir = %path.display(), "account directory name not reversible; not replicated")
                }
            }
        }
        users.sort_unstable();
        Ok(users)
    }

    fn account_state(&self, user: &str) -> Result<Option<AccountState>> {
        type Listed = (Vec<(MailboxName, MailboxEntry)>, Vec<MailboxName>);
        let listed: Option<Listed> = self.with_account(user, false, |a, _| {
            Ok((
                a.mailboxes
                    .iter()
                    .map(|(n, e)| (n.clone(), e.clone()))
                    .collect(),
                a.subscriptions.iter().cloned().collect(),
            ))
        })?;
        let Some((entries, subscriptions)) = listed else {
            return Ok(None);
        };
        let mut mailboxes = Vec::with_capacity(entries.len());
        for (name, e) in entries {
            let m = MailboxRef::new(user, name.clone());
            let shared = self.shared(user, e.id, &m)?;
            let g = shared.read()?;
            let head = g.replica_head();
            let mailbox_id = mailroom_core::MailboxId(g.hdr.mailbox_id);
            drop(g);
            // compared again at the account's next change: kept loaded
            self.keep_idle(Arc::clone(&shared), user);
            let mut acl = e.acl.clone();
            acl.entries.sort_by(|a, b| a.0.cmp(&b.0));
            mailboxes.push(MailboxState {
                name,
                head,
                special_use: e.special_use,
                acl,
                mailbox_id: Some(mailbox_id),
                sync_point: read_sync_point(&shared.dir, head.uid_validity.0)?,
            });
        }
        Ok(Some(AccountState {
            user: user.to_owned(),
            mailboxes,
            subscriptions,
            quota: self.limits(user)?,
        }))
    }

    fn apply_namespace(&self, user: &str, op: NamespaceOp) -> Result<()> {
        if user.is_empty() || user.contains('\0') {
            return Err(Error::InvalidInput("invalid user name"));
        }
        let durable = self.opts.durability;
        let mref = |name: &MailboxName| MailboxRef::new(user, name.clone());
        match op {
            NamespaceOp::Create {
                name,
                uid_validity,
                special_use,
                mailbox_id,
            } => {
                self.with_account(user, true, |a, udir| {
                    if a.mailboxes.contains_key(&name) {
                        return Err(Error::MailboxExists(mref(&name).to_string()));
                    }
                    // a replica's account is the primary's: no default
                    // mailboxes are added behind replication's back
                    a.initialised = true;
                    // this store's own UIDVALIDITYs (after a promotion)
                    // stay above every replicated one
                    a.last_uid_validity = a.last_uid_validity.max(uid_validity.0);
                    let id = a.next_id.max(1);
                    a.next_id = id + 1;
                    let dir = self.mailbox_dir(user, id);
                    if dir.exists() {
                        fs::remove_dir_all(&dir)?;
                    }
                    create_empty(&dir, uid_validity.0, mailbox_id, durable)?;
                    let e = MailboxEntry {
                        id,
                        special_use,
                        acl: Acl::default(),
                    };
                    self.write_meta(user, &name, &e)?;
                    sync_dir(&self.user_dir(user).join("mailboxes"), durable)?;
                    a.mailboxes.insert(name.clone(), e);
                    self.save_account(udir, a)
                })?;
            }
            NamespaceOp::Delete { name } => {
                let m = mref(&name);
                self.with_account(user, false, |a, udir| {
                    let e = a
                        .mailboxes
                        .remove(&name)
                        .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))?;
                    if let Err(err) = self.save_account(udir, a) {
                        a.mailboxes.insert(name.clone(), e);
                        return Err(err);
                    }
                    self.shared_index.settle(user, e.id, None);
                    let shared = self.shared(user, e.id, &m)?;
                    shared.mark_deleted()?;
                    self.forget(&shared.dir);
                    self.ctx.ledgers.forget(user);
                    if let Err(err) = fs::remove_dir_all(&shared.dir) {
                        tracing::warn!(dir = %shared.dir.display(), error = %err, "could not remove deleted mailbox directory");
                    }
                    Ok(())
                })?
                .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))?;
            }
            NamespaceOp::Rename { from, to } => {
                let m = mref(&from);
                self.with_account(user, false, |a, udir| {
                    let e = a
                        .mailboxes
                        .get(&from)
                        .cloned()
                        .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))?;
                    if a.mailboxes.contains_key(&to) {
                        return Err(Error::MailboxExists(mref(&to).to_string()));
                    }
                    self.write_meta(user, &to, &e)?;
                    a.mailboxes.remove(&from);
                    a.mailboxes.insert(to.clone(), e.clone());
                    if let Err(err) = self.save_account(udir, a) {
                        a.mailboxes.remove(&to);
                        a.mailboxes.insert(from.clone(), e.clone());
                        let _ = self.write_meta(user, &from, &e);
                        return Err(err);
                    }
                    let shared = self.shared(user, e.id, &mref(&to))?;
                    if let Ok(mut n) = shared.name.lock() {
                        *n = mref(&to);
                    }
                    Ok(())
                })?
                .ok_or_else(|| Error::NoSuchMailbox(m.to_string()))?;
            }
            NamespaceOp::SetAttributes {
                name,
                special_use,
                acl,
                mailbox_id,
            } => {
                let m = mref(&name);
                let result = self.update_entry_then(
                    &m,
                    |e| {
                        e.special_use = special_use;
                        e.acl = acl;
                    },
                    |e| self.shared_index.add(user, e.id, &e.acl),
                );
                self.with_account(user, false, |a, _| {
                    if let Some(e) = a.mailboxes.get(&name) {
                        self.shared_index.settle(user, e.id, Some(&e.acl));
                    }
                    Ok(())
                })?;
                result?;
                if let Some(id) = mailbox_id {
                    let shared = self.shared(user, self.lookup(&m)?, &m)?;
                    let mut g = shared.write()?;
                    g.set_mailbox_id(id, durable)?;
                }
            }
            NamespaceOp::SetSubscriptions(names) => {
                self.with_account(user, true, |a, udir| {
                    a.initialised = true;
                    a.subscriptions = names.into_iter().collect();
                    self.save_account(udir, a)
                })?;
            }
            NamespaceOp::SetQuota(limits) => self.set_limits(user, limits)?,
            _ => return Err(Error::Unsupported("namespace operation")),
        }
        Ok(())
    }
}

impl CrcStore {
    /// What the mailbox's syncpoint file holds for this incarnation.
    async fn sync_points(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<SyncPoints> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            read_sync_points(&shared.dir, uid_validity.0)
        })
        .await
    }

    /// Replaces the mailbox's syncpoint file by `update` of what it holds,
    /// unless that is what it holds already (nothing is written then).
    async fn write_sync_points(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        durable: bool,
        update: impl FnOnce(SyncPoints) -> SyncPoints + Send + 'static,
    ) -> Result<()> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let old = read_sync_points(&shared.dir, uid_validity.0)?;
            let new = update(old);
            if new != old {
                write_atomic(
                    &shared.dir.join(SYNC_POINT_FILE),
                    &encode_sync_points(uid_validity.0, new),
                    durable,
                )?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Replication for CrcStore {
    async fn accounts(&self) -> Result<Vec<String>> {
        self.run(|s| s.accounts()).await
    }

    fn watch_changes(&self) -> ChangeWatch {
        self.inner.ctx.feed.watch()
    }

    async fn changed_accounts(&self, since: ChangePosition) -> Result<ChangedAccounts> {
        let (mut changed, all) = self.inner.ctx.feed.changed_since(since)?;
        if all {
            changed.users.extend(self.accounts().await?);
            changed.users.sort_unstable();
            changed.users.dedup();
        }
        Ok(changed)
    }

    async fn account_state(&self, user: &str) -> Result<Option<AccountState>> {
        let user = user.to_owned();
        self.run(move |s| s.account_state(&user)).await
    }

    async fn records_since(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        since: ModSeq,
        after: Uid,
        limit: usize,
    ) -> Result<RecordsSince> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let g = shared.read()?;
            g.records_since(&shared.dir, since.0, after.0, limit)
                .map_err(|e| shared.fail(e))
        })
        .await
    }

    async fn records(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<ReplicaRecord>> {
        let m = mailbox.clone();
        let uids = uids.to_vec();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let g = shared.read()?;
            g.replica_records(&shared.dir, &uids)
                .map_err(|e| shared.fail(e))
        })
        .await
    }

    async fn record_digests(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<(MailboxHead, Vec<(Uid, u32)>)> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let g = shared.read()?;
            let digests = g.digests().map_err(|e| shared.fail(e))?;
            Ok((g.replica_head(), digests))
        })
        .await
    }

    async fn message_content(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uid: Uid,
    ) -> Result<Bytes> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let g = shared.read()?;
            let (_, r) = g
                .find(uid.0)
                .map_err(|e| shared.fail(e))?
                .ok_or(Error::NoSuchMessage(uid))?;
            // checked against the record's SHA-1 GUID
            crate::mailbox::read_message(&shared.dir, &shared.ctx, &r).map_err(|e| shared.fail(e))
        })
        .await
    }

    async fn message_contents(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, Bytes)>> {
        let m = mailbox.clone();
        let uids = uids.to_vec();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            // The records under the read lock, the files read after it
            // (appends to the mailbox are not held up by a page of reads).
            let found: Vec<crate::index::Record> = {
                let g = shared.read()?;
                let mut found = Vec::with_capacity(uids.len());
                for uid in &uids {
                    if let Some((_, r)) = g.find(uid.0).map_err(|e| shared.fail(e))? {
                        found.push(r);
                    }
                }
                found
            };
            let mut out = Vec::with_capacity(found.len());
            for r in found {
                // checked against the record's SHA-1 GUID
                match crate::mailbox::read_message(&shared.dir, &shared.ctx, &r) {
                    Ok(c) => out.push((Uid(r.uid), c)),
                    Err(_) => {
                        // Expunged since the records were read, or damaged:
                        // asked again under the lock, as `message_content`
                        // does, so only real damage counts as such.
                        let g = shared.read()?;
                        if let Some((_, r)) = g.find(r.uid).map_err(|e| shared.fail(e))? {
                            let c = crate::mailbox::read_message(&shared.dir, &shared.ctx, &r)
                                .map_err(|e| shared.fail(e))?;
                            out.push((Uid(r.uid), c));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn apply_namespace(&self, user: &str, op: NamespaceOp) -> Result<()> {
        let user = user.to_owned();
        self.run(move |s| {
            s.apply_namespace(&user, op)?;
            s.ctx.feed.touch(&user);
            Ok(())
        })
        .await
    }

    async fn sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<SyncPoint>> {
        Ok(self.sync_points(mailbox, uid_validity).await?.point)
    }

    async fn set_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        point: SyncPoint,
    ) -> Result<()> {
        // Not made durable: a sync point lost in a crash leaves the one
        // before (or none), which makes the next comparison resend or
        // merge more, never lose anything; on a primary the durable
        // pending point written before the batch stands in for it.
        self.write_sync_points(mailbox, uid_validity, false, move |_| SyncPoints {
            point: Some(point),
            pending: None,
        })
        .await
    }

    async fn pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
    ) -> Result<Option<PendingSyncPoint>> {
        Ok(self.sync_points(mailbox, uid_validity).await?.pending)
    }

    async fn set_pending_sync_point(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        pending: PendingSyncPoint,
    ) -> Result<()> {
        // Durable (with the store's durability): it also makes the sync
        // point written before it durable.
        let durable = self.inner.opts.durability;
        self.write_sync_points(mailbox, uid_validity, durable, move |old| SyncPoints {
            point: old.point,
            pending: Some(pending),
        })
        .await
    }

    async fn salvage(&self, mailbox: &MailboxRef, uid_validity: UidValidity) -> Result<u32> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let mut g = shared.write()?;
            if g.hdr.uid_validity != uid_validity.0 {
                return Err(Error::NoSuchMailbox(m.to_string()));
            }
            let dir = shared.dir.clone();
            let dropped = g.salvage(&dir, &shared.ctx)?;
            if dropped > 0 {
                tracing::warn!(mailbox = %m, dropped, "replica mailbox salvaged: damaged index records dropped for the primary to resend");
                s.ctx.ledgers.forget(&m.owner);
                shared.notify(g.hdr.highest_modseq);
            }
            drop(g);
            // The primary repairs it: a reconstruct now would give the
            // dropped messages new modseqs and reset their flags.
            if let Ok(mut q) = s.ctx.queue.lock() {
                q.remove(&m);
            }
            Ok(dropped)
        })
        .await
    }

    async fn apply_messages(
        &self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        batch: ApplyBatch,
    ) -> Result<Applied> {
        let m = mailbox.clone();
        self.run(move |s| {
            let shared = s.incarnation(&m, uid_validity)?;
            let mut g = shared.write()?;
            if g.hdr.uid_validity != uid_validity.0 {
                return Err(Error::NoSuchMailbox(m.to_string()));
            }
            let dir = shared.dir.clone();
            // Bytes sent for a message the replica holds live replace
            // damaged ones (a verify's repair): see below.
            let repairs = batch.messages.iter().any(|msg| {
                msg.content.is_some() && matches!(g.find(msg.record.uid.0), Ok(Some((_, r))) if !r.is_expunged())
            });
            let applied = g
                .apply_batch(&dir, &shared.ctx, batch)
                .map_err(|e| shared.fail(e));
            // usage changed outside the quota ledger
            s.ctx.ledgers.forget(&m.owner);
            shared.notify(g.hdr.highest_modseq);
            // A mailbox found corrupt and then repaired by the primary
            // leaves the reconstruct queue once it checks out whole (a
            // reconstruct after a promotion would have nothing to do, and
            // the queue would keep reporting a repaired mailbox).
            if applied.is_ok() && repairs && s.ctx.queue.lock().is_ok_and(|q| q.contains(&m)) {
                match super::verify_loaded(&g, &dir, &shared.ctx) {
                    Ok(_) => {
                        if let Ok(mut q) = s.ctx.queue.lock() {
                            q.remove(&m);
                        }
                        tracing::info!(mailbox = %m, "replica mailbox repaired by the primary: no longer queued for reconstruct");
                    }
                    Err(e) => {
                        tracing::warn!(mailbox = %m, error = %e, "replica mailbox still damaged after a repair batch: left queued");
                    }
                }
            }
            drop(g);
            applied
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_point_file_roundtrip_and_checks() {
        let pending = PendingSyncPoint {
            head: MailboxHead {
                uid_validity: UidValidity(9),
                uid_next: Uid(50),
                highest_modseq: ModSeq(7_000_000_010),
                messages: 44,
                state_crc: StateCrc(0x1234_5678),
            },
            namespace: Some(0xfeed_f00d),
        };
        for namespace in [None, Some(0xfeed_beef)] {
            let p = SyncPoint {
                uid_next: Uid(42),
                highest_modseq: ModSeq(7_000_000_000),
                namespace,
            };
            for points in [
                SyncPoints {
                    point: Some(p),
                    pending: None,
                },
                SyncPoints {
                    point: Some(p),
                    pending: Some(pending),
                },
                SyncPoints {
                    point: None,
                    pending: Some(PendingSyncPoint {
                        namespace,
                        ..pending
                    }),
                },
            ] {
                let b = encode_sync_points(9, points);
                assert_eq!(b.len(), SYNC_POINT_LEN);
                assert_eq!(decode_sync_points(&b, 9), points);
                assert_eq!(
                    decode_sync_points(&b, 10),
                    SyncPoints::default(),
                    "another incarnation"
                );
                for i in 0..b.len() {
                    let mut c = b.clone();
                    c[i] ^= 1;
                    assert_eq!(
                        decode_sync_points(&c, 9),
                        SyncPoints::default(),
                        "flipped byte {i}"
                    );
                }
                assert_eq!(decode_sync_points(&b[..20], 9), SyncPoints::default());
            }
        }
        // the first version's file (no namespace digest) is still read
        let mut v1 = Vec::new();
        v1.extend_from_slice(SYNC_POINT_MAGIC_V1);
        v1.extend_from_slice(&9u32.to_le_bytes());
        v1.extend_from_slice(&42u32.to_le_bytes());
        v1.extend_from_slice(&7u64.to_le_bytes());
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_sync_points(&v1, 9).point,
            Some(SyncPoint {
                uid_next: Uid(42),
                highest_modseq: ModSeq(7),
                namespace: None,
            })
        );
        // and the second (with it)
        let mut v2 = Vec::new();
        v2.extend_from_slice(SYNC_POINT_MAGIC_V2);
        v2.extend_from_slice(&9u32.to_le_bytes());
        v2.extend_from_slice(&42u32.to_le_bytes());
        v2.extend_from_slice(&7u64.to_le_bytes());
        v2.extend_from_slice(&1u32.to_le_bytes());
        v2.extend_from_slice(&0xabcdu32.to_le_bytes());
        let crc = crc32fast::hash(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_sync_points(&v2, 9),
            SyncPoints {
                point: Some(SyncPoint {
                    uid_next: Uid(42),
                    highest_modseq: ModSeq(7),
                    namespace: Some(0xabcd),
                }),
                pending: None,
            }
        );
    }
}
