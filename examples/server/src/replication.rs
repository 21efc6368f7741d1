//! `[replication]`: mailroomd as the primary or the replica of a pair, over
//! [`mailroom_sync`].
//!
//! - **Replica** (`role = "replica"`): runs the replication listener
//!   ([`mailroom_sync::Replica`] on the `mailroom_server` runtime, inside
//!   TLS when `tls` is on, with the `[tls]` certificate) and applies what
//!   the primary sends. Until it is promoted it refuses client work: the
//!   [`Gate`] authenticator answers every login and recipient lookup with
//!   [`mailroom_core::Error::Unavailable`], which IMAP maps to
//!   `NO [UNAVAILABLE]`, POP3 to `-ERR [SYS/TEMP]` and LMTP to `451 4.3.0`.
//! - **Primary** (`role = "primary"`): runs the rolling
//!   [`mailroom_sync::Primary`] against `peer`. In `mode = "sync"` an
//!   append (an LMTP delivery, an IMAP APPEND) is acknowledged only once the
//!   replica holds it ([`SyncStorage`] waits in
//!   [`Node::after_append`]); when the replica has not confirmed within
//!   `sync_timeout_ms`, the node falls back to asynchronous replication
//!   (a warning in the log, `mailroom_replication_mode_fallbacks_total`)
//!   and returns to synchronous replication once the replica is connected
//!   and caught up again.
//! - **Promotion** ([`Node::promote`], `mailroomd replication promote`):
//!   the replica starts serving clients read-write and reports the primary
//!   role. The decision is written to `<data_dir>/replication.state`
//!   (atomically, fsynced; on PostgreSQL committed to the database,
//!   [`Promotion`]) before it takes effect, so a restart keeps it.
//!   The promoted node keeps its replication listener: an old primary that
//!   comes back connects to it as before, and since both ends then changed
//!   after their last sync point, `mailroom_sync`'s split-brain merge runs
//!   (logged, counted in `split_brain_merges`): nothing the promoted node
//!   accepted is overwritten.
//!
//! - **PostgreSQL** ([`pg`]): the store is one database that any number of
//!   frontends share, so what a CRC node keeps in its data directory is in
//!   the database: the promotion is a row every frontend of a replica
//!   reads, and of the frontends configured as the primary only the
//!   holder of an advisory lock streams (the others stand by and take over
//!   when it goes). Users in the `users` table travel as the users file
//!   ([`pg::TableUsers`]), so a PostgreSQL primary's off-site CRC replica
//!   and a CRC primary's PostgreSQL replica both accept the same logins
//!   once promoted. `mode = "sync"` is refused there (a frontend that does
//!   not stream could not wait for the replica).
//!
//! [`Node::status`] gives the `replication status` lines,
//! [`Node::verify`] the `replication verify USER` comparison (over a second
//! connection to the replica, never interleaved with the rolling one), and
//! [`Node::render_prometheus`] the metrics appended to `[metrics]`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use mailroom_core::quota::QuotaLimits;
use mailroom_core::{
    Appended, Authenticator, Credentials, Error, MailboxName, MailboxRef, Mechanism, NewMessage,
    Principal, Replication, Storage,
};
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::{Connection, Protocol, Server};
use mailroom_sync::{Primary, PrimaryConfig, Replica, ReplicaConfig, Secret, Verdict};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::fsutil;
use crate::users::{Directory, UserDb};

pub mod pg;

/// The file in the data directory that records a promotion.
pub const STATE_FILE: &str = "replication.state";
/// `sync_timeout_ms` when left out.
pub const DEFAULT_SYNC_TIMEOUT_MS: u64 = 5_000;
/// `verify_interval_secs` when left out: every account compared once a minute.
pub const DEFAULT_VERIFY_INTERVAL_SECS: u64 = 60;
/// Replication connections a replica serves at once (the rolling primary,
/// an operator's `verify`, a returning old primary).
pub const MAX_REPLICA_CONNECTIONS: usize = 8;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves clients and streams its changes to the peer.
    Primary,
    /// Applies what a primary sends; refuses clients until promoted.
    Replica,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        })
    }
}

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// After the local fsync (the replica follows; lag is reported).
    #[default]
    Async,
    /// Once the replica holds it durably too.
    Sync,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Async => "async",
            Mode::Sync => "sync",
        })
    }
}

/// `[replication]` as written (see the README for every key).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationTable {
    /// `primary` or `replica`.
    pub role: Option<Role>,
    /// Replica: `IP:PORT` of the replication listener (port 0: a free port).
    pub listen: Option<SocketAddr>,
    /// Primary: the replica's `HOST:PORT`.
    pub peer: Option<String>,
    /// The file holding the shared secret (at least 16 bytes; trailing
    /// white space is not part of it).
    pub secret_file: Option<PathBuf>,
    /// TLS on the replication connection; default on unless the address is
    /// loopback.
    pub tls: Option<bool>,
    /// Primary with TLS: the replica's certificate (PEM), pinned: only a
    /// replica presenting exactly this certificate is accepted.
    pub tls_pinned_cert: Option<PathBuf>,
    /// Primary with TLS: a CA file (PEM) the replica's certificate must
    /// chain to.
    pub tls_ca_file: Option<PathBuf>,
    /// Primary with TLS: the name checked in the replica's certificate;
    /// default the host of `peer`.
    pub tls_name: Option<String>,
    /// Primary: `async` (default) or `sync`.
    pub mode: Option<Mode>,
    /// Primary, sync mode: how long an append waits for the replica before
    /// replication falls back to async.
    pub sync_timeout_ms: Option<u64>,
    /// Primary: seconds between comparisons of every account.
    pub verify_interval_secs: Option<u64>,
}

/// How the primary checks the replica's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Exactly these certificates (a PEM file).
    Pinned(PathBuf),
    /// Certificates chaining to these CAs (a PEM file).
    Ca(PathBuf),
}

/// `[replication]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSettings {
    /// The configured role (a promotion recorded in `state_file` overrides
    /// a configured `replica`).
    pub role: Role,
    /// Replica: where the replication listener listens.
    pub listen: Option<SocketAddr>,
    /// Primary: the replica's address.
    pub peer: Option<String>,
    /// The shared secret's file.
    pub secret_file: PathBuf,
    /// Whether the replication connection runs inside TLS.
    pub tls: bool,
    /// Primary with TLS: how the replica's certificate is checked.
    pub trust: Option<Trust>,
    /// Primary with TLS: the name checked in the replica's certificate.
    pub tls_name: Option<String>,
    /// When appends are acknowledged.
    pub mode: Mode,
    /// Sync mode: the longest wait for the replica.
    pub sync_timeout: Duration,
    /// Seconds between full comparisons.
    pub verify_interval: Duration,
    /// `<data_dir>/replication.state`.
    pub state_file: PathBuf,
    /// The users file carried to the replica (`[auth] users_file`).
    pub users_file: PathBuf,
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6).
fn split_host_port(peer: &str) -> Option<(&str, u16)> {
    let (host, port) = peer.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then_some((host, port))
}

impl ReplicationTable {
    /// Checks the table and fills in defaults; relative paths go through
    /// `absolute`. The error names the key.
    pub fn resolve(
        self,
        data_dir: &Path,
        absolute: impl Fn(PathBuf) -> PathBuf,
    ) -> Result<ReplicationSettings, String> {
        let role = self
            .role
            .ok_or("[replication] needs role = \"primary\" or \"replica\"")?;
        let secret_file = match self.secret_file {
            Some(p) if !p.as_os_str().is_empty() => absolute(p),
            _ => return Err("[replication] needs secret_file (the shared secret's file)".into()),
        };
        let sync_timeout_ms = self.sync_timeout_ms.unwrap_or(DEFAULT_SYNC_TIMEOUT_MS);
        if sync_timeout_ms == 0 {
            return Err("[replication] sync_timeout_ms must be at least 1".into());
        }
        let verify_secs = self
            .verify_interval_secs
            .unwrap_or(DEFAULT_VERIFY_INTERVAL_SECS);
        if verify_secs == 0 {
            return Err("[replication] verify_interval_secs must be at least 1".into());
        }
        let trust = match (self.tls_pinned_cert, self.tls_ca_file) {
            (Some(_), Some(_)) => {
                return Err("[replication] set tls_pinned_cert or tls_ca_file, not both".into());
            }
            (Some(p), None) => Some(Trust::Pinned(absolute(p))),
            (None, Some(p)) => Some(Trust::Ca(absolute(p))),
            (None, None) => None,
        };
        let (listen, peer, tls) = match role {
            Role::Replica => {
                let listen = self.listen.ok_or(
                    "[replication] role = \"replica\" needs listen (the replication listener's IP:PORT)",
                )?;
                if self.peer.is_some() {
                    return Err("[replication] peer is for role = \"primary\"".into());
                }
                if self.mode.is_some() || self.sync_timeout_ms.is_some() {
                    return Err(
                        "[replication] mode and sync_timeout_ms are for role = \"primary\"".into(),
                    );
                }
                if trust.is_some() || self.tls_name.is_some() {
                    return Err("[replication] tls_pinned_cert, tls_ca_file and tls_name are for role = \"primary\" (a replica presents the [tls] certificate)".into());
                }
                let tls = self.tls.unwrap_or(!listen.ip().is_loopback());
                (Some(listen), None, tls)
            }
            Role::Primary => {
                let peer = self.peer.ok_or(
                    "[replication] role = \"primary\" needs peer (the replica's HOST:PORT)",
                )?;
                let Some((host, _)) = split_host_port(&peer) else {
                    return Err(format!("[replication] peer {peer:?} is not HOST:PORT"));
                };
                if self.listen.is_some() {
                    return Err("[replication] listen is for role = \"replica\"".into());
                }
                let tls = self.tls.unwrap_or(!is_loopback_host(host));
                if tls && trust.is_none() {
                    return Err(format!(
                        "[replication] TLS to {peer} needs tls_pinned_cert (the replica's certificate) or tls_ca_file{}",
                        if self.tls.is_none() {
                            " (TLS is the default for a peer that is not loopback)"
                        } else {
                            ""
                        }
                    ));
                }
                if !tls && (trust.is_some() || self.tls_name.is_some()) {
                    return Err(
                        "[replication] tls_pinned_cert, tls_ca_file and tls_name need tls = true"
                            .into(),
                    );
                }
                (None, Some(peer), tls)
            }
        };
        Ok(ReplicationSettings {
            role,
            listen,
            peer,
            secret_file,
            tls,
            trust,
            tls_name: self.tls_name,
            mode: self.mode.unwrap_or_default(),
            sync_timeout: Duration::from_millis(sync_timeout_ms),
            verify_interval: Duration::from_secs(verify_secs),
            state_file: data_dir.join(STATE_FILE),
            users_file: data_dir.join("users.toml"),
        })
    }
}

/// The name the users file travels under in FILE frames.
const USERS_FILE: &str = "users.toml";

/// The users as a replicated application file, whichever `[auth]
/// backend` keeps them: the primary sends the users file whenever it
/// changes, the replica checks that it parses, then puts it in force, so
/// a promoted replica accepts the same logins.
#[derive(Debug)]
enum UsersFile {
    /// The users file: written atomically under its lock (temporary file,
    /// fsync, rename, fsync of the directory); the authenticator notices
    /// the new file at its next lookup and reloads it.
    File(PathBuf),
    /// The PostgreSQL `users` table, sent rendered as a users file and
    /// written row by row ([`pg::TableUsers`]).
    Table(Box<pg::TableUsers>),
}

impl mailroom_sync::AppFiles for UsersFile {
    fn read(&self) -> std::io::Result<Vec<(String, bytes::Bytes)>> {
        let content = match self {
            UsersFile::File(path) => match std::fs::read(path) {
                Ok(content) => content.into(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            },
            UsersFile::Table(table) => table.read_file()?,
        };
        Ok(vec![(USERS_FILE.to_owned(), content)])
    }

    fn install(&self, name: &str, content: &[u8]) -> std::io::Result<()> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        if name != USERS_FILE {
            return Err(invalid(format!("no replicated file named {name:?}")));
        }
        let text = std::str::from_utf8(content)
            .map_err(|_| invalid("replicated users file is not UTF-8".into()))?;
        let path = match self {
            UsersFile::File(path) => path.as_path(),
            UsersFile::Table(_) => Path::new("<replicated users file>"),
        };
        let users = UserDb::parse(path, text).map_err(|e| invalid(e.to_string()))?;
        match self {
            UsersFile::Table(table) => table.install_file(&users),
            UsersFile::File(path) => {
                fsutil::create_dir_private(&fsutil::parent_dir(path), 0o700)?;
                let _lock = fsutil::FileLock::acquire(path)?;
                if std::fs::read(path).is_ok_and(|old| old == content) {
                    return Ok(());
                }
                fsutil::write_atomic(path, content, 0o600)?;
                tracing::info!(path = %path.display(), "users file replicated from the primary");
                Ok(())
            }
        }
    }
}

/// Where a node keeps what replication needs beside the store.
#[derive(Debug, Clone)]
pub struct Site {
    /// The PostgreSQL store's URL: the store is one database that any
    /// number of frontends share (the promotion is recorded there, and an
    /// advisory lock there picks the frontend that streams). `None` for
    /// the CRC and memory stores (one node per data directory).
    pub database: Option<String>,
    /// Where the users live (`[auth] backend`).
    pub users: Directory,
    /// The users' database with `[auth] backend = "postgres"`.
    pub users_database: Option<String>,
}

impl Site {
    /// The site `config` describes, with its users in `users`.
    pub fn of(config: &crate::config::Config, users: Directory) -> Site {
        let database = match config.store.kind {
            crate::config::StoreKind::Postgres => config.store.url.clone(),
            _ => None,
        };
        let users_database = match &config.auth.backend {
            crate::config::UsersBackend::Postgres { url, .. } => Some(url.clone()),
            crate::config::UsersBackend::File => None,
        };
        Site {
            database,
            users,
            users_database,
        }
    }
}

/// Where the promotion of a replica is recorded.
#[derive(Debug)]
pub enum Promotion {
    /// `<data_dir>/replication.state` (the CRC and memory stores).
    File(PathBuf),
    /// A row of the PostgreSQL database, shared by its frontends.
    Database(Box<pg::Promotion>),
}

impl Promotion {
    /// The record for `settings` on a store whose database (PostgreSQL) is
    /// `database`. Nothing connects yet.
    pub fn new(
        settings: &ReplicationSettings,
        database: Option<&str>,
    ) -> Result<Promotion, ReplicationError> {
        Ok(match database {
            Some(url) => Promotion::Database(Box::new(pg::Promotion::new(url)?)),
            None => Promotion::File(settings.state_file.clone()),
        })
    }

    /// Whether a promotion is recorded.
    pub async fn promoted(&self) -> Result<bool, ReplicationError> {
        match self {
            Promotion::File(path) => promoted_on_disk(path),
            Promotion::Database(db) => db.promoted().await,
        }
    }

    /// Records the promotion durably; `false` if it was recorded already.
    pub async fn promote(&self) -> Result<bool, ReplicationError> {
        match self {
            Promotion::File(path) => {
                if promoted_on_disk(path)? {
                    return Ok(false);
                }
                persist_promotion(path)?;
                Ok(true)
            }
            Promotion::Database(db) => db.promote().await,
        }
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Promotion::File(path) => path.display().to_string(),
            Promotion::Database(_) => "the database (table mailroomd_replication)".into(),
        }
    }
}

/// Why replication could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// The secret file could not be read or is too short.
    #[error("[replication] secret_file {path}: {reason}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate file could not be read.
    #[error("[replication] {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state file could not be read or written.
    #[error("replication state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The operation needs the other role.
    #[error("{0}")]
    WrongRole(String),
    /// The replica could not be reached or refused us.
    #[error("replication: {0}")]
    Sync(#[from] mailroom_sync::SyncError),
    /// The PostgreSQL database (promotion, primary lock, users) failed.
    #[error("replication on PostgreSQL: {0}")]
    Database(String),
}

/// Reads the shared secret: the file's bytes without trailing white space.
/// A file others may read is accepted with a warning.
pub fn read_secret(path: &Path) -> Result<Secret, ReplicationError> {
    use std::os::unix::fs::PermissionsExt as _;
    let err = |reason: String| ReplicationError::Secret {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > 64 * 1024 {
        return Err(err("larger than 64 KiB: not a secret file".into()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the replication secret file is readable by other users; chmod 600 it");
    }
    let mut bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    Secret::new(bytes).map_err(|e| err(e.to_string()))
}

/// Whether the state file records a promotion.
pub fn promoted_on_disk(state_file: &Path) -> Result<bool, ReplicationError> {
    match std::fs::read_to_string(state_file) {
        Ok(text) => Ok(text.lines().any(|l| l.trim() == "role primary")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ReplicationError::State {
            path: state_file.to_owned(),
            source,
        }),
    }
}

/// Records a promotion in the state file (atomic and fsynced: once this
/// returns, a restart keeps the primary role).
pub fn persist_promotion(state_file: &Path) -> Result<(), ReplicationError> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = format!("role primary\npromoted_at {now}\n");
    fsutil::write_atomic(state_file, text.as_bytes(), 0o600).map_err(|source| {
        ReplicationError::State {
            path: state_file.to_owned(),
            source,
        }
    })
}

/// A byte stream to the replica: TCP, or TLS over TCP.
trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}

/// How the primary reaches the replica.
#[derive(Clone)]
struct Connector {
    peer: String,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("peer", &self.peer)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Connector {
    async fn connect(&self) -> io::Result<Box<dyn PeerIo>> {
        let tcp = TcpStream::connect(&self.peer).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((config, name)) => {
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await?;
                Ok(Box::new(tls))
            }
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ReplicationError> {
    let err = |reason: String| ReplicationError::Certificate {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

/// A verifier that accepts only the pinned certificates (byte for byte),
/// and checks the name, validity and handshake signatures as WebPKI does
/// with the pinned certificates as the only roots.
#[derive(Debug)]
struct Pinned {
    pinned: Vec<CertificateDer<'static>>,
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if !self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls client configuration for `trust`.
fn client_tls(trust: &Trust) -> Result<Arc<rustls::ClientConfig>, ReplicationError> {
    let (path, pinned) = match trust {
        Trust::Pinned(p) => (p, true),
        Trust::Ca(p) => (p, false),
    };
    let certs = read_certs(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| ReplicationError::Certificate {
                path: path.clone(),
                reason: e.to_string(),
            })?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ReplicationError::Certificate {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let config = if pinned {
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ReplicationError::Certificate {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pinned: certs,
                inner,
            }))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// A running node of a replication pair. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
struct NodeInner {
    settings: ReplicationSettings,
    /// A replica that was promoted (persisted in `record`).
    promoted: AtomicBool,
    /// Where the promotion is recorded.
    record: Promotion,
    /// On PostgreSQL: the lock only one frontend of the database holds,
    /// the one that streams.
    primary_lock: Option<pg::PrimaryLock>,
    /// Whether this process runs the rolling primary now.
    active: AtomicBool,
    /// The rolling primary (configured role primary).
    primary: Option<(Primary, Connector)>,
    /// The replica service (configured role replica).
    replica: Option<Replica>,
    /// Replication connections open on the replica listener.
    replica_connections: AtomicUsize,
    /// The last peer that connected to the replica listener.
    last_peer: Mutex<Option<SocketAddr>>,
    /// Sync mode fell back to async (the replica did not confirm in time).
    degraded: AtomicBool,
    /// Fallbacks from sync to async so far.
    fallbacks: AtomicU64,
}

impl Node {
    /// Reads the secret (and the TLS trust), the promotion (the state file,
    /// or the database's row on PostgreSQL), and builds the primary or the
    /// replica over `store`, carrying the users of `site`. Nothing runs
    /// yet: see [`Node::run_primary`] and [`Node::serve_replica`].
    pub async fn new(
        settings: ReplicationSettings,
        store: Arc<dyn Replication>,
        site: Site,
    ) -> Result<Node, ReplicationError> {
        let secret = read_secret(&settings.secret_file)?;
        let record = Promotion::new(&settings, site.database.as_deref())?;
        let promoted = settings.role == Role::Replica && record.promoted().await?;
        let users = Arc::new(match (&site.users, &site.users_database) {
            (Directory::Postgres(_), Some(url)) => {
                UsersFile::Table(Box::new(pg::TableUsers::new(site.users.clone(), url)?))
            }
            _ => UsersFile::File(settings.users_file.clone()),
        });
        let primary_lock = match (settings.role, &site.database) {
            (Role::Primary, Some(url)) => Some(pg::PrimaryLock::new(url)?),
            _ => None,
        };
        let mut primary = None;
        let mut replica = None;
        match settings.role {
            Role::Primary => {
                let peer = settings.peer.clone().unwrap_or_default();
                let tls = match (&settings.trust, settings.tls) {
                    (Some(trust), true) => {
                        let host = split_host_port(&peer).map_or("localhost", |(h, _)| h);
                        let name = settings.tls_name.clone().unwrap_or_else(|| host.to_owned());
                        let name = ServerName::try_from(name.clone()).map_err(|e| {
                            ReplicationError::Certificate {
                                path: PathBuf::from(&name),
                                reason: format!("not a server name: {e}"),
                            }
                        })?;
                        Some((client_tls(trust)?, name))
                    }
                    _ => None,
                };
                let mut config = PrimaryConfig::new(secret);
                config.files = Some(users.clone());
                config.verify_interval = settings.verify_interval;
                config.reconnect_delay = Duration::from_millis(100);
                primary = Some((Primary::new(store, config), Connector { peer, tls }));
            }
            Role::Replica => {
                let mut config = ReplicaConfig::new(secret);
                config.files = Some(users.clone());
                replica = Some(Replica::new(store, config));
            }
        }
        if promoted {
            tracing::warn!(
                state = %record.describe(),
                "this replica was promoted: serving clients as the primary"
            );
        }
        Ok(Node {
            inner: Arc::new(NodeInner {
                settings,
                promoted: AtomicBool::new(promoted),
                record,
                primary_lock,
                active: AtomicBool::new(false),
                primary,
                replica,
                replica_connections: AtomicUsize::new(0),
                last_peer: Mutex::new(None),
                degraded: AtomicBool::new(false),
                fallbacks: AtomicU64::new(0),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ReplicationSettings {
        &self.inner.settings
    }

    /// The role now: a promoted replica is a primary.
    pub fn role(&self) -> Role {
        if self.inner.settings.role == Role::Primary || self.inner.promoted.load(Ordering::Acquire)
        {
            Role::Primary
        } else {
            Role::Replica
        }
    }

    /// Whether clients are served (everything but an unpromoted replica).
    pub fn serves_clients(&self) -> bool {
        self.role() == Role::Primary
    }

    /// [`Node::serves_clients`], after reading the promotion again where
    /// another process may record it: on PostgreSQL any frontend of the
    /// database (or `replication promote` with none running) promotes
    /// them all. A database that cannot be read leaves the node refusing.
    pub async fn serves_clients_now(&self) -> bool {
        if self.serves_clients() {
            return true;
        }
        if !matches!(self.inner.record, Promotion::Database(_)) {
            return false;
        }
        match self.inner.record.promoted().await {
            Ok(true) => {
                if !self.inner.promoted.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "this database's replica was promoted (by another frontend or an admin \
                         command): serving clients read-write as the primary"
                    );
                }
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "replication: cannot read the promotion");
                false
            }
        }
    }

    /// Whether this process runs the rolling primary now: a primary once
    /// [`Node::run_primary`] started, on PostgreSQL only while it holds
    /// the database's primary lock.
    pub fn streams(&self) -> bool {
        self.inner.active.load(Ordering::Acquire)
    }

    /// A PostgreSQL frontend configured as the primary that does not hold
    /// the database's primary lock (another frontend streams).
    pub fn stands_by(&self) -> bool {
        self.inner.primary_lock.is_some() && !self.streams()
    }

    /// The rolling primary, on a node configured as the primary.
    pub fn primary(&self) -> Option<&Primary> {
        self.inner.primary.as_ref().map(|(p, _)| p)
    }

    /// Promotes a replica: persists the primary role, then serves clients
    /// (on PostgreSQL, every frontend of the database does). `Ok(false)`
    /// if it was already promoted; an error on a node configured as the
    /// primary.
    pub async fn promote(&self) -> Result<bool, ReplicationError> {
        if self.inner.settings.role == Role::Primary {
            return Err(ReplicationError::WrongRole(
                "this node is the primary already (role = \"primary\")".into(),
            ));
        }
        if self.inner.promoted.load(Ordering::Acquire) {
            return Ok(false);
        }
        let fresh = self.inner.record.promote().await?;
        self.inner.promoted.store(true, Ordering::Release);
        tracing::warn!("replica promoted: serving clients read-write as the primary");
        Ok(fresh)
    }

    /// The effective mode: `Async` when configured so or while a sync
    /// node has fallen back.
    pub fn mode(&self) -> Mode {
        match self.inner.settings.mode {
            Mode::Sync if !self.inner.degraded.load(Ordering::Acquire) => Mode::Sync,
            _ => Mode::Async,
        }
    }

    /// Fallbacks from sync to async so far.
    pub fn fallbacks(&self) -> u64 {
        self.inner.fallbacks.load(Ordering::Relaxed)
    }

    /// In sync mode, waits until the replica holds `appended` (of a
    /// mailbox of `owner`), at most `sync_timeout`; on timeout falls back
    /// to async. Returns at once in async mode, on a replica, or while
    /// fallen back.
    pub async fn after_append(&self, owner: &str, appended: &Appended) {
        let Some(primary) = self.primary() else {
            return;
        };
        if self.mode() != Mode::Sync {
            return;
        }
        let timeout = self.inner.settings.sync_timeout;
        let held = primary
            .wait_replicated(owner, appended.uid_validity, appended.modseq, timeout)
            .await;
        if !held && !self.inner.degraded.swap(true, Ordering::AcqRel) {
            self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                peer = self.inner.settings.peer.as_deref().unwrap_or("-"),
                "replication: the replica did not confirm in time; falling back to asynchronous \
                 replication until it is connected and caught up"
            );
        }
    }

    /// Runs the rolling primary until `stop` (nothing on a replica). On
    /// PostgreSQL only while this frontend holds the database's primary
    /// lock: it waits for the lock, streams, and when the lock is lost
    /// stops streaming and waits for it again.
    pub async fn run_primary(&self, stop: impl Future<Output = ()> + Send) {
        let Some((primary, connector)) = self.inner.primary.clone() else {
            return;
        };
        let Some(lock) = self.inner.primary_lock.clone() else {
            self.inner.active.store(true, Ordering::Release);
            self.stream(primary, connector, stop).await;
            self.inner.active.store(false, Ordering::Release);
            return;
        };
        tokio::pin!(stop);
        loop {
            let held = tokio::select! {
                () = &mut stop => return,
                held = lock.acquire() => held,
            };
            tracing::info!(
                peer = self.inner.settings.peer.as_deref().unwrap_or("-"),
                "replication: this frontend holds the primary lock of the database; streaming to the replica"
            );
            self.inner.active.store(true, Ordering::Release);
            let why = tokio::select! {
                () = &mut stop => None,
                () = self.stream(primary.clone(), connector.clone(), std::future::pending()) => {
                    Some("the rolling primary ended".to_owned())
                }
                why = held.lost() => Some(why),
            };
            // The stream is dropped above, before the lock is let go.
            self.inner.active.store(false, Ordering::Release);
            drop(held);
            match why {
                None => return,
                Some(why) => tracing::warn!(
                    reason = %why,
                    "replication: stopped streaming (the primary lock of the database is not known to be held); \
                     trying to take it again"
                ),
            }
        }
    }

    /// Rolling replication until `stop`, and the watch of a fallen-back
    /// sync mode: once the replica is connected and caught up again, sync
    /// mode resumes.
    async fn stream(
        &self,
        primary: Primary,
        connector: Connector,
        stop: impl Future<Output = ()> + Send,
    ) {
        let rolling = primary.run(
            move || {
                let connector = connector.clone();
                async move { connector.connect().await }
            },
            stop,
        );
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if !self.inner.degraded.load(Ordering::Acquire) {
                    continue;
                }
                if let Ok(status) = primary.status().await
                    && status.connected
                    && status.pending_changes == 0
                    && status.pending_accounts == 0
                {
                    self.inner.degraded.store(false, Ordering::Release);
                    tracing::info!(
                        "replication: the replica is connected and caught up; synchronous replication resumed"
                    );
                }
            }
        };
        tokio::select! {
            () = rolling => {}
            () = watch => {}
        }
    }

    /// Serves the replication listener until `stop` (inside TLS with
    /// `tls` when the settings ask for it). Nothing on a primary.
    pub async fn serve_replica(
        &self,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        stop: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let Some(replica) = self.inner.replica.clone() else {
            return Ok(());
        };
        let protocol = ReplicaListener {
            replica,
            node: Arc::clone(&self.inner),
        };
        let mut server = Server::new(protocol).limits(ConnectionLimits::new(
            MAX_REPLICA_CONNECTIONS,
            MAX_REPLICA_CONNECTIONS,
        ));
        if self.inner.settings.tls {
            match tls {
                Some(tls) => server = server.implicit_tls(tls),
                None => {
                    return Err(io::Error::other(
                        "[replication] tls is on but no TLS configuration was given",
                    ));
                }
            }
        }
        server.serve(listener, stop).await
    }

    /// Compares `user`'s account with the replica now and repairs what
    /// differs, over a connection of its own (never interleaved with the
    /// rolling one). One verdict per mailbox. Primary only.
    pub async fn verify(
        &self,
        user: &str,
    ) -> Result<Vec<(MailboxName, Verdict)>, ReplicationError> {
        let Some((primary, connector)) = &self.inner.primary else {
            return Err(ReplicationError::WrongRole(
                "replication verify runs on the primary (it compares its data with the replica's)"
                    .into(),
            ));
        };
        let io = connector
            .connect()
            .await
            .map_err(mailroom_sync::SyncError::Io)?;
        let mut connection = primary.connect(io).await?;
        Ok(connection.verify_account(user).await?)
    }

    /// Where replication stands, as `key value` lines.
    pub async fn status(&self) -> Vec<String> {
        let s = &self.inner.settings;
        self.serves_clients_now().await;
        let mut lines = vec![format!("role {}", self.role())];
        match &self.inner.primary {
            Some((primary, _)) => {
                lines.push(format!("peer {}", s.peer.as_deref().unwrap_or("-")));
                // A frontend standing by (PostgreSQL) knows nothing of the
                // stream another frontend runs.
                let status = if self.stands_by() {
                    Err("standing by".to_owned())
                } else {
                    primary.status().await.map_err(|e| e.to_string())
                };
                let (connected, pending_changes, pending_accounts, lag, last) = match &status {
                    Ok(st) => (
                        st.connected,
                        st.pending_changes.to_string(),
                        st.pending_accounts.to_string(),
                        if st.lag == Duration::MAX {
                            "never-caught-up".to_owned()
                        } else {
                            format!("{:.3}", st.lag.as_secs_f64())
                        },
                        st.last_full_compare,
                    ),
                    Err(e) => {
                        if !self.stands_by() {
                            tracing::warn!(error = %e, "replication status: the store failed");
                        }
                        (false, "-".into(), "-".into(), "-".into(), None)
                    }
                };
                let stats = primary.stats();
                lines.push(format!("connected {}", yes_no(connected)));
                lines.push(format!("mode {}", self.mode()));
                lines.push(format!("mode_configured {}", s.mode));
                lines.push(format!("pending_changes {pending_changes}"));
                lines.push(format!("pending_accounts {pending_accounts}"));
                lines.push(format!("lag {lag}"));
                lines.push(format!("last_verify {}", unix_or_never(last)));
                lines.push(format!("repaired {}", stats.repaired));
                lines.push(format!("split_brain_merges {}", stats.split_brain_merges));
                lines.push(format!("mismatches {}", stats.mismatches));
                lines.push(format!("bytes_sent {}", stats.bytes_sent));
                lines.push(format!("mode_fallbacks {}", self.fallbacks()));
                lines.push(format!(
                    "last_error {}",
                    stats.last_error.as_deref().unwrap_or("-")
                ));
                if self.inner.primary_lock.is_some() {
                    lines.push(format!(
                        "primary_lock {}",
                        if self.streams() { "held" } else { "standby" }
                    ));
                }
            }
            None => {
                let peer = self
                    .inner
                    .last_peer
                    .lock()
                    .ok()
                    .and_then(|p| *p)
                    .map_or_else(|| "-".to_owned(), |p| p.to_string());
                lines.push(format!("peer {peer}"));
                let open = self.inner.replica_connections.load(Ordering::Acquire);
                lines.push(format!("connected {}", yes_no(open > 0)));
                lines.push(format!("mode {}", s.mode));
                // What this replica knows it lacks: the primary's pending
                // changes as the primary last announced them (0 once the
                // round that brought this replica in step ended).
                let (pending, announced) = self.inner.replica.as_ref().map_or((0, None), |r| {
                    let st = r.stats();
                    (st.pending_changes, st.pending_announced)
                });
                lines.push(format!("pending_changes {pending}"));
                lines.push(format!("pending_announced {}", unix_or_never(announced)));
                lines.push("lag -".into());
                lines.push("last_verify -".into());
                lines.push("repaired 0".into());
                lines.push("split_brain_merges 0".into());
                lines.push(format!(
                    "promoted {}",
                    yes_no(self.inner.promoted.load(Ordering::Acquire))
                ));
                lines.push(format!(
                    "listen {}",
                    s.listen.map_or_else(|| "-".to_owned(), |a| a.to_string())
                ));
                if let Some(replica) = &self.inner.replica {
                    let st = replica.stats();
                    lines.push(format!("batches_applied {}", st.batches));
                    lines.push(format!("messages_applied {}", st.messages));
                    lines.push(format!("bytes_received {}", st.bytes_received));
                    lines.push(format!("connections_refused {}", st.refused));
                }
            }
        }
        lines
    }

    /// The replication series in the Prometheus text format, for the
    /// `[metrics]` endpoint: `mailroom_sync`'s primary series (lag in
    /// changes and seconds, bytes sent, mismatches and repairs, ...) and
    /// this node's own (role, mode, fallbacks).
    pub async fn render_prometheus(&self) -> String {
        let mut out = String::new();
        self.serves_clients_now().await;
        if let Some(primary) = self.primary()
            && !self.stands_by()
            && let Ok(status) = primary.status().await
        {
            out.push_str(&status.render_prometheus());
        }
        if let Some(replica) = &self.inner.replica {
            let st = replica.stats();
            for (name, kind, help, value) in [
                (
                    "replica_batches_total",
                    "counter",
                    "RECORDS batches applied on this replica.",
                    st.batches,
                ),
                (
                    "replica_bytes_received_total",
                    "counter",
                    "Bytes received on this replica's replication connections.",
                    st.bytes_received,
                ),
                (
                    "replica_pending_changes",
                    "gauge",
                    "Changes the primary last announced as not yet replicated here.",
                    st.pending_changes,
                ),
            ] {
                push_series(&mut out, name, kind, help, value);
            }
        }
        push_series(
            &mut out,
            "serving_clients",
            "gauge",
            "1 when this node serves clients (a primary or a promoted replica).",
            u64::from(self.serves_clients()),
        );
        push_series(
            &mut out,
            "sync_mode",
            "gauge",
            "1 while appends wait for the replica (mode = sync and not fallen back).",
            u64::from(self.primary().is_some() && self.mode() == Mode::Sync),
        );
        push_series(
            &mut out,
            "streaming",
            "gauge",
            "1 while this process runs the rolling primary (on PostgreSQL: holds the database's primary lock).",
            u64::from(self.streams()),
        );
        push_series(
            &mut out,
            "mode_fallbacks_total",
            "counter",
            "Falls back from synchronous to asynchronous replication.",
            self.fallbacks(),
        );
        out
    }
}

/// Runs a replication request of the admin socket on a running node;
/// `None` if `request` is not a replication request.
pub async fn execute(
    node: &Node,
    request: &crate::control::Request,
) -> Option<crate::control::Reply> {
    use crate::control::{Reply, Request};
    Some(match request {
        Request::ReplicationStatus => Reply {
            lines: node.status().await,
            outcome: Ok(()),
        },
        Request::ReplicationPromote => match node.promote().await {
            Ok(true) => Reply {
                lines: vec!["promoted: this node is now the primary and serves clients".into()],
                outcome: Ok(()),
            },
            Ok(false) => Reply {
                lines: vec!["already promoted: this node is the primary".into()],
                outcome: Ok(()),
            },
            Err(e) => Reply {
                lines: Vec::new(),
                outcome: Err(e.to_string()),
            },
        },
        Request::ReplicationVerify { user } => match node.verify(user).await {
            Ok(verdicts) if verdicts.is_empty() => Reply {
                lines: Vec::new(),
                outcome: Err(format!("{user} has no mailboxes on this node")),
            },
            Ok(verdicts) => Reply {
                lines: verdict_lines(&verdicts),
                outcome: Ok(()),
            },
            Err(e) => Reply {
                lines: Vec::new(),
                outcome: Err(format!("replication verify {user}: {e}")),
            },
        },
        _ => return None,
    })
}

/// A replication request with no server running: `status` reports what
/// the config and the recorded promotion say, `promote` records the
/// promotion for the next start (on PostgreSQL, in the database: every
/// running frontend of it serves at once), `verify` needs the running
/// primary.
pub async fn execute_offline(
    settings: &ReplicationSettings,
    record: &Promotion,
    request: &crate::control::Request,
) -> Option<crate::control::Reply> {
    use crate::control::{Reply, Request};
    let fail = |why: String| Reply {
        lines: Vec::new(),
        outcome: Err(why),
    };
    Some(match request {
        Request::ReplicationStatus => {
            let promoted = match record.promoted().await {
                Ok(p) => p,
                Err(e) => return Some(fail(e.to_string())),
            };
            let role = if settings.role == Role::Primary || promoted {
                Role::Primary
            } else {
                Role::Replica
            };
            let peer = match (&settings.peer, settings.listen) {
                (Some(p), _) => p.clone(),
                _ => "-".into(),
            };
            Reply {
                lines: vec![
                    format!("role {role}"),
                    format!("peer {peer}"),
                    "connected no".into(),
                    format!("mode {}", settings.mode),
                    "pending_changes -".into(),
                    "lag -".into(),
                    "last_verify -".into(),
                    "repaired 0".into(),
                    "split_brain_merges 0".into(),
                    "running no".into(),
                ],
                outcome: Ok(()),
            }
        }
        Request::ReplicationPromote => {
            if settings.role == Role::Primary {
                return Some(fail(
                    "this node is the primary already (role = \"primary\")".into(),
                ));
            }
            match record.promote().await {
                Ok(true) => Reply {
                    lines: vec![match record {
                        Promotion::File(_) => {
                            "promoted: the server serves clients as the primary from its next start"
                        }
                        Promotion::Database(_) => {
                            "promoted: every frontend of this database serves clients as the primary"
                        }
                    }
                    .into()],
                    outcome: Ok(()),
                },
                Ok(false) => Reply {
                    lines: vec!["already promoted".into()],
                    outcome: Ok(()),
                },
                Err(e) => fail(e.to_string()),
            }
        }
        Request::ReplicationVerify { .. } => fail(
            "replication verify needs the running primary (it compares over its replication connection)"
                .into(),
        ),
        _ => return None,
    })
}

fn push_series(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    out.push_str(&format!(
        "# HELP mailroom_replication_{name} {help}\n# TYPE mailroom_replication_{name} {kind}\nmailroom_replication_{name} {value}\n"
    ));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn unix_or_never(t: Option<SystemTime>) -> String {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or_else(|| "never".to_owned(), |d| d.as_secs().to_string())
}

/// The lines of `replication verify`: `MAILBOX ok|repaired`.
pub fn verdict_lines(verdicts: &[(MailboxName, Verdict)]) -> Vec<String> {
    verdicts
        .iter()
        .map(|(name, v)| {
            let word = match v {
                Verdict::InStep => "ok",
                Verdict::Updated | Verdict::Repaired | Verdict::Merged => "repaired",
            };
            format!("{} {word}", name.as_str())
        })
        .collect()
}

/// The replica protocol with the connection count `status` reports.
#[derive(Debug)]
struct ReplicaListener {
    replica: Replica,
    node: Arc<NodeInner>,
}

/// Decrements the open-connection count when a connection ends.
struct OpenConnection(Arc<NodeInner>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.replica_connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Protocol for ReplicaListener {
    fn name(&self) -> &'static str {
        "replication"
    }

    fn refusal(&self, refusal: Refusal) -> Bytes {
        Protocol::refusal(&self.replica, refusal)
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        if let Ok(mut last) = self.node.last_peer.lock() {
            *last = connection.info.peer;
        }
        self.node.replica_connections.fetch_add(1, Ordering::AcqRel);
        let open = OpenConnection(Arc::clone(&self.node));
        let serving = Protocol::serve(&self.replica, connection);
        Box::pin(async move {
            serving.await;
            drop(open);
        })
    }
}

/// An [`Authenticator`] that refuses every login and recipient lookup with
/// [`Error::Unavailable`] while the node is an unpromoted replica, and
/// passes everything to the wrapped one otherwise.
#[derive(Debug)]
pub struct Gate {
    inner: Arc<dyn Authenticator>,
    node: Node,
}

impl Gate {
    /// `inner`, gated by `node`'s role.
    pub fn new(inner: Arc<dyn Authenticator>, node: Node) -> Gate {
        Gate { inner, node }
    }

    async fn check(&self) -> mailroom_core::Result<()> {
        if self.node.serves_clients_now().await {
            Ok(())
        } else {
            Err(Error::Unavailable(
                "this node is a replica; it serves clients once promoted".into(),
            ))
        }
    }
}

#[async_trait]
impl Authenticator for Gate {
    fn mechanisms(&self) -> Vec<Mechanism> {
        self.inner.mechanisms()
    }

    async fn authenticate(&self, credentials: &Credentials) -> mailroom_core::Result<Principal> {
        self.check().await?;
        self.inner.authenticate(credentials).await
    }

    async fn lookup(&self, user: &str) -> mailroom_core::Result<Option<Principal>> {
        self.check().await?;
        self.inner.lookup(user).await
    }

    async fn scram_credentials(
        &self,
        user: &str,
    ) -> mailroom_core::Result<Option<mailroom_core::sasl::ScramCredentials>> {
        self.check().await?;
        self.inner.scram_credentials(user).await
    }

    async fn authorize(
        &self,
        authcid: &str,
        authzid: Option<&str>,
    ) -> mailroom_core::Result<Principal> {
        self.check().await?;
        self.inner.authorize(authcid, authzid).await
    }

    fn token_validator(&self) -> Option<&dyn mailroom_core::sasl::TokenValidator> {
        // A validated token still needs `authorize`, which is gated.
        self.inner.token_validator()
    }

    fn supports_apop(&self) -> bool {
        self.inner.supports_apop()
    }

    async fn authenticate_apop(
        &self,
        user: &str,
        timestamp: &str,
        digest: &[u8; 16],
    ) -> mailroom_core::Result<Principal> {
        self.check().await?;
        self.inner.authenticate_apop(user, timestamp, digest).await
    }
}

/// A [`Storage`] whose appends return only once [`Node::after_append`]
/// says so (sync mode: the replica holds the message). Every other call
/// goes to the wrapped store unchanged.
#[derive(Debug)]
pub struct SyncStorage {
    inner: Arc<dyn Storage>,
    node: Node,
}

impl SyncStorage {
    /// `inner`, with appends waiting for `node`'s replica.
    pub fn new(inner: Arc<dyn Storage>, node: Node) -> SyncStorage {
        SyncStorage { inner, node }
    }
}

#[async_trait]
impl mailroom_core::storage::Delegate for SyncStorage {
    fn inner(&self) -> &dyn Storage {
        &*self.inner
    }
    async fn append(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
    ) -> mailroom_core::Result<Appended> {
        let appended = self.inner.append(mailbox, message).await?;
        self.node.after_append(&mailbox.owner, &appended).await;
        Ok(appended)
    }
    async fn append_within_quota(
        &self,
        mailbox: &MailboxRef,
        message: NewMessage,
        limits: QuotaLimits,
    ) -> mailroom_core::Result<Appended> {
        let appended = self
            .inner
            .append_within_quota(mailbox, message, limits)
            .await?;
        self.node.after_append(&mailbox.owner, &appended).await;
        Ok(appended)
    }
    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> mailroom_core::Result<Vec<Appended>> {
        let appended = self.inner.append_all(mailbox, messages, limits).await?;
        // One mailbox: the replica holds them all once it holds the last.
        if let Some(last) = appended.iter().max_by_key(|a| a.modseq) {
            self.node.after_append(&mailbox.owner, last).await;
        }
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_install_checks_then_writes_privately() {
        use mailroom_sync::AppFiles as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let primary = dir.path().join("p/users.toml");
        let replica_path = dir.path().join("r/users.toml");
        let replica = UsersFile::File(replica_path.clone());
        assert!(UsersFile::File(primary.clone()).read().unwrap().is_empty());
        let hash = crate::users::hash_password("a long enough password").unwrap();
        crate::users::UserDb::modify(&primary, |db| db.add("a@example.org", hash, vec![])).unwrap();
        let files = UsersFile::File(primary).read().unwrap();
        assert_eq!(files.len(), 1);
        let (name, content) = &files[0];
        assert!(replica.install("other.toml", content).is_err());
        assert!(
            replica.install(name, b"[users\n").is_err(),
            "not a users file"
        );
        assert!(!replica_path.exists(), "nothing written for a refused file");
        replica.install(name, content).unwrap();
        assert_eq!(std::fs::read(&replica_path).unwrap(), content.as_ref());
        let mode = std::fs::metadata(&replica_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let db = crate::users::UserDb::load(&replica_path).unwrap();
        assert!(db.get("a@example.org").is_some());
    }

    fn resolve(text: &str) -> Result<ReplicationSettings, String> {
        let table: ReplicationTable = toml::from_str(text).map_err(|e| e.to_string())?;
        table.resolve(Path::new("/d"), |p| Path::new("/etc/m").join(p))
    }

    #[test]
    fn replica_and_primary_tables() {
        let r = resolve("role = \"replica\"\nlisten = \"127.0.0.1:2500\"\nsecret_file = \"s\"\n")
            .unwrap();
        assert_eq!(r.role, Role::Replica);
        assert!(!r.tls, "loopback: no TLS by default");
        assert_eq!(r.secret_file, PathBuf::from("/etc/m/s"));
        assert_eq!(r.state_file, PathBuf::from("/d/replication.state"));
        let r = resolve("role = \"replica\"\nlisten = \"0.0.0.0:2500\"\nsecret_file = \"s\"\n")
            .unwrap();
        assert!(r.tls, "TLS by default off loopback");

        let p = resolve(
            "role = \"primary\"\npeer = \"127.0.0.1:2500\"\nsecret_file = \"/s\"\nmode = \"sync\"\nsync_timeout_ms = 250\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Sync);
        assert_eq!(p.sync_timeout, Duration::from_millis(250));
        assert_eq!(p.verify_interval, Duration::from_secs(60));
        assert!(!p.tls);
        let p = resolve(
            "role = \"primary\"\npeer = \"replica.example:2500\"\nsecret_file = \"s\"\ntls_pinned_cert = \"r.pem\"\n",
        )
        .unwrap();
        assert!(p.tls);
        assert_eq!(p.trust, Some(Trust::Pinned(PathBuf::from("/etc/m/r.pem"))));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("listen = \"127.0.0.1:1\"\nsecret_file = \"s\"", "role"),
            ("role = \"replica\"\nsecret_file = \"s\"", "listen"),
            (
                "role = \"replica\"\nlisten = \"127.0.0.1:1\"",
                "secret_file",
            ),
            ("role = \"primary\"\nsecret_file = \"s\"", "peer"),
            (
                "role = \"primary\"\npeer = \"nocolon\"\nsecret_file = \"s\"",
                "HOST:PORT",
            ),
            (
                "role = \"primary\"\npeer = \"mx.example:25\"\nsecret_file = \"s\"",
                "tls_pinned_cert",
            ),
            (
                "role = \"primary\"\npeer = \"127.0.0.1:1\"\nsecret_file = \"s\"\nsync_timeout_ms = 0",
                "sync_timeout_ms",
            ),
            (
                "role = \"replica\"\nlisten = \"127.0.0.1:1\"\nsecret_file = \"s\"\nmode = \"sync\"",
                "primary",
            ),
            ("role = \"leader\"", "role"),
            (
                "role = \"replica\"\nlisten = \"127.0.0.1:1\"\nsecret_file = \"s\"\nmod = \"x\"",
                "mod",
            ),
        ];
        for (text, word) in cases {
            let e = resolve(text).unwrap_err();
            assert!(e.contains(word), "{text:?}: {e}");
        }
    }

    #[test]
    fn secret_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(read_secret(&path).is_ok());
        std::fs::write(&path, "short\n").unwrap();
        let e = read_secret(&path).unwrap_err().to_string();
        assert!(e.contains("secret_file") && !e.contains("short\n"), "{e}");
        let e = read_secret(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none"), "{e}");
    }

    #[test]
    fn promotion_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_FILE);
        assert!(!promoted_on_disk(&state).unwrap());
        persist_promotion(&state).unwrap();
        assert!(promoted_on_disk(&state).unwrap());
    }

    #[test]
    fn verdicts_read_ok_or_repaired() {
        let lines = verdict_lines(&[
            (MailboxName::inbox(), Verdict::InStep),
            (MailboxName::new("Sent").unwrap(), Verdict::Repaired),
        ]);
        assert_eq!(lines, ["INBOX ok", "Sent repaired"]);
    }
}
