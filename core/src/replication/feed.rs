//! [`ChangeFeed`]: which accounts changed when, the bookkeeping behind
//! [`Replication::changed_accounts`](super::Replication::changed_accounts)
//! that every store can share. Kept in memory only: after a restart every
//! account counts as changed (position 0, or a position from before the
//! restart, names them all), and replication compares each one's heads.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{ChangeNotifier, ChangePosition, ChangeWatch, ChangedAccounts};
use crate::error::{Error, Result};

/// A store-wide change counter and, per user, the counter value of their
/// latest change. A store calls [`ChangeFeed::touch`] once per committed
/// change, after it is visible; the lock is taken alone, never while
/// waiting for another.
#[derive(Debug)]
pub struct ChangeFeed {
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
    pub fn touch(&self, user: &str) {
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
    pub fn watch(&self) -> ChangeWatch {
        self.notifier.subscribe()
    }

    /// Users changed after `since` (sorted), and whether `since` is from
    /// before this feed (0, or beyond its counter: another process or
    /// store): then every user the feed knows is returned, and a store that
    /// keeps accounts on disk must add every account it has.
    pub fn changed_since(&self, since: ChangePosition) -> Result<(ChangedAccounts, bool)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_users_changed_after_a_position_and_everything_for_an_unknown_one() {
        let feed = ChangeFeed::default();
        feed.touch("bob");
        feed.touch("alice");
        let (first, all) = feed.changed_since(ChangePosition(1)).unwrap();
        assert!(!all);
        assert_eq!(first.users, vec!["alice".to_owned()]);
        assert_eq!(first.position, ChangePosition(2));
        feed.touch("bob");
        let (next, _) = feed.changed_since(first.position).unwrap();
        assert_eq!(next.users, vec!["bob".to_owned()]);
        for unknown in [ChangePosition(0), ChangePosition(99)] {
            let (every, all) = feed.changed_since(unknown).unwrap();
            assert!(all);
            assert_eq!(every.users, vec!["alice".to_owned(), "bob".to_owned()]);
        }
    }
}
