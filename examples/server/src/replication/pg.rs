//! `[replication]` on the PostgreSQL store, where any number of mailroomd
//! frontends share one database and so one replication role:
//!
//! - **One primary stream per database.** Every frontend configured as the
//!   primary competes for one PostgreSQL advisory lock; only its holder
//!   runs the rolling primary, the others stand by (they serve clients as
//!   usual, and try the lock every [`STANDBY_POLL`]). Two frontends
//!   streaming the same database to one replica would send everything
//!   twice and race each other's sync points. The holder asks its lock
//!   connection every [`LOCK_CHECK_INTERVAL`] whether it is alive and stops
//!   streaming when it does not answer within [`LOCK_CHECK_TIMEOUT`]; the
//!   session asks the server to drop it after about 25 s without TCP
//!   keepalive answers, so a holder cut off from the database has stopped
//!   streaming before the server gives the lock to another frontend. A
//!   holder that exits, or is killed, closes the connection and the lock
//!   is free at once.
//! - **The promotion is a row of the database** (`mailroomd_replication`,
//!   made by the first frontend that needs it): a replica's frontends all
//!   refuse clients until one of them (or `mailroomd replication promote`
//!   with no server running) records the promotion, and then all of them
//!   serve, without being told, since a replica frontend reads the row
//!   whenever it would refuse a client.
//! - **Users in the `users` table** travel as the users file does between
//!   CRC nodes ([`TableUsers`]): a primary renders the table as a users
//!   file (checked by a one-row fingerprint query, so the table is read
//!   only when it changed), and a replica writes a received users file
//!   into its table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::ReplicationError;
use crate::users::{Directory, UserDb, UserRecord, UsersError};

/// The first key of mailroomd's two-key advisory locks ("mrdp",
/// 1836213360). PostgreSQL keeps two-key locks apart from one-key ones, so
/// they never meet the store's maildrop locks (one key each).
pub const LOCK_CLASS: i32 = 0x6d72_6470;
/// The second key of the lock the replication primary holds.
pub const PRIMARY_LOCK: i32 = 1;
/// How often a standing-by frontend tries the primary lock.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);
/// How often the holder checks that its lock connection is alive.
pub const LOCK_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How long the holder waits for that check before it stops streaming.
pub const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The table of the promotion; made on first use, under a transaction
/// advisory lock so that two frontends starting together do not both try.
const PROMOTION_TABLE: &str = "BEGIN; \
     SELECT pg_advisory_xact_lock(1836213360, 2); \
     CREATE TABLE IF NOT EXISTS mailroomd_replication ( \
         id integer PRIMARY KEY CHECK (id = 1), \
         promoted_at timestamptz NOT NULL); \
     COMMIT";

/// Server-side TCP keepalives of the lock session: the server drops a
/// holder that stopped answering after 10 + 3 * 5 s, well after the holder
/// stopped streaming on its own ([`LOCK_CHECK_INTERVAL`] +
/// [`LOCK_CHECK_TIMEOUT`]).
const LOCK_SESSION: &str =
    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3";

fn database(what: &str, e: &tokio_postgres::Error) -> ReplicationError {
    ReplicationError::Database(format!("{what}: {e}"))
}

/// Parses a `[store] url` or `[auth] url` (the password stays inside).
fn parse(url: &str) -> Result<tokio_postgres::Config, ReplicationError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| database("the PostgreSQL URL", &e))?;
    config.connect_timeout(Duration::from_secs(5));
    Ok(config)
}

/// One connection and the task driving it; dropping it closes the socket
/// at once (also when the network hangs and a polite close would wait).
struct Connection {
    client: Arc<Client>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<Connection, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "replication: a PostgreSQL connection ended");
        }
    });
    Ok(Connection {
        client: Arc::new(client),
        driver,
    })
}

/// A connection made when first needed and again after it broke, with a
/// statement batch run on each new one.
struct Lazy {
    config: tokio_postgres::Config,
    setup: &'static str,
    current: tokio::sync::Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: only the hosts are shown.
        f.debug_struct("Lazy")
            .field("hosts", &self.config.get_hosts())
            .finish()
    }
}

impl Lazy {
    fn new(url: &str, setup: &'static str) -> Result<Lazy, ReplicationError> {
        Ok(Lazy {
            config: parse(url)?,
            setup,
            current: tokio::sync::Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && !c.client.is_closed()
        {
            return Ok(Arc::clone(&c.client));
        }
        *current = None;
        let c = connect(&self.config).await?;
        if !self.setup.is_empty() {
            c.client.batch_execute(self.setup).await?;
        }
        let client = Arc::clone(&c.client);
        *current = Some(c);
        Ok(client)
    }
}

/// Where the frontends of one database record a promotion.
#[derive(Debug)]
pub struct Promotion(Lazy);

impl Promotion {
    /// The promotion record of the database at `url` (nothing connects yet).
    pub fn new(url: &str) -> Result<Promotion, ReplicationError> {
        Ok(Promotion(Lazy::new(url, PROMOTION_TABLE)?))
    }

    /// Whether a frontend of this database promoted it.
    pub async fn promoted(&self) -> Result<bool, ReplicationError> {
        let what = "reading the promotion (table mailroomd_replication)";
        let client = self.0.client().await.map_err(|e| database(what, &e))?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM mailroomd_replication WHERE id = 1)",
                &[],
            )
            .await
            .map_err(|e| database(what, &e))?;
        row.try_get(0).map_err(|e| database(what, &e))
    }

    /// Records the promotion (committed, so every frontend and a restart
    /// see it). `false` if it was recorded already.
    pub async fn promote(&self) -> Result<bool, ReplicationError> {
        let what = "recording the promotion (table mailroomd_replication)";
        let client = self.0.client().await.map_err(|e| database(what, &e))?;
        let n = client
            .execute(
                "INSERT INTO mailroomd_replication (id, promoted_at) VALUES (1, now()) \
                 ON CONFLICT (id) DO NOTHING",
                &[],
            )
            .await
            .map_err(|e| database(what, &e))?;
        Ok(n == 1)
    }
}

/// The database whose advisory lock picks the frontend that streams.
#[derive(Clone)]
pub struct PrimaryLock {
    config: tokio_postgres::Config,
}

impl std::fmt::Debug for PrimaryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryLock")
            .field("hosts", &self.config.get_hosts())
            .finish()
    }
}

/// The primary lock, held while this lives.
pub struct Held(Connection);

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held(primary lock)")
    }
}

impl PrimaryLock {
    /// The lock of the database at `url` (nothing connects yet).
    pub fn new(url: &str) -> Result<PrimaryLock, ReplicationError> {
        Ok(PrimaryLock {
            config: parse(url)?,
        })
    }

    async fn try_lock(conn: &Connection) -> Result<bool, tokio_postgres::Error> {
        conn.client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&LOCK_CLASS, &PRIMARY_LOCK],
            )
            .await?
            .try_get(0)
    }

    /// Waits until this process holds the lock: tries it every
    /// [`STANDBY_POLL`] on a connection of its own, made again when it
    /// breaks. Logs once that it stands by.
    pub async fn acquire(&self) -> Held {
        let mut conn: Option<Connection> = None;
        let mut standing_by = false;
        loop {
            if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                conn = None;
                match connect(&self.config).await {
                    Ok(c) => match c.client.batch_execute(LOCK_SESSION).await {
                        Ok(()) => conn = Some(c),
                        Err(e) => {
                            tracing::warn!(error = %e, "replication: the primary lock session")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "replication: cannot reach the database for the primary lock; trying again");
                    }
                }
            }
            if let Some(c) = conn.take() {
                match PrimaryLock::try_lock(&c).await {
                    Ok(true) => return Held(c),
                    Ok(false) => {
                        if !standing_by {
                            standing_by = true;
                            tracing::info!(
                                "replication: another frontend of this database runs the primary; standing by"
                            );
                        }
                        conn = Some(c);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "replication: trying the primary lock failed");
                    }
                }
            }
            tokio::time::sleep(STANDBY_POLL).await;
        }
    }
}

impl Held {
    /// Returns (why) once the lock can no longer be known to be held: the
    /// lock connection failed, or did not answer a check in time.
    pub async fn lost(&self) -> String {
        loop {
            tokio::time::sleep(LOCK_CHECK_INTERVAL).await;
            match tokio::time::timeout(LOCK_CHECK_TIMEOUT, self.0.client.simple_query("SELECT 1"))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return format!("the lock connection failed: {e}"),
                Err(_) => {
                    return format!(
                        "the lock connection did not answer within {} s",
                        LOCK_CHECK_TIMEOUT.as_secs()
                    );
                }
            }
        }
    }
}

/// The users of a PostgreSQL `users` table as the replicated users file.
#[derive(Debug)]
pub struct TableUsers {
    directory: Directory,
    /// A connection of its own to the users' database, for the
    /// fingerprint.
    fingerprint: Lazy,
    /// The last fingerprint and the users file rendered for it.
    last: Mutex<Option<((i64, i64), Bytes)>>,
    runtime: tokio::runtime::Handle,
}

/// Rows and a checksum of every column: changes when a user is added,
/// removed, or changes password or roles. One row out, so a primary checks
/// the table every second without reading it.
const FINGERPRINT: &str = "SELECT count(*)::bigint, coalesce(sum(hashtext(\
     name || ' ' || password || ' ' || coalesce(scram, '') || ' ' || array_to_string(roles, ','))), 0)::bigint \
     FROM users";

impl TableUsers {
    /// The table `directory` reaches (a [`Directory::Postgres`]) at `url`.
    /// Must be made inside the runtime; the replication tasks then call it
    /// from blocking threads.
    pub fn new(directory: Directory, url: &str) -> Result<TableUsers, ReplicationError> {
        Ok(TableUsers {
            directory,
            fingerprint: Lazy::new(url, "")?,
            last: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    async fn render(&self) -> std::io::Result<Bytes> {
        let client = self.fingerprint.client().await.map_err(io)?;
        let row = client.query_one(FINGERPRINT, &[]).await.map_err(io)?;
        let print: (i64, i64) = (row.try_get(0).map_err(io)?, row.try_get(1).map_err(io)?);
        if let Ok(last) = self.last.lock()
            && let Some((seen, text)) = last.as_ref()
            && *seen == print
        {
            return Ok(text.clone());
        }
        let users = self.directory.list().await.map_err(io)?;
        let text = Bytes::from(UserDb::from_records(users).to_toml());
        if let Ok(mut last) = self.last.lock() {
            *last = Some((print, text.clone()));
        }
        Ok(text)
    }

    /// Makes the table hold exactly the users of `wanted`; returns how many
    /// rows changed. A user whose roles changed is removed and added again
    /// (the table keeps no other way to change roles); a replica serves no
    /// client meanwhile.
    async fn install(&self, wanted: &UserDb) -> Result<usize, UsersError> {
        let have: BTreeMap<String, UserRecord> = self
            .directory
            .list()
            .await?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let mut changed = 0;
        for record in wanted.users() {
            let password = || mailroom_core::password::StoredPassword {
                phc: record.password.clone(),
                scram: record.scram.clone(),
            };
            match have.get(&record.name) {
                Some(old) if old == record => continue,
                Some(old) if old.roles == record.roles => {
                    self.directory
                        .set_password(&record.name, password())
                        .await?;
                }
                Some(_) => {
                    self.directory.remove(&record.name).await?;
                    self.directory
                        .add(&record.name, password(), record.roles.clone())
                        .await?;
                }
                None => {
                    self.directory
                        .add(&record.name, password(), record.roles.clone())
                        .await?;
                }
            }
            changed += 1;
        }
        for name in have.keys() {
            if wanted.get(name).is_none() {
                self.directory.remove(name).await?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl TableUsers {
    /// [`mailroom_sync::AppFiles::read`]: the table as a users file.
    pub(super) fn read_file(&self) -> std::io::Result<Bytes> {
        self.runtime.block_on(self.render())
    }

    /// [`mailroom_sync::AppFiles::install`]: a checked users file into
    /// the table.
    pub(super) fn install_file(&self, wanted: &UserDb) -> std::io::Result<()> {
        let changed = self.runtime.block_on(self.install(wanted)).map_err(io)?;
        if changed > 0 {
            tracing::info!(
                changed,
                "users table updated from the users file replicated by the primary"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_made_under_mailroomds_lock_class() {
        assert!(PROMOTION_TABLE.contains(&format!("pg_advisory_xact_lock({LOCK_CLASS}, 2)")));
    }
}
