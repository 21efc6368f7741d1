//! Replays the `disk` fuzz corpus (`fuzz/corpus/disk/`): a store with one
//! damaged file per input, opened, used and reconstructed without a panic
//! and without serving a message whose bytes are not its GUID's.
// Test harnesses: a failed expectation must fail the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod disk_fuzz_support;

#[path = "../../../testkit/src/corpus.rs"]
mod corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/disk");
    corpus::replay(&dir, 50, disk_fuzz_support::harness::run);
}
