//! Fuzz target for the response reader and parser of `mailroom-bench
//! stress` (`tools/bench/src/stress/parse.rs`).
//!
//! Input: what a server might send, any bytes. The harness
//! (`parse::fuzz_one`, shared with the corpus replay test
//! `stress::tests::response_fuzz_corpus_replays_cleanly`) reads every line
//! with its literals and parses it: nothing may panic, every literal atom
//! names a literal read, sets and lines stay within their bounds.
//!
//! `cargo +nightly fuzz run responses` fuzzes with libFuzzer. Built without
//! `--cfg fuzzing` (`cargo run --bin responses -- FILES|DIRS`), it replays
//! files instead, by default `corpus/responses/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../src/stress/parse.rs"]
mod parse;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    parse::fuzz_one(data);
});

#[cfg(not(fuzzing))]
#[path = "../../../../testkit/src/corpus.rs"]
mod corpus;

#[cfg(not(fuzzing))]
fn main() {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/responses");
    corpus::replay_args(&default, parse::fuzz_one);
}
