//! The backend conformance suite (mailroom-conformance), every check, run
//! against the CRC store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mailroom_store_crc::{CrcOptions, CrcStore};

/// A store in a fresh directory under the target's temporary folder (kept,
/// since the suite builds one store per check and drops it at its end).
fn fresh() -> CrcStore {
    let dir = tempfile::Builder::new()
        .prefix("conformance-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep();
    let opts = CrcOptions {
        durability: false,
        ..CrcOptions::default()
    };
    CrcStore::open(dir, opts).unwrap()
}

mailroom_conformance::conformance_tests!(Arc::new(fresh()));

/// The whole suite again with durability on and APPENDs and deliveries
/// through the delivery journal (FORMAT.md, "Delivery journal").
mod journaled {
    use super::*;

    fn fresh() -> CrcStore {
        let dir = tempfile::Builder::new()
            .prefix("conformance-journal-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let opts = CrcOptions {
            durability: true,
            journal: true,
            ..CrcOptions::default()
        };
        CrcStore::open(dir, opts).unwrap()
    }

    mailroom_conformance::conformance_tests!(Arc::new(fresh()));
}
