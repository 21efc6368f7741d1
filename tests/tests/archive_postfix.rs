//! Archive journaling behind Postfix (a private instance on loopback, as in
//! `pop3_lmtp_postfix.rs`): with `sender_bcc_maps` pointing at the journal
//! address `journal+USER@DOMAIN`, a message submitted through Postfix
//! lands in the recipient's INBOX and in the sender's archive, which the
//! domain admin reads over IMAP. A missing program fails the test.

#![allow(clippy::expect_used)]

use mailroom_e2e::{Server, Store, require_program};

fn month() -> String {
    // the archive folder's month: UTC, as mailroomd computes it
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn journaled_through_postfix(store: Store) {
    for program in ["postfix", "postconf", "postqueue", "swaks", "python3"] {
        require_program(program);
    }
    let server = Server::start(store);
    server.add_user("alice@example.com", "alice-pw");
    server.add_user("bob@example.com", "bob-pw");
    let out = server.admin(
        &[
            "user",
            "add",
            "boss@example.com",
            "--password-stdin",
            "--role",
            "domain-admin",
        ],
        "boss-pw\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = server.admin(
        &[
            "archive",
            "enable",
            "alice@example.com",
            "--as",
            "boss@example.com",
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let nexthop = format!("inet:{}", server.lmtp_addr());
    let month = month();
    let out = server.run_script(
        "protocols/lmtp/tests/e2e/postfix_journal.sh",
        &[
            ("MR_LMTP", &nexthop),
            ("MR_USER", "bob@example.com"),
            ("MR_PASSWORD", "bob-pw"),
            ("MR_SENDER", "alice@example.com"),
            ("MR_ADMIN", "boss@example.com"),
            ("MR_ADMIN_PASSWORD", "boss-pw"),
            ("MR_MONTH", &month),
        ],
    );
    assert!(out.contains("postfix_journal: ok"), "{out}");
}

#[test]
fn postfix_sender_bcc_to_the_journal_address_memory() {
    journaled_through_postfix(Store::Memory);
}

#[test]
fn postfix_sender_bcc_to_the_journal_address_crc() {
    journaled_through_postfix(Store::Crc);
}
