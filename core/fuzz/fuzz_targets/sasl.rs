//! Fuzz target for the SASL message parsers (`mailroom_core::sasl`): SCRAM
//! client-first and client-final, OAUTHBEARER and XOAUTH2, any bytes a
//! client can send after base64. The checks are in
//! `tests/sasl_support/harness.rs`, shared with the corpus replay test
//! `tests/sasl_fuzz_corpus.rs`.
//!
//! `cargo fuzz run sasl` fuzzes with libFuzzer (see README.md in this
//! folder). Built without `--cfg fuzzing` (`cargo run --bin sasl -- FILES|DIRS`)
//! it replays files instead, by default `corpus/sasl/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/sasl_support/harness.rs"]
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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/sasl");
    corpus::replay_args(&default, harness::run);
}
