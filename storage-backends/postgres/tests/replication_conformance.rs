//! The replication conformance suite of `mailroom-core`, run on
//! [`PgStore`]: one private PostgreSQL cluster for this test binary
//! (`mailroom_testkit::postgres`), a fresh database for every store a
//! check makes (a primary and a replica are two databases).

use std::sync::Arc;

use mailroom_store_postgres::{PgOptions, PgStore};
use mailroom_testkit::postgres::PgCluster;

/// A store on a new, empty database of the shared cluster, migrated. The
/// suite asks for stores synchronously, from inside its multi-threaded
/// runtime.
fn fresh() -> Arc<PgStore> {
    tokio::task::block_in_place(|| {
        let url = PgCluster::shared().create_database("replication");
        let store = tokio::runtime::Handle::current()
            .block_on(PgStore::connect(&PgOptions {
                url,
                pool_size: 8,
                migrate: true,
                view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
            }))
            .unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"));
        Arc::new(store)
    })
}

mailroom_core::replication_conformance_tests!(fresh());
