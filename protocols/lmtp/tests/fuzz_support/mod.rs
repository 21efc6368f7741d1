//! Shared by `tests/codec_fuzz_corpus.rs` and the `codec` fuzz target
//! (`fuzz/fuzz_targets/codec.rs` includes the harness by path).

pub(crate) mod harness;
