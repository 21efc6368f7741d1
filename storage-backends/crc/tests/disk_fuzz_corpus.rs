//! Replays the `disk` fuzz corpus (`fuzz/corpus/disk/`): a store with one
//! damaged file per input, opened, used and reconstructed without a panic
//! and without serving a message whose bytes are not its GUID's.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod disk_fuzz_support;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/disk");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus directory must exist") {
        let data = std::fs::read(entry.expect("readable corpus entry").path())
            .expect("readable corpus file");
        disk_fuzz_support::harness::run(&data);
        n += 1;
    }
    assert!(
        n >= 50,
        "expected the fuzz corpus, found {n} inputs in {}",
        dir.display()
    );
}
