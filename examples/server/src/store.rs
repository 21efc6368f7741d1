//! Opening the mailbox store named by the config.
//!
//! [`open_store`] is the one place that knows the concrete backends. The
//! protocols see only [`Store::storage`] and [`Store::quota`] (`Arc<dyn
//! Storage>`, `Arc<dyn Quota>`); the admin commands also use the CRC store's
//! own operations (reconstruct, verify) through [`Store::crc`]. Adding a
//! backend is a variant in [`StoreKind`], one in
//! [`Store`] and an arm in [`open_store`].

use std::path::PathBuf;
use std::sync::Arc;

use mailroom_core::{Quota, Storage};
use mailroom_store_crc::{CrcOptions, CrcStore};
use mailroom_store_memory::MemoryStore;
use mailroom_store_postgres::{PgOptions, PgStore};

use crate::config::{Config, StoreKind};

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The PostgreSQL store is opened by [`open_store_async`] only (it
    /// connects and starts its change-feed listener on the runtime).
    #[error("the postgres store is opened inside the server's runtime (open_store_async)")]
    NeedsRuntime,
    /// The PostgreSQL store could not connect or migrate.
    #[error("cannot open the postgres store: {0}")]
    Postgres(#[from] mailroom_store_postgres::PgStoreError),
    /// Another process holds the store's data directory: a running
    /// `mailroomd serve`, or an admin command that opened it directly.
    #[error(
        "the {kind} store in {path} is in use by another process \
         (a running `mailroomd serve`, or an admin command working on it directly): {detail}"
    )]
    Busy {
        /// The backend.
        kind: StoreKind,
        /// The store's directory.
        path: PathBuf,
        /// The backend's description (names the lock file).
        detail: String,
    },
    /// The backend failed to open its data.
    #[error("cannot open the {kind} store in {path}: {source}")]
    Open {
        /// The backend.
        kind: StoreKind,
        /// The store's directory.
        path: PathBuf,
        /// Its error.
        source: mailroom_core::Error,
    },
}

/// An open store. Cheap to clone; every clone is the same store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    /// The CRC on-disk store; this process holds its data-directory lock.
    Crc(CrcStore),
    /// The in-memory store.
    Memory(Arc<MemoryStore>),
    /// The PostgreSQL store (a pool on the configured database).
    Postgres(PgStore),
}

impl Store {
    /// The store as the protocols see it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Store::Crc(s) => Arc::new(s.clone()),
            Store::Memory(s) => s.clone(),
            Store::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// The same object as the quota policy.
    pub fn quota(&self) -> Arc<dyn Quota> {
        match self {
            Store::Crc(s) => Arc::new(s.clone()),
            Store::Memory(s) => s.clone(),
            Store::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// The same object as replication sees it: every backend implements
    /// [`mailroom_core::Replication`] (the PostgreSQL one for all the
    /// frontends of its database; see `replication::pg` for what that
    /// means for the roles).
    pub fn replication(&self) -> Arc<dyn mailroom_core::Replication> {
        match self {
            Store::Crc(s) => Arc::new(s.clone()),
            Store::Memory(s) => s.clone(),
            Store::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// The backend.
    pub fn kind(&self) -> StoreKind {
        match self {
            Store::Crc(_) => StoreKind::Crc,
            Store::Memory(_) => StoreKind::Memory,
            Store::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// The CRC store, if that is the backend.
    pub fn crc(&self) -> Option<&CrcStore> {
        match self {
            Store::Crc(s) => Some(s),
            Store::Memory(_) | Store::Postgres(_) => None,
        }
    }
}

/// Opens the configured store. The CRC store is created in
/// `[store] path` (default `<data_dir>/store`) if it does not exist, and
/// locked for this process: a second process gets [`StoreError::Busy`].
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file: mailroomd::config::ConfigFile = toml::from_str("[imap]\n").unwrap();
/// let config = file.resolve(Some(&dir.path().join("m.toml")), dir.path()).unwrap();
/// let store = mailroomd::store::open_store(&config).unwrap();
/// assert_eq!(store.kind(), mailroomd::config::StoreKind::Crc);
/// assert!(dir.path().join("data/store").is_dir());
/// // the data directory is locked while `store` lives
/// assert!(mailroomd::store::open_store(&config).is_err());
/// # let _ = (store.storage(), store.quota());
/// ```
pub fn open_store(config: &Config) -> Result<Store, StoreError> {
    let settings = &config.store;
    match settings.kind {
        StoreKind::Postgres => Err(StoreError::NeedsRuntime),
        StoreKind::Memory => Ok(Store::Memory(Arc::new(MemoryStore::new()))),
        StoreKind::Crc => {
            let options = CrcOptions {
                durability: settings.durability,
                maildir_location: settings.maildir_import.clone(),
                open_mailboxes: settings.open_mailboxes,
                open_mailbox_grace: settings.open_mailbox_grace,
                journal: settings.journal,
                ..CrcOptions::default()
            };
            match CrcStore::open(&settings.path, options) {
                Ok(store) => Ok(Store::Crc(store)),
                Err(mailroom_core::Error::Busy(detail)) => Err(StoreError::Busy {
                    kind: StoreKind::Crc,
                    path: settings.path.clone(),
                    detail,
                }),
                Err(source) => Err(StoreError::Open {
                    kind: StoreKind::Crc,
                    path: settings.path.clone(),
                    source,
                }),
            }
        }
    }
}

/// Opens the configured store from inside the runtime: the PostgreSQL store
/// connects (a pool of `[store] pool_size`), migrates the schema if the
/// database has none or an older one, and starts its change-feed listener;
/// the others as [`open_store`].
pub async fn open_store_async(config: &Config) -> Result<Store, StoreError> {
    let settings = &config.store;
    match (settings.kind, &settings.url) {
        (StoreKind::Postgres, Some(url)) => {
            let store = PgStore::connect(&PgOptions {
                url: url.clone(),
                pool_size: settings.pool_size,
                migrate: true,
                view_records: settings.view_records,
            })
            .await?;
            Ok(Store::Postgres(store))
        }
        _ => open_store(config),
    }
}
