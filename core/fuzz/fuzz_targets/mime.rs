//! Fuzz target for the MIME parser behind ENVELOPE, BODYSTRUCTURE and
//! BODY[section] (`MessageSummary::parse`): any bytes a sender can put in a
//! message. The checks are in `tests/mime_support/harness.rs`, shared with
//! the corpus replay test `tests/mime_fuzz_corpus.rs`.
//!
//! `cargo fuzz run mime` fuzzes with libFuzzer (see README.md in this
//! folder). Built without `--cfg fuzzing` (`cargo run --bin mime -- FILES|DIRS`)
//! it replays files instead, by default `corpus/mime/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/mime_support/harness.rs"]
mod harness;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});

#[cfg(not(fuzzing))]
#[path = "../../../testkit/src/corpus.rs"]
mod corpus;

#[cfg(not(fuzzing))]
fn main() {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/mime");
    corpus::replay_args(&default, harness::run);
}
