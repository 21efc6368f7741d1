//! Random sequences of operations on one mailbox, checked step by step
//! against a plain model of flags, per-user `\Seen`, UIDs, modseqs and
//! remembered expunges.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{
    Flag, Flags, Mailbox, MailboxName, MailboxRef, ModSeq, NewMessage, Storage, StoreOp, Uid,
};
use mailroom_store_memory::MemoryStore;
use proptest::prelude::*;

const OWNER: &str = "owner@example.com";
const OTHER: &str = "other@example.com";

#[derive(Debug, Clone)]
enum Op {
    Append(Flags),
    Store {
        by_other: bool,
        uids: Vec<u32>,
        kind: u8,
        flags: Flags,
        /// How far below HIGHESTMODSEQ the UNCHANGEDSINCE value lies.
        unchanged_since_back: Option<u64>,
    },
    Expunge(Option<Vec<u32>>),
    MoveOut(Vec<u32>),
    ChangesSince(u64),
    ClaimRecent,
}

fn flags_strategy() -> impl Strategy<Value = Flags> {
    (
        0u8..32,
        proptest::option::of(prop_oneof![Just("$a"), Just("$B")]),
    )
        .prop_map(|(bits, kw)| Flags::from_parts(bits, kw.map(str::to_owned)))
}

fn uids_strategy() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(1u32..16, 0..6)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => flags_strategy().prop_map(Op::Append),
        4 => (any::<bool>(), uids_strategy(), 0u8..3, flags_strategy(),
              proptest::option::of(0u64..6))
            .prop_map(|(by_other, uids, kind, flags, unchanged_since_back)| Op::Store {
                by_other, uids, kind, flags, unchanged_since_back
            }),
        2 => proptest::option::of(uids_strategy()).prop_map(Op::Expunge),
        1 => uids_strategy().prop_map(Op::MoveOut),
        1 => (0u64..20).prop_map(Op::ChangesSince),
        1 => Just(Op::ClaimRecent),
    ]
}

#[derive(Debug, Clone)]
struct ModelMessage {
    /// Shared flags; `\Seen` is the owner's.
    flags: Flags,
    other_seen: bool,
    modseq: ModSeq,
    size: u64,
}

impl ModelMessage {
    fn view(&self, by_other: bool) -> Flags {
        let mut f = self.flags.clone();
        if by_other {
            f.remove(&Flag::Seen);
            if self.other_seen {
                f.insert(Flag::Seen);
            }
        }
        f
    }
}

#[derive(Debug)]
struct Model {
    messages: BTreeMap<Uid, ModelMessage>,
    expunged: Vec<(Uid, ModSeq)>,
    highest: ModSeq,
    uid_next: u32,
    recent_from: u32,
}

struct Harness {
    store: MemoryStore,
    inbox: MailboxRef,
    owner: Arc<dyn Mailbox>,
    other: Arc<dyn Mailbox>,
    model: Model,
    appended: u32,
}

fn sorted(uids: &[u32]) -> Vec<Uid> {
    let mut v: Vec<Uid> = uids.iter().map(|&u| Uid(u)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Harness {
    async fn new() -> Harness {
        let store = MemoryStore::new();
        store.ensure_account(OWNER).await.unwrap();
        let inbox = MailboxRef::new(OWNER, MailboxName::inbox());
        let owner = store.open(&inbox, OWNER).await.unwrap();
        let other = store.open(&inbox, OTHER).await.unwrap();
        let highest = store.status(&inbox, OWNER).await.unwrap().highest_modseq;
        Harness {
            store,
            inbox,
            owner,
            other,
            model: Model {
                messages: BTreeMap::new(),
                expunged: Vec::new(),
                highest,
                uid_next: 1,
                recent_from: 1,
            },
            appended: 0,
        }
    }

    async fn highest(&self) -> ModSeq {
        self.store
            .status(&self.inbox, OWNER)
            .await
            .unwrap()
            .highest_modseq
    }

    async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Append(flags) => {
                self.appended += 1;
                let content = Bytes::from(format!(
                    "Subject: {}\r\n\r\n{}\r\n",
                    self.appended,
                    "x".repeat(self.appended as usize % 11)
                ));
                let size = content.len() as u64;
                let a = self
                    .store
                    .append(
                        &self.inbox,
                        NewMessage {
                            flags: flags.clone(),
                            internal_date: None,
                            content,
                        },
                    )
                    .await
                    .unwrap();
                prop_assert_eq!(a.uid, Uid(self.model.uid_next));
                prop_assert!(a.modseq > self.model.highest);
                self.model.uid_next += 1;
                self.model.highest = a.modseq;
                self.model.messages.insert(
                    a.uid,
                    ModelMessage {
                        flags: flags.clone(),
                        other_seen: false,
                        modseq: a.modseq,
                        size,
                    },
                );
            }
            Op::Store {
                by_other,
                uids,
                kind,
                flags,
                unchanged_since_back,
            } => {
                let store_op = match kind {
                    0 => StoreOp::Add(flags.clone()),
                    1 => StoreOp::Remove(flags.clone()),
                    _ => StoreOp::Replace(flags.clone()),
                };
                let unchanged_since =
                    unchanged_since_back.map(|b| ModSeq(self.model.highest.0.saturating_sub(b)));
                let mut want_changed = Vec::new();
                let mut want_modified = Vec::new();
                let mut updates = Vec::new();
                for uid in sorted(uids) {
                    let Some(m) = self.model.messages.get(&uid) else {
                        continue;
                    };
                    if unchanged_since.is_some_and(|u| m.modseq > u) {
                        want_modified.push(uid);
                        continue;
                    }
                    let old = m.view(*by_other);
                    let mut new = old.clone();
                    new.apply(&store_op);
                    if new != old {
                        want_changed.push(uid);
                        updates.push((uid, new));
                    }
                }
                let handle = if *by_other { &self.other } else { &self.owner };
                let r = handle
                    .store(&sorted(uids), &store_op, unchanged_since)
                    .await
                    .unwrap();
                prop_assert_eq!(
                    r.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
                    want_changed
                );
                prop_assert_eq!(&r.modified, &want_modified);
                let now = self.highest().await;
                if updates.is_empty() {
                    prop_assert_eq!(now, self.model.highest, "no-op STORE must not bump");
                } else {
                    prop_assert!(now > self.model.highest);
                    self.model.highest = now;
                }
                for (uid, new) in updates {
                    let Some(m) = self.model.messages.get_mut(&uid) else {
                        continue;
                    };
                    if *by_other {
                        m.other_seen = new.contains(&Flag::Seen);
                        let owner_seen = m.flags.contains(&Flag::Seen);
                        m.flags = new;
                        m.flags.remove(&Flag::Seen);
                        if owner_seen {
                            m.flags.insert(Flag::Seen);
                        }
                    } else {
                        m.flags = new;
                    }
                    m.modseq = now;
                }
                for meta in &r.changed {
                    let m = &self.model.messages[&meta.uid];
                    prop_assert_eq!(&meta.flags, &m.view(*by_other));
                    prop_assert_eq!(meta.modseq, m.modseq);
                }
            }
            Op::Expunge(uids) => {
                let candidates: Vec<Uid> = match uids {
                    Some(u) => sorted(u),
                    None => self.model.messages.keys().copied().collect(),
                };
                let want: Vec<Uid> = candidates
                    .into_iter()
                    .filter(|u| {
                        self.model
                            .messages
                            .get(u)
                            .is_some_and(|m| m.flags.contains(&Flag::Deleted))
                    })
                    .collect();
                let asked = uids.as_ref().map(|u| sorted(u));
                let got = self.owner.expunge(asked.as_deref()).await.unwrap();
                prop_assert_eq!(&got, &want);
                self.remove(&want).await?;
            }
            Op::MoveOut(uids) => {
                let want: Vec<Uid> = sorted(uids)
                    .into_iter()
                    .filter(|u| self.model.messages.contains_key(u))
                    .collect();
                let trash = MailboxRef::new(OWNER, MailboxName::new("Trash").unwrap());
                let r = self.owner.move_to(&sorted(uids), &trash).await.unwrap();
                prop_assert_eq!(
                    r.mapping.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                    want.clone()
                );
                self.remove(&want).await?;
            }
            Op::ChangesSince(back) => {
                let since = ModSeq(self.model.highest.0.saturating_sub(*back));
                let c = self.owner.changes_since(since).await.unwrap();
                let want_changed: Vec<(Uid, ModSeq)> = self
                    .model
                    .messages
                    .iter()
                    .filter(|(_, m)| m.modseq > since)
                    .map(|(u, m)| (*u, m.modseq))
                    .collect();
                let got: Vec<(Uid, ModSeq)> = c.changed.iter().map(|m| (m.uid, m.modseq)).collect();
                prop_assert_eq!(got, want_changed);
                let mut want_expunged: Vec<(Uid, ModSeq)> = self
                    .model
                    .expunged
                    .iter()
                    .copied()
                    .filter(|(_, m)| *m > since)
                    .collect();
                want_expunged.sort_unstable();
                prop_assert_eq!(c.expunged, want_expunged);
                prop_assert!(c.expunged_complete);
                prop_assert_eq!(c.highest_modseq, self.model.highest);
            }
            Op::ClaimRecent => {
                let from = self.owner.claim_recent().await.unwrap();
                prop_assert_eq!(from, Uid(self.model.recent_from));
                self.model.recent_from = self.model.uid_next;
            }
        }
        self.check_state().await
    }

    /// Records an expunge of `uids` (already checked) in the model.
    async fn remove(&mut self, uids: &[Uid]) -> Result<(), TestCaseError> {
        let now = self.highest().await;
        if uids.is_empty() {
            prop_assert_eq!(now, self.model.highest, "an empty expunge must not bump");
            return Ok(());
        }
        prop_assert!(now > self.model.highest);
        self.model.highest = now;
        for uid in uids {
            self.model.messages.remove(uid);
            self.model.expunged.push((*uid, now));
        }
        Ok(())
    }

    async fn check_state(&self) -> Result<(), TestCaseError> {
        let snap = self.owner.snapshot().await.unwrap();
        let other = self.other.snapshot().await.unwrap();
        prop_assert_eq!(snap.highest_modseq, self.model.highest);
        prop_assert_eq!(snap.uid_next, Uid(self.model.uid_next));
        prop_assert_eq!(snap.messages.len(), self.model.messages.len());
        prop_assert_eq!(other.messages.len(), self.model.messages.len());
        for ((meta, other_meta), (uid, m)) in snap
            .messages
            .iter()
            .zip(&other.messages)
            .zip(&self.model.messages)
        {
            prop_assert_eq!(meta.uid, *uid);
            prop_assert_eq!(&meta.flags, &m.view(false));
            prop_assert_eq!(&other_meta.flags, &m.view(true));
            prop_assert_eq!(meta.modseq, m.modseq);
            prop_assert_eq!(other_meta.modseq, m.modseq);
        }
        // HIGHESTMODSEQ is the largest modseq anywhere (once anything happened).
        let max = self
            .model
            .messages
            .values()
            .map(|m| m.modseq)
            .chain(self.model.expunged.iter().map(|(_, m)| *m))
            .max();
        if let Some(max) = max {
            prop_assert_eq!(max, self.model.highest);
        }
        let owner_status = self.store.status(&self.inbox, OWNER).await.unwrap();
        let other_status = self.store.status(&self.inbox, OTHER).await.unwrap();
        let count = |f: &dyn Fn(&ModelMessage) -> bool| {
            self.model.messages.values().filter(|m| f(m)).count() as u32
        };
        prop_assert_eq!(owner_status.messages, self.model.messages.len() as u32);
        let size: u64 = self.model.messages.values().map(|m| m.size).sum();
        prop_assert_eq!(owner_status.size, size);
        prop_assert_eq!(
            owner_status.unseen,
            count(&|m| !m.flags.contains(&Flag::Seen))
        );
        prop_assert_eq!(other_status.unseen, count(&|m| !m.other_seen));
        prop_assert_eq!(
            owner_status.deleted,
            count(&|m| m.flags.contains(&Flag::Deleted))
        );
        let recent = self
            .model
            .messages
            .keys()
            .filter(|u| u.0 >= self.model.recent_from)
            .count() as u32;
        prop_assert_eq!(owner_status.recent, recent);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn operations_match_the_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut h = Harness::new().await;
            for op in &ops {
                h.apply(op).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
