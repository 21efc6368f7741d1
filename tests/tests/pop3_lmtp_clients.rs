//! Real POP3 clients against a real `mailroomd`, mail delivered over its
//! LMTP listener: Python's `poplib` (TOP, UIDL, DELE/RSET, `[IN-USE]`, the
//! plaintext rule), POP3 next to IMAP on one mailbox, and `fetchmail` and
//! `getmail` in UIDL keep mode over STLS and POP3S. Each test runs against
//! every store.

use mailroom_e2e::{Server, Store, require_program};

const USER: &str = "alice@example.com";
const PASSWORD: &str = "secret";

fn server(store: Store) -> Server {
    let server = Server::start(store);
    server.add_user(USER, PASSWORD);
    server
}

fn poplib(store: Store) {
    let out = server(store).run_python("pop3_e2e.py", &["poplib"], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

fn pop3_and_imap(store: Store) {
    let out = server(store).run_python("pop3_e2e.py", &["coexist"], &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

fn fetchmail_and_getmail(store: Store) {
    require_program("fetchmail");
    require_program("getmail");
    let out = server(store).run_script("protocols/lmtp/tests/e2e/pop3_fetchers.sh", &[]);
    assert!(out.contains("pop3_fetchers: ok"), "{out}");
}

macro_rules! per_store {
    ($($store:ident => $mod:ident),*) => {$(
        mod $mod {
            use super::*;

            #[test]
            fn poplib_top_uidl_dele_rset_over_stls_and_pop3s() {
                poplib(Store::$store);
            }

            #[test]
            fn imap_sees_pop3_deletions_after_quit() {
                pop3_and_imap(Store::$store);
            }

            #[test]
            fn fetchmail_and_getmail_keep_mode_fetch_nothing_twice() {
                fetchmail_and_getmail(Store::$store);
            }
        }
    )*};
}

per_store!(Memory => memory, Crc => crc, Postgres => postgres);
