//! Fuzz target for the CRC store's readers of its own files: one file of a
//! small store damaged per input, then the store opened, used and
//! reconstructed. The checks are in `tests/disk_fuzz_support/harness.rs`,
//! shared with the corpus replay test `tests/disk_fuzz_corpus.rs`.
//!
//! `cargo fuzz run disk` fuzzes with libFuzzer (see `core/fuzz/README.md`
//! for cargo fuzz on a stable toolchain). Built without `--cfg fuzzing`
//! (`cargo run --bin disk -- FILES|DIRS`) it replays files instead, by
//! default `corpus/disk/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/disk_fuzz_support/harness.rs"]
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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/disk");
    corpus::replay_args(&default, harness::run);
}
