//! Fuzz target for the CRC store's readers of its own files: one file of a
//! small store damaged per input, then the store opened, used and
//! reconstructed. The checks are in `tests/disk_fuzz_support/harness.rs`,
//! shared with the corpus replay test `tests/disk_fuzz_corpus.rs`.
//!
//! `cargo fuzz run disk` fuzzes with libFuzzer (see `core/fuzz/README.md`
//! for cargo fuzz on a stable toolchain). Built without `--cfg fuzzing`
//! (`cargo run --bin disk -- FILES|DIRS`) it replays files instead, by
//! default `corpus/disk/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/disk_fuzz_support/harness.rs"]
mod harness;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});

#[cfg(not(fuzzing))]
fn main() {
    use std::path::PathBuf;
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/disk"));
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p);
        }
    }
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        harness::run(&data);
    }
    println!("replayed {} inputs", files.len());
}
