//! Shared by `tests/mime_fuzz_corpus.rs` and the `mime` fuzz target
//! (`fuzz/fuzz_targets/mime.rs` includes this file by path).

pub(crate) mod harness;
