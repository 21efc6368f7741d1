//! # mailroom-imap
//!
//! IMAP4rev1 (RFC 3501) with the extensions modern clients rely on, as a
//! tower service over any [`mailroom_core::Storage`].
//!
//! (Crate documentation with a runnable example is being written.)

pub mod command;
pub mod layer;
pub mod parser;
pub mod response;
pub mod server;
pub mod session;
pub mod utf7;

pub use server::{BoxSession, ImapConfig, ImapServer, TlsMode};
pub use session::{Action, ConnectionInfo, IdleHandle, LoginAttempt, Reply, Session, SessionState};
