//! Server configuration.

use std::time::Duration;

use mailroom_core::throttle::ThrottleConfig;

/// When USER/PASS and AUTH PLAIN/LOGIN (which send the password in the
/// clear) are accepted, like IMAP's `LOGINDISABLED` (RFC 2595 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlaintextAuth {
    /// On every connection, TLS or not.
    Always,
    /// On TLS connections and on connections from a loopback address
    /// (a local fetchmail), as Dovecot does by default.
    #[default]
    TlsOrLoopback,
    /// Only on TLS connections (after STLS or on an implicit-TLS port).
    TlsOnly,
}

/// How a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain text on connect (port 110); `STLS` is offered when the server
    /// has a TLS configuration.
    Plain,
    /// TLS from the first byte (port 995, RFC 8314).
    Implicit,
}

/// Settings of a [`crate::Pop3Server`].
///
/// ```
/// let mut config = mailroom_pop3::Pop3Config::default();
/// config.hostname = "mail.example.com".into();
/// config.max_connections = 500;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pop3Config {
    /// The name the server gives in its greeting.
    pub hostname: String,
    /// When plaintext passwords are accepted. APOP (offered only when the
    /// authenticator [supports it](mailroom_core::Authenticator::supports_apop))
    /// is accepted on every connection whatever this says: it never sends
    /// the password, only `MD5(timestamp ‖ password)` with a timestamp
    /// unique to the connection, so nothing seen on the wire can be replayed.
    /// An eavesdropper can still try to guess the password offline from the
    /// digest; an integrator who cares keeps `supports_apop` false or serves
    /// POP3 over TLS only.
    pub plaintext_auth: PlaintextAuth,
    /// Longest command line accepted, CRLF included; a longer line is
    /// answered `-ERR` and skipped. RFC 2449 asks for at least 255.
    pub max_line_length: usize,
    /// Connections served at once by a server and its clones, all
    /// listeners together; more are answered `-ERR [SYS/TEMP]` and closed
    /// (inside TLS on an implicit-TLS port).
    pub max_connections: usize,
    /// Connections from one client address (IPv6: one /64); more are
    /// refused like those over [`Pop3Config::max_connections`].
    pub max_connections_per_ip: usize,
    /// How long a connection may stay silent between commands (RFC 1939
    /// §3: at least 10 minutes).
    pub idle_timeout: Duration,
    /// How long a read may wait for the rest of a command.
    pub read_timeout: Duration,
    /// How long a write may make no progress: a client that stops reading
    /// a RETR is dropped after this, and its maildrop lock released.
    pub write_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// A fixed pause before answering a failed authentication, in the
    /// session itself, on top of the throttle's growing delay
    /// ([`Pop3Config::login_throttle`]). Default zero: the throttle already
    /// delays the first failure (1 s by default, as IMAP); set it for a
    /// fixed floor when the throttle is left out.
    pub auth_failure_delay: Duration,
    /// The failed-login throttle [`crate::Pop3Server::serve`] puts around
    /// every session ([`crate::layer::throttle`]): after failures from an
    /// IP or for a user, further attempts wait `base × 2^(n−1)` (capped),
    /// on every connection. `None` leaves it out (unless
    /// [`crate::Pop3Server::with_login_failures`] gives a table). Default:
    /// [`ThrottleConfig::default`], 1 s doubling up to 30 s, as IMAP.
    pub login_throttle: Option<ThrottleConfig>,
    /// Failed authentications after which the connection is closed.
    pub max_auth_failures: u32,
    /// Invalid or unknown commands after which the connection is closed.
    pub max_bad_commands: u32,
    /// After shutdown is signalled, how long open connections may take to finish.
    pub shutdown_grace: Duration,
    /// The `EXPIRE` capability argument (RFC 2449 §6.7): `None` advertises `NEVER`.
    pub expire_days: Option<u32>,
    /// The `LOGIN-DELAY` capability argument in seconds (RFC 2449 §6.5).
    pub login_delay_secs: u32,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            hostname: "localhost".into(),
            plaintext_auth: PlaintextAuth::default(),
            max_line_length: 1024,
            max_connections: 1024,
            max_connections_per_ip: mailroom_server::DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout: Duration::from_secs(600),
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(30),
            auth_failure_delay: Duration::ZERO,
            login_throttle: Some(ThrottleConfig::default()),
            max_auth_failures: 3,
            max_bad_commands: 20,
            shutdown_grace: Duration::from_secs(10),
            expire_days: None,
            login_delay_secs: 0,
        }
    }
}
