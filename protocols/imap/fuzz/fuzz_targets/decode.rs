//! Fuzz target for the IMAP command decoder.
//!
//! Input: up to four bytes of chunk sizes, then the byte stream. The
//! harness (shared with `tests/codec_fuzz_corpus.rs`) feeds the stream in
//! those chunks and checks that the decoder never panics, never stalls,
//! keeps its buffer bounded, and that every command it accepts formats and
//! parses back to itself.
//!
//! `cargo +nightly fuzz run decode` fuzzes with libFuzzer. Built without
//! `--cfg fuzzing` (a plain `cargo run --bin decode -- FILES|DIRS`), it replays
//! files instead, by default `corpus/decode/`.
#![cfg_attr(fuzzing, no_main)]

#[allow(dead_code)]
#[path = "../../tests/codec_support/format.rs"]
mod format;
#[allow(dead_code)]
#[path = "../../tests/codec_support/harness.rs"]
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
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/decode"));
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
