//! 8 IMAP sessions append, store and expunge on one mailbox while 8 others
//! FETCH and IDLE (tests/clients/concurrency.py); afterwards every view was a
//! real state and `mailroomd verify` finds the CRC index consistent.

use mailroom_e2e::{Server, Store};

#[test]
fn writers_and_readers_on_one_mailbox() {
    let server = Server::start(Store::Crc);
    server.add_user("alice@example.com", "secret");
    let out = server.run_python("concurrency.py", &[], &[]);
    assert!(out.contains("ALL OK"), "{out}");
    let verify = server.admin(&["verify", "alice@example.com/Busy"], "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success(), "verify failed:\n{text}");
}
