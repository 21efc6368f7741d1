//! [`ChangeFeed`]: which accounts changed when, for
//! [`Replication::changed_accounts`](mailroom_core::Replication::changed_accounts).
//! Kept in memory only: after a restart every account counts as changed
//! (position 0 or a position from before the restart names them all), and
//! replication compares each one's heads, which costs one index header read
//! per mailbox.

use std::collections::HashMap;
use std::sync::Mutex;

use mailroom_core::replication::{ChangeNotifier, ChangePosition, ChangeWatch, ChangedAccounts};
use mailroom_core::{Error, Result};

/// A store-wide change counter and, per user, the counter value of their
/// latest change. Every committed change bumps it once; its lock is taken
/// alone (never while waiting for another).
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

    /// Users changed after `since`, and whether `since` is from before
    /// this process (0 or beyond the counter): then the caller must add
    /// every account on disk.
    pub(crate) fn changed_since(&self, since: ChangePosition) -> Result<(ChangedAccounts, bool)> {
        let inner = self
            .inner
            .lock()
            .map_err(|_| Error::Backend("change feed lock poisoned".into()))?;
        let all = since.0 == 0 || since.0 > inner.position;
        let mut users: Vec<String> = inner
            .latest
            .iter()
            .filter(|(_, p)| all || **p > since.0)
            .map(|(u, _)| u.clone())
            .collect();
        users.sort_unstable();
        Ok((
            ChangedAccounts {
                position: ChangePosition(inner.position),
                users,
            },
            all,
        ))
    }
}
