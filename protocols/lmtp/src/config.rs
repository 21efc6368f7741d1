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
    /// Connections served at once by a server and its clones, all
    /// listeners together; more get `421 4.3.2`.
    pub max_connections: usize,
    /// Connections from one client address (IPv6: one /64); more get
    /// `421 4.3.2`. Unix-socket connections count in the total only.
    pub max_connections_per_ip: usize,
    /// How long a connection may stay silent between commands (RFC 5321
    /// §4.5.3.2.7: 5 minutes).
    pub idle_timeout: Duration,
    /// How long a read may wait in the middle of a command or a message
    /// (RFC 5321 §4.5.3.2.5: 3 minutes per data block).
    pub read_timeout: Duration,
    /// How long a write may make no progress before the connection is
    /// dropped (the MTA stopped reading its replies).
    pub write_timeout: Duration,
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
            max_connections_per_ip: mailroom_server::DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(180),
            write_timeout: Duration::from_secs(60),
            max_bad_commands: 20,
            shutdown_grace: Duration::from_secs(30),
            recipient_delimiter: Some('+'),
            lookup_local_part: true,
        }
    }
}
