//! Opening the mailbox store named by the config.
//!
//! [`open_store`] is the one place that knows the concrete backends: the rest
//! of mailroomd sees `Arc<dyn Storage>` and `Arc<dyn Quota>`. Adding a
//! backend (the CRC on-disk store) is a variant in
//! [`StoreKind`](crate::config::StoreKind) and an arm here.

use std::sync::Arc;

use mailroom_core::{Quota, Storage};
use mailroom_store_memory::MemoryStore;

use crate::config::{Config, StoreKind};

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed to open its data.
    #[error("cannot open the {kind} store: {source}")]
    Open {
        /// The backend.
        kind: StoreKind,
        /// Its error.
        source: mailroom_core::Error,
    },
}

/// The store as the protocols see it: the same object behind both traits.
pub type StoreHandles = (Arc<dyn Storage>, Arc<dyn Quota>);

/// Opens the configured store; the same object serves as storage and quota.
///
/// ```
/// let config = mailroomd::config::Config::embedded_defaults().unwrap();
/// let (storage, quota) = mailroomd::store::open_store(&config).unwrap();
/// # let _ = (storage, quota);
/// ```
pub fn open_store(config: &Config) -> Result<StoreHandles, StoreError> {
    match config.store {
        StoreKind::Memory => {
            let store = Arc::new(MemoryStore::new());
            Ok((store.clone(), store))
        }
    }
}
