//! Replays the fuzz corpus (`fuzz/corpus/decode/`) through the same harness
//! as the fuzz target, so every input the fuzzer found interesting stays a
//! regression test on stable Rust.
// Test harnesses: a failed expectation must fail the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod codec_support;

use mailroom_testkit::corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    corpus::replay(&dir, 50, codec_support::harness::run);
}
