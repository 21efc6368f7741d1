//! Postfix (the Debian package, a private instance on loopback started by
//! the script with its own config and queue directories) accepts mail by
//! SMTP and hands it to `mailroomd` over LMTP, on TCP and on the Unix
//! socket; an over-quota message is deferred with `452 4.2.2`, kept in
//! Postfix's queue, and delivered exactly once after `mailroomd quota set`
//! and `postqueue -f`. Each test runs against every store.
//!
//! The scripts live with the LMTP crate (`protocols/lmtp/tests/e2e/`); a
//! missing program (postfix, swaks, python3) fails the test.

use mailroom_e2e::{Server, Store, require_program};

const USER: &str = "alice@example.com";

fn server(store: Store) -> Server {
    for program in ["postfix", "postconf", "postqueue", "swaks", "python3"] {
        require_program(program);
    }
    let server = Server::start(store);
    server.add_user(USER, "secret");
    server
}

fn postfix_delivers(store: Store, unix: bool) {
    let server = server(store);
    let nexthop = if unix {
        format!("unix:{}", server.lmtp_socket().display())
    } else {
        format!("inet:{}", server.lmtp_addr())
    };
    let out = server.run_script(
        "protocols/lmtp/tests/e2e/postfix_lmtp.sh",
        &[("MR_LMTP", &nexthop)],
    );
    assert!(out.contains("postfix_lmtp: ok"), "{out}");
}

fn postfix_quota(store: Store) {
    let server = server(store);
    let nexthop = format!("inet:{}", server.lmtp_addr());
    let out = server.run_script(
        "protocols/lmtp/tests/e2e/postfix_quota.sh",
        &[("MR_LMTP", &nexthop)],
    );
    assert!(out.contains("postfix_quota: ok"), "{out}");
}

macro_rules! per_store {
    ($($store:ident => $mod:ident),*) => {$(
        mod $mod {
            use super::*;

            #[test]
            fn postfix_to_lmtp_over_tcp() {
                postfix_delivers(Store::$store, false);
            }

            #[test]
            fn postfix_to_lmtp_over_unix_socket() {
                postfix_delivers(Store::$store, true);
            }

            #[test]
            fn over_quota_is_deferred_then_delivered_once() {
                postfix_quota(Store::$store);
            }
        }
    )*};
}

per_store!(Memory => memory, Crc => crc);
