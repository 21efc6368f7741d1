//! Fuzz corpora and CPython's corpus of odd real-world messages, for the
//! tests that replay them and for the fuzz targets' replay mode.
//!
//! Standard library only: the fuzz crates (outside the workspace) and
//! `mailroom-core`'s tests (which cannot depend on this crate) include this
//! file by path (`#[path = ".../testkit/src/corpus.rs"] mod corpus;`); the
//! other crates use it as `mailroom_testkit::corpus`.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

/// The files directly in `dir`, sorted by name.
///
/// # Panics
/// If `dir` cannot be read (a missing corpus is a failure, not a skip).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs `check` on every file of the fuzz corpus in `dir`.
///
/// # Panics
/// If there are fewer than `min` files (the corpus went missing), or a
/// file cannot be read; and whenever `check` panics.
pub fn replay(dir: &Path, min: usize, mut check: impl FnMut(&[u8])) {
    let inputs = files(dir);
    assert!(
        inputs.len() >= min,
        "expected the fuzz corpus, found {} inputs in {}",
        inputs.len(),
        dir.display()
    );
    for f in &inputs {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        check(&data);
    }
}

/// The `main` of a fuzz target built without libFuzzer: replays the files
/// and directories named on the command line, or `default_dir`.
pub fn replay_args(default_dir: &Path, check: fn(&[u8])) {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        paths.push(default_dir.to_path_buf());
    }
    let mut n = 0;
    for p in paths {
        let inputs = if p.is_dir() { files(&p) } else { vec![p] };
        for f in inputs {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            check(&data);
            n += 1;
        }
    }
    println!("replayed {n} inputs");
}

/// The `data/` folder of CPython's `test_email` package.
///
/// # Panics
/// If python3 or the package is missing (Debian: libpython3.11-testsuite,
/// installed by `.ci/run`): a missing corpus fails the test.
pub fn cpython_email_dir() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import test.test_email,os;print(os.path.dirname(test.test_email.__file__))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("python3 must be installed: {e}"));
    assert!(
        out.status.success(),
        "CPython's test_email package is missing (Debian: libpython3.11-testsuite): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("data");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    dir
}

/// CPython's test messages (`data/msg_*.txt`), sorted.
///
/// # Panics
/// As [`cpython_email_dir`]; also if fewer than 40 messages are found.
pub fn cpython_email_messages() -> Vec<PathBuf> {
    let dir = cpython_email_dir();
    let messages: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("msg_"))
        })
        .collect();
    assert!(
        messages.len() >= 40,
        "found only {} messages in {}",
        messages.len(),
        dir.display()
    );
    messages
}

/// `data` with every bare LF turned into CRLF, as a server stores it.
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 20);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
