//! The failed-login throttle, a tower layer every protocol with logins
//! (IMAP, POP3) puts around its session: the tower shell written once,
//! the protocol saying only which commands are login attempts
//! ([`LoginCommands`]).
//!
//! Failures are counted per client address and per user in a
//! [`LoginFailures`] table (`mailroom-core`) that outlives connections and
//! can be shared by every protocol, so a guesser slowed down on one is
//! slowed down on all. A login attempt first waits for the delay earlier
//! failures earned, then runs; a failure adds to the counts and waits the
//! new delay before its reply goes out. Behind a PROXY load balancer the
//! address is the client's real one ([`ConnectionInfo::peer`](crate::ConnectionInfo)).
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::throttle::{LoginFailures, ThrottleConfig};
//! use mailroom_server::throttle::{LoginCommands, LoginThrottleLayer};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! /// Requests are `(user, password)`, replies whether the login worked.
//! #[derive(Debug, Clone, Default)]
//! struct Logins;
//! impl LoginCommands<(String, String), (String, bool)> for Logins {
//!     fn attempt(&mut self, request: &(String, String)) -> Option<(Option<String>, bool)> {
//!         Some((Some(request.0.clone()), true))
//!     }
//!     fn outcome(reply: &(String, bool)) -> Option<(&str, bool)> {
//!         Some((&reply.0, reply.1))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! let failures = Arc::new(LoginFailures::new(ThrottleConfig::default()));
//! let layer = LoginThrottleLayer::<Logins>::with_failures(failures.clone())
//!     .for_peer(Some("192.0.2.1".parse().unwrap()));
//! let check = service_fn(|(user, pw): (String, String)| async move {
//!     Ok::<_, std::convert::Infallible>((user, pw == "right"))
//! });
//! let mut svc = layer.layer(check);
//! let start = tokio::time::Instant::now();
//! let (_, ok) = svc.ready().await.unwrap().call(("u".into(), "wrong".into())).await.unwrap();
//! assert!(!ok);
//! assert!(start.elapsed() >= ThrottleConfig::default().base_delay, "the failure waited");
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

/// What a protocol tells the throttle about its requests and replies.
pub trait LoginCommands<Req, Resp>: Clone + Send + 'static {
    /// Whether `request` is a login attempt, seen before it runs (`&mut`:
    /// a protocol may remember a `USER` for the `PASS` that follows).
    /// `Some((user, wait))`: the user it names if known yet, and whether
    /// it waits for earlier failures first (the later lines of one SASL
    /// exchange do not wait again).
    fn attempt(&mut self, request: &Req) -> Option<(Option<String>, bool)>;

    /// The login a reply reports: the user and whether it succeeded.
    fn outcome(reply: &Resp) -> Option<(&str, bool)>;
}

/// Builds [`LoginThrottle`]s over one [`LoginFailures`] table (or none:
/// [`LoginThrottleLayer::disabled`]). Cheap to clone; clones share the table.
pub struct LoginThrottleLayer<C> {
    failures: Option<Arc<LoginFailures>>,
    peer: Option<IpAddr>,
    commands: C,
}

impl<C: Clone> Clone for LoginThrottleLayer<C> {
    fn clone(&self) -> LoginThrottleLayer<C> {
        LoginThrottleLayer {
            failures: self.failures.clone(),
            peer: self.peer,
            commands: self.commands.clone(),
        }
    }
}

impl<C> fmt::Debug for LoginThrottleLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottleLayer")
            .field("enabled", &self.failures.is_some())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<C: Default> LoginThrottleLayer<C> {
    /// A throttle with its own table.
    pub fn new(config: ThrottleConfig) -> LoginThrottleLayer<C> {
        LoginThrottleLayer::with_failures(Arc::new(LoginFailures::new(config)))
    }

    /// A throttle counting in `failures`, a table other layers (other
    /// protocols) may share.
    pub fn with_failures(failures: Arc<LoginFailures>) -> LoginThrottleLayer<C> {
        LoginThrottleLayer {
            failures: Some(failures),
            peer: None,
            commands: C::default(),
        }
    }

    /// A throttle that lets everything through at once.
    pub fn disabled() -> LoginThrottleLayer<C> {
        LoginThrottleLayer {
            failures: None,
            peer: None,
            commands: C::default(),
        }
    }
}

impl<C: Clone> LoginThrottleLayer<C> {
    /// The same layer for a connection from `peer` (its failures count
    /// against that address).
    pub fn for_peer(&self, peer: Option<IpAddr>) -> LoginThrottleLayer<C> {
        LoginThrottleLayer {
            failures: self.failures.clone(),
            peer,
            commands: self.commands.clone(),
        }
    }

    /// The table, unless the throttle is disabled.
    pub fn failures(&self) -> Option<&Arc<LoginFailures>> {
        self.failures.as_ref()
    }
}

impl<S, C: Clone> tower::Layer<S> for LoginThrottleLayer<C> {
    type Service = LoginThrottle<S, C>;

    fn layer(&self, inner: S) -> LoginThrottle<S, C> {
        LoginThrottle {
            inner,
            failures: self.failures.clone(),
            peer: self.peer,
            commands: self.commands.clone(),
        }
    }
}

/// A session behind the throttle (see the [module docs](self)).
#[derive(Clone)]
pub struct LoginThrottle<S, C> {
    inner: S,
    failures: Option<Arc<LoginFailures>>,
    peer: Option<IpAddr>,
    commands: C,
}

impl<S: fmt::Debug, C> fmt::Debug for LoginThrottle<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("inner", &self.inner)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S, C> LoginThrottle<S, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

impl<S, C, Req> tower::Service<Req> for LoginThrottle<S, C>
where
    S: tower::Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
    C: LoginCommands<Req, S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let attempt = self.commands.attempt(&request);
        let (Some(failures), Some((user, wait_first))) = (self.failures.clone(), attempt) else {
            return ResponseFuture(Box::pin(self.inner.call(request)));
        };
        // The ready service goes into the future; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let peer = self.peer;
        ResponseFuture(Box::pin(async move {
            if wait_first {
                sleep(failures.delay_for(peer, user.as_deref())).await;
            }
            let reply = inner.call(request).await?;
            if let Some((user, success)) = C::outcome(&reply) {
                if success {
                    failures.succeeded(user);
                } else {
                    failures.failed(peer, Some(user));
                    let wait = failures.delay_for(peer, Some(user));
                    tracing::info!(
                        delay_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "failed login throttled"
                    );
                    sleep(wait).await;
                }
            }
            Ok(reply)
        }))
    }
}

/// The future of a [`LoginThrottle`] call.
pub struct ResponseFuture<T, E>(BoxFuture<'static, Result<T, E>>);

impl<T, E> fmt::Debug for ResponseFuture<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<T, E> Future for ResponseFuture<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
