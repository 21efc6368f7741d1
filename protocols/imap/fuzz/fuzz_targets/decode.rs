//! Fuzz target for the IMAP command decoder.
//!
//! Input: up to four bytes of chunk sizes, then the byte stream. The
//! harness (shared with `tests/codec_fuzz_corpus.rs`) feeds the stream in
//! those chunks and checks that the decoder never panics, never stalls,
//! keeps its buffer bounded, and that every command it accepts formats and
//! parses back to itself. The high bit of the first byte turns LITERAL-
//! (RFC 7888) on.
//!
//! `cargo +nightly fuzz run decode` fuzzes with libFuzzer. Built without
//! `--cfg fuzzing` (a plain `cargo run --bin decode -- FILES|DIRS`), it replays
//! files instead, by default `corpus/decode/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/codec_support/format.rs"]
mod format;
#[allow(dead_code)]
#[path = "../../tests/codec_support/harness.rs"]
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
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/decode");
    corpus::replay_args(&default, harness::run);
}
