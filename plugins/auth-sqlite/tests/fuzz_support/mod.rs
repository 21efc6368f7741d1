//! Shared by `tests/login_name_fuzz_corpus.rs` and the `login_name` fuzz
//! target (`fuzz/fuzz_targets/login_name.rs` includes the harness by path).

pub(crate) mod harness;
