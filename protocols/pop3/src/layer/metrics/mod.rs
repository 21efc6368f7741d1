//! Metrics: every command counted by name and outcome, with its latency,
//! into a shared [`Metrics`] registry from `mailroom-core`; connections
//! opened and open; failed logins.
//!
//! - The command label is the keyword from the registry's fixed list
//!   (`USER`, `PASS`, `APOP`, `AUTH`, `STAT`, `LIST`, `RETR`, ...). A
//!   keyword the server does not know, or a malformed line, is `other`:
//!   no label ever comes from the client's bytes, and no user name,
//!   password or message is recorded. The lines of an `AUTH` exchange
//!   count as one `AUTH`, when its outcome is known (the `+ ` challenges
//!   are not commands of their own).
//! - The outcome is `+OK` or `-ERR`; a failed service is `-ERR`, which is
//!   what the driver then says.
//! - The latency runs from the call to the reply; the message text of
//!   `RETR` and `TOP`, which the driver streams afterwards, is not in it.
//! - A failed `PASS`, `APOP` or `AUTH` (one the authenticator refused)
//!   counts in `mailroom_login_failures_total`.
//!
//! The layer is one argument to [`Pop3Server::serve_with`](crate::Pop3Server::serve_with):
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::metrics::Metrics;
//! use mailroom_pop3::layer::metrics::MetricsLayer;
//! use mailroom_pop3::{Pop3Server, TlsMode};
//!
//! async fn run(pop3: Pop3Server, metrics: Arc<Metrics>) -> Result<(), mailroom_pop3::Pop3Error> {
//!     let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     pop3.serve_with(tcp, TlsMode::Plain, MetricsLayer::new(metrics), async {}).await
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

use mailroom_core::metrics::{ConnectionGuard, OTHER};

use crate::codec::{Command, Reply};

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

/// The label of a command: its keyword for the commands POP3 defines,
/// [`OTHER`] for anything else (never the client's own word).
fn label(command: &Command) -> &'static str {
    match command {
        Command::Capa => "CAPA",
        Command::User(_) => "USER",
        Command::Pass(_) => "PASS",
        Command::Auth { .. } | Command::SaslResponse(_) => "AUTH",
        Command::Apop { .. } => "APOP",
        Command::Stls => "STLS",
        Command::Stat => "STAT",
        Command::List(_) => "LIST",
        Command::Retr(_) => "RETR",
        Command::Dele(_) => "DELE",
        Command::Noop => "NOOP",
        Command::Rset => "RSET",
        Command::Quit => "QUIT",
        Command::Top { .. } => "TOP",
        Command::Uidl(_) => "UIDL",
        _ => OTHER,
    }
}

impl<S> tower::Service<Command> for Metered<S>
where
    S: tower::Service<Command, Response = Reply>,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, command: Command) -> Self::Future {
        let name = label(&command);
        let metrics = self.connection.metrics().clone();
        ResponseFuture::new(self.inner.call(command), metrics, name)
    }
}

#[cfg(test)]
mod tests {
    use mailroom_core::metrics::POP3_COMMANDS;

    use super::*;

    #[test]
    fn every_label_is_in_the_registry_list_or_other() {
        for line in [
            &b"CAPA"[..],
            b"USER a",
            b"PASS b",
            b"AUTH PLAIN",
            b"APOP a 0123456789abcdef0123456789abcdef",
            b"STLS",
            b"STAT",
            b"LIST",
            b"RETR 1",
            b"DELE 1",
            b"NOOP",
            b"RSET",
            b"QUIT",
            b"TOP 1 2",
            b"UIDL",
        ] {
            let name = label(&Command::parse(line));
            assert!(POP3_COMMANDS.contains(&name), "{name} for {line:?}");
        }
        for line in [&b"XYZZY"[..], b"RETR x", b"user"] {
            assert_eq!(label(&Command::parse(line)), OTHER, "{line:?}");
        }
    }
}
