//! Replays the `login_name` fuzz corpus (`fuzz/corpus/login_name/`) through
//! the fuzz target's checks, so every input the fuzzer kept stays a
//! regression test on stable Rust.
// Test harnesses: a failed expectation must fail the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../src/name.rs"]
mod name;

mod fuzz_support;

use mailroom_testkit::corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/login_name");
    corpus::replay(&dir, 20, fuzz_support::harness::run);
}
