//! Tower layers for the LMTP session, each in the folder layout tower uses
//! (`mod.rs` with the service, `layer.rs`, `future.rs`).
//!
//! | layer | what it does |
//! |---|---|
//! | [`metrics::MetricsLayer`] | counts commands by name and reply class, their latency, connections, and what became of each recipient, into a shared [`mailroom_core::metrics::Metrics`] |
//!
//! Layers go around every session with [`crate::LmtpServer::serve_with`];
//! tower's own (`TimeoutLayer`, `RateLimitLayer`) fit the same slot.

pub mod metrics;
