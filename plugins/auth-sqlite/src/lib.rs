//! `mailroom-auth-sqlite`: a Mailroom auth plugin with users, domains and
//! roles in an SQLite database, passwords as argon2 hashes.
//!
//! Built as a `cdylib`, it is loaded by `mailroomd` (or any host using
//! `mailroom-plugin`) instead of the users file:
//!
//! ```toml
//! [[plugin]]
//! path = "/usr/lib/mailroom/libmailroom_auth_sqlite.so"
//! kind = "auth"
//! [plugin.settings]
//! database = "/var/lib/mailroom/users.sqlite"
//! ```
//!
//! Settings: `database` (required, the file; it must exist: the plugin
//! opens it read-only and never creates or changes it).
//!
//! # The database
//!
//! Create it with [`create_database`] and fill it with [`add_domain`] and
//! [`add_user`] (this crate is also an rlib for that), or with the SQL of
//! [`SCHEMA`] and argon2 PHC strings from any argon2 tool:
//!
//! ```sql
//! CREATE TABLE domains (
//!     name    TEXT PRIMARY KEY NOT NULL,           -- 'example.com', lower case
//!     enabled INTEGER NOT NULL DEFAULT 1           -- 0: nobody of it logs in
//! ) STRICT;
//! CREATE TABLE users (
//!     name     TEXT PRIMARY KEY NOT NULL,          -- 'alice@example.com', domain lower case
//!     domain   TEXT NOT NULL REFERENCES domains(name),
//!     password TEXT NOT NULL,                      -- argon2 PHC string ($argon2id$v=19$...)
//!     role     TEXT NOT NULL DEFAULT 'user'
//!              CHECK (role IN ('user', 'domain-admin', 'server-admin')),
//!     enabled  INTEGER NOT NULL DEFAULT 1,         -- 0: cannot log in, receives no mail
//!     scram    TEXT                                -- SCRAM-SHA-256 verifier, or NULL
//! ) STRICT;
//! PRAGMA user_version = 2;
//! ```
//!
//! `scram` is the SCRAM-SHA-256 verifier of the same password
//! (`SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`,
//! [`mailroom_core::sasl::ScramCredentials::to_text`]), written by
//! [`add_user`] and [`set_password`] beside the argon2 hash. A user without
//! one (NULL, or a version 1 database, which has no such column) logs in
//! with PLAIN and LOGIN but not SCRAM until the password is set again. What
//! a stolen database gives away is as for mailroomd's users file: the
//! verifier is the cheaper target for guessing (4096 PBKDF2 rounds per
//! guess against argon2id's 19 MiB), and its ServerKey lets the thief pose
//! as this server to the user's SCRAM client; neither logs in by itself.
//! The plugin reads databases of version 1 and 2; [`upgrade_database`]
//! adds the column to a version 1 database.
//!
//! # Behaviour
//!
//! - A login names the user as `local@domain` (the domain in any case).
//!   Unknown users, wrong passwords and disabled accounts or domains all
//!   fail the same way, and an unknown user costs the same argon2
//!   verification as a known one (against a dummy hash), so neither the
//!   answer nor its timing tells whether a user exists.
//! - Roles: `user`, `domain-admin` (administers its own domain), and
//!   `server-admin` (administers everything), returned in the principal's
//!   [`Roles`].
//! - A SASL authorization identity (`authzid`) is honoured as by
//!   mailroomd's users file: a user may act as itself, a server admin as
//!   anyone, a domain admin as any plain user of its own domain.
//! - Lookups (for delivery) find enabled users of enabled domains.
//! - SCRAM-SHA-256 (and -PLUS): the plugin is exported with the SCRAM
//!   extension of the plugin ABI, so the host asks it for a user's verifier
//!   (an enabled user of an enabled domain with a stored verifier; anyone
//!   else gets none, and the host fails the proof as for a wrong password),
//!   checks the proof itself, then asks the plugin to authorize the user
//!   under the same `authzid` rules as above.
//!
//! # Dependencies
//!
//! - `rusqlite` with `bundled`: the maintained SQLite binding; the bundled
//!   SQLite means the plugin does not depend on the system's libsqlite3
//!   version (a plugin is copied between machines).
//! - `mailroom_core::password` (argon2id): the hashing every users store of
//!   Mailroom shares, so hashes move between them; verifications run on its
//!   few dedicated threads ([`HashPool::shared`]).
//!
//! # Example
//!
//! ```
//! use mailroom_auth_sqlite::{Role, SqliteAuth, add_domain, add_user, create_database};
//! use mailroom_core::Credentials;
//! use mailroom_plugin::{AuthPlugin, Plugin};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = dir.path().join("users.sqlite");
//! create_database(&db).unwrap();
//! add_domain(&db, "Example.COM").unwrap();
//! add_user(&db, "alice@example.com", "secret", Role::DomainAdmin).unwrap();
//!
//! let auth = SqliteAuth::init(&format!("database = {:?}", db.display().to_string())).unwrap();
//! let who = auth
//!     .authenticate(&Credentials {
//!         authzid: None,
//!         authcid: "alice@EXAMPLE.com".into(),
//!         password: "secret".into(),
//!     })
//!     .unwrap();
//! assert_eq!(who.user, "alice@example.com");
//! assert!(who.roles.domain_admin);
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use mailroom_core::password::{self, HashPool, PasswordError, StoredPassword};
use mailroom_core::sasl::ScramCredentials;
use mailroom_core::{Credentials, Principal, Roles};
use mailroom_plugin::{AuthPlugin, Plugin, PluginFailure, parse_settings};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

mod name;

/// The schema [`create_database`] creates (version 1).
pub const SCHEMA: &str = "\
CREATE TABLE domains (
    name    TEXT PRIMARY KEY NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE TABLE users (
    name     TEXT PRIMARY KEY NOT NULL,
    domain   TEXT NOT NULL REFERENCES domains(name),
    password TEXT NOT NULL,
    role     TEXT NOT NULL DEFAULT 'user'
             CHECK (role IN ('user', 'domain-admin', 'server-admin')),
    enabled  INTEGER NOT NULL DEFAULT 1,
    scram    TEXT
) STRICT;
PRAGMA user_version = 2;
";

/// The schema version [`create_database`] creates (`PRAGMA user_version`);
/// the plugin also reads version 1 (no `scram` column).
pub const SCHEMA_VERSION: i64 = 2;
/// The oldest schema version the plugin reads.
pub const OLDEST_SCHEMA_VERSION: i64 = 1;
/// The longest accepted password, in bytes.
pub use mailroom_core::password::MAX_PASSWORD_BYTES;
pub use name::MAX_NAME_BYTES;
/// The most idle database connections kept for reuse.
const MAX_IDLE_CONNECTIONS: usize = 8;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A plain user.
    User,
    /// Administers its own domain.
    DomainAdmin,
    /// Administers the whole server.
    ServerAdmin,
}

impl Role {
    /// The name stored in the `role` column.
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::DomainAdmin => "domain-admin",
            Role::ServerAdmin => "server-admin",
        }
    }

    fn from_name(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "domain-admin" => Some(Role::DomainAdmin),
            "server-admin" => Some(Role::ServerAdmin),
            _ => None,
        }
    }

    fn roles(self) -> Roles {
        Roles {
            domain_admin: self == Role::DomainAdmin,
            server_admin: self == Role::ServerAdmin,
        }
    }
}

/// What the admin functions can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The database failed (I/O, locked, corrupt, constraint): the server's
    /// side; retrying helps only if it was busy or locked
    /// ([`AdminError::is_temporary`]).
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A user or domain name is not acceptable (the caller's fault).
    #[error("invalid name {name:?}: {reason}")]
    Name {
        /// The name (cut to 64 characters).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A password is not acceptable (the caller's fault).
    #[error("invalid password: {0}")]
    Password(String),
    /// Hashing failed (the server's side; not expected with defaults).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The user's domain is not in the database (the caller's fault).
    #[error("no such domain: {0}")]
    NoSuchDomain(String),
    /// The user exists already (the caller's fault).
    #[error("user {0} already exists")]
    UserExists(String),
    /// There is no such user (the caller's fault).
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// The database has another schema version than this plugin reads.
    #[error(
        "database schema version {found}, this plugin reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}"
    )]
    SchemaVersion {
        /// The version found.
        found: i64,
    },
}

impl AdminError {
    /// Whether retrying later may succeed (the database was busy or locked).
    pub fn is_temporary(&self) -> bool {
        matches!(self, AdminError::Database(e) if is_busy(e))
    }

    /// Whether the server (database, hashing) is at fault rather than the
    /// caller's input.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            AdminError::Database(_) | AdminError::Hash(_) | AdminError::SchemaVersion { .. }
        )
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn name_error(name: &str, reason: &'static str) -> AdminError {
    AdminError::Name {
        name: name.chars().take(64).collect(),
        reason,
    }
}

/// The canonical form of a domain: lower case, labels of letters, digits
/// and inner `-`.
pub fn canonical_domain(domain: &str) -> Result<String, AdminError> {
    name::canonical_domain(domain).map_err(|reason| name_error(domain, reason))
}

/// The canonical form of a user name, `local@domain` (the local part as
/// given, the domain lower case), as mailroomd's users file has it.
pub fn canonical_name(name: &str) -> Result<String, AdminError> {
    name::canonical_name(name).map_err(|reason| name_error(name, reason))
}

fn password_error(e: PasswordError) -> AdminError {
    match e {
        PasswordError::Invalid(reason) => AdminError::Password(reason.to_owned()),
        PasswordError::Prohibited(e) => AdminError::Password(e.to_string()),
        other => AdminError::Hash(other.to_string()),
    }
}

/// Hashes a password (argon2id, default parameters, random salt) into a PHC
/// string for the `password` column ([`mailroom_core::password::hash_argon2`]).
pub fn hash_password(password: &str) -> Result<String, AdminError> {
    password::hash_argon2(password).map_err(password_error)
}

/// The argon2 hash and the SCRAM-SHA-256 verifier of a password, for the
/// `password` and `scram` columns ([`mailroom_core::password::hash_password`]).
pub fn hash_password_and_verifier(password: &str) -> Result<StoredPassword, AdminError> {
    password::hash_password(password).map_err(password_error)
}

/// Verifies on the process's shared hashing threads
/// ([`HashPool::shared`]): the host runs plugin calls on its blocking pool,
/// and argon2's 19 MiB must not land in one allocator arena per thread of
/// it (the plugin has its own allocator, glibc's).
fn verify_password(password: &str, phc: &str) -> bool {
    match HashPool::shared() {
        Ok(pool) => pool.verify_blocking(password, phc),
        Err(_) => password::verify_password(password, phc),
    }
}

fn open_writable(path: &Path) -> Result<Connection, AdminError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// The database's schema version, if this plugin reads it.
fn check_schema(conn: &Connection) -> Result<i64, AdminError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&found) {
        return Err(AdminError::SchemaVersion { found });
    }
    Ok(found)
}

/// Brings a database of an older schema version to [`SCHEMA_VERSION`]
/// (version 1 to 2: adds the `scram` column, NULL for every user until
/// their password is set again). Returns the version found.
pub fn upgrade_database(path: &Path) -> Result<i64, AdminError> {
    let mut conn = open_writable(path)?;
    let tx = conn.transaction()?;
    let found = check_schema(&tx)?;
    if found == 1 {
        tx.execute_batch("ALTER TABLE users ADD COLUMN scram TEXT;\nPRAGMA user_version = 2;")?;
    }
    tx.commit()?;
    Ok(found)
}

/// Creates a new, empty database at `path` with [`SCHEMA`] (fails if the
/// file exists and has tables).
pub fn create_database(path: &Path) -> Result<(), AdminError> {
    let conn = open_writable(path)?;
    conn.execute_batch(&format!("BEGIN;\n{SCHEMA}COMMIT;"))?;
    Ok(())
}

/// Adds a domain (enabled). Returns its canonical name.
pub fn add_domain(path: &Path, domain: &str) -> Result<String, AdminError> {
    let domain = canonical_domain(domain)?;
    let conn = open_writable(path)?;
    check_schema(&conn)?;
    conn.execute(
        "INSERT INTO domains (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
        params![domain],
    )?;
    Ok(domain)
}

/// Adds a user (enabled) to an existing domain, hashing `password` and
/// keeping its SCRAM verifier (not in a version 1 database). Returns the
/// canonical name.
pub fn add_user(path: &Path, name: &str, password: &str, role: Role) -> Result<String, AdminError> {
    let name = canonical_name(name)?;
    let stored = hash_password_and_verifier(password)?;
    let domain = name.rsplit_once('@').map_or("", |(_, d)| d).to_owned();
    let mut conn = open_writable(path)?;
    let version = check_schema(&conn)?;
    let scram = if version >= 2 { stored.scram } else { None };
    let tx = conn.transaction()?;
    let known: Option<String> = tx
        .query_row(
            "SELECT name FROM domains WHERE name = ?1",
            params![domain],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_none() {
        return Err(AdminError::NoSuchDomain(domain));
    }
    let inserted = if version >= 2 {
        tx.execute(
            "INSERT INTO users (name, domain, password, role, scram) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![name, domain, stored.phc, role.name(), scram],
        )?
    } else {
        tx.execute(
            "INSERT INTO users (name, domain, password, role) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, domain, stored.phc, role.name()],
        )?
    };
    if inserted == 0 {
        return Err(AdminError::UserExists(name));
    }
    tx.commit()?;
    Ok(name)
}

/// Sets a user's password: a new argon2 hash and, in a version 2
/// database, a new SCRAM verifier. Fails with
/// [`AdminError::NoSuchUser`] if there is no such user.
pub fn set_password(path: &Path, name: &str, password: &str) -> Result<(), AdminError> {
    let name = canonical_name(name)?;
    let stored = hash_password_and_verifier(password)?;
    let conn = open_writable(path)?;
    let changed = if check_schema(&conn)? >= 2 {
        conn.execute(
            "UPDATE users SET password = ?2, scram = ?3 WHERE name = ?1",
            params![name, stored.phc, stored.scram],
        )?
    } else {
        conn.execute(
            "UPDATE users SET password = ?2 WHERE name = ?1",
            params![name, stored.phc],
        )?
    };
    if changed == 0 {
        return Err(AdminError::NoSuchUser(name));
    }
    Ok(())
}

/// Enables or disables a user (`name`) or, if it has no `@`, a domain.
pub fn set_enabled(path: &Path, name: &str, enabled: bool) -> Result<(), AdminError> {
    let conn = open_writable(path)?;
    check_schema(&conn)?;
    let changed = if name.contains('@') {
        conn.execute(
            "UPDATE users SET enabled = ?2 WHERE name = ?1",
            params![canonical_name(name)?, enabled],
        )?
    } else {
        conn.execute(
            "UPDATE domains SET enabled = ?2 WHERE name = ?1",
            params![canonical_domain(name)?, enabled],
        )?
    };
    if changed == 0 {
        return Err(AdminError::NoSuchDomain(name.chars().take(64).collect()));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    database: PathBuf,
}

/// One account as read for a login.
struct Account {
    name: String,
    password: String,
    /// The SCRAM verifier's text, if one is stored.
    scram: Option<String>,
    role: Role,
    /// The user and its domain are both enabled.
    enabled: bool,
}

impl Account {
    fn principal(&self) -> Principal {
        let mut p = Principal::user(self.name.clone());
        p.roles = self.role.roles();
        p
    }
}

/// The auth plugin: see the [crate docs](crate).
pub struct SqliteAuth {
    path: PathBuf,
    /// The database has the `scram` column (schema version 2).
    has_scram: bool,
    idle: Mutex<Vec<Connection>>,
    dummy_hash: OnceLock<String>,
}

impl std::fmt::Debug for SqliteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuth")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_failure(e: rusqlite::Error) -> PluginFailure {
    if is_busy(&e) {
        PluginFailure::temporary(format!("database busy: {e}"))
    } else {
        PluginFailure::failed(format!("database: {e}"))
    }
}

impl SqliteAuth {
    fn open(&self) -> Result<Connection, PluginFailure> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| PluginFailure::failed(format!("{}: {e}", self.path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(db_failure)?;
        Ok(conn)
    }

    /// Runs `query` on a pooled read-only connection.
    fn with_connection<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, PluginFailure> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = query(&conn).map_err(db_failure);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
        result
    }

    fn account(&self, name: &str) -> Result<Option<Account>, PluginFailure> {
        let query = if self.has_scram {
            "SELECT u.name, u.password, u.role, u.enabled AND d.enabled, u.scram
             FROM users u JOIN domains d ON d.name = u.domain
             WHERE u.name = ?1"
        } else {
            "SELECT u.name, u.password, u.role, u.enabled AND d.enabled, NULL
             FROM users u JOIN domains d ON d.name = u.domain
             WHERE u.name = ?1"
        };
        let row = self.with_connection(|conn| {
            conn.query_row(query, params![name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()
        })?;
        let Some((name, password, role, enabled, scram)) = row else {
            return Ok(None);
        };
        let role = Role::from_name(&role).ok_or_else(|| {
            PluginFailure::failed(format!(
                "user {name}: unknown role {role:?} in the database"
            ))
        })?;
        Ok(Some(Account {
            name,
            password,
            scram,
            role,
            enabled,
        }))
    }

    /// Burns one verification against a dummy hash so that an unknown user
    /// takes as long as a wrong password.
    fn verify_dummy(&self, password: &str) {
        match HashPool::shared() {
            Ok(pool) => pool.verify_dummy_blocking(password),
            Err(_) => {
                let dummy = self.dummy_hash.get_or_init(|| {
                    hash_password("mailroom-auth-sqlite dummy").unwrap_or_default()
                });
                password::verify_password(password, dummy);
            }
        }
    }
}

impl Plugin for SqliteAuth {
    fn init(settings: &str) -> Result<Self, PluginFailure> {
        let settings: Settings = parse_settings(settings)?;
        let mut auth = SqliteAuth {
            path: settings.database,
            has_scram: false,
            idle: Mutex::new(Vec::new()),
            dummy_hash: OnceLock::new(),
        };
        let conn = auth.open()?;
        let version = check_schema(&conn)
            .map_err(|e| PluginFailure::failed(format!("{}: {e}", auth.path.display())))?;
        auth.has_scram = version >= 2;
        if let Ok(mut idle) = auth.idle.lock() {
            idle.push(conn);
        }
        Ok(auth)
    }
}

impl AuthPlugin for SqliteAuth {
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, PluginFailure> {
        let password = credentials.password.as_str();
        let account = match canonical_name(&credentials.authcid) {
            Ok(name) => self.account(&name)?,
            Err(_) => None,
        };
        let Some(account) = account else {
            self.verify_dummy(password);
            return Err(PluginFailure::auth_failed("no such user"));
        };
        if !verify_password(password, &account.password) {
            return Err(PluginFailure::auth_failed(format!(
                "{}: wrong password",
                account.name
            )));
        }
        if !account.enabled {
            return Err(PluginFailure::auth_failed(format!(
                "{}: account or domain disabled",
                account.name
            )));
        }
        self.act_as(account, credentials.authzid.as_deref())
    }

    fn lookup(&self, user: &str) -> Result<Option<Principal>, PluginFailure> {
        let Ok(name) = canonical_name(user) else {
            return Ok(None);
        };
        Ok(self
            .account(&name)?
            .filter(|a| a.enabled)
            .map(|a| a.principal()))
    }

    fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>, PluginFailure> {
        let Ok(name) = canonical_name(user) else {
            return Ok(None);
        };
        Ok(self
            .account(&name)?
            .filter(|a| a.enabled)
            .and_then(|a| a.scram)
            .as_deref()
            .and_then(ScramCredentials::parse))
    }

    fn authorize(&self, authcid: &str, authzid: Option<&str>) -> Result<Principal, PluginFailure> {
        let account = match canonical_name(authcid) {
            Ok(name) => self.account(&name)?.filter(|a| a.enabled),
            Err(_) => None,
        };
        let Some(account) = account else {
            return Err(PluginFailure::auth_failed("no such user or disabled"));
        };
        self.act_as(account, authzid)
    }
}

impl SqliteAuth {
    /// The principal `account` (authenticated, enabled) gets acting as
    /// `authzid`: itself, or another user under the rules of the crate docs.
    fn act_as(&self, account: Account, authzid: Option<&str>) -> Result<Principal, PluginFailure> {
        let Some(authzid) = authzid else {
            return Ok(account.principal());
        };
        let target = match canonical_name(authzid) {
            Ok(name) => self.account(&name)?.filter(|t| t.enabled),
            Err(_) => None,
        };
        let Some(target) = target else {
            return Err(PluginFailure::auth_failed(format!(
                "{}: no such user to act as",
                account.name
            )));
        };
        if target.name == account.name {
            return Ok(account.principal());
        }
        let acting = account.principal();
        let wanted = target.principal();
        let allowed = acting.roles.server_admin
            || (acting.roles.domain_admin
                && acting.domain == wanted.domain
                && target.role == Role::User);
        if allowed {
            Ok(wanted)
        } else {
            Err(PluginFailure::auth_failed(format!(
                "{} may not act as {}",
                account.name, target.name
            )))
        }
    }
}

mailroom_plugin::export_auth_plugin!(SqliteAuth, scram);

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str, authzid: Option<&str>) -> Credentials {
        Credentials {
            authzid: authzid.map(str::to_owned),
            authcid: user.into(),
            password: password.into(),
        }
    }

    fn setup() -> (tempfile::TempDir, SqliteAuth) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("users.sqlite");
        create_database(&db).unwrap();
        add_domain(&db, "x.org").unwrap();
        add_domain(&db, "y.org").unwrap();
        add_user(&db, "alice@x.org", "pw-a", Role::User).unwrap();
        add_user(&db, "boss@x.org", "pw-b", Role::DomainAdmin).unwrap();
        add_user(&db, "root@y.org", "pw-r", Role::ServerAdmin).unwrap();
        add_user(&db, "yuri@y.org", "pw-y", Role::User).unwrap();
        let settings = format!("database = {:?}", db.display().to_string());
        (dir, SqliteAuth::init(&settings).unwrap())
    }

    #[test]
    fn logins_roles_and_failures() {
        let (_dir, auth) = setup();
        let a = auth
            .authenticate(&creds("alice@X.ORG", "pw-a", None))
            .unwrap();
        assert_eq!(
            (a.user.as_str(), a.domain.as_deref()),
            ("alice@x.org", Some("x.org"))
        );
        assert_eq!(a.roles, Roles::default());
        let b = auth
            .authenticate(&creds("boss@x.org", "pw-b", None))
            .unwrap();
        assert!(b.roles.domain_admin && !b.roles.server_admin);
        let r = auth
            .authenticate(&creds("root@y.org", "pw-r", None))
            .unwrap();
        assert!(r.roles.server_admin && !r.roles.domain_admin);

        for (user, pw) in [
            ("alice@x.org", "pw-b"),
            ("nobody@x.org", "pw-a"),
            ("alice", "pw-a"),
            ("", ""),
        ] {
            let err = auth.authenticate(&creds(user, pw, None)).unwrap_err();
            assert_eq!(
                err.kind(),
                mailroom_plugin::FailureKind::AuthFailed,
                "{user}"
            );
        }
    }

    #[test]
    fn authorization_identities() {
        let (_dir, auth) = setup();
        let as_user = |who: &str, pw: &str, target: &str| {
            auth.authenticate(&creds(who, pw, Some(target)))
                .map(|p| p.user)
        };
        assert_eq!(
            as_user("alice@x.org", "pw-a", "alice@x.org").unwrap(),
            "alice@x.org"
        );
        assert!(as_user("alice@x.org", "pw-a", "boss@x.org").is_err());
        assert_eq!(
            as_user("boss@x.org", "pw-b", "alice@x.org").unwrap(),
            "alice@x.org"
        );
        assert!(as_user("boss@x.org", "pw-b", "yuri@y.org").is_err());
        assert!(as_user("boss@x.org", "pw-b", "root@y.org").is_err());
        assert_eq!(
            as_user("root@y.org", "pw-r", "boss@x.org").unwrap(),
            "boss@x.org"
        );
        assert!(as_user("root@y.org", "pw-r", "ghost@x.org").is_err());
    }

    #[test]
    fn disabled_accounts_and_domains() {
        let (dir, auth) = setup();
        let db = dir.path().join("users.sqlite");
        set_enabled(&db, "alice@x.org", false).unwrap();
        assert!(
            auth.authenticate(&creds("alice@x.org", "pw-a", None))
                .is_err()
        );
        assert_eq!(auth.lookup("alice@x.org").unwrap(), None);
        set_enabled(&db, "alice@x.org", true).unwrap();
        assert!(
            auth.authenticate(&creds("alice@x.org", "pw-a", None))
                .is_ok()
        );
        set_enabled(&db, "x.org", false).unwrap();
        assert!(
            auth.authenticate(&creds("boss@x.org", "pw-b", None))
                .is_err()
        );
        assert!(
            auth.authenticate(&creds("yuri@y.org", "pw-y", None))
                .is_ok()
        );
    }

    #[test]
    fn lookups() {
        let (_dir, auth) = setup();
        let p = auth.lookup("Boss@X.org").unwrap();
        assert_eq!(p, None, "the local part is case-sensitive");
        let p = auth.lookup("boss@X.org").unwrap().unwrap();
        assert_eq!(p.user, "boss@x.org");
        assert!(p.roles.domain_admin);
        assert_eq!(auth.lookup("nobody@x.org").unwrap(), None);
        assert_eq!(auth.lookup("not a name").unwrap(), None);
    }

    #[test]
    fn admin_errors() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("users.sqlite");
        create_database(&db).unwrap();
        assert!(create_database(&db).is_err(), "creating twice fails");
        assert!(matches!(
            add_user(&db, "a@nowhere.org", "pw", Role::User),
            Err(AdminError::NoSuchDomain(d)) if d == "nowhere.org"
        ));
        add_domain(&db, "X.org").unwrap();
        add_user(&db, "a@x.org", "pw", Role::User).unwrap();
        let dup = add_user(&db, "a@X.ORG", "pw", Role::User);
        assert!(
            matches!(dup, Err(AdminError::UserExists(ref n)) if n == "a@x.org"),
            "{dup:?}"
        );
        assert!(matches!(
            add_user(&db, "a b@x.org", "pw", Role::User),
            Err(AdminError::Name { .. })
        ));
        assert!(matches!(
            add_user(&db, "b@x.org", "", Role::User),
            Err(AdminError::Password(_))
        ));
        assert!(matches!(
            add_domain(&db, "-x.org"),
            Err(AdminError::Name { .. })
        ));

        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("PRAGMA user_version = 7;")
            .unwrap();
        let err =
            SqliteAuth::init(&format!("database = {:?}", other.display().to_string())).unwrap_err();
        assert!(err.message().contains("schema version 7"), "{err}");
        let err = SqliteAuth::init("database = \"/nonexistent/users.sqlite\"").unwrap_err();
        assert_eq!(err.kind(), mailroom_plugin::FailureKind::Failed);
        assert!(SqliteAuth::init("databse = \"x\"").is_err());
    }

    #[test]
    fn scram_verifiers_and_authorization() {
        let (dir, auth) = setup();
        let db = dir.path().join("users.sqlite");
        let v = auth.scram_credentials("alice@X.org").unwrap().unwrap();
        assert_eq!(
            v,
            ScramCredentials::derive("pw-a", &v.salt, v.iterations),
            "the verifier of alice's password"
        );
        assert_eq!(auth.scram_credentials("ghost@x.org").unwrap(), None);
        assert_eq!(auth.scram_credentials("not a name").unwrap(), None);
        assert_eq!(
            auth.authorize("alice@x.org", None).unwrap().user,
            "alice@x.org"
        );
        assert_eq!(
            auth.authorize("boss@x.org", Some("alice@x.org"))
                .unwrap()
                .user,
            "alice@x.org"
        );
        assert!(auth.authorize("alice@x.org", Some("boss@x.org")).is_err());
        assert!(auth.authorize("ghost@x.org", None).is_err());
        set_enabled(&db, "alice@x.org", false).unwrap();
        assert_eq!(auth.scram_credentials("alice@x.org").unwrap(), None);
        assert!(auth.authorize("alice@x.org", None).is_err());
        set_enabled(&db, "alice@x.org", true).unwrap();

        set_password(&db, "alice@x.org", "new-pw").unwrap();
        let w = auth.scram_credentials("alice@x.org").unwrap().unwrap();
        assert_eq!(w, ScramCredentials::derive("new-pw", &w.salt, w.iterations));
        assert!(
            auth.authenticate(&creds("alice@x.org", "new-pw", None))
                .is_ok()
        );
        assert!(matches!(
            set_password(&db, "ghost@x.org", "pw"),
            Err(AdminError::NoSuchUser(_))
        ));
        assert!(matches!(
            set_password(&db, "alice@x.org", "tab\tpw"),
            Err(AdminError::Password(m)) if m.contains("SASLprep")
        ));
    }

    /// A version 1 database (no `scram` column) still works, without
    /// SCRAM; `upgrade_database` adds the column, and a password set again
    /// gets a verifier.
    #[test]
    fn version_1_databases() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("users.sqlite");
        let v1 = SCHEMA
            .replace(",\n    scram    TEXT\n", "\n")
            .replace("user_version = 2", "user_version = 1");
        assert!(!v1.contains("scram"));
        open_writable(&db).unwrap().execute_batch(&v1).unwrap();
        add_domain(&db, "x.org").unwrap();
        add_user(&db, "alice@x.org", "pw-a", Role::User).unwrap();
        let settings = format!("database = {:?}", db.display().to_string());
        let auth = SqliteAuth::init(&settings).unwrap();
        assert!(
            auth.authenticate(&creds("alice@x.org", "pw-a", None))
                .is_ok()
        );
        assert_eq!(auth.scram_credentials("alice@x.org").unwrap(), None);

        assert_eq!(upgrade_database(&db).unwrap(), 1);
        assert_eq!(upgrade_database(&db).unwrap(), 2);
        let auth = SqliteAuth::init(&settings).unwrap();
        assert_eq!(auth.scram_credentials("alice@x.org").unwrap(), None);
        set_password(&db, "alice@x.org", "pw-a2").unwrap();
        assert!(auth.scram_credentials("alice@x.org").unwrap().is_some());
    }

    proptest::proptest! {
        /// Any login name: no panic; an accepted one is canonical
        /// (idempotent, domain lower case, bounded).
        #[test]
        fn canonical_names(name in "[a-zA-Z0-9._@-]{0,20}|\\PC{0,300}") {
            if let Ok(c) = canonical_name(&name) {
                proptest::prop_assert_eq!(canonical_name(&c).ok(), Some(c.clone()));
                let (_, domain) = c.rsplit_once('@').unwrap();
                proptest::prop_assert_eq!(domain.to_ascii_lowercase(), domain);
                proptest::prop_assert!(c.len() <= MAX_NAME_BYTES);
                proptest::prop_assert!(name.eq_ignore_ascii_case(&c));
            }
        }
    }
}
