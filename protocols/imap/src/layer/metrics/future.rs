use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use crate::response::{Response, StatusKind};
use crate::session::{Action, Reply};

use super::Pending;

/// The future of a [`Metered`](super::Metered) call: records the command
/// when its reply is complete (or hands the recording to the reply's
/// streamed tail, which carries the tagged completion).
pub struct ResponseFuture<F> {
    inner: Pin<Box<F>>,
    pending: Option<Pending>,
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, pending: Pending) -> ResponseFuture<F> {
        ResponseFuture {
            inner: Box::pin(inner),
            pending: Some(pending),
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
        let Some(pending) = self.pending.take() else {
            return Poll::Ready(out);
        };
        match out {
            Ok(mut reply) => {
                if reply.login.as_ref().is_some_and(|l| !l.success) {
                    pending.login_failed();
                }
                match outcome(&reply) {
                    Outcome::Done(status) => pending.finish(status),
                    Outcome::InTail => {
                        if let Some(tail) = reply.tail.take() {
                            reply.tail = Some(Box::pin(Tail {
                                inner: tail,
                                pending: Some(pending),
                            }));
                        }
                    }
                    // AUTHENTICATE's `+`: the call with the client's
                    // answer is the one counted.
                    Outcome::Continues => pending.cancel(),
                }
                Poll::Ready(Ok(reply))
            }
            Err(e) => {
                // The driver ends the connection with `* BYE`.
                pending.finish("BYE");
                Poll::Ready(Err(e))
            }
        }
    }
}

enum Outcome {
    Done(&'static str),
    InTail,
    Continues,
}

fn outcome(reply: &Reply) -> Outcome {
    if let Some(status) = reply.completion() {
        return Outcome::Done(status_name(status.kind));
    }
    if reply.tail.is_some() {
        return Outcome::InTail;
    }
    if untagged_bye(&reply.responses) {
        return Outcome::Done("BYE");
    }
    match reply.action {
        // IDLE's completion is written by the driver when the client says
        // DONE; IDLE is counted when it starts.
        Action::Idle(_) => Outcome::Done("OK"),
        Action::SaslContinuation => Outcome::Continues,
        _ => Outcome::Done(mailroom_core::metrics::OTHER),
    }
}

fn status_name(kind: StatusKind) -> &'static str {
    match kind {
        StatusKind::Ok => "OK",
        StatusKind::No => "NO",
        StatusKind::Bad => "BAD",
        StatusKind::Bye => "BYE",
        StatusKind::PreAuth => mailroom_core::metrics::OTHER,
    }
}

fn untagged_bye(responses: &[Response]) -> bool {
    responses
        .iter()
        .any(|r| matches!(r, Response::Status(s) if s.tag.is_none() && s.kind == StatusKind::Bye))
}

/// A streamed tail that records the command when its tagged completion
/// passes (or as `BYE` if the stream is dropped before that: the
/// connection ended mid-reply).
struct Tail<S> {
    inner: S,
    pending: Option<Pending>,
}

impl<S> Stream for Tail<S>
where
    S: Stream<Item = Response> + Unpin,
{
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Response>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(item) = &next {
            let status = match item {
                Some(Response::Status(s)) if s.tag.is_some() => Some(status_name(s.kind)),
                Some(_) => None,
                None => Some(mailroom_core::metrics::OTHER),
            };
            if let Some(status) = status
                && let Some(pending) = self.pending.take()
            {
                pending.finish(status);
            }
        }
        next
    }
}
