//! # mailroom-sync
//!
//! Replication for Mailroom (work in progress): the wire format.

pub mod error;
pub mod msgs;
pub mod wire;

pub use error::{Result, SyncError};
