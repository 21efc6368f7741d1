//! The TOML configuration file and the settings resolved from it.
//!
//! The file is read into [`ConfigFile`] (one serde struct per table, each with
//! `deny_unknown_fields` so a typo is an error that names the key), then
//! resolved into [`Config`]: defaults filled in, relative paths made absolute
//! against the config file's directory, listeners collected.
//!
//! Adding a TCP listener means: a field of type `Option<ListenerTable>` in
//! [`ConfigFile`], a variant in [`ListenerKind`] with its default address,
//! and a line in [`ConfigFile::resolve`]. `[lmtp]` has more keys
//! ([`LmtpTable`]): a TCP address, a Unix socket, or both; so do `[imap]`
//! and `[imaps]` ([`ImapTable`]: the IDLE keepalive). Adding a
//! settings table means a struct with `#[serde(deny_unknown_fields)]` and a
//! field in both [`ConfigFile`] and [`Config`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailroom_server::proxy::ProxyProtocol;
use serde::Deserialize;

/// The data directory used when the config does not name one.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The log level used when neither the config nor `RUST_LOG` names one.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// How long a verified credential stays in the authentication cache.
pub const DEFAULT_AUTH_CACHE_TTL_SECS: u64 = 60;
/// How long shutdown waits for sessions to finish before exiting anyway.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 5;
/// How often a running server retries reconstructing mailboxes found
/// corrupt (it checks for newly found ones every second).
pub const DEFAULT_RECONSTRUCT_INTERVAL_SECS: u64 = 60;
/// The mode of the LMTP Unix socket unless `[lmtp] socket_mode` says
/// otherwise: any local user may connect, as on loopback TCP (Dovecot's
/// default too); the MTA (Postfix's `lmtp` runs as `postfix`) needs it.
pub const DEFAULT_LMTP_SOCKET_MODE: u32 = 0o666;
/// The CRC store's directory inside the data directory.
pub const STORE_DIR: &str = "store";
/// The admin control socket inside the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// The lock file a serving mailroomd holds inside the data directory.
pub const SERVE_LOCK: &str = "mailroomd.lock";
/// The largest config file read (a config is a few hundred bytes).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The TOML error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// The file parsed but a value is not acceptable.
    #[error("invalid config file {path}: {reason}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
}

/// The config file as written (the serde view). See the crate README for
/// every key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where mailboxes, the users file and the generated certificate live.
    pub data_dir: Option<PathBuf>,
    /// A `tracing` filter (`info`, `debug`, `mailroom_imap=trace,info`).
    pub log_level: Option<String>,
    /// The mailbox store: a backend name (`store = "crc"`) or a `[store]` table.
    pub store: Option<StoreSpec>,
    /// Plain IMAP (with STARTTLS).
    pub imap: Option<ImapTable>,
    /// IMAP over implicit TLS.
    pub imaps: Option<ImapTable>,
    /// Plain POP3 (with STLS).
    pub pop3: Option<ListenerTable>,
    /// POP3 over implicit TLS.
    pub pop3s: Option<ListenerTable>,
    /// LMTP delivery: TCP, a Unix socket, or both.
    pub lmtp: Option<LmtpTable>,
    /// The certificate and key; absent means a generated self-signed pair.
    pub tls: Option<TlsTable>,
    /// Authentication.
    #[serde(default)]
    pub auth: AuthTable,
    /// Protocol limits.
    #[serde(default)]
    pub limits: LimitsTable,
    /// Process-level settings.
    #[serde(default)]
    pub shutdown: ShutdownTable,
    /// The Prometheus metrics endpoint; absent means no metrics at all.
    pub metrics: Option<MetricsTable>,
    /// Dynamic plugins (`[[plugin]]`, see [`crate::plugins`]).
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<crate::plugins::PluginTable>,
    /// Replication (`[replication]`, see [`crate::replication`]); absent
    /// means a single node.
    pub replication: Option<crate::replication::ReplicationTable>,
}

/// The mailbox store backends mailroomd can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The CRC on-disk store (`store = "crc"`, the default).
    #[default]
    Crc,
    /// Everything in memory, lost at exit (`store = "memory"`).
    Memory,
    /// PostgreSQL (`[store] backend = "postgres"` with a `url`): many
    /// mailroomd processes can serve one database.
    Postgres,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKind::Crc => f.write_str("crc"),
            StoreKind::Memory => f.write_str("memory"),
            StoreKind::Postgres => f.write_str("postgres"),
        }
    }
}

/// The `store` key: either the backend's name alone (`store = "crc"`) or a
/// `[store]` table with the backend and its options. (TOML cannot have both
/// a `store` string and a `[store]` table, so the table names the backend
/// with its own `backend` key.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `store = "crc"` or `store = "memory"`.
    Kind(StoreKind),
    /// `[store]` with its keys.
    Table(StoreTable),
}

impl<'de> Deserialize<'de> for StoreSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StoreSpec, D::Error> {
        struct SpecVisitor;
        impl<'de> serde::de::Visitor<'de> for SpecVisitor {
            type Value = StoreSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a store backend (\"crc\", \"memory\" or \"postgres\") or a [store] table",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StoreSpec, E> {
                StoreKind::deserialize(serde::de::value::StrDeserializer::<E>::new(v))
                    .map(StoreSpec::Kind)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<StoreSpec, A::Error> {
                StoreTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(StoreSpec::Table)
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

/// `[store]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTable {
    /// The backend; `crc` when left out.
    pub backend: Option<StoreKind>,
    /// CRC store: its directory; default `<data_dir>/store`.
    pub path: Option<PathBuf>,
    /// CRC store: fsync at every commit step (default true).
    pub durability: Option<bool>,
    /// CRC store: make APPENDs and deliveries durable through the store's
    /// delivery journal with group commit (default true; needs durability).
    pub journal: Option<bool>,
    /// CRC store: a Maildir path with `%u` for the user name, imported on
    /// the user's first login.
    pub maildir_import: Option<String>,
    /// CRC store: seconds between retries of a failed automatic reconstruct.
    pub reconstruct_interval_secs: Option<u64>,
    /// CRC store: how many mailboxes no session has selected any more stay
    /// loaded for a quick reopen (least recently released evicted first);
    /// 0 drops a mailbox's state when its last session leaves.
    pub open_mailboxes: Option<usize>,
    /// CRC store: seconds such a mailbox stays loaded at most.
    pub open_mailbox_grace_secs: Option<u64>,
    /// PostgreSQL store: the database (`postgresql://user@host/db`).
    pub url: Option<String>,
    /// PostgreSQL store: connections in the pool (default 16).
    pub pool_size: Option<usize>,
    /// PostgreSQL store: message records kept in this process's mailbox
    /// views, in all of them (default 1,000,000, about 100 MB; at most
    /// 100,000,000; 0 keeps none).
    pub view_records: Option<usize>,
}

/// A listener table such as `[imap]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTable {
    /// `IP:PORT` to listen on; port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// Expect the HAProxy PROXY protocol (v1 or v2) on every connection.
    pub proxy_protocol: Option<bool>,
    /// The load balancers allowed to send it: IP addresses or networks
    /// (`10.0.0.0/8`). Required with `proxy_protocol = true`.
    pub proxy_trusted: Option<Vec<String>>,
}

/// `[imap]` and `[imaps]`: the listener, and IMAP settings that apply to
/// both (set them in either table; in both, they must agree).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapTable {
    /// `IP:PORT` to listen on; port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// See [`ListenerTable::proxy_protocol`] (this listener only).
    pub proxy_protocol: Option<bool>,
    /// See [`ListenerTable::proxy_trusted`] (this listener only).
    pub proxy_trusted: Option<Vec<String>>,
    /// Seconds between the `* OK Still here` sent during IDLE; 0 = none.
    /// Default 120 (mailroom-imap's default, as Dovecot).
    pub idle_keepalive_secs: Option<u64>,
    /// Offer LITERAL- instead of LITERAL+ (RFC 7888): non-synchronizing
    /// literals only up to 4096 bytes. Default false.
    pub literal_minus: Option<bool>,
}

/// `[lmtp]`: a TCP address, a Unix socket, or both. An empty table means
/// TCP on the default address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmtpTable {
    /// `IP:PORT` to listen on; port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// See [`ListenerTable::proxy_protocol`] (the TCP listener only: the
    /// Unix socket is local).
    pub proxy_protocol: Option<bool>,
    /// See [`ListenerTable::proxy_trusted`].
    pub proxy_trusted: Option<Vec<String>>,
    /// A Unix socket path (Postfix's `lmtp:unix:PATH`).
    pub socket: Option<PathBuf>,
    /// The Unix socket's permission bits (TOML allows `0o660`); default `0o666`.
    pub socket_mode: Option<u32>,
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsTable {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthTable {
    /// Allow LOGIN and AUTHENTICATE PLAIN before TLS.
    pub allow_plaintext: Option<bool>,
    /// The users file; default `<data_dir>/users.toml`.
    pub users_file: Option<PathBuf>,
    /// Where users live: `"file"` (the users file, the default) or
    /// `"postgres"` (the `users` table of a PostgreSQL database).
    pub backend: Option<String>,
    /// `backend = "postgres"`: the database; default the `[store] url`.
    pub url: Option<String>,
    /// `backend = "postgres"` with its own `url`: connections in its pool
    /// (default 4).
    pub pool_size: Option<usize>,
    /// Seconds a verified credential is cached; 0 disables the cache.
    pub auth_cache_ttl_secs: Option<u64>,
    /// File with the HS256 key (at least 32 bytes, used as is) that signs
    /// the bearer tokens OAUTHBEARER and XOAUTH2 take; unset: no bearer
    /// mechanisms.
    pub token_key_file: Option<PathBuf>,
    /// The `aud` a token must carry (required with `token_key_file`).
    pub token_audience: Option<String>,
    /// The `iss` a token must carry, if set.
    pub token_issuer: Option<String>,
}

/// `[limits]`: each key left out keeps the protocol crate's default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsTable {
    /// Concurrent connections per protocol (all its listeners together).
    pub max_connections: Option<usize>,
    /// Concurrent connections per protocol from one client address (IPv6:
    /// one /64), the real address behind a PROXY load balancer.
    pub max_connections_per_ip: Option<usize>,
    /// Seconds an idle (non-IDLE) session may stay silent.
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a read may wait for the rest of a command already started.
    pub read_timeout_secs: Option<u64>,
    /// Seconds a write may make no progress (the client stopped reading)
    /// before the connection is dropped.
    pub write_timeout_secs: Option<u64>,
    /// Seconds one command may run before the connection is closed.
    pub command_timeout_secs: Option<u64>,
    /// The longest command line in bytes (literals excluded).
    pub max_line_length: Option<usize>,
    /// The largest literal (e.g. an APPENDed message) in bytes.
    pub max_literal_size: Option<u64>,
    /// Commands one connection may issue per second (IMAP, POP3 and LMTP);
    /// past it the next command waits for the next second. 0 = no limit.
    /// Default 500 (mailroom-imap's default).
    pub commands_per_second: Option<u32>,
}

/// `[metrics]`: the HTTP endpoint serving `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTable {
    /// `IP:PORT` to listen on; default [`crate::metrics::DEFAULT_LISTEN`]
    /// (loopback); port 0 picks a free port.
    pub listen: Option<SocketAddr>,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownTable {
    /// Seconds to wait for sessions after SIGTERM/SIGINT before exiting anyway.
    pub grace_secs: Option<u64>,
}

/// The kinds of listener mailroomd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// IMAP, plaintext with STARTTLS.
    Imap,
    /// IMAP over implicit TLS.
    Imaps,
    /// POP3, plaintext with STLS.
    Pop3,
    /// POP3 over implicit TLS.
    Pop3s,
    /// LMTP over TCP (no TLS: RFC 2033 keeps LMTP on the local host).
    Lmtp,
}

impl ListenerKind {
    /// The table name in the config file and the word in the startup line.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Imap => "imap",
            ListenerKind::Imaps => "imaps",
            ListenerKind::Pop3 => "pop3",
            ListenerKind::Pop3s => "pop3s",
            ListenerKind::Lmtp => "lmtp",
        }
    }

    /// The address used when the table has no `listen` key.
    pub fn default_listen(self) -> SocketAddr {
        let port = match self {
            ListenerKind::Imap => 1143,
            ListenerKind::Imaps => 1993,
            ListenerKind::Pop3 => 1110,
            ListenerKind::Pop3s => 1995,
            ListenerKind::Lmtp => 2424,
        };
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Whether the listener needs a TLS configuration.
    pub fn needs_tls(self) -> bool {
        match self {
            ListenerKind::Imap | ListenerKind::Imaps | ListenerKind::Pop3 | ListenerKind::Pop3s => {
                true
            }
            ListenerKind::Lmtp => false,
        }
    }
}

/// The PROXY protocol settings of a listener table: `None` when off.
/// `proxy_trusted` entries are IP networks (`10.0.0.0/8`) or addresses (a
/// `/32` or `/128`).
fn proxy_settings(
    kind: ListenerKind,
    enabled: Option<bool>,
    trusted: Option<Vec<String>>,
) -> Result<Option<ProxyProtocol>, String> {
    match (enabled.unwrap_or(false), trusted) {
        (false, None) => Ok(None),
        (false, Some(list)) if list.is_empty() => Ok(None),
        (false, Some(_)) => Err(format!(
            "[{kind}] proxy_trusted is set but proxy_protocol is not true"
        )),
        (true, None) => Err(format!(
            "[{kind}] proxy_protocol = true needs proxy_trusted, the load balancers' addresses \
             (a client that could send its own header could pose as any address)"
        )),
        (true, Some(list)) => {
            let mut nets = Vec::with_capacity(list.len());
            for entry in &list {
                let net = entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("[{kind}] proxy_trusted: {entry:?} is not an IP address or network")
                    })?;
                nets.push(net);
            }
            Ok(Some(ProxyProtocol::trusting(nets)))
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Operator-supplied PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed pair generated on first start into this directory
    /// (`cert.pem`, `key.pem`) and reused afterwards.
    SelfSigned {
        /// The directory (`<data_dir>/tls`).
        dir: PathBuf,
    },
}

/// The LMTP Unix socket, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    /// Its path (relative paths follow the config file).
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

/// Authentication settings, resolved.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Allow plaintext logins before TLS.
    pub allow_plaintext: bool,
    /// The users file (used with [`UsersBackend::File`]).
    pub users_file: PathBuf,
    /// Where users live.
    pub backend: UsersBackend,
    /// Lifetime of a cached verified credential; zero disables the cache.
    pub cache_ttl: Duration,
    /// Bearer tokens, when configured.
    pub tokens: Option<TokenSettings>,
}

/// `[auth] backend`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersBackend {
    /// The users file (`[auth] users_file`).
    File,
    /// The `users` table of a PostgreSQL database
    /// (`mailroom_store_postgres::PgUsers`).
    Postgres {
        /// The database (`[auth] url`, default `[store] url`).
        url: String,
        /// Its pool size (`[auth] pool_size`; with the store's database,
        /// unused: the store's pool is shared).
        pool_size: usize,
        /// Whether this is the store's own database (its pool is shared).
        same_as_store: bool,
    },
}

/// `[auth] pool_size` when left out.
pub const DEFAULT_AUTH_POOL_SIZE: usize = 4;

/// `[auth] token_*`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// The key file.
    pub key_file: PathBuf,
    /// The required audience.
    pub audience: String,
    /// The required issuer, if any.
    pub issuer: Option<String>,
}

/// The store settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The backend.
    pub kind: StoreKind,
    /// The CRC store's directory (`<data_dir>/store` unless configured);
    /// unused by the memory store.
    pub path: PathBuf,
    /// Fsync at every commit step (CRC store).
    pub durability: bool,
    /// Commit APPENDs and deliveries through the delivery journal (CRC
    /// store, `[store] journal`, default true).
    pub journal: bool,
    /// Where a user's Maildir is found for import on first login, `%u`
    /// standing for the user name (CRC store); `None`: no import.
    pub maildir_import: Option<String>,
    /// How long a running server waits before retrying an automatic
    /// reconstruct that failed (newly found corruption is looked for every second).
    pub reconstruct_interval: Duration,
    /// How many released mailboxes the CRC store keeps loaded (`[store]
    /// open_mailboxes`, default [`DEFAULT_OPEN_MAILBOXES`]).
    pub open_mailboxes: usize,
    /// How long it keeps them (`[store] open_mailbox_grace_secs`, default
    /// [`DEFAULT_OPEN_MAILBOX_GRACE_SECS`]).
    pub open_mailbox_grace: Duration,
    /// The PostgreSQL store's database URL (`[store] url`).
    pub url: Option<String>,
    /// The PostgreSQL store's pool size (`[store] pool_size`, default
    /// [`DEFAULT_POOL_SIZE`]).
    pub pool_size: usize,
    /// The PostgreSQL store's budget of message records in its mailbox
    /// views (`[store] view_records`, default
    /// [`mailroom_store_postgres::DEFAULT_VIEW_RECORDS`], at most
    /// [`mailroom_store_postgres::MAX_VIEW_RECORDS`]).
    pub view_records: usize,
}

/// `[store] pool_size` when left out.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// `[store] open_mailboxes` when left out.
pub const DEFAULT_OPEN_MAILBOXES: usize = 256;
/// `[store] open_mailbox_grace_secs` when left out.
pub const DEFAULT_OPEN_MAILBOX_GRACE_SECS: u64 = 10;

/// The resolved configuration everything else reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from; `None` for the embedded defaults (demo mode).
    pub source: Option<PathBuf>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The log filter, unless `RUST_LOG` is set.
    pub log_level: String,
    /// The store backend and its options.
    pub store: StoreSettings,
    /// The admin control socket of a running server (`<data_dir>/admin.sock`).
    pub admin_socket: PathBuf,
    /// The lock file a serving process holds (`<data_dir>/mailroomd.lock`).
    pub serve_lock: PathBuf,
    /// TCP listeners to run, in a fixed order.
    pub listeners: Vec<(ListenerKind, SocketAddr)>,
    /// The TCP listeners with the PROXY protocol on, and whom they trust.
    pub proxy: Vec<(ListenerKind, ProxyProtocol)>,
    /// The LMTP Unix socket, if `[lmtp] socket` is set.
    pub lmtp_socket: Option<UnixSocket>,
    /// The certificate source.
    pub tls: TlsSource,
    /// Authentication.
    pub auth: AuthSettings,
    /// Protocol limits.
    pub limits: LimitsTable,
    /// How long shutdown waits for sessions.
    pub shutdown_grace: Duration,
    /// Where the metrics endpoint listens, if `[metrics]` is present.
    pub metrics: Option<SocketAddr>,
    /// `[imap] idle_keepalive_secs` (or `[imaps]`), if set.
    pub imap_idle_keepalive: Option<Duration>,
    /// `[imap] literal_minus` (or `[imaps]`): LITERAL- instead of LITERAL+.
    pub imap_literal_minus: bool,
    /// The `[[plugin]]`s to load at start.
    pub plugins: Vec<crate::plugins::PluginSpec>,
    /// `[replication]`, if this node is one of a replication pair.
    pub replication: Option<crate::replication::ReplicationSettings>,
}

impl Config {
    /// Reads and resolves a config file. Relative paths in it are taken
    /// relative to the file's own directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_bounded(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        file.resolve(Some(path), base)
    }

    /// The embedded defaults used when no config file is given: data in
    /// `./data`, IMAP on 127.0.0.1:1143, IMAPS on :1993, POP3 on :1110,
    /// POP3S on :1995 and LMTP on :2424 (all loopback).
    pub fn embedded_defaults() -> Result<Config, ConfigError> {
        let file = ConfigFile {
            imap: Some(ImapTable::default()),
            imaps: Some(ImapTable::default()),
            pop3: Some(ListenerTable::default()),
            pop3s: Some(ListenerTable::default()),
            lmtp: Some(LmtpTable::default()),
            ..ConfigFile::default()
        };
        file.resolve(None, Path::new("."))
    }

    /// Whether this is the no-config demo mode.
    pub fn is_demo(&self) -> bool {
        self.source.is_none()
    }

    /// The PROXY protocol settings of a TCP listener, if it has them on.
    pub fn proxy_for(&self, kind: ListenerKind) -> Option<&ProxyProtocol> {
        self.proxy.iter().find(|(k, _)| *k == kind).map(|(_, p)| p)
    }

    /// The address of a listener, if it is enabled.
    pub fn listener(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }
}

impl ConfigFile {
    /// Fills in defaults and checks values. `source` names the file in
    /// errors; relative paths are joined to `base`.
    pub fn resolve(self, source: Option<&Path>, base: &Path) -> Result<Config, ConfigError> {
        let display_path = source.map_or_else(|| PathBuf::from("<defaults>"), Path::to_path_buf);
        let invalid = |reason: String| ConfigError::Invalid {
            path: display_path.clone(),
            reason,
        };
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = match self.data_dir {
            Some(d) if d.as_os_str().is_empty() => {
                return Err(invalid("data_dir must not be empty".into()));
            }
            Some(d) => absolute(d),
            None if source.is_some() => base.join(DEFAULT_DATA_DIR),
            None => PathBuf::from(DEFAULT_DATA_DIR),
        };

        let log_level = self
            .log_level
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            return Err(invalid(format!(
                "log_level {log_level:?} is not a valid filter: {e}"
            )));
        }

        let keepalives = [&self.imap, &self.imaps].map(|t| t.as_ref()?.idle_keepalive_secs);
        let imap_idle_keepalive = imap_setting("idle_keepalive_secs", keepalives)
            .map_err(invalid)?
            .map(Duration::from_secs);
        let literal_minus = [&self.imap, &self.imaps].map(|t| t.as_ref()?.literal_minus);
        let imap_literal_minus = imap_setting("literal_minus", literal_minus)
            .map_err(invalid)?
            .unwrap_or(false);
        let imap_listener = |t: Option<ImapTable>| {
            t.map(|t| ListenerTable {
                listen: t.listen,
                proxy_protocol: t.proxy_protocol,
                proxy_trusted: t.proxy_trusted,
            })
        };
        let mut listeners = Vec::new();
        let mut proxy = Vec::new();
        for (kind, table) in [
            (ListenerKind::Imap, imap_listener(self.imap)),
            (ListenerKind::Imaps, imap_listener(self.imaps)),
            (ListenerKind::Pop3, self.pop3),
            (ListenerKind::Pop3s, self.pop3s),
        ] {
            if let Some(t) = table {
                listeners.push((kind, t.listen.unwrap_or_else(|| kind.default_listen())));
                if let Some(p) =
                    proxy_settings(kind, t.proxy_protocol, t.proxy_trusted).map_err(&invalid)?
                {
                    proxy.push((kind, p));
                }
            }
        }
        let mut lmtp_socket = None;
        if let Some(t) = self.lmtp {
            let kind = ListenerKind::Lmtp;
            if let Some(p) =
                proxy_settings(kind, t.proxy_protocol, t.proxy_trusted.clone()).map_err(&invalid)?
            {
                if t.listen.is_none() && t.socket.is_some() {
                    return Err(invalid(
                        "[lmtp] proxy_protocol applies to the TCP listener; set `listen` too"
                            .into(),
                    ));
                }
                proxy.push((kind, p));
            }
            match (t.listen, &t.socket) {
                (Some(addr), _) => listeners.push((kind, addr)),
                (None, None) => listeners.push((kind, kind.default_listen())),
                (None, Some(_)) => {}
            }
            let mode = t.socket_mode.unwrap_or(DEFAULT_LMTP_SOCKET_MODE);
            if mode > 0o777 {
                return Err(invalid(format!(
                    "[lmtp] socket_mode {mode:#o} is not a permission mode (0o000 to 0o777)"
                )));
            }
            match t.socket {
                Some(p) if p.as_os_str().is_empty() => {
                    return Err(invalid("[lmtp] socket must not be empty".into()));
                }
                Some(p) => {
                    let path = absolute(p);
                    // sun_path holds 108 bytes with the terminating NUL.
                    if path.as_os_str().len() > 107 {
                        return Err(invalid(format!(
                            "[lmtp] socket {} is longer than a Unix socket path may be (107 bytes)",
                            path.display()
                        )));
                    }
                    lmtp_socket = Some(UnixSocket { path, mode });
                }
                None if t.socket_mode.is_some() => {
                    return Err(invalid(
                        "[lmtp] socket_mode needs a socket path (`socket = ...`)".into(),
                    ));
                }
                None => {}
            }
        }
        for (i, (kind, addr)) in listeners.iter().enumerate() {
            if addr.port() == 0 {
                continue;
            }
            if let Some((other, _)) = listeners[..i].iter().find(|(_, a)| a == addr) {
                return Err(invalid(format!(
                    "[{kind}] and [{other}] both listen on {addr}"
                )));
            }
        }

        let metrics = self
            .metrics
            .map(|t| t.listen.unwrap_or(crate::metrics::DEFAULT_LISTEN));
        if let Some(addr) = metrics.filter(|a| a.port() != 0)
            && let Some((kind, _)) = listeners.iter().find(|(_, a)| *a == addr)
        {
            return Err(invalid(format!(
                "[metrics] and [{kind}] both listen on {addr}"
            )));
        }

        let tls = match self.tls {
            Some(TlsTable { cert, key }) => TlsSource::Files {
                cert: absolute(cert),
                key: absolute(key),
            },
            None => TlsSource::SelfSigned {
                dir: data_dir.join("tls"),
            },
        };

        let users_file = match self.auth.users_file {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(invalid("[auth] users_file must not be empty".into()));
            }
            Some(p) => absolute(p),
            None => data_dir.join("users.toml"),
        };
        let tokens = match (self.auth.token_key_file, self.auth.token_audience) {
            (None, None) if self.auth.token_issuer.is_none() => None,
            (Some(key_file), Some(audience)) if !audience.is_empty() => Some(TokenSettings {
                key_file: absolute(key_file),
                audience,
                issuer: self.auth.token_issuer,
            }),
            _ => {
                return Err(invalid(
                    "[auth] token_key_file and a non-empty token_audience go together".into(),
                ));
            }
        };
        let store = resolve_store(self.store, &data_dir, &absolute).map_err(invalid)?;
        let backend = match self.auth.backend.as_deref() {
            None | Some("file") => {
                if let Some(key) = [
                    ("url", self.auth.url.is_some()),
                    ("pool_size", self.auth.pool_size.is_some()),
                ]
                .iter()
                .find_map(|(k, set)| set.then_some(k))
                {
                    return Err(invalid(format!(
                        "[auth] {key} applies only to backend = \"postgres\""
                    )));
                }
                UsersBackend::File
            }
            Some("postgres") => {
                if self.auth.pool_size == Some(0) {
                    return Err(invalid("[auth] pool_size must be at least 1".into()));
                }
                let (url, same_as_store) = match (self.auth.url, &store.url) {
                    (Some(u), _) if u.trim().is_empty() => {
                        return Err(invalid("[auth] url must not be empty".into()));
                    }
                    (Some(u), store_url) => {
                        let same = store_url.as_deref() == Some(u.as_str());
                        (u, same)
                    }
                    (None, Some(u)) if store.kind == StoreKind::Postgres => (u.clone(), true),
                    (None, _) => {
                        return Err(invalid(
                            "[auth] backend = \"postgres\" needs url (or [store] backend = \"postgres\", whose database it then shares)".into(),
                        ));
                    }
                };
                UsersBackend::Postgres {
                    url,
                    pool_size: self.auth.pool_size.unwrap_or(DEFAULT_AUTH_POOL_SIZE),
                    same_as_store: same_as_store && store.kind == StoreKind::Postgres,
                }
            }
            Some(other) => {
                return Err(invalid(format!(
                    "[auth] backend {other:?}: expected \"file\" or \"postgres\""
                )));
            }
        };
        let auth = AuthSettings {
            tokens,
            allow_plaintext: self.auth.allow_plaintext.unwrap_or(false),
            users_file,
            backend,
            cache_ttl: Duration::from_secs(
                self.auth
                    .auth_cache_ttl_secs
                    .unwrap_or(DEFAULT_AUTH_CACHE_TTL_SECS),
            ),
        };

        let limits = self.limits;
        if limits.max_connections == Some(0) {
            return Err(invalid(
                "[limits] max_connections must be at least 1".into(),
            ));
        }
        if limits.max_line_length.is_some_and(|n| n < 1024) {
            return Err(invalid(
                "[limits] max_line_length must be at least 1024 bytes".into(),
            ));
        }
        if limits.idle_timeout_secs == Some(0) {
            return Err(invalid(
                "[limits] idle_timeout_secs must be at least 1".into(),
            ));
        }
        if limits.command_timeout_secs == Some(0) {
            return Err(invalid(
                "[limits] command_timeout_secs must be at least 1".into(),
            ));
        }

        let admin_socket = data_dir.join(ADMIN_SOCKET);
        if lmtp_socket
            .as_ref()
            .is_some_and(|s: &UnixSocket| s.path == admin_socket)
        {
            return Err(invalid(format!(
                "[lmtp] socket {} is the admin socket's path",
                admin_socket.display()
            )));
        }

        let plugins = crate::plugins::resolve(self.plugins, absolute).map_err(&invalid)?;
        let replication = match self.replication {
            Some(t) => {
                let mut r = t.resolve(&data_dir, absolute).map_err(&invalid)?;
                r.users_file = auth.users_file.clone();
                if store.kind == StoreKind::Postgres && r.mode == crate::replication::Mode::Sync {
                    // Only the frontend holding the database's primary lock
                    // streams; an append through any other could not wait
                    // for the replica's confirmation.
                    return Err(invalid(
                        "[replication] mode = \"sync\" does not work with the postgres store: \
                         of the frontends sharing the database only one streams to the replica, \
                         so appends through the others could not wait for it; use mode = \"async\""
                            .into(),
                    ));
                }
                Some(r)
            }
            None => None,
        };
        if let Some(addr) = replication
            .as_ref()
            .and_then(|r| r.listen)
            .filter(|a| a.port() != 0)
        {
            if let Some((kind, _)) = listeners.iter().find(|(_, a)| *a == addr) {
                return Err(invalid(format!(
                    "[replication] and [{kind}] both listen on {addr}"
                )));
            }
            if metrics == Some(addr) {
                return Err(invalid(format!(
                    "[replication] and [metrics] both listen on {addr}"
                )));
            }
        }

        Ok(Config {
            source: source.map(Path::to_path_buf),
            data_dir: data_dir.clone(),
            log_level,
            store,
            admin_socket,
            serve_lock: data_dir.join(SERVE_LOCK),
            listeners,
            proxy,
            lmtp_socket,
            tls,
            auth,
            limits,
            shutdown_grace: Duration::from_secs(
                self.shutdown
                    .grace_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
            metrics,
            imap_idle_keepalive,
            imap_literal_minus,
            plugins,
            replication,
        })
    }
}

/// An IMAP setting that `[imap]` and `[imaps]` may both carry (it applies
/// to both listeners): the one given, or an error if they differ.
fn imap_setting<T: PartialEq + fmt::Display + Copy>(
    key: &str,
    [imap, imaps]: [Option<T>; 2],
) -> Result<Option<T>, String> {
    match (imap, imaps) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "[imap] {key} = {a} and [imaps] {key} = {b} differ; the setting applies to both listeners"
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// Resolves the `store` key (string or table) into [`StoreSettings`].
fn resolve_store(
    spec: Option<StoreSpec>,
    data_dir: &Path,
    absolute: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<StoreSettings, String> {
    let table = match spec {
        None => StoreTable::default(),
        Some(StoreSpec::Kind(kind)) => StoreTable {
            backend: Some(kind),
            ..StoreTable::default()
        },
        Some(StoreSpec::Table(t)) => t,
    };
    let kind = table.backend.unwrap_or_default();
    if kind == StoreKind::Postgres {
        match &table.url {
            None => return Err("[store] backend = \"postgres\" needs url".into()),
            Some(u) if u.trim().is_empty() => return Err("[store] url must not be empty".into()),
            Some(_) => {}
        }
        if table.pool_size == Some(0) {
            return Err("[store] pool_size must be at least 1".into());
        }
        if let Some(n) = table.view_records
            && n > mailroom_store_postgres::MAX_VIEW_RECORDS
        {
            return Err(format!(
                "[store] view_records {n} is over the most a store keeps, {}",
                mailroom_store_postgres::MAX_VIEW_RECORDS
            ));
        }
    } else {
        for (key, set) in [
            ("url", table.url.is_some()),
            ("pool_size", table.pool_size.is_some()),
            ("view_records", table.view_records.is_some()),
        ] {
            if set {
                return Err(format!(
                    "[store] {key} applies only to backend = \"postgres\", not to the {kind} store"
                ));
            }
        }
    }
    if kind != StoreKind::Crc {
        for (key, set) in [
            ("path", table.path.is_some()),
            ("durability", table.durability.is_some()),
            ("journal", table.journal.is_some()),
            ("maildir_import", table.maildir_import.is_some()),
            (
                "reconstruct_interval_secs",
                table.reconstruct_interval_secs.is_some(),
            ),
            ("open_mailboxes", table.open_mailboxes.is_some()),
            (
                "open_mailbox_grace_secs",
                table.open_mailbox_grace_secs.is_some(),
            ),
        ] {
            if set {
                return Err(format!(
                    "[store] {key} applies only to backend = \"crc\", not to the {kind} store"
                ));
            }
        }
    }
    let path = match table.path {
        Some(p) if p.as_os_str().is_empty() => {
            return Err("[store] path must not be empty".into());
        }
        Some(p) => absolute(p),
        None => data_dir.join(STORE_DIR),
    };
    let maildir_import = match table.maildir_import {
        None => None,
        Some(m) if !m.contains("%u") => {
            return Err(format!(
                "[store] maildir_import {m:?} must contain %u (the user name), \
                 or every user would import the same Maildir"
            ));
        }
        Some(m) => {
            let joined = absolute(PathBuf::from(&m));
            Some(joined.into_os_string().into_string().map_err(|_| {
                "[store] maildir_import is not valid UTF-8 once made absolute".to_owned()
            })?)
        }
    };
    let interval = table
        .reconstruct_interval_secs
        .unwrap_or(DEFAULT_RECONSTRUCT_INTERVAL_SECS);
    if interval == 0 {
        return Err("[store] reconstruct_interval_secs must be at least 1".into());
    }
    Ok(StoreSettings {
        kind,
        path,
        durability: table.durability.unwrap_or(true),
        journal: table.journal.unwrap_or(true),
        maildir_import,
        reconstruct_interval: Duration::from_secs(interval),
        open_mailboxes: table.open_mailboxes.unwrap_or(DEFAULT_OPEN_MAILBOXES),
        open_mailbox_grace: Duration::from_secs(
            table
                .open_mailbox_grace_secs
                .unwrap_or(DEFAULT_OPEN_MAILBOX_GRACE_SECS),
        ),
        url: table.url,
        pool_size: table.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
        view_records: table
            .view_records
            .unwrap_or(mailroom_store_postgres::DEFAULT_VIEW_RECORDS),
    })
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file larger than 1 MiB",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "t.toml".into(),
            source: Box::new(e),
        })?;
        file.resolve(Some(Path::new("/etc/m/t.toml")), Path::new("/etc/m"))
    }

    #[test]
    fn embedded_defaults() {
        let c = Config::embedded_defaults().unwrap();
        assert!(c.is_demo());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(
            c.listener(ListenerKind::Imap),
            Some("127.0.0.1:1143".parse().unwrap())
        );
        assert_eq!(
            c.listener(ListenerKind::Imaps),
            Some("127.0.0.1:1993".parse().unwrap())
        );
        assert_eq!(
            c.listener(ListenerKind::Pop3),
            Some("127.0.0.1:1110".parse().unwrap())
        );
        assert_eq!(
            c.listener(ListenerKind::Pop3s),
            Some("127.0.0.1:1995".parse().unwrap())
        );
        assert_eq!(
            c.listener(ListenerKind::Lmtp),
            Some("127.0.0.1:2424".parse().unwrap())
        );
        assert_eq!(c.lmtp_socket, None);
        assert!(!c.auth.allow_plaintext);
        assert_eq!(c.auth.users_file, PathBuf::from("./data/users.toml"));
        assert_eq!(c.auth.cache_ttl, Duration::from_secs(60));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.store.kind, StoreKind::Crc);
        assert_eq!(c.store.path, PathBuf::from("./data/store"));
        assert!(c.store.durability);
        assert_eq!(c.store.maildir_import, None);
        assert_eq!(c.admin_socket, PathBuf::from("./data/admin.sock"));
        assert_eq!(
            c.tls,
            TlsSource::SelfSigned {
                dir: "./data/tls".into()
            }
        );
    }

    #[test]
    fn imap_idle_keepalive() {
        assert_eq!(parse("[imap]\n").unwrap().imap_idle_keepalive, None);
        let c = parse("[imap]\nidle_keepalive_secs = 30\n[imaps]\n").unwrap();
        assert_eq!(c.imap_idle_keepalive, Some(Duration::from_secs(30)));
        assert_eq!(
            c.listener(ListenerKind::Imap),
            Some("127.0.0.1:1143".parse().unwrap())
        );
        let c = parse("[imaps]\nidle_keepalive_secs = 0\n").unwrap();
        assert_eq!(c.imap_idle_keepalive, Some(Duration::ZERO));
        let c = parse("[imap]\nidle_keepalive_secs = 9\n[imaps]\nidle_keepalive_secs = 9\n");
        assert_eq!(c.unwrap().imap_idle_keepalive, Some(Duration::from_secs(9)));
        let e = parse("[imap]\nidle_keepalive_secs = 9\n[imaps]\nidle_keepalive_secs = 8\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("differ"), "{e}");
        // LITERAL- the same way.
        assert!(!parse("[imap]\n").unwrap().imap_literal_minus);
        assert!(
            parse("[imaps]\nliteral_minus = true\n")
                .unwrap()
                .imap_literal_minus
        );
        let e = parse("[imap]\nliteral_minus = true\n[imaps]\nliteral_minus = false\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("literal_minus") && e.contains("differ"), "{e}");
        // Not a POP3 setting.
        let e = parse("[pop3]\nidle_keepalive_secs = 9\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_keepalive_secs"), "{e}");
    }

    #[test]
    fn absent_table_disables_listener() {
        let c = parse("[imaps]\n").unwrap();
        assert_eq!(c.listener(ListenerKind::Imap), None);
        assert_eq!(
            c.listener(ListenerKind::Imaps),
            Some("127.0.0.1:1993".parse().unwrap())
        );
        // relative paths follow the config file
        assert_eq!(c.data_dir, PathBuf::from("/etc/m/./data"));
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
            data_dir = "/var/lib/mailroom"
            log_level = "debug,mailroom_imap=trace"
            store = "memory"
            [imap]
            listen = "0.0.0.0:143"
            [imaps]
            listen = "[::1]:0"
            [tls]
            cert = "cert.pem"
            key = "/k/key.pem"
            [auth]
            allow_plaintext = true
            users_file = "users.toml"
            auth_cache_ttl_secs = 5
            [limits]
            max_connections = 100
            idle_timeout_secs = 1800
            command_timeout_secs = 600
            max_line_length = 65536
            max_literal_size = 52428800
            commands_per_second = 50
            [shutdown]
            grace_secs = 2
            "#,
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/mailroom"));
        assert_eq!(
            c.tls,
            TlsSource::Files {
                cert: "/etc/m/cert.pem".into(),
                key: "/k/key.pem".into()
            }
        );
        assert_eq!(c.auth.users_file, PathBuf::from("/etc/m/users.toml"));
        assert!(c.auth.allow_plaintext);
        assert_eq!(c.auth.cache_ttl, Duration::from_secs(5));
        assert_eq!(c.limits.max_connections, Some(100));
        assert_eq!(c.limits.max_literal_size, Some(52_428_800));
        assert_eq!(c.limits.commands_per_second, Some(50));
        assert_eq!(c.shutdown_grace, Duration::from_secs(2));
        assert_eq!(
            c.listeners,
            vec![
                (ListenerKind::Imap, "0.0.0.0:143".parse().unwrap()),
                (ListenerKind::Imaps, "[::1]:0".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn pop3_and_lmtp_tables() {
        let c = parse("[pop3]\n[pop3s]\nlisten = \"127.0.0.1:0\"\n[lmtp]\n").unwrap();
        assert_eq!(
            c.listeners,
            vec![
                (ListenerKind::Pop3, "127.0.0.1:1110".parse().unwrap()),
                (ListenerKind::Pop3s, "127.0.0.1:0".parse().unwrap()),
                (ListenerKind::Lmtp, "127.0.0.1:2424".parse().unwrap()),
            ]
        );
        assert_eq!(c.lmtp_socket, None);

        // socket only: no TCP listener
        let c = parse("[lmtp]\nsocket = \"run/lmtp.sock\"\n").unwrap();
        assert!(c.listeners.is_empty());
        assert_eq!(
            c.lmtp_socket,
            Some(UnixSocket {
                path: "/etc/m/run/lmtp.sock".into(),
                mode: 0o666
            })
        );

        // both, with a mode written in TOML's octal
        let c = parse(
            "[lmtp]\nlisten = \"127.0.0.1:24\"\nsocket = \"/srv/lmtp\"\nsocket_mode = 0o660\n",
        )
        .unwrap();
        assert_eq!(
            c.listener(ListenerKind::Lmtp),
            Some("127.0.0.1:24".parse().unwrap())
        );
        assert_eq!(c.lmtp_socket.unwrap().mode, 0o660);
        assert!(!ListenerKind::Lmtp.needs_tls() && ListenerKind::Pop3s.needs_tls());
    }

    #[test]
    fn bad_lmtp_tables() {
        for (text, needle) in [
            ("[lmtp]\nsocket_mode = 0o600\n", "needs a socket path"),
            (
                "[lmtp]\nsocket = \"/s\"\nsocket_mode = 0o1777\n",
                "socket_mode",
            ),
            ("[lmtp]\nsocket = \"\"\n", "must not be empty"),
            ("[lmtp]\nport = 24\n", "unknown field `port`"),
            (
                "data_dir = \"/d\"\n[lmtp]\nsocket = \"/d/admin.sock\"\n",
                "admin socket",
            ),
            (
                "[pop3]\nlisten = \"127.0.0.1:7\"\n[lmtp]\nlisten = \"127.0.0.1:7\"\n",
                "both listen",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let long = format!("[lmtp]\nsocket = \"/{}\"\n", "x".repeat(120));
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
    }

    #[test]
    fn store_string_or_table() {
        let c = parse("store = \"memory\"\n").unwrap();
        assert_eq!(c.store.kind, StoreKind::Memory);
        let c = parse("store = \"crc\"\n").unwrap();
        assert_eq!(c.store.kind, StoreKind::Crc);
        assert_eq!(c.store.path, PathBuf::from("/etc/m/./data/store"));

        let c = parse(
            "[store]\ndurability = false\nmaildir_import = \"/home/%u/Maildir\"\n\
             reconstruct_interval_secs = 5\npath = \"/srv/mail\"\n",
        )
        .unwrap();
        assert_eq!(c.store.kind, StoreKind::Crc, "the table defaults to crc");
        assert!(!c.store.durability);
        assert_eq!(c.store.maildir_import.as_deref(), Some("/home/%u/Maildir"));
        assert_eq!(c.store.reconstruct_interval, Duration::from_secs(5));
        assert_eq!(c.store.path, PathBuf::from("/srv/mail"));

        // relative Maildir paths follow the config file, like every path
        let c = parse("[store]\nbackend = \"crc\"\nmaildir_import = \"maildirs/%u\"\n").unwrap();
        assert_eq!(
            c.store.maildir_import.as_deref(),
            Some("/etc/m/maildirs/%u")
        );

        let c = parse(
            "[store]\nbackend = \"postgres\"\nurl = \"postgresql://m@127.0.0.1/mail\"\npool_size = 4\n",
        )
        .unwrap();
        assert_eq!(c.store.kind, StoreKind::Postgres);
        assert_eq!(
            c.store.url.as_deref(),
            Some("postgresql://m@127.0.0.1/mail")
        );
        assert_eq!(c.store.pool_size, 4);
        assert_eq!(
            c.store.view_records,
            mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
            "the view budget is unchanged when left out"
        );
        let pg = "[store]\nbackend = \"postgres\"\nurl = \"postgresql://m@127.0.0.1/mail\"\n";
        let c = parse(&format!("{pg}view_records = 5000\n")).unwrap();
        assert_eq!(c.store.view_records, 5000);
        let c = parse(&format!("{pg}view_records = 0\n")).unwrap();
        assert_eq!(c.store.view_records, 0, "0: no views");
        let e = parse(&format!(
            "{pg}view_records = {}\n",
            mailroom_store_postgres::MAX_VIEW_RECORDS + 1
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("view_records"), "{e}");
        let e = parse("[store]\nbackend = \"crc\"\nview_records = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("view_records") && e.contains("crc"), "{e}");
        let e = parse("[store]\nbackend = \"postgres\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("url"), "{e}");
        let e =
            parse("[store]\nbackend = \"postgres\"\nurl = \"postgresql://x/y\"\npath = \"s\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("path") && e.contains("postgres"), "{e}");
        let e = parse("[store]\nbackend = \"crc\"\nurl = \"postgresql://x/y\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("url") && e.contains("crc"), "{e}");
        let c = parse("[store]\nbackend = \"memory\"\n").unwrap();
        assert_eq!(c.store.kind, StoreKind::Memory);
    }

    #[test]
    fn replication_on_postgres_is_async_only() {
        let pg = "[store]\nbackend = \"postgres\"\nurl = \"postgresql://m@127.0.0.1/mail\"\n\
                  [replication]\nrole = \"primary\"\npeer = \"127.0.0.1:2500\"\nsecret_file = \"s\"\n";
        let c = parse(pg).unwrap();
        assert_eq!(
            c.replication.map(|r| r.mode),
            Some(crate::replication::Mode::Async)
        );
        let e = parse(&format!("{pg}mode = \"sync\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sync") && e.contains("postgres"), "{e}");
        let crc = "[replication]\nrole = \"primary\"\npeer = \"127.0.0.1:2500\"\nsecret_file = \"s\"\nmode = \"sync\"\n";
        assert!(parse(crc).is_ok(), "sync stays for the CRC store");
    }

    #[test]
    fn bad_store_tables() {
        let e = parse("[store]\ndurabilty = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `durabilty`"), "{e}");
        let e = parse("[store]\nbackend = \"memory\"\ndurability = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("durability") && e.contains("memory"), "{e}");
        let e = parse("[store]\nmaildir_import = \"/home/Maildir\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("%u"), "{e}");
        let e = parse("[store]\nreconstruct_interval_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("reconstruct_interval_secs"), "{e}");
        let e = parse("store = 3\n").unwrap_err().to_string();
        assert!(e.contains("store"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[auth]\nallow_plain = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `allow_plain`"), "{e}");
        let e = parse("colour = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = parse("[pop9]\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `pop9`"), "{e}");
    }

    #[test]
    fn bad_values() {
        let e = parse("[imap]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = parse("store = \"floppy\"\n").unwrap_err().to_string();
        assert!(e.contains("memory") && e.contains("crc"), "{e}");
        let e = parse("log_level = \"=[\"\n").unwrap_err().to_string();
        assert!(e.contains("log_level"), "{e}");
        let e = parse("[imap]\nlisten = \"127.0.0.1:5\"\n[imaps]\nlisten = \"127.0.0.1:5\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("both listen"), "{e}");
        let e = parse("[limits]\nmax_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_connections"), "{e}");
        let e = parse("[auth]\nallow_plaintext = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_plaintext") || e.contains("bool"), "{e}");
    }
}
