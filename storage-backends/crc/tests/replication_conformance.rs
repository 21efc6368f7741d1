//! The replication conformance suite of `mailroom-core`, run on [`CrcStore`]
//! (each store in its own directory under the target's test scratch
//! directory, `CARGO_TARGET_TMPDIR`, since the suite holds only the store).

use std::sync::Arc;

use mailroom_store_crc::{CrcOptions, CrcStore};

fn store() -> Arc<CrcStore> {
    #[allow(clippy::unwrap_used)]
    let dir = tempfile::Builder::new()
        .prefix("replication-conformance")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let path = dir.keep();
    #[allow(clippy::unwrap_used)]
    let s = CrcStore::open(
        &path,
        CrcOptions {
            durability: false,
            ..CrcOptions::default()
        },
    )
    .unwrap();
    Arc::new(s)
}

mailroom_core::replication_conformance_tests!(store());
