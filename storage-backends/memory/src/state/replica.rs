//! Replication on one mailbox: its records as replication sees them, the
//! head figures, digests, and applying a batch from a primary with the
//! primary's UIDs and modseqs.

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::replication::{
    Applied, ApplyBatch, MailboxHead, RecordsSince, ReplicaMessage, ReplicaRecord,
};
use mailroom_core::{MessageSummary, ModSeq, Result, Uid, UidValidity};

use super::{MailboxState, StoredMessage, count_u32};

impl StoredMessage {
    fn record(&self, seen_by: Vec<String>) -> ReplicaRecord {
        ReplicaRecord {
            uid: self.uid,
            modseq: self.modseq,
            flags: self.flags.clone(),
            internal_date: self.internal_date,
            size: self.content.len() as u64,
            guid: self.guid,
            seen_by,
            save_date: Some(self.save_date),
        }
    }

    /// The message's contribution to the mailbox state CRC.
    pub(super) fn state_crc(&self) -> u32 {
        self.record(Vec::new()).state_crc()
    }
}

impl MailboxState {
    /// UIDVALIDITY.
    pub(crate) fn uid_validity(&self) -> UidValidity {
        self.uid_validity
    }

    /// The figures replication compares.
    pub(crate) fn head(&self) -> MailboxHead {
        MailboxHead {
            uid_validity: self.uid_validity,
            uid_next: self.uid_next,
            highest_modseq: self.highest_modseq,
            messages: count_u32(self.messages.len()),
            state_crc: self.state_crc,
        }
    }

    fn seen_by(&self, uid: Uid) -> Vec<String> {
        let mut users: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, set)| set.contains(&uid))
            .map(|(user, _)| user.clone())
            .collect();
        users.sort_unstable();
        users
    }

    fn replica_record(&self, message: &StoredMessage) -> ReplicaRecord {
        message.record(self.seen_by(message.uid))
    }

    /// Records changed after `since` with a UID above `after`.
    pub(crate) fn records_since(&self, since: ModSeq, after: Uid, limit: usize) -> RecordsSince {
        let mut records = Vec::new();
        let mut more = false;
        let start = Uid(after.0.saturating_add(1));
        for m in self
            .messages
            .range(start..)
            .map(|(_, m)| m)
            .filter(|m| m.modseq > since)
        {
            if records.len() >= limit.max(1) {
                more = true;
                break;
            }
            records.push(self.replica_record(m));
        }
        let expunged = if more {
            Vec::new()
        } else {
            let mut e: Vec<(Uid, ModSeq)> = self
                .expunged
                .iter()
                .copied()
                .filter(|(_, m)| *m > since)
                .collect();
            e.sort_unstable();
            e
        };
        RecordsSince {
            head: self.head(),
            records,
            more,
            expunged,
            expunged_complete: true,
        }
    }

    /// The records of the present UIDs among `uids`, ascending.
    pub(crate) fn replica_records(&self, uids: &[Uid]) -> Vec<ReplicaRecord> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        uids.iter()
            .filter_map(|u| self.messages.get(u))
            .map(|m| self.replica_record(m))
            .collect()
    }

    /// Every message's UID and record CRC.
    pub(crate) fn digests(&self) -> Vec<(Uid, u32)> {
        self.messages
            .values()
            .map(|m| (m.uid, m.state_crc()))
            .collect()
    }

    /// Applies a batch from the primary. Nothing is applied if any message
    /// in it fails its GUID or size check.
    pub(crate) fn apply(&mut self, batch: ApplyBatch) -> Result<Applied> {
        batch.check()?;
        let mut missing = Vec::new();
        let mut top_uid = 0u32;
        let mut top_modseq = ModSeq(0);
        for ReplicaMessage { record, content } in batch.messages {
            let content: Bytes = match content {
                Some(c) => c,
                None => match self.messages.get(&record.uid) {
                    Some(existing) if existing.guid == record.guid => existing.content.clone(),
                    _ => {
                        missing.push(record.uid);
                        continue;
                    }
                },
            };
            let summary = match self.messages.get(&record.uid) {
                Some(existing) if existing.guid == record.guid => Arc::clone(&existing.summary),
                _ => Arc::new(MessageSummary::parse(&content)),
            };
            top_uid = top_uid.max(record.uid.0);
            top_modseq = top_modseq.max(record.modseq);
            self.set_seen_by(record.uid, &record.seen_by);
            self.insert(StoredMessage {
                uid: record.uid,
                flags: record.flags,
                modseq: record.modseq,
                internal_date: record.internal_date,
                guid: record.guid,
                save_date: record
                    .save_date
                    .unwrap_or_else(|| mailroom_core::InternalDate::now().timestamp),
                content,
                summary,
            });
        }
        for (uid, modseq) in batch.expunged {
            if let Some(gone) = self.messages.remove(&uid) {
                self.bytes = self.bytes.saturating_sub(gone.content.len() as u64);
                self.state_crc.toggle(gone.state_crc());
                self.expunged.push((uid, modseq));
                self.set_seen_by(uid, &[]);
                top_modseq = top_modseq.max(modseq);
            }
        }
        let floor = Uid(top_uid.saturating_add(1));
        self.uid_next = self
            .uid_next
            .max(floor)
            .max(batch.uid_next.unwrap_or(floor));
        // The primary's figure if given, but never below a modseq this
        // replica holds (a batch before the last comes without it).
        let wanted = batch.highest_modseq.unwrap_or(self.highest_modseq);
        self.highest_modseq = if wanted >= self.highest_modseq {
            wanted.max(top_modseq)
        } else {
            self.held_modseqs()
                .fold(wanted.max(top_modseq), ModSeq::max)
        };
        self.notify();
        Ok(Applied {
            head: self.head(),
            missing,
        })
    }

    /// Every modseq the mailbox holds: its messages' and its expunges'.
    fn held_modseqs(&self) -> impl Iterator<Item = ModSeq> + '_ {
        self.messages
            .values()
            .map(|m| m.modseq)
            .chain(self.expunged.iter().map(|&(_, m)| m))
    }

    fn set_seen_by(&mut self, uid: Uid, users: &[String]) {
        for (user, set) in self.seen.iter_mut() {
            if !users.contains(user) {
                set.remove(&uid);
            }
        }
        for user in users {
            self.seen.entry(user.clone()).or_default().insert(uid);
        }
        self.seen.retain(|_, set| !set.is_empty());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mailroom_core::replication::StateCrc;
    use mailroom_core::{Flag, Flags, InternalDate, NewMessage, StoreOp};

    use crate::state::Viewer;

    fn msg(body: &'static [u8]) -> NewMessage {
        NewMessage {
            flags: Flags::default(),
            internal_date: Some(InternalDate {
                timestamp: 1_700_000_000,
                offset_minutes: -300,
            }),
            content: Bytes::from_static(body),
        }
    }

    fn recomputed(s: &MailboxState) -> StateCrc {
        let records: Vec<ReplicaRecord> = s.messages.values().map(|m| m.record(vec![])).collect();
        StateCrc::of(&records)
    }

    #[test]
    fn state_crc_is_kept_incrementally() {
        let mut s = MailboxState::new(UidValidity(9), None);
        assert_eq!(s.head().state_crc, StateCrc(0));
        s.append(msg(b"a\r\n")).unwrap();
        s.append(msg(b"b\r\n")).unwrap();
        assert_eq!(s.head().state_crc, recomputed(&s));
        s.store(
            Viewer::Owner,
            &[Uid(1)],
            &StoreOp::Add(
                [Flag::Deleted, Flag::Keyword("$Junk".into())]
                    .into_iter()
                    .collect(),
            ),
            None,
        );
        assert_eq!(s.head().state_crc, recomputed(&s));
        s.expunge(None);
        assert_eq!(s.head().state_crc, recomputed(&s));
        assert_eq!(s.messages.len(), 1);
    }

    #[test]
    fn apply_keeps_uids_and_modseqs_and_refuses_bad_guids() {
        let mut primary = MailboxState::new(UidValidity(9), None);
        primary.append(msg(b"one\r\n")).unwrap();
        primary.append(msg(b"two\r\n")).unwrap();
        let since = primary.records_since(ModSeq(0), Uid(0), 100);
        let mut replica = MailboxState::new(UidValidity(9), None);
        let messages: Vec<ReplicaMessage> = since
            .records
            .iter()
            .map(|r| ReplicaMessage {
                record: r.clone(),
                content: Some(primary.content(r.uid).unwrap()),
            })
            .collect();
        let mut bad = messages.clone();
        bad[1].content = Some(Bytes::from_static(b"tampered\r\n"));
        assert!(
            replica
                .apply(ApplyBatch {
                    messages: bad,
                    ..ApplyBatch::default()
                })
                .is_err()
        );
        assert!(replica.messages.is_empty(), "nothing applied");
        let applied = replica
            .apply(ApplyBatch {
                messages,
                expunged: vec![],
                uid_next: Some(since.head.uid_next),
                highest_modseq: Some(since.head.highest_modseq),
            })
            .unwrap();
        assert_eq!(applied.head, primary.head());
        // A flag change without content applies to the held message; one
        // for a message the replica lacks is reported missing.
        let mut changed = since.records[0].clone();
        changed.flags.insert(Flag::Flagged);
        changed.modseq = ModSeq(50);
        let mut unknown = since.records[1].clone();
        unknown.uid = Uid(7);
        let applied = replica
            .apply(ApplyBatch {
                messages: vec![
                    ReplicaMessage {
                        record: changed,
                        content: None,
                    },
                    ReplicaMessage {
                        record: unknown,
                        content: None,
                    },
                ],
                ..ApplyBatch::default()
            })
            .unwrap();
        assert_eq!(applied.missing, vec![Uid(7)]);
        assert_eq!(applied.head.state_crc, recomputed(&replica));
    }
}
