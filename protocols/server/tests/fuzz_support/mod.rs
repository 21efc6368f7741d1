//! Shared by `tests/fuzz_corpus.rs`, `tests/proxy_parser.rs` and the `proxy`
//! fuzz target (`fuzz/fuzz_targets/proxy.rs` includes the harness by path).

pub(crate) mod harness;
