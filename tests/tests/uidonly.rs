//! UIDONLY (RFC 9586) against a real `mailroomd` with Python's imaplib
//! sending raw commands (tests/clients/uidonly.py): refusals with
//! `BAD [UIDREQUIRED]`, `* uid UIDFETCH` answers, VANISHED for expunges
//! (own, another session's, during IDLE), an LMTP delivery as EXISTS. On
//! the memory and CRC stores. Dovecot 2.3 has no UIDONLY, so there is no
//! differential test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is a failure with its message

use mailroom_e2e::{Server, Store};

const USER: &str = "alice@example.com";
const PASSWORD: &str = "secret";

fn uidonly(store: Store) {
    let server = Server::start(store);
    server.add_user(USER, PASSWORD);
    let out = server.run_python("uidonly.py", &[], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

#[test]
fn imaplib_raw_commands_memory_store() {
    uidonly(Store::Memory);
}

#[test]
fn imaplib_raw_commands_crc_store() {
    uidonly(Store::Crc);
}
