//! Replays the `sasl` fuzz corpus (`fuzz/corpus/sasl/`) through the fuzz
//! target's checks, so every input the fuzzer kept stays a regression test
//! on stable Rust.
// Test harnesses: a failed expectation must fail the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod sasl_support;

// `mailroom-testkit` depends on this crate, so its corpus helpers come in
// by path.
#[path = "../../testkit/src/corpus.rs"]
mod corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sasl");
    corpus::replay(&dir, 300, sasl_support::harness::run);
}
