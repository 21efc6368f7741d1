//! The users file: one `[[user]]` entry per account with an argon2 PHC
//! password hash, the SCRAM-SHA-256 verifier of the same password, and
//! optional roles.
//!
//! ```toml
//! # Managed by `mailroomd user ...`; edits by hand are picked up on the fly.
//! [[user]]
//! name = "alice@example.com"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$...$..."
//! scram = "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
//! roles = ["domain-admin"]
//! ```
//!
//! `scram` (written whenever a password is set; an entry without it, from
//! before, logs in with every mechanism but SCRAM until its password is set
//! again) is `SCRAM-SHA-256$` iterations `:` base64(salt) `$`
//! base64(StoredKey) `:` base64(ServerKey), as RFC 5802 §3 defines them
//! (see [`mailroom_core::sasl::scram::ScramCredentials`]).
//!
//! ## What a stolen users file gives an attacker
//!
//! - Passwords, only by guessing: each guess costs one argon2id hash
//!   (19 MiB, 2 passes) against `password`, or 4096 HMAC-SHA-256 rounds
//!   against `scram`. The SCRAM verifier is the cheaper target, by far: a
//!   weak password falls to it much faster than to argon2, so the file's
//!   strength is that of PBKDF2-SHA-256 with 4096 iterations. Use long
//!   random passwords (`mailroomd user add --random-password`).
//! - No login without a guess: `StoredKey` is a hash of the key the client
//!   proves, so it cannot stand in for the password in a SCRAM exchange,
//!   and PLAIN/LOGIN need the password itself.
//! - `ServerKey` lets the thief pose as this server to a SCRAM client of
//!   that user (sign a server-final message), e.g. behind a stolen TLS key.
//!
//! After a theft, set every password again: that replaces both the argon2
//! hash and the verifier (new salt).
//!
//! The file is written atomically with mode 0600 under an advisory lock
//! (`users.toml.lock`), so concurrent admin commands never lose an update and
//! a running server never reads half a file. Plaintext passwords are never
//! stored.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use mailroom_core::password::{self, PasswordError};
pub use mailroom_core::password::{MAX_PASSWORD_BYTES, StoredPassword, verify_password};
use mailroom_core::sasl::ScramCredentials;
use mailroom_core::{Principal, Roles};
use serde::{Deserialize, Serialize};

use mailroom_store_postgres::{PgOptions, PgUsers, UserRow};

use crate::config::{AuthSettings, UsersBackend};
use crate::fsutil::{self, FileLock};

/// The largest users file read: 64 MiB, about 400,000 users of about
/// 160 bytes each (name, default-parameter PHC hash, TOML keys).
const MAX_USERS_FILE_BYTES: u64 = 64 << 20;
/// The longest accepted user name, in bytes.
pub const MAX_NAME_BYTES: usize = 254;

/// A user name that is not an acceptable `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid user name {name:?}: {reason}")]
pub struct NameError {
    name: String,
    reason: &'static str,
}

/// What can go wrong with the users file or a user operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// Reading or writing the file failed.
    #[error("users file {path}: {source}")]
    Io {
        /// The users file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("users file {path}: {source}")]
    Parse {
        /// The users file.
        path: PathBuf,
        /// The TOML error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// The file parsed but an entry is not acceptable.
    #[error("users file {path}: {reason}")]
    Invalid {
        /// The users file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A user name is malformed.
    #[error(transparent)]
    Name(#[from] NameError),
    /// `user add` of a user that exists.
    #[error("user {0} already exists")]
    UserExists(String),
    /// The user does not exist.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// A password is not acceptable.
    #[error("invalid password: {0}")]
    Password(String),
    /// Hashing failed (should not happen with default parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The users table in PostgreSQL could not be reached or read.
    #[error("users database: {0}")]
    Database(mailroom_core::Error),
}

/// An administrative role, as written in the users file and on the command line.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Administers the users of their own domain.
    DomainAdmin,
    /// Administers the whole server.
    ServerAdmin,
}

impl Role {
    /// The name used in the file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::DomainAdmin => "domain-admin",
            Role::ServerAdmin => "server-admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The canonical name, `local@domain` with the domain in lower case.
    pub name: String,
    /// The argon2 PHC string.
    pub password: String,
    /// The SCRAM-SHA-256 verifier of the same password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scram: Option<String>,
    /// Administrative roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("password", &"<argon2 hash>")
            .field("scram", &self.scram.as_ref().map(|_| "<verifier>"))
            .field("roles", &self.roles)
            .finish()
    }
}

impl UserRecord {
    /// The principal this account authenticates as.
    pub fn principal(&self) -> Principal {
        let mut principal = Principal::user(self.name.clone());
        principal.roles = Roles {
            domain_admin: self.roles.contains(&Role::DomainAdmin),
            server_admin: self.roles.contains(&Role::ServerAdmin),
        };
        principal
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFileRepr {
    #[serde(default, rename = "user")]
    users: Vec<UserRecord>,
}

/// The users of a users file, by canonical name.
#[derive(Debug, Default, Clone)]
pub struct UserDb {
    users: BTreeMap<String, UserRecord>,
}

impl UserDb {
    /// Reads a users file; a missing file is an empty database.
    pub fn load(path: &Path) -> Result<UserDb, UsersError> {
        match read_bounded(path) {
            Ok(text) => UserDb::parse(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UserDb::default()),
            Err(source) => Err(UsersError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of a users file (`path` is for messages only).
    pub fn parse(path: &Path, text: &str) -> Result<UserDb, UsersError> {
        let repr: UsersFileRepr = toml::from_str(text).map_err(|e| UsersError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let invalid = |reason: String| UsersError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let mut users = BTreeMap::new();
        for mut record in repr.users {
            let name = canonical_name(&record.name).map_err(|e| invalid(e.to_string()))?;
            if !password::is_phc(&record.password) {
                return Err(invalid(format!(
                    "user {name}: password is not an argon2 PHC hash string"
                )));
            }
            if record
                .scram
                .as_deref()
                .is_some_and(|v| ScramCredentials::parse(v).is_none())
            {
                return Err(invalid(format!(
                    "user {name}: scram is not a SCRAM-SHA-256 verifier"
                )));
            }
            record.roles.sort();
            record.roles.dedup();
            record.name = name.clone();
            if users.insert(name.clone(), record).is_some() {
                return Err(invalid(format!("user {name} is listed twice")));
            }
        }
        Ok(UserDb { users })
    }

    /// The database of these records (already canonical, as
    /// [`Directory::list`] gives them); a name given twice keeps the last.
    pub fn from_records(records: impl IntoIterator<Item = UserRecord>) -> UserDb {
        UserDb {
            users: records.into_iter().map(|r| (r.name.clone(), r)).collect(),
        }
    }

    /// The file's text, users sorted by name.
    pub fn to_toml(&self) -> String {
        let repr = UsersFileRepr {
            users: self.users.values().cloned().collect(),
        };
        let body = toml::to_string(&repr).unwrap_or_default();
        format!(
            "# mailroomd users file. Managed by `mailroomd user ...`;\n\
             # a running server picks up changes on the fly. Keep it mode 0600.\n\n{body}"
        )
    }

    /// Writes the database atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let io_err = |source| UsersError::Io {
            path: path.to_owned(),
            source,
        };
        fsutil::create_dir_private(&fsutil::parent_dir(path), 0o700).map_err(io_err)?;
        fsutil::write_atomic(path, self.to_toml().as_bytes(), 0o600).map_err(io_err)
    }

    /// Loads, changes and saves the file under its lock.
    pub fn modify<T>(
        path: &Path,
        change: impl FnOnce(&mut UserDb) -> Result<T, UsersError>,
    ) -> Result<T, UsersError> {
        let io_err = |source| UsersError::Io {
            path: path.to_owned(),
            source,
        };
        fsutil::create_dir_private(&fsutil::parent_dir(path), 0o700).map_err(io_err)?;
        let _lock = FileLock::acquire(path).map_err(io_err)?;
        let mut db = UserDb::load(path)?;
        let out = change(&mut db)?;
        db.save(path)?;
        Ok(out)
    }

    /// The record of a user (any case in the domain part).
    pub fn get(&self, name: &str) -> Option<&UserRecord> {
        let name = canonical_name(name).ok()?;
        self.users.get(&name)
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> impl Iterator<Item = &UserRecord> {
        self.users.values()
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Adds a user with an already computed hash (see [`hash_password`]).
    /// Returns the canonical name.
    pub fn add(
        &mut self,
        name: &str,
        password_hash: StoredPassword,
        mut roles: Vec<Role>,
    ) -> Result<String, UsersError> {
        let name = canonical_name(name)?;
        if self.users.contains_key(&name) {
            return Err(UsersError::UserExists(name));
        }
        roles.sort();
        roles.dedup();
        self.users.insert(
            name.clone(),
            UserRecord {
                name: name.clone(),
                password: password_hash.phc,
                scram: password_hash.scram,
                roles,
            },
        );
        Ok(name)
    }

    /// Removes a user. Returns the canonical name.
    pub fn remove(&mut self, name: &str) -> Result<String, UsersError> {
        let name = canonical_name(name)?;
        match self.users.remove(&name) {
            Some(_) => Ok(name),
            None => Err(UsersError::NoSuchUser(name)),
        }
    }

    /// Replaces a user's password hash. Returns the canonical name.
    pub fn set_password(
        &mut self,
        name: &str,
        password_hash: StoredPassword,
    ) -> Result<String, UsersError> {
        let name = canonical_name(name)?;
        match self.users.get_mut(&name) {
            Some(record) => {
                record.password = password_hash.phc;
                record.scram = password_hash.scram;
                Ok(name)
            }
            None => Err(UsersError::NoSuchUser(name)),
        }
    }
}

/// Where users live: the users file, or the `users` table of a PostgreSQL
/// database (`[auth] backend`). Admin commands, the admin socket's quota
/// and domain commands and the authenticator all go through it, so they
/// work alike on either. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Directory {
    /// The users file, changed under its lock ([`UserDb::modify`]).
    File(PathBuf),
    /// The PostgreSQL users table, shared by every frontend on the database.
    Postgres(PgUsers),
}

impl From<&Path> for Directory {
    fn from(path: &Path) -> Directory {
        Directory::File(path.to_owned())
    }
}

impl From<&PathBuf> for Directory {
    fn from(path: &PathBuf) -> Directory {
        Directory::File(path.clone())
    }
}

fn record_of(row: UserRow) -> Result<UserRecord, UsersError> {
    let mut roles = Vec::with_capacity(row.roles.len());
    for r in &row.roles {
        roles.push(match r.as_str() {
            "domain-admin" => Role::DomainAdmin,
            "server-admin" => Role::ServerAdmin,
            other => {
                return Err(UsersError::Invalid {
                    path: PathBuf::from("<users table>"),
                    reason: format!("user {}: unknown role {other:?}", row.name),
                });
            }
        });
    }
    roles.sort();
    roles.dedup();
    Ok(UserRecord {
        name: row.name,
        password: row.password,
        scram: row.scram,
        roles,
    })
}

impl Directory {
    /// Opens the directory `[auth]` names. `store` is the server's open
    /// store, whose pool the users table shares when it is on the same
    /// database; without it (admin commands) a small pool of its own
    /// connects, migrating the schema if needed.
    pub async fn open(
        auth: &AuthSettings,
        store: Option<&crate::store::Store>,
    ) -> Result<Directory, UsersError> {
        match &auth.backend {
            UsersBackend::File => Ok(Directory::File(auth.users_file.clone())),
            UsersBackend::Postgres {
                url,
                pool_size,
                same_as_store,
            } => {
                if *same_as_store && let Some(crate::store::Store::Postgres(pg)) = store {
                    return Ok(Directory::Postgres(pg.users()));
                }
                let users = PgUsers::connect(&PgOptions {
                    url: url.clone(),
                    pool_size: *pool_size,
                    migrate: true,
                    view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
                })
                .await
                .map_err(|e| {
                    UsersError::Database(mailroom_core::Error::Unavailable(e.to_string()))
                })?;
                Ok(Directory::Postgres(users))
            }
        }
    }

    /// What a message names: the users file's path or `the PostgreSQL users table`.
    pub fn describe(&self) -> String {
        match self {
            Directory::File(path) => format!("users file {}", path.display()),
            Directory::Postgres(_) => "PostgreSQL users table".into(),
        }
    }

    /// The record of a user (any case in the domain part).
    pub async fn get(&self, name: &str) -> Result<Option<UserRecord>, UsersError> {
        let Ok(name) = canonical_name(name) else {
            return Ok(None);
        };
        match self {
            Directory::File(path) => Ok(UserDb::load(path)?.get(&name).cloned()),
            Directory::Postgres(users) => users
                .get(&name)
                .await
                .map_err(UsersError::Database)?
                .map(record_of)
                .transpose(),
        }
    }

    /// Every user, sorted by name.
    pub async fn list(&self) -> Result<Vec<UserRecord>, UsersError> {
        match self {
            Directory::File(path) => Ok(UserDb::load(path)?.users().cloned().collect()),
            Directory::Postgres(users) => users
                .list()
                .await
                .map_err(UsersError::Database)?
                .into_iter()
                .map(record_of)
                .collect(),
        }
    }

    /// Adds a user with an already computed hash. Returns the canonical name.
    pub async fn add(
        &self,
        name: &str,
        password_hash: StoredPassword,
        mut roles: Vec<Role>,
    ) -> Result<String, UsersError> {
        match self {
            Directory::File(path) => UserDb::modify(path, |db| db.add(name, password_hash, roles)),
            Directory::Postgres(users) => {
                let name = canonical_name(name)?;
                roles.sort();
                roles.dedup();
                let row = UserRow {
                    name: name.clone(),
                    password: password_hash.phc,
                    scram: password_hash.scram,
                    roles: roles.iter().map(|r| r.name().to_owned()).collect(),
                };
                if users.add(&row).await.map_err(UsersError::Database)? {
                    Ok(name)
                } else {
                    Err(UsersError::UserExists(name))
                }
            }
        }
    }

    /// Replaces a user's password hash. Returns the canonical name.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: StoredPassword,
    ) -> Result<String, UsersError> {
        match self {
            Directory::File(path) => {
                UserDb::modify(path, |db| db.set_password(name, password_hash))
            }
            Directory::Postgres(users) => {
                let name = canonical_name(name)?;
                let changed = users
                    .set_password(&name, &password_hash.phc, password_hash.scram.as_deref())
                    .await
                    .map_err(UsersError::Database)?;
                if changed {
                    Ok(name)
                } else {
                    Err(UsersError::NoSuchUser(name))
                }
            }
        }
    }

    /// Removes a user (not their mailboxes). Returns the canonical name.
    pub async fn remove(&self, name: &str) -> Result<String, UsersError> {
        match self {
            Directory::File(path) => UserDb::modify(path, |db| db.remove(name)),
            Directory::Postgres(users) => {
                let name = canonical_name(name)?;
                if users.remove(&name).await.map_err(UsersError::Database)? {
                    Ok(name)
                } else {
                    Err(UsersError::NoSuchUser(name))
                }
            }
        }
    }
}

/// The canonical form of a user name: `local@domain`, the local part kept
/// as given, the domain lower-cased. Local parts allow ASCII letters,
/// digits, `.`, `_` and `-` (no `+`, which delivery reads as a detail
/// separator, and nothing that means something in a path or an IMAP
/// mailbox pattern); domains are dot-separated labels of letters, digits
/// and `-`.
///
/// ```
/// use mailroomd::users::canonical_name;
/// assert_eq!(canonical_name("Alice@Example.COM").unwrap(), "Alice@example.com");
/// assert!(canonical_name("alice").is_err());
/// assert!(canonical_name("a+b@example.com").is_err());
/// ```
pub fn canonical_name(name: &str) -> Result<String, NameError> {
    let err = |reason| NameError {
        name: name.chars().take(64).collect(),
        reason,
    };
    if name.len() > MAX_NAME_BYTES {
        return Err(err("longer than 254 bytes"));
    }
    let (local, domain) = name
        .rsplit_once('@')
        .ok_or_else(|| err("must be USER@DOMAIN"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(err("the part before @ must be 1 to 64 characters"));
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(err(
            "the part before @ may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(err("dots in the part before @ must separate words"));
    }
    if domain.is_empty() {
        return Err(err("the domain after @ is empty"));
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(err("each domain label must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(err(
                "domain labels may contain only letters, digits and inner '-'",
            ));
        }
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// Checks that a password can be stored and presented over IMAP/POP3 SASL
/// ([`mailroom_core::password::check_password`]).
pub fn check_password(password: &str) -> Result<(), UsersError> {
    Ok(password::check_password(password)?)
}

/// Hashes a password with argon2id (default parameters, random salt) and
/// derives its SCRAM-SHA-256 verifier (random salt, 4096 iterations), on
/// the calling thread ([`mailroom_core::password::hash_password`]; a server
/// hashes on its [`mailroom_core::password::HashPool`]).
pub fn hash_password(password: &str) -> Result<StoredPassword, UsersError> {
    Ok(password::hash_password(password)?)
}

impl From<PasswordError> for UsersError {
    fn from(e: PasswordError) -> UsersError {
        match e {
            PasswordError::Invalid(reason) => UsersError::Password(reason.to_owned()),
            PasswordError::Prohibited(e) => UsersError::Password(e.to_string()),
            other => UsersError::Hash(other.to_string()),
        }
    }
}

/// A random password of `len` letters and digits (about 5.95 bits each),
/// from the operating system's generator via aws-lc-rs.
pub fn random_password(len: usize) -> Result<String, UsersError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| UsersError::Hash("no randomness".into()))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for &b in &buf {
            if out.len() == len {
                break;
            }
            if usize::from(b) < limit {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Reads a password from the first line of `input` (a trailing CR/LF is
/// removed), as `--password-stdin` does.
pub fn read_password(input: impl Read) -> Result<String, UsersError> {
    let mut buf = Vec::new();
    input
        .take(MAX_PASSWORD_BYTES as u64 + 2)
        .read_to_end(&mut buf)
        .map_err(|source| UsersError::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let mut line = &buf[..line_end];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let password =
        std::str::from_utf8(line).map_err(|_| UsersError::Password("not valid UTF-8".into()))?;
    check_password(password)?;
    Ok(password.to_owned())
}

fn read_bounded(path: &Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_USERS_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_USERS_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file larger than 64 MiB",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            canonical_name("bob@EXAMPLE.org").unwrap(),
            "bob@example.org"
        );
        assert_eq!(canonical_name("b.o_b-1@a-b.c").unwrap(), "b.o_b-1@a-b.c");
        for bad in [
            "", "bob", "@x", "bob@", "bob@x..y", "bob@-x", "b b@x", "b/b@x", "b%@x", "b*@x",
            ".b@x", "b..c@x", "bob@x_y", "bob@x@y", "b+d@x",
        ] {
            assert!(canonical_name(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@x.org", "a".repeat(65));
        assert!(canonical_name(&long).is_err());
    }

    #[test]
    fn passwords() {
        assert_eq!(read_password(&b"s3cret\n"[..]).unwrap(), "s3cret");
        assert_eq!(read_password(&b"s3cret\r\nignored"[..]).unwrap(), "s3cret");
        assert_eq!(read_password(&b"with space"[..]).unwrap(), "with space");
        assert!(read_password(&b"\n"[..]).is_err());
        assert!(read_password(&b""[..]).is_err());
        assert!(read_password(&[0xff, 0xfe][..]).is_err());
        assert!(read_password(&vec![b'a'; 2000][..]).is_err());
        assert!(check_password("a\0b").is_err());
    }

    #[test]
    fn random_passwords() {
        let a = random_password(20).unwrap();
        let b = random_password(20).unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        check_password(&a).unwrap();
    }

    #[test]
    fn hash_and_verify() {
        let stored = hash_password("correct horse").unwrap();
        assert!(!format!("{stored:?}").contains("argon2id"));
        let scram = ScramCredentials::parse(stored.scram.as_deref().unwrap()).unwrap();
        assert_eq!(
            scram,
            ScramCredentials::derive("correct horse", &scram.salt, scram.iterations)
        );
        let h = stored.phc;
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        // salts are random
        assert_ne!(h, hash_password("correct horse").unwrap().phc);
    }

    #[test]
    fn file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/users.toml");
        let hash = hash_password("pw").unwrap();
        let name = UserDb::modify(&path, |db| {
            db.add(
                "Alice@Example.com",
                hash.clone(),
                vec![Role::ServerAdmin, Role::ServerAdmin],
            )
        })
        .unwrap();
        assert_eq!(name, "Alice@example.com");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let db = UserDb::load(&path).unwrap();
        let rec = db.get("Alice@EXAMPLE.COM").unwrap();
        assert_eq!(rec.roles, vec![Role::ServerAdmin]);
        assert!(rec.principal().roles.server_admin);
        assert_eq!(rec.principal().domain.as_deref(), Some("example.com"));
        assert!(
            db.get("alice@example.com").is_none(),
            "local part is case-sensitive"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("server-admin") && text.contains("$argon2id$"));

        let e = UserDb::modify(&path, |db| {
            db.add("alice@example.com", hash.clone(), vec![])
        })
        .map(|_| ());
        assert!(e.is_ok(), "different local-part case is a different user");
        let e = UserDb::modify(&path, |db| {
            db.add("Alice@EXAMPLE.com", hash.clone(), vec![])
        });
        assert!(matches!(e, Err(UsersError::UserExists(_))));
        UserDb::modify(&path, |db| db.remove("alice@example.com")).unwrap();
        let e = UserDb::modify(&path, |db| db.remove("alice@example.com"));
        assert!(matches!(e, Err(UsersError::NoSuchUser(_))));
        assert_eq!(UserDb::load(&path).unwrap().len(), 1);
        assert!(!format!("{rec:?}").contains("argon2id$v"));
    }

    #[test]
    fn bad_files() {
        let p = Path::new("u.toml");
        let e = UserDb::parse(p, "[[user]]\nname = \"a@b\"\npassword = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("PHC"), "{e}");
        let h = hash_password("pw").unwrap().phc;
        let e = UserDb::parse(
            p,
            &format!("[[user]]\nname = \"a@b\"\npassword = \"{h}\"\nscram = \"SCRAM-SHA-256$1:AA==$AA==:AA==\"\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("SCRAM-SHA-256 verifier"), "{e}");
        let dup = format!(
            "[[user]]\nname = \"a@B\"\npassword = \"{h}\"\n[[user]]\nname = \"a@b\"\npassword = \"{h}\"\n"
        );
        let e = UserDb::parse(p, &dup).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = UserDb::parse(p, "[[user]]\nname = \"a@b\"\npasword = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = UserDb::parse(
            p,
            &format!("[[user]]\nname = \"a@b\"\npassword = \"{h}\"\nroles = [\"god\"]\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("god"), "{e}");
        assert!(
            UserDb::load(Path::new("/nonexistent/users.toml"))
                .unwrap()
                .is_empty()
        );
    }
}
