//! The backend conformance suite (mailroom-conformance), every check, run
//! on [`PgStore`]: one private PostgreSQL cluster for this test binary
//! (`mailroom_testkit::postgres`), a fresh database for every check.

use mailroom_store_postgres::{PgOptions, PgStore};
use mailroom_testkit::postgres::PgCluster;

/// A store on a new, empty database of the shared cluster, migrated.
async fn fresh() -> std::sync::Arc<PgStore> {
    let url = tokio::task::spawn_blocking(|| PgCluster::shared().create_database("conformance"))
        .await
        .unwrap_or_else(|e| panic!("creating a database: {e}"));
    let store = PgStore::connect(&PgOptions {
        url,
        pool_size: 8,
        migrate: true,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await
    .unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"));
    std::sync::Arc::new(store)
}

mailroom_conformance::conformance_tests!(fresh().await);
