//! A throttle on failed logins: after a failed LOGIN or AUTHENTICATE, the
//! next attempt from the same peer IP or for the same user waits
//! `base × 2^(failures−1)` (capped) before it is even checked, and the
//! failing answer itself is delayed by the same amount. Counters are kept
//! per IP and per user in a bounded table shared by all connections, and
//! forgotten after a quiet period; a success clears the user's counter.

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::{LoginThrottleLayer, ThrottleConfig};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::command::{Command, Request};
use crate::session::Reply;

/// What a failure counter is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    User(String),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// The failure table shared by every connection of a server.
#[derive(Debug)]
pub(crate) struct Table {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Table {
    pub(crate) fn new(config: ThrottleConfig) -> Table {
        Table {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn delay_for(&self, keys: &[Key]) -> Duration {
        let Ok(map) = self.entries.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter(|e| now.duration_since(e.last) < self.config.forget_after)
            .map(|e| self.config.delay(e.failures))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn failed(&self, keys: &[Key]) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if map.len() >= self.config.max_entries {
            let forget = self.config.forget_after;
            map.retain(|_, e| now.duration_since(e.last) < forget);
            if map.len() >= self.config.max_entries {
                map.clear();
            }
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if now.duration_since(e.last) >= self.config.forget_after {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        }
    }

    fn succeeded(&self, user: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&Key::User(user.to_owned()));
        }
    }
}

/// Delays login attempts after failures (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct LoginThrottle<S> {
    inner: S,
    table: Arc<Table>,
    peer: Option<IpAddr>,
}

impl<S> LoginThrottle<S> {
    pub(crate) fn new(inner: S, table: Arc<Table>, peer: Option<IpAddr>) -> LoginThrottle<S> {
        LoginThrottle { inner, table, peer }
    }
}

impl<S> tower::Service<Request> for LoginThrottle<S>
where
    S: tower::Service<Request, Response = Reply> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Take the service that was polled ready; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let is_login = matches!(
            &request.command,
            Command::Login { .. }
                | Command::Authenticate {
                    initial_response: Some(_),
                    ..
                }
        );
        if !is_login {
            return ResponseFuture::new(Box::pin(async move { inner.call(request).await }));
        }
        let mut keys: Vec<Key> = self.peer.map(Key::Ip).into_iter().collect();
        if let Command::Login { username, .. } = &request.command {
            keys.push(Key::User(username.to_lowercase()));
        }
        let table = self.table.clone();
        let peer = self.peer;
        ResponseFuture::new(Box::pin(async move {
            let before = table.delay_for(&keys);
            if !before.is_zero() {
                tokio::time::sleep(before).await;
            }
            let reply = inner.call(request).await?;
            if let Some(attempt) = &reply.login {
                let user_key = Key::User(attempt.user.to_lowercase());
                if attempt.success {
                    table.succeeded(&attempt.user.to_lowercase());
                } else {
                    let mut keys: Vec<Key> = peer.map(Key::Ip).into_iter().collect();
                    keys.push(user_key);
                    table.failed(&keys);
                    let wait = table.delay_for(&keys);
                    tracing::info!(delay_ms = wait.as_millis() as u64, "failed login throttled");
                    tokio::time::sleep(wait).await;
                }
            }
            Ok(reply)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_exponentially_and_is_capped() {
        let c = ThrottleConfig {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..ThrottleConfig::default()
        };
        assert_eq!(c.delay(0), Duration::ZERO);
        assert_eq!(c.delay(1), Duration::from_millis(100));
        assert_eq!(c.delay(2), Duration::from_millis(200));
        assert_eq!(c.delay(4), Duration::from_millis(800));
        assert_eq!(c.delay(5), Duration::from_millis(1000));
        assert_eq!(c.delay(500), Duration::from_millis(1000));
    }

    #[test]
    fn table_counts_per_key_and_success_clears_user() {
        let t = Table::new(ThrottleConfig {
            base_delay: Duration::from_millis(10),
            ..ThrottleConfig::default()
        });
        let ip = Key::Ip("127.0.0.1".parse().unwrap());
        let user = Key::User("bob".into());
        t.failed(&[ip.clone(), user.clone()]);
        t.failed(&[ip.clone(), user.clone()]);
        assert_eq!(
            t.delay_for(std::slice::from_ref(&user)),
            Duration::from_millis(20)
        );
        assert_eq!(t.delay_for(&[Key::User("eve".into())]), Duration::ZERO);
        t.succeeded("bob");
        assert_eq!(t.delay_for(&[user]), Duration::ZERO);
        assert_eq!(t.delay_for(&[ip]), Duration::from_millis(20));
    }

    #[test]
    fn table_is_bounded() {
        let t = Table::new(ThrottleConfig {
            max_entries: 10,
            ..ThrottleConfig::default()
        });
        for i in 0..100 {
            t.failed(&[Key::User(format!("u{i}"))]);
        }
        assert!(t.entries.lock().unwrap().len() <= 10);
    }
}
