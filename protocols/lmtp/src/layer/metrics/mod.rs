//! Metrics: every command counted by name and reply class, with its
//! latency, and every recipient by what became of it, into a shared
//! [`Metrics`] registry from `mailroom-core`; connections opened and open.
//!
//! - The command label is the command's keyword from the registry's fixed
//!   list (`LHLO`, `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP`, `QUIT`), and
//!   `MESSAGE` for the message sent after `DATA`'s `354`. Anything else
//!   (`HELO`, `VRFY`, a line that is no command, bad syntax) is `other`:
//!   no label ever comes from the client's bytes, and no address is
//!   recorded.
//! - The outcome is the reply class (`2xx`, `3xx`, `4xx`, `5xx`). The
//!   message has one reply per recipient; its class is the highest among
//!   them (so one over-quota recipient makes it `4xx`). A failed service is
//!   `4xx`: the driver then answers `421`.
//! - `mailroom_lmtp_deliveries_total` counts recipients: `accepted` for a
//!   `2xx` after the message, `temp_failed` and `perm_failed` for a `4xx` or
//!   `5xx` at `RCPT` (an unknown user, a failed lookup) or after the
//!   message (over quota, too big).
//!
//! The layer is one argument to [`LmtpServer::serve_with`](crate::LmtpServer::serve_with):
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::metrics::Metrics;
//! use mailroom_lmtp::layer::metrics::MetricsLayer;
//! use mailroom_lmtp::{LmtpListener, LmtpServer};
//!
//! async fn run(lmtp: LmtpServer, metrics: Arc<Metrics>) -> Result<(), mailroom_lmtp::LmtpError> {
//!     let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     lmtp.serve_with(LmtpListener::Tcp(tcp), MetricsLayer::new(metrics), async {}).await
//! }
//! ```
//!
//! With other layers, put it outermost in a `tower::ServiceBuilder`, so the
//! latency includes what they add.

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::MetricsLayer;
pub use mailroom_core::metrics::Metrics;

use std::sync::Arc;
use std::task::{Context, Poll};

use mailroom_core::metrics::ConnectionGuard;

use crate::Response;
use crate::codec::Command;
use future::Step;

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

impl<S> tower::Service<Command> for Metered<S>
where
    S: tower::Service<Command, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, command: Command) -> Self::Future {
        let (name, step) = match &command {
            Command::Rcpt { .. } => ("RCPT", Step::Rcpt),
            Command::Message(_) => ("MESSAGE", Step::Message),
            other => (other.name(), Step::Other),
        };
        let metrics = self.connection.metrics().clone();
        ResponseFuture::new(self.inner.call(command), metrics, name, step)
    }
}
