//! Tower layers for the POP3 session, each in the folder layout tower uses
//! (`mod.rs` with the service and its docs, `layer.rs`, `future.rs`).
//!
//! | layer | what it does |
//! |---|---|
//! | [`throttle::LoginThrottleLayer`] | delays PASS, AUTH and APOP exponentially after failures, per peer IP and per user, in a table IMAP can share |
//! | [`metrics::MetricsLayer`] | counts commands by name and outcome, their latency, connections and failed logins into a shared [`mailroom_core::metrics::Metrics`] (Prometheus text) |
//!
//! [`crate::Pop3Server::serve`] puts the throttle right around every
//! [`crate::Session`] (configured by [`crate::Pop3Config::login_throttle`],
//! or sharing a table given to [`crate::Pop3Server::with_login_failures`]);
//! the layer given to [`crate::Pop3Server::serve_with`] wraps that.
//! Tracing, timeouts and limits come from tower itself. Metrics are one
//! layer over a registry the integrator shares with the other protocols:
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_pop3::layer::metrics::{Metrics, MetricsLayer};
//! use tower::ServiceBuilder;
//! # use mailroom_pop3::{Pop3Server, TlsMode};
//!
//! # async fn run(pop3: Pop3Server, tcp: tokio::net::TcpListener) -> Result<(), mailroom_pop3::Pop3Error> {
//! let metrics = Arc::new(Metrics::new());
//! let layers = ServiceBuilder::new()
//!     .layer(MetricsLayer::new(metrics.clone()))
//!     .timeout(std::time::Duration::from_secs(60))
//!     .map_err(tower::BoxError::from);
//! pop3.serve_with(tcp, TlsMode::Plain, layers, async {}).await?;
//! print!("{}", metrics.render_prometheus());
//! # Ok(())
//! # }
//! ```

pub mod metrics;
pub mod throttle;
