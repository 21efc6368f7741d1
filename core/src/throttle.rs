//! The failed-login table every protocol shares.
//!
//! A password guesser who is slowed down on IMAP must not simply switch to
//! POP3 (or open a new connection): the protocol layers that throttle logins
//! (`mailroom_imap::layer::throttle`, `mailroom_pop3::layer::throttle`) keep
//! their counters in one [`LoginFailures`] table, which an integrator creates
//! once and hands to every server behind an `Arc`.
//!
//! The table counts failures per peer IP address and per user name (user
//! names compare case-insensitively, so `Alice` and `alice` share a
//! counter). After `n` failures the next attempt waits
//! [`ThrottleConfig::delay`]`(n)`: `base × 2^(n−1)`, capped. Counters are
//! forgotten after a quiet period, a success clears the user's counter (not
//! the IP's: one good password must not buy a botnet address unthrottled
//! guesses at other accounts), and the table holds at most
//! [`ThrottleConfig::max_entries`] keys, so a flood of made-up user names
//! cannot grow it without bound.
//!
//! The table is plain `std`: no clock of its own beyond [`Instant`], no
//! timers. Waiting is the protocol layer's job.
//!
//! ```
//! use std::time::Duration;
//! use mailroom_core::throttle::{LoginFailures, ThrottleConfig};
//!
//! let failures = LoginFailures::new(ThrottleConfig {
//!     base_delay: Duration::from_millis(100),
//!     ..ThrottleConfig::default()
//! });
//! let ip = "192.0.2.7".parse().ok();
//! assert_eq!(failures.delay_for(ip, Some("alice")), Duration::ZERO);
//! failures.failed(ip, Some("alice"));
//! failures.failed(ip, Some("Alice"));
//! // Two failures: the next attempt from that IP, or for that user, waits 200 ms.
//! assert_eq!(failures.delay_for(None, Some("ALICE")), Duration::from_millis(200));
//! assert_eq!(failures.delay_for(ip, Some("bob")), Duration::from_millis(200));
//! failures.succeeded("alice");
//! assert_eq!(failures.delay_for(None, Some("alice")), Duration::ZERO);
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How a [`LoginFailures`] table counts and delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// The delay after the first failure; it doubles with each further one.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    pub forget_after: Duration,
    /// The most IPs and users tracked at once (a bound on memory).
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    /// 1 s after the first failure, doubling up to 30 s, forgotten after
    /// 15 quiet minutes, at most 100 000 keys.
    fn default() -> ThrottleConfig {
        ThrottleConfig {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            forget_after: Duration::from_secs(15 * 60),
            max_entries: 100_000,
        }
    }
}

impl ThrottleConfig {
    /// The delay after `failures` failures: zero for none, then
    /// `base_delay × 2^(failures−1)`, never more than `max_delay`.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// What a failure counter is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    /// Lower-cased.
    User(String),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// Failed logins per peer IP and per user, shared by every connection of
/// every server that should throttle together (see the [module docs](self)).
///
/// Cheap to share: wrap it in an `Arc`. All methods take `&self`; a
/// poisoned lock (a panic elsewhere while holding it) is recovered from,
/// never propagated.
#[derive(Debug)]
pub struct LoginFailures {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Default for LoginFailures {
    fn default() -> LoginFailures {
        LoginFailures::new(ThrottleConfig::default())
    }
}

/// The outcome of one login attempt that reached the authenticator, as a
/// protocol session reports it to its throttle layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The user name the client gave (never the password or a digest).
    pub user: String,
    /// Whether the credentials were accepted.
    pub success: bool,
}

fn keys(ip: Option<IpAddr>, user: Option<&str>) -> impl Iterator<Item = Key> {
    ip.map(Key::Ip)
        .into_iter()
        .chain(user.map(|u| Key::User(u.to_lowercase())))
}

impl LoginFailures {
    /// An empty table.
    pub fn new(config: ThrottleConfig) -> LoginFailures {
        LoginFailures {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration the table was made with.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // The map is always consistent between statements: a panic while
        // it was held leaves nothing half-done worth refusing service for.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long an attempt from `ip` for `user` must wait before it is
    /// checked: the longer of the two keys' delays (zero when neither has
    /// recent failures). Either may be `None` when unknown (a SASL exchange
    /// names its user only inside the credentials).
    pub fn delay_for(&self, ip: Option<IpAddr>, user: Option<&str>) -> Duration {
        let map = self.lock();
        let now = Instant::now();
        keys(ip, user)
            .filter_map(|k| map.get(&k).copied())
            .filter(|e| now.duration_since(e.last) < self.config.forget_after)
            .map(|e| self.config.delay(e.failures))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Records a failed attempt from `ip` for `user` (each key known counts
    /// one more failure).
    pub fn failed(&self, ip: Option<IpAddr>, user: Option<&str>) {
        let mut map = self.lock();
        let now = Instant::now();
        if map.len() >= self.config.max_entries {
            let forget = self.config.forget_after;
            map.retain(|_, e| now.duration_since(e.last) < forget);
            if map.len() >= self.config.max_entries {
                // Still full of fresh entries: a flood. Starting over
                // costs the flooder their own counters too.
                map.clear();
            }
        }
        for k in keys(ip, user) {
            let e = map.entry(k).or_insert(Entry {
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

    /// Records a successful login: the user's counter is cleared (the
    /// peer IP's is kept).
    pub fn succeeded(&self, user: &str) {
        self.lock().remove(&Key::User(user.to_lowercase()));
    }

    /// How many IPs and users are tracked now (at most
    /// [`ThrottleConfig::max_entries`]).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let t = LoginFailures::new(ThrottleConfig {
            base_delay: Duration::from_millis(10),
            ..ThrottleConfig::default()
        });
        let ip: Option<IpAddr> = "127.0.0.1".parse().ok();
        t.failed(ip, Some("bob"));
        t.failed(ip, Some("bob"));
        assert_eq!(t.delay_for(None, Some("bob")), Duration::from_millis(20));
        assert_eq!(t.delay_for(None, Some("eve")), Duration::ZERO);
        t.succeeded("bob");
        assert_eq!(t.delay_for(None, Some("bob")), Duration::ZERO);
        assert_eq!(t.delay_for(ip, None), Duration::from_millis(20));
        assert_eq!(t.delay_for(ip, Some("bob")), Duration::from_millis(20));
    }

    #[test]
    fn users_compare_case_insensitively_and_ips_apart() {
        let t = LoginFailures::new(ThrottleConfig {
            base_delay: Duration::from_millis(10),
            ..ThrottleConfig::default()
        });
        t.failed("10.0.0.1".parse().ok(), Some("Bob@Example.COM"));
        assert_eq!(
            t.delay_for(None, Some("bob@example.com")),
            Duration::from_millis(10)
        );
        assert_eq!(t.delay_for("10.0.0.2".parse().ok(), None), Duration::ZERO);
        t.succeeded("BOB@example.com");
        assert_eq!(t.delay_for(None, Some("bob@example.com")), Duration::ZERO);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = LoginFailures::new(ThrottleConfig {
            base_delay: Duration::from_millis(10),
            forget_after: Duration::ZERO,
            ..ThrottleConfig::default()
        });
        t.failed(None, Some("bob"));
        t.failed(None, Some("bob"));
        // With no quiet period at all, every failure is already old.
        assert_eq!(t.delay_for(None, Some("bob")), Duration::ZERO);
    }

    #[test]
    fn table_is_bounded() {
        let t = LoginFailures::new(ThrottleConfig {
            max_entries: 10,
            ..ThrottleConfig::default()
        });
        for i in 0..100 {
            t.failed(None, Some(&format!("u{i}")));
        }
        assert!(t.len() <= 10);
        assert!(!t.is_empty());
    }
}
