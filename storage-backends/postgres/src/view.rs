//! Mailbox views: each process keeps the message records (UID, flags,
//! modseq, ...) of the mailboxes it served lately, and brings one up to
//! date before every use with a single statement that reads only what
//! changed since (`modseq > ` the view's HIGHESTMODSEQ, and the expunges
//! since). SELECT and `FETCH 1:* (FLAGS)` of a large mailbox then read a
//! few rows from the database instead of all of them, on every frontend.
//!
//! Why reading only the changes is exact: every change to a mailbox's
//! messages takes the next HIGHESTMODSEQ under the mailbox row's lock and
//! holds the lock until it commits (`store::bump`), so a statement that
//! sees HIGHESTMODSEQ `h` sees every change numbered up to `h` and none
//! above it. A view at `h` plus the rows with a modseq above `h` and the
//! UIDs expunged above `h`, all read by one statement (one database
//! snapshot), is the mailbox as that statement saw it. A message row is
//! never changed without a new modseq (STORE, a viewer's `\Seen`, COPY,
//! MOVE and APPEND all set it), and a view belongs to one mailbox row: a
//! mailbox deleted and made again, or an INBOX renamed away, is another
//! row with other views.
//!
//! Memory is bounded: at most [`PgOptions::view_records`] message records
//! (default [`DEFAULT_VIEW_RECORDS`]) in all views of a process (each view
//! also counts [`VIEW_COST`] for itself), the least recently used views
//! dropped first; a mailbox larger than the whole budget is read afresh
//! every time and not kept (with a budget of 0, none is: every use reads
//! the mailbox's records afresh, and reads of a few UIDs read only those).
//!
//! [`PgOptions::view_records`]: crate::PgOptions::view_records
//! [`DEFAULT_VIEW_RECORDS`]: crate::DEFAULT_VIEW_RECORDS

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailroom_core::{Error, MessageMeta, Result, Uid};

use crate::db::{self, Cached, db, meta_columns};

/// What a view counts against the budget besides its records, so that
/// many small views are bounded too.
pub(crate) const VIEW_COST: usize = 64;

/// The records of one mailbox row as one viewer sees them.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Whether the view was ever read (a fresh one reads everything).
    loaded: bool,
    pub(crate) uid_validity: i64,
    pub(crate) uid_next: i64,
    pub(crate) highest_modseq: i64,
    /// The mailbox row's `generation` when read: a replica's write below
    /// the HIGHESTMODSEQ (`Replication::apply_messages`) moves it, and a
    /// view of another generation is read again whole.
    generation: i64,
    /// Ascending by UID.
    pub(crate) metas: Vec<MessageMeta>,
}

/// A view is per mailbox row and per kind of viewer: the owner (whose
/// `\Seen` is the row's bit) or another user (whose `\Seen` is in `seen`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    mailbox: i64,
    viewer: Option<String>,
}

#[derive(Debug)]
struct Slot {
    view: Arc<tokio::sync::Mutex<View>>,
    last_used: u64,
    cost: usize,
}

#[derive(Debug, Default)]
struct Table {
    slots: HashMap<Key, Slot>,
    tick: u64,
    cost: usize,
}

/// The views of one process.
#[derive(Debug)]
pub(crate) struct Views {
    table: Mutex<Table>,
    /// Message records (and [`VIEW_COST`] per view) kept at most.
    budget: usize,
}

impl Views {
    /// No views yet, at most `budget` records in all of them.
    pub(crate) fn new(budget: usize) -> Views {
        Views {
            table: Mutex::new(Table::default()),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The view of mailbox row `mailbox` for `viewer` (`None`: the owner),
    /// made empty if there is none.
    fn get(&self, mailbox: i64, viewer: Option<&str>) -> Arc<tokio::sync::Mutex<View>> {
        let key = Key {
            mailbox,
            viewer: viewer.map(str::to_owned),
        };
        let mut t = self.lock();
        t.tick += 1;
        let tick = t.tick;
        if let Some(slot) = t.slots.get_mut(&key) {
            slot.last_used = tick;
            return slot.view.clone();
        }
        let view = Arc::new(tokio::sync::Mutex::new(View::default()));
        t.slots.insert(
            key,
            Slot {
                view: view.clone(),
                last_used: tick,
                cost: VIEW_COST,
            },
        );
        t.cost += VIEW_COST;
        Self::evict(&mut t, self.budget, mailbox, viewer);
        view
    }

    /// Records that the view of (`mailbox`, `viewer`) now holds `len`
    /// records, and drops the least recently used views while the total is
    /// over the budget (this one too, last, if it alone is).
    fn account(&self, mailbox: i64, viewer: Option<&str>, len: usize) {
        let key = Key {
            mailbox,
            viewer: viewer.map(str::to_owned),
        };
        let mut t = self.lock();
        let cost = len.saturating_add(VIEW_COST);
        let Some(slot) = t.slots.get_mut(&key) else {
            return;
        };
        let old = std::mem::replace(&mut slot.cost, cost);
        t.cost = t.cost.saturating_sub(old).saturating_add(cost);
        Self::evict(&mut t, self.budget, mailbox, viewer);
    }

    /// Drops the views of mailbox row `mailbox` (it is gone).
    fn forget(&self, mailbox: i64) {
        let mut t = self.lock();
        let gone: Vec<Key> = t
            .slots
            .keys()
            .filter(|k| k.mailbox == mailbox)
            .cloned()
            .collect();
        for k in gone {
            if let Some(slot) = t.slots.remove(&k) {
                t.cost = t.cost.saturating_sub(slot.cost);
            }
        }
    }

    fn evict(t: &mut Table, budget: usize, mailbox: i64, viewer: Option<&str>) {
        let own = Key {
            mailbox,
            viewer: viewer.map(str::to_owned),
        };
        if t.slots.get(&own).is_some_and(|s| s.cost > budget) {
            // larger than every view together may be: not kept, and no
            // other view dropped for it
            if let Some(slot) = t.slots.remove(&own) {
                t.cost = t.cost.saturating_sub(slot.cost);
            }
        }
        while t.cost > budget {
            let victim = t
                .slots
                .iter()
                .filter(|(k, _)| !(k.mailbox == mailbox && k.viewer.as_deref() == viewer))
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
                .or_else(|| {
                    t.slots
                        .keys()
                        .find(|k| k.mailbox == mailbox && k.viewer.as_deref() == viewer)
                        .cloned()
                });
            let Some(victim) = victim else {
                t.cost = 0;
                return;
            };
            if let Some(slot) = t.slots.remove(&victim) {
                t.cost = t.cost.saturating_sub(slot.cost);
            }
        }
    }

    /// Runs `f` on the view of mailbox row `mailbox` for `viewer` (`owner`:
    /// the mailbox's owner), brought up to date first; `None` if the
    /// mailbox row is gone.
    pub(crate) async fn with<C, T>(
        &self,
        client: &C,
        mailbox: i64,
        owner: bool,
        viewer: &str,
        f: impl FnOnce(&View) -> T,
    ) -> Result<Option<T>>
    where
        C: Cached,
    {
        let who = (!owner).then_some(viewer);
        let view = self.get(mailbox, who);
        let mut v = view.lock().await;
        let before = v.metas.len();
        let loaded = v.loaded;
        if !refresh(client, mailbox, owner, viewer, &mut v).await? {
            drop(v);
            self.forget(mailbox);
            return Ok(None);
        }
        if !loaded || v.metas.len() != before {
            self.account(mailbox, who, v.metas.len());
        }
        Ok(Some(f(&v)))
    }

    /// Whether the view of mailbox row `mailbox` for `viewer` is held now
    /// (a few UIDs of a mailbox not held are read directly instead).
    pub(crate) fn holds(&self, mailbox: i64, owner: bool, viewer: &str) -> bool {
        let key = Key {
            mailbox,
            viewer: (!owner).then(|| viewer.to_owned()),
        };
        self.lock().slots.contains_key(&key)
    }
}

/// What one refresh statement returns per row, in its last column.
const HEAD: i32 = 0;
const CHANGED: i32 = 1;
const EXPUNGED: i32 = 2;

/// Brings `view` up to date with mailbox row `id` in one statement;
/// false if the row is gone.
async fn refresh<C: Cached>(
    client: &C,
    id: i64,
    owner: bool,
    viewer: &str,
    view: &mut View,
) -> Result<bool> {
    // The head row, the messages changed since and the UIDs expunged since
    // (not needed on a first read), in one statement and so one snapshot.
    // Columns 0..=9 are `db::meta`'s; the last says which kind of row.
    let cols = meta_columns(owner, 2);
    let sql = format!(
        "SELECT m.uid_next, m.highest_modseq, NULL::smallint, NULL::text[], m.uid_validity, \
         NULL::smallint, m.generation, NULL::bytea, NULL::boolean, NULL::bigint, {HEAD} \
         FROM mailboxes m WHERE m.id = $1 AND $2::text IS NOT NULL \
         UNION ALL \
         SELECT {cols}, {CHANGED} FROM messages x WHERE x.mailbox_id = $1 AND x.modseq > $3 \
         UNION ALL \
         SELECT e.uid, e.modseq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {EXPUNGED} \
         FROM expunged e WHERE $4 AND e.mailbox_id = $1 AND e.modseq > $3"
    );
    loop {
        let since = if view.loaded { view.highest_modseq } else { 0 };
        let rows = client
            .cached_query(&sql, &[&id, &viewer, &since, &view.loaded])
            .await
            .map_err(db)?;
        let mut head = None;
        let mut changed = Vec::new();
        let mut expunged = Vec::new();
        for r in &rows {
            match r.try_get::<_, i32>(10).map_err(db)? {
                HEAD => {
                    head = Some((
                        r.try_get::<_, i64>(0).map_err(db)?,
                        r.try_get::<_, i64>(1).map_err(db)?,
                        r.try_get::<_, i64>(4).map_err(db)?,
                        r.try_get::<_, i64>(6).map_err(db)?,
                    ));
                }
                CHANGED => changed.push(db::meta(r)?),
                EXPUNGED => expunged.push(db::uid(r.try_get(0).map_err(db)?)),
                _ => return Err(Error::Backend("unexpected row in a mailbox refresh".into())),
            }
        }
        let Some((uid_next, highest_modseq, uid_validity, generation)) = head else {
            *view = View::default();
            return Ok(false);
        };
        if view.loaded
            && (uid_validity != view.uid_validity
                || highest_modseq < view.highest_modseq
                || generation != view.generation)
        {
            // not this view's history any more (a replica's write below
            // the HIGHESTMODSEQ, or one that lowered it): read it all again
            *view = View::default();
            continue;
        }
        changed.sort_unstable_by_key(|m| m.uid);
        if view.loaded {
            apply(&mut view.metas, changed, expunged);
        } else {
            view.metas = changed;
        }
        view.loaded = true;
        view.uid_next = uid_next;
        view.highest_modseq = highest_modseq;
        view.uid_validity = uid_validity;
        view.generation = generation;
        return Ok(true);
    }
}

/// Applies changes to records ascending by UID: `changed` (ascending)
/// replaces or adds, `expunged` removes.
fn apply(metas: &mut Vec<MessageMeta>, changed: Vec<MessageMeta>, mut expunged: Vec<Uid>) {
    if !expunged.is_empty() {
        expunged.sort_unstable();
        metas.retain(|m| expunged.binary_search(&m.uid).is_err());
    }
    for m in changed {
        if metas.last().is_none_or(|l| l.uid < m.uid) {
            metas.push(m);
            continue;
        }
        match metas.binary_search_by_key(&m.uid, |x| x.uid) {
            Ok(i) => metas[i] = m,
            Err(i) => metas.insert(i, m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::{Flags, InternalDate, MessageGuid, ModSeq};

    const BUDGET: usize = crate::DEFAULT_VIEW_RECORDS;

    fn held(views: &Views) -> Vec<(i64, Option<String>)> {
        let mut held: Vec<(i64, Option<String>)> = views
            .lock()
            .slots
            .keys()
            .map(|k| (k.mailbox, k.viewer.clone()))
            .collect();
        held.sort();
        held
    }

    fn meta(uid: u32, modseq: u64) -> MessageMeta {
        MessageMeta {
            uid: Uid(uid),
            flags: Flags::default(),
            modseq: ModSeq(modseq),
            internal_date: InternalDate {
                timestamp: 0,
                offset_minutes: 0,
            },
            size: 1,
            guid: MessageGuid([0; 20]),
            save_date: None,
        }
    }

    #[test]
    fn apply_replaces_adds_and_removes() {
        let mut v = vec![meta(1, 1), meta(2, 1), meta(4, 1)];
        apply(
            &mut v,
            vec![meta(2, 5), meta(3, 5), meta(7, 6)],
            vec![Uid(4), Uid(9)],
        );
        let got: Vec<(u32, u64)> = v.iter().map(|m| (m.uid.0, m.modseq.0)).collect();
        assert_eq!(got, vec![(1, 1), (2, 5), (3, 5), (7, 6)]);
    }

    #[test]
    fn the_budget_drops_the_least_recently_used() {
        let views = Views::new(BUDGET);
        let _a = views.get(1, None);
        views.account(1, None, BUDGET / 2);
        let _b = views.get(2, None);
        views.account(2, None, BUDGET / 2 - 10 * VIEW_COST);
        let _ = views.get(1, None); // 1 used after 2
        let _c = views.get(3, Some("bob"));
        views.account(3, Some("bob"), BUDGET / 4);
        // 2 was the least recently used
        assert_eq!(held(&views), vec![(1, None), (3, Some("bob".into()))]);
        assert!(views.lock().cost <= BUDGET);
    }

    #[test]
    fn a_view_larger_than_the_budget_is_not_kept() {
        let views = Views::new(BUDGET);
        let _a = views.get(1, None);
        views.account(1, None, 10);
        let _b = views.get(2, None);
        views.account(2, None, BUDGET + 1);
        let t = views.lock();
        assert!(t.slots.contains_key(&Key {
            mailbox: 1,
            viewer: None
        }));
        assert!(!t.slots.contains_key(&Key {
            mailbox: 2,
            viewer: None
        }));
    }

    /// A budget set small (`[store] view_records`) holds two views of ten
    /// records: a third evicts the least recently used.
    #[test]
    fn a_small_budget_evicts() {
        let views = Views::new(2 * (10 + VIEW_COST));
        for id in 1..=2 {
            let _v = views.get(id, None);
            views.account(id, None, 10);
        }
        assert_eq!(held(&views), vec![(1, None), (2, None)]);
        let _ = views.get(1, None); // 2 is now the least recently used
        let _v = views.get(3, None);
        views.account(3, None, 10);
        assert_eq!(held(&views), vec![(1, None), (3, None)]);
        // eleven records do not fit beside another view: it goes
        views.account(3, None, 11);
        assert_eq!(held(&views), vec![(3, None)]);
    }

    /// A budget of 0 keeps no view: each is used once and dropped.
    #[test]
    fn a_budget_of_zero_keeps_nothing() {
        let views = Views::new(0);
        let v = views.get(1, None);
        views.account(1, None, 3);
        assert!(held(&views).is_empty());
        assert!(!views.holds(1, true, "alice"));
        assert_eq!(views.lock().cost, 0);
        drop(v);
    }
}
