//! A throttle on failed logins: after a failed LOGIN or AUTHENTICATE, the
//! next attempt from the same peer IP or for the same user waits
//! `base × 2^(failures−1)` (capped) before it is even checked, and the
//! failing answer itself is delayed by the same amount. The counters live
//! in a [`LoginFailures`] table from `mailroom-core` (bounded, per IP and per
//! user, forgotten after a quiet period; a success clears the user's
//! counter), which POP3's throttle can share so that a guesser cannot
//! switch protocols to escape it.

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::LoginThrottleLayer;
pub use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::command::{Command, Request};
use crate::session::Reply;

/// Delays login attempts after failures (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct LoginThrottle<S> {
    inner: S,
    failures: Arc<LoginFailures>,
    peer: Option<IpAddr>,
}

impl<S> LoginThrottle<S> {
    pub(crate) fn new(
        inner: S,
        failures: Arc<LoginFailures>,
        peer: Option<IpAddr>,
    ) -> LoginThrottle<S> {
        LoginThrottle {
            inner,
            failures,
            peer,
        }
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
        let user = match &request.command {
            Command::Login { username, .. } => Some(username.clone()),
            _ => None,
        };
        let failures = self.failures.clone();
        let peer = self.peer;
        ResponseFuture::new(Box::pin(async move {
            let before = failures.delay_for(peer, user.as_deref());
            if !before.is_zero() {
                tokio::time::sleep(before).await;
            }
            let reply = inner.call(request).await?;
            if let Some(attempt) = &reply.login {
                if attempt.success {
                    failures.succeeded(&attempt.user);
                } else {
                    failures.failed(peer, Some(&attempt.user));
                    let wait = failures.delay_for(peer, Some(&attempt.user));
                    tracing::info!(delay_ms = wait.as_millis() as u64, "failed login throttled");
                    tokio::time::sleep(wait).await;
                }
            }
            Ok(reply)
        }))
    }
}
