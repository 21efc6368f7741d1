//! A connection limit shared by every listener of one protocol.
//!
//! The POP3 and LMTP crates bound the connections of each `serve` call;
//! mailroomd runs one POP3 server on two listeners (`[pop3]`, `[pop3s]`)
//! and one LMTP server on two (TCP and the Unix socket), and
//! `[limits] max_connections` bounds each protocol as a whole. This tower
//! layer does that: the protocol drivers call [`Layer::layer`] once per
//! accepted connection, so the layer takes a slot of a shared semaphore
//! there and the session holds it until the connection ends. A connection
//! that finds no free slot gets the protocol's "try again later" reply to
//! its first command (POP3 `-ERR [SYS/TEMP]`, LMTP `421 4.3.2`), which also
//! closes it.
//!
//! ```
//! use std::sync::Arc;
//! use mailroomd::limit::ConnectionLimitLayer;
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let layer = ConnectionLimitLayer::new(1, || "busy");
//! let echo = service_fn(|req: &'static str| async move { Ok::<_, std::convert::Infallible>(req) });
//! let mut first = layer.layer(echo);
//! let mut second = layer.layer(echo);
//! assert_eq!(first.ready().await.unwrap().call("hello").await.unwrap(), "hello");
//! assert_eq!(second.ready().await.unwrap().call("hello").await.unwrap(), "busy");
//! drop(first); // the connection ended: its slot is free again
//! let mut third = layer.layer(echo);
//! assert_eq!(third.ready().await.unwrap().call("hello").await.unwrap(), "hello");
//! # });
//! ```

use std::fmt;
use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

/// Builds [`ConnectionLimit`]s that share `max` slots. Cheap to clone; clones
/// share the slots.
#[derive(Clone)]
pub struct ConnectionLimitLayer<F> {
    slots: Arc<Semaphore>,
    refusal: F,
}

impl<F> ConnectionLimitLayer<F> {
    /// A limit of `max` connections; `refusal` makes the reply a connection
    /// over the limit gets (it must close the connection).
    pub fn new(max: usize, refusal: F) -> ConnectionLimitLayer<F> {
        ConnectionLimitLayer {
            slots: Arc::new(Semaphore::new(max)),
            refusal,
        }
    }

    /// Free slots right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

impl<F> fmt::Debug for ConnectionLimitLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLimitLayer")
            .field("available", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl<S, F: Clone> Layer<S> for ConnectionLimitLayer<F> {
    type Service = ConnectionLimit<S, F>;

    fn layer(&self, inner: S) -> ConnectionLimit<S, F> {
        let permit = self.slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            tracing::warn!("connection limit reached; refusing a connection");
        }
        ConnectionLimit {
            inner,
            permit,
            refusal: self.refusal.clone(),
        }
    }
}

/// One connection's session with its slot (or without one: then every
/// command is answered with the refusal).
pub struct ConnectionLimit<S, F> {
    inner: S,
    permit: Option<OwnedSemaphorePermit>,
    refusal: F,
}

impl<S: fmt::Debug, F> fmt::Debug for ConnectionLimit<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLimit")
            .field("inner", &self.inner)
            .field("admitted", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, F, Req> Service<Req> for ConnectionLimit<S, F>
where
    S: Service<Req>,
    F: Fn() -> S::Response,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if self.permit.is_some() {
            self.inner.poll_ready(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if self.permit.is_some() {
            Either::Right(self.inner.call(req))
        } else {
            Either::Left(std::future::ready(Ok((self.refusal)())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceExt, service_fn};

    fn echo() -> impl Service<u32, Response = u32, Error = std::convert::Infallible> + Clone {
        service_fn(|n: u32| async move { Ok(n) })
    }

    #[tokio::test]
    async fn slots_are_shared_and_returned() {
        let layer = ConnectionLimitLayer::new(2, || 0u32);
        let clone = layer.clone();
        let mut a = layer.layer(echo());
        let mut b = clone.layer(echo());
        assert_eq!(layer.available(), 0, "clones share the slots");
        let mut refused = layer.layer(echo());
        assert_eq!(a.ready().await.unwrap().call(7).await.unwrap(), 7);
        assert_eq!(b.ready().await.unwrap().call(8).await.unwrap(), 8);
        // every command of a refused connection gets the refusal
        for _ in 0..3 {
            assert_eq!(refused.ready().await.unwrap().call(9).await.unwrap(), 0);
        }
        drop(refused);
        assert_eq!(layer.available(), 0, "a refused connection held no slot");
        drop(a);
        assert_eq!(layer.available(), 1);
        let mut c = layer.layer(echo());
        assert_eq!(c.ready().await.unwrap().call(5).await.unwrap(), 5);
        drop((b, c));
        assert_eq!(layer.available(), 2);
    }
}
