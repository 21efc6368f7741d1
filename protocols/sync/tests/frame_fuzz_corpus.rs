//! Replays the `frame` fuzz corpus (`fuzz/corpus/frame/`) through the fuzz
//! target's checks (`tests/fuzz_support/harness.rs`), so every input the
//! fuzzer kept stays a regression test on stable Rust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz_support;

use mailroom_testkit::corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame");
    corpus::replay(&dir, 50, fuzz_support::harness::run);
}
