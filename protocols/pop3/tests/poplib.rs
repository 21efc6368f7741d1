//! Python's `poplib` drives TOP, UIDL and DELE/RSET against the server.
//! Needs `python3` on PATH: the test fails (never skips) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_poplib_top_uidl_dele_rset() {
    let h = Harness::start().await;
    h.deliver(
        ALICE,
        b"Subject: first\r\nFrom: a@example.org\r\n\r\nbody line 1\r\nbody line 2\r\n",
    )
    .await;
    h.deliver(ALICE, b"Subject: second\n\nunix line ends\n")
        .await;
    h.deliver(
        ALICE,
        b"Subject: third\r\n\r\n.dotted line\r\n..two dots\r\nno final newline",
    )
    .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/poplib_client.py"
    );
    let addr = h.addr;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(ALICE)
            .arg(PASSWORD)
            .output()
            .expect("python3 must be installed to run this test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "poplib script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("poplib: ok"), "{stdout}");
    assert_eq!(h.inbox_uids(ALICE).await, [2, 3]);
}
