//! Replays the `mime` fuzz corpus (`fuzz/corpus/mime/`) and CPython's corpus
//! of odd real-world messages through the fuzz target's checks, so every
//! input the fuzzer found interesting stays a regression test on stable Rust.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod mime_support;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mime");
    let inputs = files(&dir);
    assert!(
        inputs.len() >= 50,
        "expected the fuzz corpus, found {} inputs in {}",
        inputs.len(),
        dir.display()
    );
    for f in &inputs {
        mime_support::harness::run(&std::fs::read(f).expect("readable corpus file"));
    }
}

/// CPython's `test_email` messages (Debian: libpython3.11-testsuite,
/// installed by `.ci/run`); missing is a failure, not a skip.
#[test]
fn cpython_email_corpus_passes_the_checks() {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import test.test_email,os;print(os.path.dirname(test.test_email.__file__))",
        ])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "CPython's test_email package is missing (Debian: libpython3.11-testsuite): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("data");
    let inputs: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("msg_"))
        })
        .collect();
    assert!(
        inputs.len() >= 40,
        "found only {} messages in {}",
        inputs.len(),
        dir.display()
    );
    for f in &inputs {
        let data = std::fs::read(f).expect("readable message");
        mime_support::harness::run(&data);
        // The same message as a server stores it (CRLF line ends).
        let mut crlf = Vec::with_capacity(data.len() + data.len() / 20);
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        mime_support::harness::run(&crlf);
    }
}
