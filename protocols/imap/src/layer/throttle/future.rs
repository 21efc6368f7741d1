use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use crate::session::Reply;

/// The future of a [`LoginThrottle`](super::LoginThrottle) call.
pub struct ResponseFuture<E> {
    inner: BoxFuture<'static, Result<Reply, E>>,
}

impl<E> std::fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<E> ResponseFuture<E> {
    pub(super) fn new(inner: BoxFuture<'static, Result<Reply, E>>) -> ResponseFuture<E> {
        ResponseFuture { inner }
    }
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Reply, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
