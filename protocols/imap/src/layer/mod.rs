//! Tower layers for the IMAP session, each in the folder layout tower uses
//! (`mod.rs` with the service, `layer.rs`, `future.rs`, and `error.rs`
//! where the middleware has errors of its own).
//!
//! | layer | what it does |
//! |---|---|
//! | [`trace::TraceLayer`] | one `tracing` event per command: name, tag, session state, outcome, duration; never arguments |
//! | [`timeout::CommandTimeoutLayer`] | fails a command that runs too long ([`timeout::Elapsed`]; the driver says `BYE`) |
//! | [`throttle::LoginThrottleLayer`] | delays LOGIN/AUTHENTICATE exponentially after failures, per peer IP and per user |
//! | [`metrics::MetricsLayer`] | counts commands by name and outcome, their latency, connections and failed logins into a shared [`mailroom_core::metrics::Metrics`] (Prometheus text) |
//!
//! [`crate::ImapServer::new`] stacks them all from [`crate::ImapConfig`]
//! but the metrics layer, which needs the integrator's registry;
//! [`crate::ImapServer::with_stack`] lets an integrator build their own
//! stack per connection (leaving any of these out, adding their own):
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_imap::layer::metrics::{Metrics, MetricsLayer};
//! use mailroom_imap::layer::trace::TraceLayer;
//! use mailroom_imap::layer::throttle::LoginThrottleLayer;
//! use tower::ServiceBuilder;
//!
//! # fn demo(server: mailroom_imap::ImapServer, metrics: Arc<Metrics>) -> mailroom_imap::ImapServer {
//! let throttle = LoginThrottleLayer::new(Default::default());
//! let metrics = MetricsLayer::new(metrics);
//! server.with_stack(move |conn, session| {
//!     ServiceBuilder::new()
//!         .layer(metrics.clone())
//!         .layer(TraceLayer::new())
//!         .layer(throttle.for_peer(conn.peer.map(|p| p.ip())))
//!         .service(session)
//! })
//! # }
//! ```

pub mod metrics;
pub mod throttle;
pub mod timeout;
pub mod trace;
