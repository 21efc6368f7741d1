//! Fuzz target for the login name rules (`src/name.rs`): any bytes a client
//! sends as a user name. The checks are in `tests/fuzz_support/harness.rs`,
//! shared with the corpus replay test `tests/login_name_fuzz_corpus.rs`.
//!
//! `cargo fuzz run login_name` fuzzes with libFuzzer (see
//! `core/fuzz/README.md` for running cargo fuzz on a stable toolchain).
//! Built without `--cfg fuzzing` (`cargo run --bin login_name -- FILES|DIRS`)
//! it replays files instead, by default `corpus/login_name/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../src/name.rs"]
mod name;

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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/login_name");
    corpus::replay_args(&default, harness::run);
}
