//! Python's `poplib` drives TOP, UIDL and DELE/RSET against the server, and
//! logs in with APOP where the authenticator supports it.
//! Needs `python3` on PATH: the tests fail (never skip) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;

/// Runs `tests/clients/<script>` with `HOST PORT USER PASSWORD`; panics
/// (with its output) unless it exits 0.
async fn run_client(script: &'static str, addr: SocketAddr) -> String {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(path)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(ALICE)
            .arg(PASSWORD)
            .output()
            .expect("python3 must be installed to run this test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

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
    let stdout = run_client("poplib_client.py", h.addr).await;
    assert!(stdout.contains("poplib: ok"), "{stdout}");
    assert_eq!(h.inbox_uids(ALICE).await, [2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_poplib_apop() {
    let h = Harness::start_with_auth(test_config(), Arc::new(APOP_USERS)).await;
    h.deliver(ALICE, b"Subject: apop\r\n\r\nhello\r\n").await;
    let stdout = run_client("poplib_apop.py", h.addr).await;
    assert!(stdout.contains("poplib apop: ok"), "{stdout}");
    // The wrong password was counted, the right one cleared the user.
    let failures = h.server.login_failures().unwrap();
    assert!(!failures.is_empty());
    assert_eq!(
        failures.delay_for(None, Some(ALICE)),
        std::time::Duration::ZERO
    );
}
