//! The crate's error type.

/// Errors the POP3 server reports to the integrator.
///
/// Protocol mistakes of a client are never errors here: they become `-ERR`
/// replies and the connection goes on. These variants are what stops a
/// listener or a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pop3Error {
    /// Implicit TLS (or STLS) was asked for but no `rustls::ServerConfig` was given
    /// (local misuse: call [`crate::Pop3Server::with_tls`] first).
    #[error("TLS requested but no TLS configuration was given")]
    TlsNotConfigured,
    /// The peer failed the TLS handshake.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    /// Reading from or writing to the connection, or accepting on the listener, failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The session service (or a layer around it) failed; the connection is closed.
    #[error("session service failed: {0}")]
    Service(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The session was used after the connection it served was closed (local misuse).
    #[error("session already closed")]
    SessionClosed,
}
