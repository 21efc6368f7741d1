//! Shared by `tests/fetch_fuzz_corpus.rs` and the `fetch` fuzz target
//! (`fuzz/fuzz_targets/fetch.rs` includes the harness by path).

pub(crate) mod harness;
