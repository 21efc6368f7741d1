//! # mailroom-imap
//!
//! IMAP4rev1 (RFC 3501) with the extensions modern clients rely on, as a
//! tower service over any [`mailroom_core::Storage`].
//!
//! (Crate documentation with a runnable example is being written.)

pub mod command;
pub mod parser;
pub mod response;
pub mod utf7;
