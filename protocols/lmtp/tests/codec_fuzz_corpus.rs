//! Replays the `codec` fuzz corpus (`fuzz/corpus/codec/`) through the fuzz
//! target's checks, so every input the fuzzer kept stays a regression test
//! on stable Rust.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod fuzz_support;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/codec");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus directory must exist") {
        let data = std::fs::read(entry.expect("readable corpus entry").path())
            .expect("readable corpus file");
        fuzz_support::harness::run(&data);
        n += 1;
    }
    assert!(
        n >= 50,
        "expected the fuzz corpus, found {n} inputs in {}",
        dir.display()
    );
}
