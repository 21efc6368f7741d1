//! Replays the `mime` fuzz corpus (`fuzz/corpus/mime/`) and CPython's corpus
//! of odd real-world messages through the fuzz target's checks, so every
//! input the fuzzer found interesting stays a regression test on stable Rust.
// Test harnesses: a failed expectation must fail the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod mime_support;

// `mailroom-testkit` depends on this crate, so its corpus helpers come in
// by path.
#[path = "../../testkit/src/corpus.rs"]
mod corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mime");
    corpus::replay(&dir, 50, mime_support::harness::run);
}

/// CPython's `test_email` messages (Debian: libpython3.11-testsuite,
/// installed by `.ci/run`), as written and as a server stores them (CRLF);
/// missing is a failure, not a skip.
#[test]
fn cpython_email_corpus_passes_the_checks() {
    for f in corpus::cpython_email_messages() {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        mime_support::harness::run(&data);
        mime_support::harness::run(&corpus::crlf(&data));
    }
}
