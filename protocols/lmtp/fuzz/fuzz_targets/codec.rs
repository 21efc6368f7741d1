//! Fuzz target for the LMTP decoder (commands, and DATA with dot-unstuffing
//! and the size limit): any bytes an MTA sends. The checks are in
//! `tests/fuzz_support/harness.rs`, shared with the corpus replay test
//! `tests/codec_fuzz_corpus.rs`.
//!
//! `cargo fuzz run codec` fuzzes with libFuzzer (see `core/fuzz/README.md`
//! for running cargo fuzz on a stable toolchain). Built without
//! `--cfg fuzzing` (`cargo run --bin codec -- FILES|DIRS`) it replays files
//! instead, by default `corpus/codec/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/fuzz_support/harness.rs"]
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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/codec");
    corpus::replay_args(&default, harness::run);
}
