//! Shared by `tests/frame_fuzz_corpus.rs` and the `frame` fuzz target
//! (`fuzz/fuzz_targets/frame.rs` includes the harness by path).

pub(crate) mod harness;
