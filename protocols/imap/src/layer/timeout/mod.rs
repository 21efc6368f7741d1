//! Timeouts: [`CommandTimeout`] bounds how long one command may run. The
//! RFC 3501 §5.4 autologout timer and the read and write timeouts are on
//! the connection's bytes, in the [`mailroom_server`] runtime
//! ([`mailroom_server::timeout`]).

mod error;
mod future;
mod layer;

pub use error::Elapsed;
pub use future::ResponseFuture;
pub use layer::CommandTimeoutLayer;

use std::task::{Context, Poll};
use std::time::Duration;

/// Fails a call with [`Elapsed`] when it takes longer than the timeout.
#[derive(Debug, Clone)]
pub struct CommandTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> CommandTimeout<S> {
    /// Wraps a service.
    pub fn new(inner: S, timeout: Duration) -> CommandTimeout<S> {
        CommandTimeout { inner, timeout }
    }
}

impl<S, R> tower::Service<R> for CommandTimeout<S>
where
    S: tower::Service<R>,
    S::Error: Into<tower::BoxError>,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[tokio::test]
    async fn slow_calls_fail_with_elapsed_and_fast_ones_pass() {
        let slow = tower::service_fn(|d: u64| async move {
            tokio::time::sleep(Duration::from_millis(d)).await;
            Ok::<u64, std::convert::Infallible>(d)
        });
        let mut svc = CommandTimeoutLayer::new(Duration::from_millis(50)).layer(slow);
        assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), 1);
        let err = svc.ready().await.unwrap().call(500).await.unwrap_err();
        assert!(err.downcast_ref::<Elapsed>().is_some(), "{err}");
    }
}
