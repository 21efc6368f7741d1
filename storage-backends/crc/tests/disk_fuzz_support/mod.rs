//! Shared by `tests/disk_fuzz_corpus.rs` and the `disk` fuzz target
//! (`fuzz/fuzz_targets/disk.rs` includes the harness by path).

pub(crate) mod harness;
