use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Sleep;

use super::Elapsed;

/// The future of a [`CommandTimeout`](super::CommandTimeout) call.
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    sleep: Pin<Box<Sleep>>,
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, timeout: Duration) -> ResponseFuture<F> {
        ResponseFuture {
            inner: Box::pin(inner),
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<tower::BoxError>,
{
    type Output = Result<T, tower::BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.inner.as_mut().poll(cx) {
            return Poll::Ready(out.map_err(Into::into));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Box::new(Elapsed::new()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
