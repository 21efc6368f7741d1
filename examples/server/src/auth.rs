//! [`UsersAuthenticator`] ([`FileAuthenticator`] is the same type): the
//! users file, or the PostgreSQL `users` table ([`crate::users::Directory`]),
//! as a [`mailroom_core::Authenticator`], with a cache of verified
//! credentials.
//!
//! Over PostgreSQL (`[auth] backend = "postgres"`) every login and lookup
//! reads the user's row (one indexed query), so the frontends on one
//! database keep no users of their own: a user added, removed or given a
//! new password through any of them counts on all of them at once. The
//! cache below only spares argon2; its entries are checked against the
//! row's hash at each use.
//!
//! An argon2 verification costs tens of milliseconds of CPU by design. A
//! client that logs in over and over (a phone polling every minute, a sync
//! tool opening ten connections) must not pay that each time, so, as
//! Dovecot's auth cache does, a successful verification is remembered for
//! `auth_cache_ttl_secs`:
//!
//! - the cache key is an HMAC-SHA256, under a random per-process key, of the
//!   user name and the password: the plaintext password is never kept, and
//!   the key cannot be brute-forced offline from a memory dump without the
//!   per-process secret;
//! - an entry remembers the PHC hash it was verified against, so changing a
//!   password (or deleting the user) invalidates it at once;
//! - failures are never cached (the IMAP failed-login throttle deals with
//!   guessing);
//! - the cache holds at most [`MAX_CACHE_ENTRIES`] entries, and expired
//!   ones are swept out at the first insert a TTL after the last sweep, so
//!   what it holds follows the logins of the last TTL (about 240 bytes
//!   each), not every account seen since the start.
//!
//! The users file is re-read whenever its inode, size, mtime or ctime
//! changes (checked at each authentication and lookup: one `stat`), so
//! `mailroomd user add` takes effect on a running server. A file that fails
//! to parse after a change is reported and the previous users stay in force.
//!
//! Unknown users cost the same argon2 verification as known ones (against a
//! dummy hash), so timing does not tell whether a user exists.
//!
//! ## Where argon2 runs
//!
//! On the authenticator's [`HashPool`] (`mailroom_core::password`): a few
//! dedicated threads, so the 19 MiB of working memory of each verification
//! lives in that many allocator arenas at most, whatever the login rate
//! (the measurements are in that module's docs).

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lc_rs::hmac;
use mailroom_core::password::HashPool;
use mailroom_core::sasl::{ScramCredentials, TokenValidator};
use mailroom_core::{Authenticator, Credentials, Error, Mechanism, Principal, Result};

use mailroom_store_postgres::PgUsers;

use crate::token::JwtValidator;
use crate::users::{self, Directory, UserDb, UserRecord, UsersError};

/// The most credentials the cache holds at once.
pub const MAX_CACHE_ENTRIES: usize = 65_536;

/// Authenticates against a users file (see [`crate::users`]).
///
/// ```no_run
/// # async fn demo() -> mailroom_core::Result<()> {
/// use std::time::Duration;
/// use mailroom_core::{Authenticator, Credentials};
/// use mailroomd::auth::FileAuthenticator;
///
/// let auth = FileAuthenticator::new("data/users.toml", Duration::from_secs(60))?;
/// let who = auth
///     .authenticate(&Credentials {
///         authzid: None,
///         authcid: "alice@example.com".into(),
///         password: "secret".into(),
///     })
///     .await?;
/// println!("{} logged in", who.user);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UsersAuthenticator {
    inner: Arc<Inner>,
}

/// The users-file authenticator: [`UsersAuthenticator`] over a file.
pub type FileAuthenticator = UsersAuthenticator;

struct Inner {
    source: Source,
    cache: Mutex<CredentialCache>,
    /// The hashing threads (bounded; see the module docs).
    hasher: HashPool,
    /// Checks OAUTHBEARER/XOAUTH2 tokens, when configured.
    tokens: Option<JwtValidator>,
}

/// Where the records come from.
enum Source {
    /// The users file, re-read when it changes.
    File { path: PathBuf, table: RwLock<Table> },
    /// The PostgreSQL users table, read at every use.
    Postgres(PgUsers),
}

#[derive(Default)]
struct Table {
    stamp: Option<FileStamp>,
    db: Arc<UserDb>,
}

/// Identifies one version of the users file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

struct CredentialCache {
    key: hmac::Key,
    ttl: Duration,
    entries: HashMap<[u8; 32], CacheEntry>,
    /// When expired entries were last swept out (at most once per TTL, so
    /// the cache follows the logins of the last TTL, not every login since
    /// the start).
    swept: Instant,
}

struct CacheEntry {
    user: String,
    phc: String,
    expires: Instant,
}

impl CredentialCache {
    fn new(ttl: Duration) -> Result<CredentialCache> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| Error::Backend("no randomness for the auth cache key".into()))?;
        Ok(CredentialCache {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            ttl,
            entries: HashMap::new(),
            swept: Instant::now(),
        })
    }

    fn tag(&self, user: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        let tag = ctx.sign();
        let bytes = tag.as_ref();
        let n = out.len().min(bytes.len());
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }

    /// Whether `tag` was verified against `record`'s current hash recently.
    fn hit(&mut self, tag: &[u8; 32], record: &UserRecord, now: Instant) -> bool {
        match self.entries.get(tag) {
            Some(e) if e.expires > now && e.user == record.name && e.phc == record.password => true,
            Some(_) => {
                self.entries.remove(tag);
                false
            }
            None => false,
        }
    }

    fn insert(&mut self, tag: [u8; 32], record: &UserRecord, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if now.saturating_duration_since(self.swept) >= self.ttl {
            self.swept = now;
            let before = self.entries.len();
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() < before / 2 {
                self.entries.shrink_to_fit();
            }
        }
        if self.entries.len() >= MAX_CACHE_ENTRIES {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= MAX_CACHE_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            tag,
            CacheEntry {
                user: record.name.clone(),
                phc: record.password.clone(),
                expires: now + self.ttl,
            },
        );
    }
}

impl fmt::Debug for UsersAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .inner
            .cache
            .lock()
            .map(|c| c.entries.len())
            .unwrap_or(0);
        let source = match &self.inner.source {
            Source::File { path, .. } => path.display().to_string(),
            Source::Postgres(_) => "postgres users table".into(),
        };
        f.debug_struct("UsersAuthenticator")
            .field("source", &source)
            .field("cached_credentials", &cached)
            .field("verifications", &self.verifications())
            .finish()
    }
}

impl UsersAuthenticator {
    /// Authenticates against the users file at `path` (which may not exist
    /// yet), caching verified credentials for `cache_ttl` (zero: no cache).
    pub fn new(path: impl Into<PathBuf>, cache_ttl: Duration) -> Result<UsersAuthenticator> {
        UsersAuthenticator::with_source(
            Source::File {
                path: path.into(),
                table: RwLock::new(Table::default()),
            },
            cache_ttl,
        )
    }

    /// Authenticates against a PostgreSQL users table, caching verified
    /// credentials for `cache_ttl` (each use checks the row's hash).
    pub fn postgres(users: PgUsers, cache_ttl: Duration) -> Result<UsersAuthenticator> {
        UsersAuthenticator::with_source(Source::Postgres(users), cache_ttl)
    }

    /// Over the directory `[auth]` names ([`Directory::open`]).
    pub fn over(directory: Directory, cache_ttl: Duration) -> Result<UsersAuthenticator> {
        match directory {
            Directory::File(path) => UsersAuthenticator::new(path, cache_ttl),
            Directory::Postgres(users) => UsersAuthenticator::postgres(users, cache_ttl),
        }
    }

    fn with_source(source: Source, cache_ttl: Duration) -> Result<UsersAuthenticator> {
        let inner = Inner {
            hasher: HashPool::new(hash_threads()).map_err(|e| Error::Backend(e.to_string()))?,
            source,
            cache: Mutex::new(CredentialCache::new(cache_ttl)?),
            tokens: None,
        };
        inner.refresh();
        Ok(UsersAuthenticator {
            inner: Arc::new(inner),
        })
    }

    /// Also takes bearer tokens (OAUTHBEARER, XOAUTH2) that `tokens`
    /// accepts. Call before the authenticator is shared.
    pub fn with_tokens(mut self, tokens: JwtValidator) -> UsersAuthenticator {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.tokens = Some(tokens);
        }
        self
    }

    /// How many argon2 verifications were run (cache misses, failures and
    /// unknown users), for tests and metrics.
    pub fn verifications(&self) -> u64 {
        self.inner.hasher.verifications()
    }

    /// The number of users (re-reading the file if it changed; 0 if the
    /// database cannot be asked).
    pub async fn user_count(&self) -> usize {
        match &self.inner.source {
            Source::File { .. } => self.current_db().await.len(),
            Source::Postgres(users) => users
                .count()
                .await
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// The record of `name` (canonical or not): from the file's current
    /// contents, or a fresh read of the table.
    async fn record(&self, name: &str) -> Result<Option<UserRecord>> {
        match &self.inner.source {
            Source::File { .. } => Ok(self.current_db().await.get(name).cloned()),
            Source::Postgres(users) => {
                let directory = Directory::Postgres(users.clone());
                directory.get(name).await.map_err(|e| match e {
                    UsersError::Database(e) => e,
                    other => Error::Backend(other.to_string()),
                })
            }
        }
    }

    async fn current_db(&self) -> Arc<UserDb> {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || inner.refresh()).await {
            Ok(db) => db,
            Err(_) => self.inner.snapshot(),
        }
    }

    /// Runs one argon2 verification on the hashing threads.
    async fn verify(&self, password: &str, phc: String) -> bool {
        self.inner.hasher.verify(password, phc).await
    }

    /// Burns one verification against a dummy hash so that an unknown user
    /// takes as long as a wrong password.
    async fn verify_dummy(&self, password: &str) {
        self.inner.hasher.verify_dummy(password).await
    }

    fn cache(&self) -> Result<std::sync::MutexGuard<'_, CredentialCache>> {
        self.inner
            .cache
            .lock()
            .map_err(|_| Error::Backend("auth cache lock poisoned".into()))
    }
}

impl Inner {
    fn snapshot(&self) -> Arc<UserDb> {
        let Source::File { table, .. } = &self.source else {
            return Arc::default();
        };
        match table.read() {
            Ok(t) => Arc::clone(&t.db),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().db),
        }
    }

    /// Re-reads the users file if it changed on disk; returns the users
    /// (none for a table, which is read per user).
    fn refresh(&self) -> Arc<UserDb> {
        let Source::File { path, table } = &self.source else {
            return Arc::default();
        };
        let stamp = FileStamp::of(path);
        if let Ok(t) = table.read()
            && t.stamp == stamp
        {
            return Arc::clone(&t.db);
        }
        let mut table = match table.write() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Another task may have reloaded while we waited for the lock.
        let stamp = FileStamp::of(path);
        if table.stamp == stamp {
            return Arc::clone(&table.db);
        }
        table.stamp = stamp;
        match UserDb::load(path) {
            Ok(db) => {
                tracing::info!(path = %path.display(), users = db.len(), "users file loaded");
                if let Ok(m) = std::fs::metadata(path) {
                    use std::os::unix::fs::PermissionsExt;
                    if m.permissions().mode() & 0o077 != 0 {
                        tracing::warn!(
                            path = %path.display(),
                            "users file is readable by group or others; chmod 600 it"
                        );
                    }
                }
                table.db = Arc::new(db);
            }
            Err(e) => {
                tracing::error!(error = %e, "users file not reloaded; previous users stay in force");
            }
        }
        Arc::clone(&table.db)
    }
}

/// A client-supplied name, made safe and short for a log line.
fn loggable(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[async_trait]
impl Authenticator for UsersAuthenticator {
    async fn authenticate(&self, credentials: &Credentials) -> Result<Principal> {
        let password = credentials.password.as_str();
        let record = match users::canonical_name(&credentials.authcid) {
            Ok(name) => self.record(&name).await?,
            Err(_) => None,
        };
        let Some(record) = record else {
            self.verify_dummy(password).await;
            tracing::info!(user = %loggable(&credentials.authcid), "authentication failed");
            return Err(Error::AuthFailed);
        };

        let now = Instant::now();
        let tag = self.cache()?.tag(&record.name, password);
        let cached = self.cache()?.hit(&tag, &record, now);
        if cached {
            tracing::debug!(user = %record.name, "credentials verified from cache");
        } else if self.verify(password, record.password.clone()).await {
            self.cache()?.insert(tag, &record, Instant::now());
        } else {
            tracing::info!(user = %record.name, "authentication failed");
            return Err(Error::AuthFailed);
        }
        self.authorize_as(&record, credentials.authzid.as_deref())
            .await
    }

    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        Ok(self.record(user).await?.as_ref().map(UserRecord::principal))
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        let mut m = vec![
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::ScramSha256,
            Mechanism::ScramSha256Plus,
        ];
        if self.inner.tokens.is_some() {
            m.extend([Mechanism::OAuthBearer, Mechanism::XOAuth2]);
        }
        m
    }

    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>> {
        Ok(self
            .record(user)
            .await?
            .and_then(|r| r.scram)
            .as_deref()
            .and_then(ScramCredentials::parse))
    }

    async fn authorize(&self, authcid: &str, authzid: Option<&str>) -> Result<Principal> {
        let Some(record) = self.record(authcid).await? else {
            tracing::info!(user = %loggable(authcid), "authorization failed: no such user");
            return Err(Error::AuthFailed);
        };
        self.authorize_as(&record, authzid).await
    }

    fn token_validator(&self) -> Option<&dyn TokenValidator> {
        self.inner.tokens.as_ref().map(|t| t as &dyn TokenValidator)
    }
}

impl UsersAuthenticator {
    /// [`authorize`] with the target's record looked up.
    async fn authorize_as(&self, authn: &UserRecord, authzid: Option<&str>) -> Result<Principal> {
        let target = match authzid {
            Some(z) => self.record(z).await?,
            None => None,
        };
        authorize(authn, authzid, target.as_ref())
    }
}

/// Applies a SASL authorization identity: a user may act as itself; a
/// server admin may act as anyone; a domain admin as any non-admin user of
/// its own domain. `target` is the record of `authzid`.
fn authorize(
    authn: &UserRecord,
    authzid: Option<&str>,
    target: Option<&UserRecord>,
) -> Result<Principal> {
    let Some(authzid) = authzid else {
        return Ok(authn.principal());
    };
    let Some(target) = target else {
        tracing::info!(user = %authn.name, as_user = %loggable(authzid), "authorization failed: no such user");
        return Err(Error::AuthFailed);
    };
    if target.name == authn.name {
        return Ok(authn.principal());
    }
    let acting = authn.principal();
    let wanted = target.principal();
    let allowed = acting.roles.server_admin
        || (acting.roles.domain_admin
            && acting.domain == wanted.domain
            && !wanted.roles.server_admin
            && !wanted.roles.domain_admin);
    if allowed {
        tracing::info!(admin = %authn.name, as_user = %target.name, "administrator logged in as user");
        Ok(wanted)
    } else {
        tracing::info!(user = %authn.name, as_user = %target.name, "authorization failed: not an administrator");
        Err(Error::AuthFailed)
    }
}

/// How many threads run argon2: [`HashPool::default_threads`].
pub fn hash_threads() -> usize {
    HashPool::default_threads()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::Role;

    fn creds(user: &str, pw: &str) -> Credentials {
        Credentials {
            authzid: None,
            authcid: user.into(),
            password: pw.into(),
        }
    }

    fn setup(users: &[(&str, &str, Vec<Role>)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        UserDb::modify(&path, |db| {
            for (n, p, r) in users {
                db.add(n, users::hash_password(p).unwrap(), r.clone())?;
            }
            Ok(())
        })
        .unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn cache_hits_and_invalidation() {
        let (_dir, path) = setup(&[("alice@example.com", "pw1", vec![])]);
        let auth = FileAuthenticator::new(&path, Duration::from_secs(60)).unwrap();
        let p = auth
            .authenticate(&creds("alice@EXAMPLE.com", "pw1"))
            .await
            .unwrap();
        assert_eq!(p.user, "alice@example.com");
        assert_eq!(auth.verifications(), 1);
        auth.authenticate(&creds("alice@example.com", "pw1"))
            .await
            .unwrap();
        assert_eq!(auth.verifications(), 1, "second login served from cache");
        // wrong password: verified, never cached
        assert!(
            auth.authenticate(&creds("alice@example.com", "nope"))
                .await
                .is_err()
        );
        assert!(
            auth.authenticate(&creds("alice@example.com", "nope"))
                .await
                .is_err()
        );
        assert_eq!(auth.verifications(), 3);

        // change the password on disk: the old one stops working at once
        UserDb::modify(&path, |db| {
            db.set_password("alice@example.com", users::hash_password("pw2").unwrap())
        })
        .unwrap();
        assert!(matches!(
            auth.authenticate(&creds("alice@example.com", "pw1")).await,
            Err(Error::AuthFailed)
        ));
        auth.authenticate(&creds("alice@example.com", "pw2"))
            .await
            .unwrap();
        let n = auth.verifications();
        auth.authenticate(&creds("alice@example.com", "pw2"))
            .await
            .unwrap();
        assert_eq!(auth.verifications(), n);

        // delete the user: cache entry is useless
        UserDb::modify(&path, |db| db.remove("alice@example.com")).unwrap();
        assert!(
            auth.authenticate(&creds("alice@example.com", "pw2"))
                .await
                .is_err()
        );
        assert_eq!(auth.lookup("alice@example.com").await.unwrap(), None);
    }

    #[tokio::test]
    async fn ttl_zero_disables_and_expiry() {
        let (_dir, path) = setup(&[("bob@x.org", "pw", vec![])]);
        let auth = FileAuthenticator::new(&path, Duration::ZERO).unwrap();
        auth.authenticate(&creds("bob@x.org", "pw")).await.unwrap();
        auth.authenticate(&creds("bob@x.org", "pw")).await.unwrap();
        assert_eq!(auth.verifications(), 2);

        let mut cache = CredentialCache::new(Duration::from_millis(10)).unwrap();
        let rec = UserDb::load(&path)
            .unwrap()
            .get("bob@x.org")
            .unwrap()
            .clone();
        let tag = cache.tag(&rec.name, "pw");
        let t0 = Instant::now();
        cache.insert(tag, &rec, t0);
        assert!(cache.hit(&tag, &rec, t0));
        assert!(!cache.hit(&tag, &rec, t0 + Duration::from_millis(11)));
        assert!(cache.entries.is_empty(), "expired entry dropped");
        // different password, different key; key is not the password
        assert_ne!(cache.tag(&rec.name, "pw"), cache.tag(&rec.name, "pw "));
        assert_ne!(cache.tag("a", "bc"), cache.tag("ab", "c"));
    }

    #[tokio::test]
    async fn cache_is_bounded() {
        let (_dir, path) = setup(&[("bob@x.org", "pw", vec![])]);
        let rec = UserDb::load(&path)
            .unwrap()
            .get("bob@x.org")
            .unwrap()
            .clone();
        let mut cache = CredentialCache::new(Duration::from_secs(60)).unwrap();
        let now = Instant::now();
        for i in 0..(MAX_CACHE_ENTRIES + 10) {
            let tag = cache.tag(&rec.name, &i.to_string());
            cache.insert(tag, &rec, now);
            assert!(cache.entries.len() <= MAX_CACHE_ENTRIES);
        }
    }

    /// Entries older than the TTL leave at the next insert a TTL later, so
    /// a login storm does not stay in memory until the cache is full.
    #[tokio::test]
    async fn expired_entries_are_swept_by_later_inserts() {
        let (_dir, path) = setup(&[("bob@x.org", "pw", vec![])]);
        let rec = UserDb::load(&path)
            .unwrap()
            .get("bob@x.org")
            .unwrap()
            .clone();
        let ttl = Duration::from_secs(60);
        let mut cache = CredentialCache::new(ttl).unwrap();
        let t0 = Instant::now();
        for i in 0..1000 {
            let tag = cache.tag(&rec.name, &i.to_string());
            cache.insert(tag, &rec, t0);
        }
        assert_eq!(cache.entries.len(), 1000);
        let later = t0 + ttl + Duration::from_secs(1);
        let tag = cache.tag(&rec.name, "new");
        cache.insert(tag, &rec, later);
        assert_eq!(cache.entries.len(), 1, "only the fresh entry is left");
        assert!(cache.hit(&tag, &rec, later));
    }

    #[tokio::test]
    async fn unknown_users_and_lookup() {
        let (_dir, path) = setup(&[("carol@x.org", "pw", vec![])]);
        let auth = FileAuthenticator::new(&path, Duration::from_secs(60)).unwrap();
        assert!(
            auth.authenticate(&creds("nobody@x.org", "pw"))
                .await
                .is_err()
        );
        assert!(auth.authenticate(&creds("not a name", "pw")).await.is_err());
        assert_eq!(
            auth.verifications(),
            2,
            "unknown users cost a verification too"
        );
        let p = auth.lookup("carol@X.ORG").await.unwrap().unwrap();
        assert_eq!(p.user, "carol@x.org");
        assert_eq!(auth.lookup("carol").await.unwrap(), None);

        // a file broken by hand keeps the previous users in force
        std::fs::write(&path, "this is [not toml").unwrap();
        assert!(auth.lookup("carol@x.org").await.unwrap().is_some());
        // a missing file means no users
        std::fs::remove_file(&path).unwrap();
        assert_eq!(auth.user_count().await, 0);
    }

    #[tokio::test]
    async fn authorization_identities() {
        let (_dir, path) = setup(&[
            ("root@x.org", "r", vec![Role::ServerAdmin]),
            ("boss@x.org", "b", vec![Role::DomainAdmin]),
            ("emp@x.org", "e", vec![]),
            ("other@y.org", "o", vec![]),
        ]);
        let auth = FileAuthenticator::new(&path, Duration::from_secs(60)).unwrap();
        let as_user = |a: &str, p: &str, z: &str| Credentials {
            authzid: Some(z.into()),
            authcid: a.into(),
            password: p.into(),
        };
        let p = auth
            .authenticate(&as_user("root@x.org", "r", "other@y.org"))
            .await
            .unwrap();
        assert_eq!(p.user, "other@y.org");
        assert!(!p.roles.server_admin);
        let p = auth
            .authenticate(&as_user("boss@x.org", "b", "emp@x.org"))
            .await
            .unwrap();
        assert_eq!(p.user, "emp@x.org");
        assert!(
            auth.authenticate(&as_user("boss@x.org", "b", "other@y.org"))
                .await
                .is_err()
        );
        assert!(
            auth.authenticate(&as_user("boss@x.org", "b", "root@x.org"))
                .await
                .is_err()
        );
        assert!(
            auth.authenticate(&as_user("emp@x.org", "e", "boss@x.org"))
                .await
                .is_err()
        );
        let p = auth
            .authenticate(&as_user("emp@x.org", "e", "emp@X.org"))
            .await
            .unwrap();
        assert_eq!(p.user, "emp@x.org");
        assert!(
            auth.authenticate(&as_user("root@x.org", "wrong", "emp@x.org"))
                .await
                .is_err()
        );
        let p = auth.authenticate(&creds("boss@x.org", "b")).await.unwrap();
        assert!(p.roles.domain_admin && !p.roles.server_admin);
    }
}
