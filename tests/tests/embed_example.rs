//! The README's embedding example (`protocols/imap/examples/embed.rs`) is
//! built and run in CI: it serves IMAP over the memory store, logs in once
//! with a real socket and exits 0.

use std::path::Path;
use std::process::Command;

use mailroom_e2e::workspace_root;

#[test]
fn embedding_example_runs() {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "mailroom-imap", "--example", "embed"])
        .current_dir(workspace_root())
        .status()
        .expect("cargo build");
    assert!(status.success(), "the embedding example does not build");
    let exe = std::env::current_exe().expect("test exe");
    // target/<profile>/deps/<test> -> target/<profile>/examples/embed
    let example = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples")
        .join("embed");
    let out = Command::new(&example)
        .arg("--self-test")
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("self-test passed"),
        "example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
