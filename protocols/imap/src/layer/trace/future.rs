use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::response::StatusKind;
use crate::session::Reply;

/// The future of a [`Trace`](super::Trace)d call: logs when it completes.
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    name: &'static str,
    tag: String,
    start: Instant,
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("name", &self.name)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, name: &'static str, tag: String) -> ResponseFuture<F> {
        ResponseFuture {
            inner: Box::pin(inner),
            name,
            tag,
            start: Instant::now(),
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Reply, E>>,
    E: std::fmt::Display,
{
    type Output = Result<Reply, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = match self.inner.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(out) => out,
        };
        let elapsed_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &out {
            Ok(reply) => {
                let status = match reply.completion().map(|s| s.kind) {
                    Some(StatusKind::Ok) => "OK",
                    Some(StatusKind::No) => "NO",
                    Some(StatusKind::Bad) => "BAD",
                    Some(_) => "other",
                    None if reply.tail.is_some() => "streaming",
                    None => "continues",
                };
                tracing::info!(
                    command = self.name,
                    tag = %self.tag,
                    state = reply.state.as_str(),
                    status,
                    elapsed_us,
                    "command done"
                );
            }
            Err(e) => tracing::warn!(
                command = self.name,
                tag = %self.tag,
                error = %e,
                elapsed_us,
                "command failed"
            ),
        }
        Poll::Ready(out)
    }
}
