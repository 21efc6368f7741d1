//! Tower layers for the POP3 session, each in the folder layout tower uses
//! (`mod.rs` with the service and its docs, `layer.rs`, `future.rs`).
//!
//! | layer | what it does |
//! |---|---|
//! | [`throttle::LoginThrottleLayer`] | delays PASS, AUTH and APOP exponentially after failures, per peer IP and per user, in a table IMAP can share |
//!
//! [`crate::Pop3Server::serve`] puts the throttle right around every
//! [`crate::Session`] (configured by [`crate::Pop3Config::login_throttle`],
//! or sharing a table given to [`crate::Pop3Server::with_login_failures`]);
//! the layer given to [`crate::Pop3Server::serve_with`] wraps that.
//! Tracing, timeouts and limits come from tower itself.

pub mod throttle;
