//! Replays the fuzz corpus (`fuzz/corpus/decode/`) through the same harness
//! as the fuzz target, so every input the fuzzer found interesting stays a
//! regression test on stable Rust.

mod codec_support;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus directory must exist") {
        let path = entry.expect("readable corpus entry").path();
        let data = std::fs::read(&path).expect("readable corpus file");
        codec_support::harness::run(&data);
        n += 1;
    }
    assert!(
        n >= 50,
        "expected the seed corpus, found {n} inputs in {}",
        dir.display()
    );
}
