//! Tracing of commands: one event per command with its name, tag, the
//! session state after it, the status of its completion and its duration.
//! Arguments (mailbox names, search strings, passwords) are never logged.

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::TraceLayer;

use std::task::{Context, Poll};

use crate::command::Request;
use crate::session::Reply;

/// Logs every command that passes through it (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    /// Wraps a service.
    pub fn new(inner: S) -> Trace<S> {
        Trace { inner }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> tower::Service<Request> for Trace<S>
where
    S: tower::Service<Request, Response = Reply>,
    S::Error: std::fmt::Display,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let name = request.command.name();
        let tag = request.tag.clone();
        tracing::debug!(command = name, tag = %tag, "command");
        ResponseFuture::new(self.inner.call(request), name, tag)
    }
}
