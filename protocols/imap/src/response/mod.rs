//! IMAP responses: types and the encoder.

pub mod types;
pub use types::*;
