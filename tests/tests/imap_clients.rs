//! Real IMAP clients against a real `mailroomd`: Python's imaplib and
//! imapclient (tests/clients/imap_e2e.py), mbsync and offlineimap
//! (tests/clients/sync_clients.py; mbsync with COMPRESS=DEFLATE on). Each
//! test runs against every store.

use mailroom_e2e::{Server, Store, require_program};

fn imap_e2e(store: Store) {
    let server = Server::start(store);
    server.add_user("alice@example.com", "secret");
    let out = server.run_python("imap_e2e.py", &[], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

fn sync_tree(store: Store, tool: &str) {
    require_program(tool);
    let server = Server::start(store);
    server.add_user("alice@example.com", "secret");
    let out = server.run_python("sync_clients.py", &[tool], &[]);
    assert!(out.contains("ALL OK"), "{out}");
    if tool == "mbsync" {
        // mbsync turns COMPRESS=DEFLATE (RFC 4978) on whenever it is
        // offered: the sync above ran compressed
        let log = server.log();
        assert!(
            log.lines()
                .any(|l| l.contains("command=\"COMPRESS\"") && l.contains("status=\"OK\"")),
            "mbsync did not turn COMPRESS on:\n{log}"
        );
    }
}

macro_rules! per_store {
    ($($store:ident => $mod:ident),*) => {$(
        mod $mod {
            use super::*;

            #[test]
            fn imaplib_and_imapclient() {
                imap_e2e(Store::$store);
            }

            #[test]
            fn mbsync_two_way_sync_of_1000_messages() {
                sync_tree(Store::$store, "mbsync");
            }

            #[test]
            fn offlineimap_two_way_sync_of_1000_messages() {
                sync_tree(Store::$store, "offlineimap");
            }
        }
    )*};
}

per_store!(Memory => memory, Crc => crc, Postgres => postgres);

/// Shared folders as imapclient finds them (tests/clients/shared.py):
/// NAMESPACE, LIST under the other-users prefix, read access, refused
/// APPEND without the `i` right, gone after the rights are taken back.
fn shared_folders(store: Store) {
    let server = Server::start(store);
    server.add_user("alice@example.com", "secret");
    server.add_user("bob@example.com", "bobsecret");
    let out = server.run_python("shared.py", &[], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

#[test]
fn shared_folders_with_imapclient_memory_store() {
    shared_folders(Store::Memory);
}

#[test]
fn shared_folders_with_imapclient_crc_store() {
    shared_folders(Store::Crc);
}

/// UTF8=ACCEPT with Python's imaplib (tests/clients/utf8.py): ENABLE,
/// UTF-8 mailbox names both ways, APPEND of UTF-8 headers, FETCH, SEARCH.
fn utf8_accept(store: Store) {
    let server = Server::start(store);
    server.add_user("alice@example.com", "secret");
    let out = server.run_python("utf8.py", &[], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

#[test]
fn utf8_accept_with_imaplib_memory_store() {
    utf8_accept(Store::Memory);
}

#[test]
fn utf8_accept_with_imaplib_crc_store() {
    utf8_accept(Store::Crc);
}

/// CONTEXT=SEARCH/SORT (RFC 5267) with imaplib and LMTP deliveries
/// (tests/clients/context.py): UID SEARCH and UID SORT with RETURN
/// (UPDATE) get ADDTO for deliveries (after NOOP and pushed in IDLE),
/// REMOVEFROM for another connection's expunge, PARTIAL, CANCELUPDATE.
#[test]
fn context_updates_with_imaplib_and_lmtp_crc_store() {
    let server = Server::start(Store::Crc);
    server.add_user("alice@example.com", "secret");
    let out = server.run_python("context.py", &[], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}
