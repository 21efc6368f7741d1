use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{LoginThrottle, Table};

/// How the [`LoginThrottle`] behaves.
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
    /// The delay after `failures` failures.
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

/// Builds [`LoginThrottle`] services sharing one failure table. Make one
/// per server and call [`LoginThrottleLayer::for_peer`] per connection.
#[derive(Debug, Clone)]
pub struct LoginThrottleLayer {
    table: Arc<Table>,
    peer: Option<IpAddr>,
}

impl LoginThrottleLayer {
    /// A throttle with a new failure table.
    pub fn new(config: ThrottleConfig) -> LoginThrottleLayer {
        LoginThrottleLayer {
            table: Arc::new(Table::new(config)),
            peer: None,
        }
    }

    /// The same throttle (same table) for a connection from `peer`.
    pub fn for_peer(&self, peer: Option<IpAddr>) -> LoginThrottleLayer {
        LoginThrottleLayer {
            table: self.table.clone(),
            peer,
        }
    }
}

impl<S> tower::Layer<S> for LoginThrottleLayer {
    type Service = LoginThrottle<S>;

    fn layer(&self, inner: S) -> LoginThrottle<S> {
        LoginThrottle::new(inner, self.table.clone(), self.peer)
    }
}
