//! Server configuration.

use std::time::Duration;

/// Settings of a [`crate::LmtpServer`].
///
/// ```
/// let mut config = mailroom_lmtp::LmtpConfig::default();
/// config.hostname = "mx.example.com".into();
/// config.max_message_size = 25 * 1024 * 1024;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LmtpConfig {
    /// The name in the greeting, the LHLO reply and `Received:` headers.
    pub hostname: String,
    /// The largest message accepted, in bytes (advertised as `SIZE`); a
    /// larger one is answered `552 5.3.4` for every recipient.
    pub max_message_size: usize,
    /// Recipients accepted in one transaction; more get `452 4.5.3`.
    pub max_recipients: usize,
    /// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4 asks for at least 512).
    pub max_line_length: usize,
    /// Connections served at once by one `serve` call; more get `421 4.3.2`.
    pub max_connections: usize,
    /// How long a connection may stay silent (RFC 5321 §4.5.3.2.7: 5 minutes).
    pub idle_timeout: Duration,
    /// Invalid or unknown commands after which the connection is closed.
    pub max_bad_commands: u32,
    /// After shutdown is signalled, how long open connections may take to finish.
    pub shutdown_grace: Duration,
    /// The separator of plus-addressing (`alice+lists@x`); `None` disables it.
    pub recipient_delimiter: Option<char>,
    /// When `user@domain` is not known to the authenticator, also try `user`.
    pub lookup_local_part: bool,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            hostname: "localhost".into(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line_length: 4096,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            max_bad_commands: 20,
            shutdown_grace: Duration::from_secs(30),
            recipient_delimiter: Some('+'),
            lookup_local_part: true,
        }
    }
}
