//! NOTIFY (RFC 5465) against a real `mailroomd` with Python's imaplib and
//! LMTP deliveries (tests/clients/notify.py): an LMTP delivery to a
//! mailbox that is not selected gives `* STATUS` (pushed in IDLE, and after
//! NOOP), an expunge by another session too, CREATE/RENAME/SUBSCRIBE/DELETE
//! by another session give `* LIST` during IDLE (woken by the store's
//! namespace watch; each LIST's delay after the other session's OK is
//! printed), NOTIFY NONE stops it. On every store, and across two
//! frontends on one PostgreSQL database (delivery and the other session on
//! the second frontend: a CREATE there reaches an IDLE here through the
//! database's NOTIFY). mailroomd has no admin command that renames a
//! mailbox; on the CRC store the RENAME comes from a second IMAP session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is a failure with its message

use mailroom_e2e::{Server, Store};
use mailroom_testkit::postgres::PgCluster;

const USER: &str = "alice@example.com";
const PASSWORD: &str = "secret";

fn notify(store: Store) {
    let server = Server::start(store);
    server.add_user(USER, PASSWORD);
    let out = server.run_python("notify.py", &[], &[]);
    println!("{out}");
    assert!(out.contains("ALL OK"), "{out}");
}

#[test]
fn imaplib_and_lmtp_memory_store() {
    notify(Store::Memory);
}

#[test]
fn imaplib_and_lmtp_crc_store() {
    notify(Store::Crc);
}

#[test]
fn imaplib_and_lmtp_postgres_store() {
    notify(Store::Postgres);
}

#[test]
fn across_two_frontends_on_one_postgres_database() {
    let url = PgCluster::shared().create_database("notify");
    let servers: Vec<Server> = (0..2)
        .map(|_| {
            let s = Server::start_on_postgres(&url, "");
            s.add_user(USER, PASSWORD);
            s
        })
        .collect();
    let other_imaps = servers[1].imaps_addr().port().to_string();
    let other_lmtp = servers[1].lmtp_addr().port().to_string();
    let other_cert = servers[1].cert_path().display().to_string();
    let out = servers[0].run_python(
        "notify.py",
        &[],
        &[
            ("MR_OTHER_IMAPS_PORT", &other_imaps),
            ("MR_OTHER_LMTP_PORT", &other_lmtp),
            ("MR_OTHER_CERT", &other_cert),
        ],
    );
    println!("{out}");
    assert!(out.contains("ALL OK"), "{out}");
}
