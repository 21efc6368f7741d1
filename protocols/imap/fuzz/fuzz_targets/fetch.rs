//! Fuzz target for the FETCH response encoder: any bytes as a message, its
//! ENVELOPE, BODYSTRUCTURE, BODY and BODY[HEADER] written as Mailroom writes
//! them, then parsed back by `imap-codec`, which must read it all and find
//! our part tree. The checks are in `tests/fetch_support/harness.rs`, shared
//! with the corpus replay test `tests/fetch_fuzz_corpus.rs`.
//!
//! `cargo fuzz run fetch` fuzzes with libFuzzer (see `core/fuzz/README.md`
//! for cargo fuzz on a stable toolchain). Built without `--cfg fuzzing`
//! (`cargo run --bin fetch -- FILES|DIRS`) it replays files instead, by
//! default `corpus/fetch/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/fetch_support/harness.rs"]
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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/fetch");
    corpus::replay_args(&default, harness::run);
}
