//! Replays the `proxy` fuzz corpus (`fuzz/corpus/proxy/`) through the fuzz
//! target's checks, so every input the fuzzer kept stays a regression test
//! on stable Rust.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod fuzz_support;

use mailroom_testkit::corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/proxy");
    corpus::replay(&dir, 20, fuzz_support::harness::run);
}
