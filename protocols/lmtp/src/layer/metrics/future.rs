use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use mailroom_core::metrics::{DeliveryResult, Metrics, OTHER, Protocol};

use crate::Response;

/// Which step of the protocol a call was, as far as metrics care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// `RCPT`: a refusal decides that recipient's fate.
    Rcpt,
    /// The message after `DATA`: one reply per accepted recipient.
    Message,
    /// Anything else.
    Other,
}

/// The future of a [`Metered`](super::Metered) call: records the command
/// when its response is ready.
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    metrics: Arc<Metrics>,
    name: &'static str,
    step: Step,
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
    pub(super) fn new(
        inner: F,
        metrics: Arc<Metrics>,
        name: &'static str,
        step: Step,
    ) -> ResponseFuture<F> {
        ResponseFuture {
            inner: Box::pin(inner),
            metrics,
            name,
            step,
            start: Instant::now(),
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = match self.inner.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(out) => out,
        };
        let status = match &out {
            Ok(response) => {
                self.count_recipients(response);
                response
                    .replies
                    .iter()
                    .map(|r| r.code)
                    .max()
                    .map_or(OTHER, class)
            }
            // The driver answers `421` and closes the connection.
            Err(_) => "4xx",
        };
        self.metrics
            .record_command(Protocol::Lmtp, self.name, status, self.start.elapsed());
        Poll::Ready(out)
    }
}

impl<F> ResponseFuture<F> {
    fn count_recipients(&self, response: &Response) {
        for reply in &response.replies {
            let result = match (self.step, reply.code / 100) {
                (Step::Message, 2) => DeliveryResult::Accepted,
                (Step::Rcpt | Step::Message, 4) => DeliveryResult::TempFailed,
                (Step::Rcpt | Step::Message, 5) => DeliveryResult::PermFailed,
                _ => continue,
            };
            self.metrics.delivery(result);
        }
    }
}

/// The reply class label of a reply code.
fn class(code: u16) -> &'static str {
    match code / 100 {
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => OTHER,
    }
}
