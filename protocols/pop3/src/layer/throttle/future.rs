use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::codec::Reply;

type Boxed<E> = Pin<Box<dyn Future<Output = Result<Reply, E>> + Send>>;

/// The future of a [`LoginThrottle`](super::LoginThrottle) call.
pub struct ResponseFuture<E> {
    inner: Boxed<E>,
}

impl<E> std::fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<E> ResponseFuture<E> {
    pub(super) fn new(inner: Boxed<E>) -> ResponseFuture<E> {
        ResponseFuture { inner }
    }
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Reply, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
