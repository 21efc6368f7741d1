//! Metrics: every command counted by name and outcome, with its latency,
//! into a shared [`Metrics`] registry from `mailroom-core`; connections
//! opened and open; failed logins.
//!
//! - The command label is [`Command::name`](crate::command::Command::name)
//!   (`UID FETCH` counts as `FETCH`), looked up in the registry's fixed list:
//!   no label ever comes from the client's bytes, and arguments (mailbox
//!   names, user names, search strings) are never recorded.
//! - The outcome is the kind of the tagged completion: `OK`, `NO`, `BAD`;
//!   `BYE` when the command ended the connection without one (LOGOUT is
//!   `OK`: its `BYE` is untagged and its completion is `OK`; a failed or
//!   timed-out service is `BYE`, which is what the driver then says).
//! - The latency runs from the call to the tagged completion. For a reply
//!   whose completion is streamed after the data (FETCH), that is when the
//!   stream yields the completion, so it includes writing the data. IDLE is
//!   counted `OK` when idling starts (its duration is the client's choice,
//!   not a latency); the `+` of a SASL exchange is not a command of its own
//!   (the AUTHENTICATE call that completes is counted).
//! - A command the codec rejects before it reaches the session stack (a
//!   syntax error's `BAD`) is not seen by any layer, so it is not counted.
//! - Each service the layer builds counts as one connection, open until
//!   the service (every clone of it) is dropped. Apply the layer once per
//!   connection, outermost, so the latency includes what the other layers
//!   add (the login throttle's delay).
//!
//! With [`ImapServer::with_stack`](crate::ImapServer::with_stack) the layer
//! is one line of the stack:
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::metrics::Metrics;
//! use mailroom_imap::layer::metrics::MetricsLayer;
//! use mailroom_imap::layer::trace::TraceLayer;
//! use tower::ServiceBuilder;
//!
//! # fn demo(server: mailroom_imap::ImapServer) -> mailroom_imap::ImapServer {
//! let metrics = Arc::new(Metrics::new());
//! let layer = MetricsLayer::new(metrics.clone());
//! let server = server.with_stack(move |_conn, session| {
//!     ServiceBuilder::new()
//!         .layer(layer.clone())
//!         .layer(TraceLayer::new())
//!         .service(session)
//! });
//! // Serve `metrics.render_prometheus()` to the scraper.
//! # server
//! # }
//! ```

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::MetricsLayer;
pub use mailroom_core::metrics::Metrics;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use mailroom_core::metrics::{ConnectionGuard, Protocol};

use crate::command::Request;
use crate::session::Reply;

/// Records every command that passes through it (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    connection: Arc<ConnectionGuard>,
}

impl<S> Metered<S> {
    /// Wraps a service; the connection stays counted as open until every
    /// clone of the returned service is dropped.
    pub(crate) fn new(inner: S, connection: Arc<ConnectionGuard>) -> Metered<S> {
        Metered { inner, connection }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The registry it records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.connection.metrics()
    }
}

impl<S> tower::Service<Request> for Metered<S>
where
    S: tower::Service<Request, Response = Reply>,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let pending = Pending {
            metrics: self.connection.metrics().clone(),
            name: request.command.name(),
            start: Instant::now(),
            done: false,
        };
        ResponseFuture::new(self.inner.call(request), pending)
    }
}

/// A command on its way: recorded once, by [`Pending::finish`], or as
/// `BYE` if it is dropped unfinished (the connection went away).
#[derive(Debug)]
struct Pending {
    metrics: Arc<Metrics>,
    name: &'static str,
    start: Instant,
    done: bool,
}

impl Pending {
    fn finish(mut self, status: &str) {
        self.record(status);
    }

    /// Not a command of its own (a SASL continuation): record nothing.
    fn cancel(mut self) {
        self.done = true;
    }

    fn login_failed(&self) {
        self.metrics.login_failed(Protocol::Imap);
    }

    fn record(&mut self, status: &str) {
        if !self.done {
            self.done = true;
            self.metrics
                .record_command(Protocol::Imap, self.name, status, self.start.elapsed());
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.record("BYE");
    }
}
