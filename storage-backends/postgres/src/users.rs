//! [`PgUsers`]: the `users` table (SCHEMA.md, version 3): one row per
//! account with its argon2 PHC hash, the SCRAM-SHA-256 verifier of the same
//! password, its domain and its roles, as mailroomd's users file keeps
//! them. Every frontend reads the table at each login and lookup, so a
//! user added, changed or removed through one frontend (or an admin command
//! anywhere) counts on every other one at once: frontends keep no state.
//!
//! This type holds rows; it does not decide who may log in. mailroomd's
//! authenticator (`mailroomd::auth`) runs over it exactly as over the users
//! file (argon2 on a bounded [`mailroom_core::password::HashPool`], the
//! verified-credentials cache keyed to the stored hash, authorization
//! identities, roles).
//!
//! Names are stored canonical (`local@domain`, the domain in lower case);
//! the caller canonicalises (mailroomd checks names with its own rules
//! before adding). [`PgUsers::get`] lower-cases the domain of the name it
//! is given, so a login with the domain in any case finds the row.

use deadpool_postgres::Pool;
use mailroom_core::{Error, Result};

use crate::db::{self, Cached, db};
use crate::{PgOptions, PgStoreError};

/// The longest name looked up; longer ones exist nowhere.
const MAX_NAME_BYTES: usize = 254;

/// The roles a row may carry (the `roles` column's check).
pub const ROLES: &[&str] = &["domain-admin", "server-admin"];

/// One row of `users`. `Debug` shows neither hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The canonical name, `local@domain`.
    pub name: String,
    /// The argon2 PHC string.
    pub password: String,
    /// The SCRAM-SHA-256 verifier, if one was stored.
    pub scram: Option<String>,
    /// Roles, sorted: some of [`ROLES`].
    pub roles: Vec<String>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("name", &self.name)
            .field("password", &"<argon2 hash>")
            .field("scram", &self.scram.as_ref().map(|_| "<verifier>"))
            .field("roles", &self.roles)
            .finish()
    }
}

impl UserRow {
    /// The domain part of the name.
    pub fn domain(&self) -> &str {
        self.name.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// The users table. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PgUsers {
    pool: Pool,
}

impl std::fmt::Debug for PgUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUsers")
            .field("pool_size", &self.pool.status().max_size)
            .finish()
    }
}

/// `name` with its domain lower-cased, or `None` if it cannot be a stored
/// name (too long, no `@`).
fn lookup_key(name: &str) -> Option<String> {
    if name.len() > MAX_NAME_BYTES {
        return None;
    }
    let (local, domain) = name.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()))
}

fn row(r: &tokio_postgres::Row) -> Result<UserRow> {
    let mut roles: Vec<String> = r.try_get(3).map_err(db)?;
    roles.sort();
    Ok(UserRow {
        name: r.try_get(0).map_err(db)?,
        password: r.try_get(1).map_err(db)?,
        scram: r.try_get(2).map_err(db)?,
        roles,
    })
}

impl PgUsers {
    /// The users table of the database the pool reaches (already migrated).
    pub(crate) fn from_pool(pool: Pool) -> PgUsers {
        PgUsers { pool }
    }

    /// Connects to a database of its own (a pool of `pool_size`) and
    /// migrates it when asked, as [`crate::PgStore::connect`] does, but
    /// without a change feed: for a users database apart from the mail
    /// store, and for admin commands.
    ///
    /// # Errors
    ///
    /// [`PgStoreError`] if the URL is bad, the database cannot be reached,
    /// or the schema is not at this build's version (and `migrate` is false).
    pub async fn connect(options: &PgOptions) -> Result<PgUsers, PgStoreError> {
        let (pool, _config) = crate::store::pool(options).await?;
        Ok(PgUsers { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(db::pool)
    }

    /// The row of `name` (its domain in any case).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn get(&self, name: &str) -> Result<Option<UserRow>> {
        let Some(key) = lookup_key(name) else {
            return Ok(None);
        };
        let client = self.client().await?;
        client
            .cached_query_opt(
                "SELECT name, password, scram, roles FROM users WHERE name = $1",
                &[&key],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Every row, sorted by name.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn list(&self) -> Result<Vec<UserRow>> {
        let client = self.client().await?;
        client
            .cached_query(
                "SELECT name, password, scram, roles FROM users ORDER BY name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(row)
            .collect()
    }

    /// The number of rows.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn count(&self) -> Result<u64> {
        let client = self.client().await?;
        let n: i64 = client
            .cached_query_one("SELECT count(*) FROM users", &[])
            .await
            .map_err(db)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Adds a row; `false` if a user of that name exists (nothing changed).
    ///
    /// # Errors
    ///
    /// [`Error::Cannot`] for a name without a domain or a role not in
    /// [`ROLES`]; [`Error::Unavailable`] when the database cannot be
    /// reached.
    pub async fn add(&self, user: &UserRow) -> Result<bool> {
        if lookup_key(&user.name).as_deref() != Some(user.name.as_str()) {
            return Err(Error::Cannot(
                "a user name is local@domain, domain in lower case",
            ));
        }
        if user.roles.iter().any(|r| !ROLES.contains(&r.as_str())) {
            return Err(Error::Cannot("unknown role"));
        }
        let mut roles = user.roles.clone();
        roles.sort();
        roles.dedup();
        let client = self.client().await?;
        let n = client
            .cached_execute(
                "INSERT INTO users (name, domain, password, scram, roles) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                &[
                    &user.name,
                    &user.domain(),
                    &user.password,
                    &user.scram,
                    &roles,
                ],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    /// Replaces a user's password hash and verifier; `false` if there is no
    /// such user.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        scram: Option<&str>,
    ) -> Result<bool> {
        let Some(key) = lookup_key(name) else {
            return Ok(false);
        };
        let client = self.client().await?;
        let n = client
            .cached_execute(
                "UPDATE users SET password = $2, scram = $3 WHERE name = $1",
                &[&key, &password, &scram],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    /// Removes a user (not their mailboxes); `false` if there was none.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the database cannot be reached.
    pub async fn remove(&self, name: &str) -> Result<bool> {
        let Some(key) = lookup_key(name) else {
            return Ok(false);
        };
        let client = self.client().await?;
        let n = client
            .cached_execute("DELETE FROM users WHERE name = $1", &[&key])
            .await
            .map_err(db)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_keys() {
        assert_eq!(
            lookup_key("Alice@Example.COM").as_deref(),
            Some("Alice@example.com")
        );
        assert_eq!(lookup_key("alice"), None);
        assert_eq!(lookup_key("@x"), None);
        assert_eq!(lookup_key("a@"), None);
        assert_eq!(lookup_key(&format!("{}@x", "a".repeat(300))), None);
        let r = UserRow {
            name: "a@b.c".into(),
            password: "$argon2id$secret".into(),
            scram: Some("SCRAM".into()),
            roles: vec![],
        };
        assert_eq!(r.domain(), "b.c");
        assert!(!format!("{r:?}").contains("secret"));
    }
}
