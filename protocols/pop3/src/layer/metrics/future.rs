use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use mailroom_core::metrics::{Metrics, Protocol};

use crate::codec::{Reply, Status};

/// The future of a [`Metered`](super::Metered) call: records the command
/// when its reply is ready.
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    metrics: Arc<Metrics>,
    name: &'static str,
    start: Instant,
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, metrics: Arc<Metrics>, name: &'static str) -> ResponseFuture<F> {
        ResponseFuture {
            inner: Box::pin(inner),
            metrics,
            name,
            start: Instant::now(),
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Reply, E>>,
{
    type Output = Result<Reply, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = match self.inner.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(out) => out,
        };
        let status = match &out {
            Ok(reply) => {
                if reply.login.as_ref().is_some_and(|l| !l.success) {
                    self.metrics.login_failed(Protocol::Pop3);
                }
                match reply.status {
                    Status::Ok => Some("+OK"),
                    Status::Err => Some("-ERR"),
                    // A SASL challenge: the exchange is counted once, when
                    // its last line is answered.
                    Status::Continue => None,
                }
            }
            // The driver answers `-ERR [SYS/TEMP]` and closes.
            Err(_) => Some("-ERR"),
        };
        if let Some(status) = status {
            self.metrics
                .record_command(Protocol::Pop3, self.name, status, self.start.elapsed());
        }
        Poll::Ready(out)
    }
}
