//! Fuzz target for the replication frame decoder and the typed frame
//! readers: any bytes a peer sends on the replication port. The checks are
//! in `tests/fuzz_support/harness.rs`, shared with the corpus replay test
//! `tests/frame_fuzz_corpus.rs`.
//!
//! `cargo fuzz run frame` fuzzes with libFuzzer (see `core/fuzz/README.md`
//! for running cargo fuzz on a stable toolchain). Built without
//! `--cfg fuzzing` (`cargo run --bin frame -- FILES|DIRS`) it replays files
//! instead, by default `corpus/frame/`.
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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/frame");
    corpus::replay_args(&default, harness::run);
}
