//! APOP (RFC 1939 §7) over real sockets, with an authenticator that can
//! check it (the test directory knows the plaintext password). Without such
//! an authenticator APOP is not offered at all: see
//! `greeting_has_no_apop_timestamp_and_capa_lists_everything` in
//! `protocol.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mailroom_testkit::{StaticAuthenticator, apop_digest};
use tokio::net::TcpStream;

/// RFC 1939's example user and secret.
const MROSE: StaticAuthenticator = StaticAuthenticator::new(&["mrose"])
    .password("tanstaaf")
    .apop();

fn hex(digest: [u8; 16]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The timestamp at the end of a greeting, checked against RFC 1939 §7's
/// syntax as this server writes it: `<pid.counter.nanos@host>`.
fn timestamp(greeting: &str, host: &str) -> String {
    let start = greeting.find('<').expect("a timestamp in the greeting");
    let ts = &greeting[start..];
    assert!(ts.ends_with('>'), "{greeting}");
    let (local, domain) = ts[1..ts.len() - 1].split_once('@').unwrap();
    assert_eq!(domain, host);
    let parts: Vec<&str> = local.split('.').collect();
    assert_eq!(parts.len(), 3, "{ts}");
    assert!(
        parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "{ts}"
    );
    assert_eq!(parts[0], std::process::id().to_string());
    ts.to_owned()
}

async fn apop_harness(config: mailroom_pop3::Pop3Config) -> Harness {
    Harness::start_with_auth(config, Arc::new(APOP_USERS)).await
}

/// Connects and returns the client and the greeting's timestamp.
async fn connect(h: &Harness) -> (Client<TcpStream>, String) {
    let mut c = h.connect().await;
    let greeting = c.line().await;
    assert!(
        greeting.starts_with("+OK pop.test Mailroom POP3 server ready <"),
        "{greeting}"
    );
    let ts = timestamp(&greeting, "pop.test");
    (c, ts)
}

#[tokio::test]
async fn rfc1939_user_logs_in_with_apop() {
    let h = Harness::start_with_auth(test_config(), Arc::new(MROSE)).await;
    h.deliver("mrose", b"Subject: hi\r\n\r\nhello\r\n").await;
    let (mut c, ts) = connect(&h).await;
    let digest = hex(apop_digest(&ts, "tanstaaf"));
    let answer = c.cmd(&format!("APOP mrose {digest}")).await;
    assert_eq!(answer, "+OK mrose's maildrop has 1 messages (22 octets)");
    assert_eq!(c.cmd("STAT").await, "+OK 1 22");
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
}

#[tokio::test]
async fn apop_digest_in_upper_case_is_accepted_and_capa_is_unchanged() {
    let h = apop_harness(test_config()).await;
    let (mut c, ts) = connect(&h).await;
    let (_, caps) = c.multi("CAPA").await;
    assert!(caps.iter().all(|c| !c.contains("APOP")), "{caps:?}");
    let digest = hex(apop_digest(&ts, PASSWORD)).to_ascii_uppercase();
    let answer = c.cmd(&format!("APOP {ALICE} {digest}")).await;
    assert!(answer.starts_with("+OK"), "{answer}");
    // Only in the AUTHORIZATION state.
    assert_eq!(
        c.cmd(&format!("APOP {ALICE} {digest}")).await,
        "-ERR command not valid in this state"
    );
}

#[tokio::test]
async fn wrong_digest_is_an_auth_error_and_counts_for_the_throttle() {
    let h = apop_harness(test_config()).await;
    let (mut c, ts) = connect(&h).await;
    let wrong = hex(apop_digest(&ts, "not the password"));
    assert_eq!(
        c.cmd(&format!("APOP {ALICE} {wrong}")).await,
        "-ERR [AUTH] Authentication failed"
    );
    let failures = h.server.login_failures().unwrap();
    assert!(failures.delay_for(None, Some(ALICE)) > Duration::ZERO);
    // An unknown user gets the same answer.
    let right_for_alice = hex(apop_digest(&ts, PASSWORD));
    assert_eq!(
        c.cmd(&format!("APOP nobody@example.com {right_for_alice}"))
            .await,
        "-ERR [AUTH] Authentication failed"
    );
    // The connection stays usable: the right digest still works (third
    // attempt, under max_auth_failures), and clears alice's counter.
    let answer = c.cmd(&format!("APOP {ALICE} {right_for_alice}")).await;
    assert!(answer.starts_with("+OK"), "{answer}");
    assert_eq!(failures.delay_for(None, Some(ALICE)), Duration::ZERO);
}

#[tokio::test]
async fn every_connection_has_its_own_timestamp_so_digests_do_not_replay() {
    let h = apop_harness(test_config()).await;
    let (mut first, ts1) = connect(&h).await;
    let (mut second, ts2) = connect(&h).await;
    assert_ne!(ts1, ts2);
    let digest1 = hex(apop_digest(&ts1, PASSWORD));
    // Replaying the first connection's digest on the second fails...
    assert_eq!(
        second.cmd(&format!("APOP {ALICE} {digest1}")).await,
        "-ERR [AUTH] Authentication failed"
    );
    // ...while it works where it belongs.
    let answer = first.cmd(&format!("APOP {ALICE} {digest1}")).await;
    assert!(answer.starts_with("+OK"), "{answer}");
}

#[tokio::test]
async fn malformed_apop_gets_a_clear_err_and_keeps_the_connection() {
    let h = apop_harness(test_config()).await;
    let (mut c, ts) = connect(&h).await;
    let long_user = "u".repeat(256);
    for (line, answer) in [
        (
            "APOP".to_owned(),
            "-ERR APOP needs a user name and a digest",
        ),
        (
            format!("APOP {ALICE}"),
            "-ERR APOP needs a user name and a digest",
        ),
        (
            format!("APOP {ALICE} 0123456789abcdef0123456789abcdef extra"),
            "-ERR APOP needs a user name and a digest",
        ),
        (
            format!("APOP {long_user} 0123456789abcdef0123456789abcdef"),
            "-ERR APOP user name too long (at most 255 octets)",
        ),
        (
            format!("APOP {ALICE} 0123456789abcdef"),
            "-ERR APOP digest must be exactly 32 hex digits",
        ),
        (
            format!("APOP {ALICE} 0123456789abcdef0123456789abcdeg"),
            "-ERR APOP digest must be exactly 32 hex digits",
        ),
    ] {
        assert_eq!(c.cmd(&line).await, answer, "{line}");
    }
    // Malformed lines never reached the authenticator.
    assert!(h.server.login_failures().unwrap().is_empty());
    let digest = hex(apop_digest(&ts, PASSWORD));
    let answer = c.cmd(&format!("APOP {ALICE} {digest}")).await;
    assert!(answer.starts_with("+OK"), "{answer}");
}

#[tokio::test]
async fn apop_works_where_plaintext_passwords_are_refused() {
    let h = apop_harness(plaintext_tls_only(test_config())).await;
    let (mut c, ts) = connect(&h).await;
    assert!(
        c.cmd(&format!("USER {ALICE}"))
            .await
            .starts_with("-ERR [AUTH] Plaintext authentication disallowed")
    );
    let digest = hex(apop_digest(&ts, PASSWORD));
    let answer = c.cmd(&format!("APOP {ALICE} {digest}")).await;
    assert!(answer.starts_with("+OK"), "{answer}");
}

#[tokio::test]
async fn a_host_name_that_is_not_a_domain_becomes_localhost_in_the_timestamp() {
    let mut config = test_config();
    config.hostname = "bad host>name".into();
    let h = apop_harness(config).await;
    let mut c = h.connect().await;
    let greeting = c.line().await;
    let ts = timestamp(&greeting, "localhost");
    let digest = hex(apop_digest(&ts, PASSWORD));
    assert!(
        c.cmd(&format!("APOP {BOB} {digest}"))
            .await
            .starts_with("+OK")
    );
}
