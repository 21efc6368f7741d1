use std::net::IpAddr;
use std::sync::Arc;

use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

use super::LoginThrottle;

/// Builds [`LoginThrottle`] services over one [`LoginFailures`] table. Make
/// one per server (or share one table with IMAP through
/// [`LoginThrottleLayer::with_failures`]) and call
/// [`LoginThrottleLayer::for_peer`] per connection.
///
/// ```
/// use std::sync::Arc;
/// use mailroom_core::throttle::LoginFailures;
/// use mailroom_pop3::layer::throttle::LoginThrottleLayer;
///
/// let shared = Arc::new(LoginFailures::default());
/// let pop3 = LoginThrottleLayer::with_failures(shared.clone());
/// let per_connection = pop3.for_peer("192.0.2.7".parse().ok());
/// assert!(Arc::ptr_eq(per_connection.failures().unwrap(), &shared));
/// assert!(LoginThrottleLayer::disabled().failures().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct LoginThrottleLayer {
    failures: Option<Arc<LoginFailures>>,
    peer: Option<IpAddr>,
}

impl LoginThrottleLayer {
    /// A throttle with a new failure table of its own.
    pub fn new(config: ThrottleConfig) -> LoginThrottleLayer {
        LoginThrottleLayer::with_failures(Arc::new(LoginFailures::new(config)))
    }

    /// A throttle over a table other servers may share (IMAP's throttle,
    /// another POP3 server): a guesser slowed down there is slowed down
    /// here too.
    pub fn with_failures(failures: Arc<LoginFailures>) -> LoginThrottleLayer {
        LoginThrottleLayer {
            failures: Some(failures),
            peer: None,
        }
    }

    /// A throttle that lets everything through untouched (what
    /// [`crate::Pop3Config::login_throttle`] `= None` gives).
    pub fn disabled() -> LoginThrottleLayer {
        LoginThrottleLayer {
            failures: None,
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

    /// The failure table, unless the throttle is disabled.
    pub fn failures(&self) -> Option<&Arc<LoginFailures>> {
        self.failures.as_ref()
    }
}

impl<S> tower::Layer<S> for LoginThrottleLayer {
    type Service = LoginThrottle<S>;

    fn layer(&self, inner: S) -> LoginThrottle<S> {
        LoginThrottle::new(inner, self.failures.clone(), self.peer)
    }
}
