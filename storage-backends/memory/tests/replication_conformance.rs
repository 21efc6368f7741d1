//! The replication conformance suite of `mailroom-core`, run on [`MemoryStore`].

use std::sync::Arc;

use mailroom_store_memory::MemoryStore;

mailroom_core::replication_conformance_tests!(Arc::new(MemoryStore::new()));
