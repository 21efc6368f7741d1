use std::net::IpAddr;
use std::sync::Arc;

use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

use super::LoginThrottle;

/// Builds [`LoginThrottle`] services over one [`LoginFailures`] table. Make
/// one per server (or share one table between servers with
/// [`LoginThrottleLayer::with_failures`]) and call
/// [`LoginThrottleLayer::for_peer`] per connection.
#[derive(Debug, Clone)]
pub struct LoginThrottleLayer {
    failures: Arc<LoginFailures>,
    peer: Option<IpAddr>,
}

impl LoginThrottleLayer {
    /// A throttle with a new failure table of its own.
    pub fn new(config: ThrottleConfig) -> LoginThrottleLayer {
        LoginThrottleLayer::with_failures(Arc::new(LoginFailures::new(config)))
    }

    /// A throttle over a table other servers may share (POP3's throttle,
    /// another IMAP listener): a guesser slowed down here is slowed down
    /// there too.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mailroom_core::throttle::LoginFailures;
    /// use mailroom_imap::layer::throttle::LoginThrottleLayer;
    ///
    /// let shared = Arc::new(LoginFailures::default());
    /// let imap = LoginThrottleLayer::with_failures(shared.clone());
    /// assert!(Arc::ptr_eq(imap.failures(), &shared));
    /// ```
    pub fn with_failures(failures: Arc<LoginFailures>) -> LoginThrottleLayer {
        LoginThrottleLayer {
            failures,
            peer: None,
        }
    }

    /// The same throttle (same table) for a connection from `peer`.
    pub fn for_peer(&self, peer: Option<IpAddr>) -> LoginThrottleLayer {
        LoginThrottleLayer {
            failures: self.failures.clone(),
            peer,
        }
    }

    /// The failure table.
    pub fn failures(&self) -> &Arc<LoginFailures> {
        &self.failures
    }
}

impl<S> tower::Layer<S> for LoginThrottleLayer {
    type Service = LoginThrottle<S>;

    fn layer(&self, inner: S) -> LoginThrottle<S> {
        LoginThrottle::new(inner, self.failures.clone(), self.peer)
    }
}
