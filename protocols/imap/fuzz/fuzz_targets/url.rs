//! Fuzz target for the IMAP URL parser of CATENATE (RFC 4469, RFC 5092).
//!
//! Input: the URL's bytes. The harness (shared with
//! `tests/url_fuzz_corpus.rs`) checks that the parser never panics and
//! that what it accepts prints and parses back to itself.
//!
//! `cargo +nightly fuzz run url` fuzzes with libFuzzer. Built without
//! `--cfg fuzzing` (`cargo run --bin url -- FILES|DIRS`), it replays files
//! instead, by default `corpus/url/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/url_support/harness.rs"]
mod harness;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});

#[cfg(not(fuzzing))]
#[path = "../../../../testkit/src/corpus.rs"]
mod corpus;

#[cfg(not(fuzzing))]
fn main() {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/url");
    corpus::replay_args(&default, harness::run);
}
