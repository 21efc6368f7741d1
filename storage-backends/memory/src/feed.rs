//! [`ChangeFeed`]: which accounts changed when, for
//! [`Replication::changed_accounts`](mailroom_core::Replication::changed_accounts).

use std::collections::HashMap;
use std::sync::Mutex;

use mailroom_core::replication::{ChangeNotifier, ChangePosition, ChangeWatch, ChangedAccounts};

use crate::state::poisoned;

/// A store-wide change counter and, per user, the counter value of their
/// latest change. Every mutating store call bumps it once after its change
/// is visible; the lock is taken alone, never while holding another.
#[derive(Debug)]
pub(crate) struct ChangeFeed {
    inner: Mutex<FeedState>,
    notifier: ChangeNotifier,
}

#[derive(Debug, Default)]
struct FeedState {
    position: u64,
    latest: HashMap<String, u64>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        let (notifier, _) = ChangeWatch::channel(ChangePosition(0));
        ChangeFeed {
            inner: Mutex::new(FeedState::default()),
            notifier,
        }
    }
}

impl ChangeFeed {
    /// Records a change of `user`'s data and wakes watchers.
    pub(crate) fn touch(&self, user: &str) {
        // A poisoned feed only loses wake-ups; replication's periodic
        // comparison still finds the change.
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.position += 1;
        let position = inner.position;
        match inner.latest.get_mut(user) {
            Some(p) => *p = position,
            None => {
                inner.latest.insert(user.to_owned(), position);
            }
        }
        drop(inner);
        self.notifier.notify(ChangePosition(position));
    }

    /// A watch on the feed.
    pub(crate) fn watch(&self) -> ChangeWatch {
        self.notifier.subscribe()
    }

    /// Users changed after `since`; every user the feed knows when `since`
    /// is 0 or lies in the future (a position from another store).
    pub(crate) fn changed_since(
        &self,
        since: ChangePosition,
    ) -> mailroom_core::Result<ChangedAccounts> {
        let inner = self.inner.lock().map_err(|_| poisoned())?;
        let all = since.0 == 0 || since.0 > inner.position;
        let mut users: Vec<String> = inner
            .latest
            .iter()
            .filter(|(_, p)| all || **p > since.0)
            .map(|(u, _)| u.clone())
            .collect();
        users.sort_unstable();
        Ok(ChangedAccounts {
            position: ChangePosition(inner.position),
            users,
        })
    }
}
