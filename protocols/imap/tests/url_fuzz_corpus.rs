//! Replays the fuzz corpus of the IMAP URL parser (`fuzz/corpus/url/`)
//! through the same harness as the fuzz target `url`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "url_support/harness.rs"]
mod harness;

use mailroom_testkit::corpus;

#[test]
fn url_fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/url");
    corpus::replay(&dir, 10, harness::run);
}
