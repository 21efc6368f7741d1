//! # mailroom-sync
//!
//! Replication for Mailroom (in progress).

pub mod error;
pub mod handshake;
mod io;
pub mod msgs;
pub mod primary;
pub mod replica;
pub mod wire;

pub use error::{Result, SyncError};
pub use handshake::Secret;
pub use primary::{Primary, PrimaryConfig, PrimaryConnection, PrimaryStats, Verdict};
pub use replica::{Replica, ReplicaConfig, ReplicaSession, ReplicaStats};
