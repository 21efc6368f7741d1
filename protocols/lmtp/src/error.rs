//! The crate's error type.

/// Errors the LMTP server reports to the integrator.
///
/// Protocol mistakes of a client are never errors here: they become 5xx
/// replies and the connection goes on. These variants are what stops a
/// listener or a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmtpError {
    /// Reading from or writing to the connection, or accepting, failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The session service (or a layer around it) failed; the connection is closed.
    #[error("session service failed: {0}")]
    Service(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The session was used after it ended (local misuse).
    #[error("session already closed")]
    SessionClosed,
}
