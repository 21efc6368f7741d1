//! The failed-login throttle over real sockets: failures on one connection
//! slow down the next connection from the same IP, a success clears the
//! user's counter, and one shared table throttles IMAP and POP3 together.
//!
//! Timing assertions are lower bounds only (a loaded machine may be slower,
//! never faster than the throttle allows).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mailroom_core::Storage;
use mailroom_core::throttle::{LoginFailures, ThrottleConfig};
use mailroom_imap::{ImapConfig, ImapServer};
use mailroom_pop3::TlsMode;
use mailroom_store_memory::MemoryStore;
use mailroom_testkit::spawn_on_loopback;
use tokio::net::TcpStream;

const BASE: Duration = Duration::from_millis(200);
const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

fn throttled(base: Duration) -> ThrottleConfig {
    ThrottleConfig {
        base_delay: base,
        max_delay: base * 8,
        ..ThrottleConfig::default()
    }
}

/// USER/PASS on a new connection; the PASS answer and how long it took.
async fn pass(h: &Harness, user: &str, password: &str) -> (String, Duration) {
    let mut c = h.connect().await;
    assert!(c.line().await.starts_with("+OK"));
    assert_eq!(c.cmd(&format!("USER {user}")).await, "+OK send PASS");
    let start = Instant::now();
    let answer = c.cmd(&format!("PASS {password}")).await;
    let took = start.elapsed();
    c.send_line("QUIT").await;
    (answer, took)
}

#[tokio::test]
async fn failures_on_one_connection_slow_the_next_connection_from_that_ip() {
    let mut config = test_config();
    config.login_throttle = Some(throttled(BASE));
    let h = Harness::start_with(config, None, TlsMode::Plain).await;

    // One failure: its -ERR itself waits the base delay.
    let (answer, took) = pass(&h, ALICE, "wrong").await;
    assert_eq!(answer, "-ERR [AUTH] Authentication failed");
    assert!(took >= BASE, "the failing answer waited only {took:?}");

    // A new connection from the same IP, for another user, with the right
    // password: the attempt waits for the IP's failure before it is checked.
    let (answer, took) = pass(&h, BOB, PASSWORD).await;
    assert!(answer.starts_with("+OK"), "{answer}");
    assert!(
        took >= BASE,
        "the next connection's attempt waited only {took:?}"
    );

    // Each further failure doubles the delay, across connections.
    let (_, took) = pass(&h, ALICE, "wrong again").await;
    assert!(took >= BASE + BASE * 2, "waited only {took:?}"); // before + after
    let failures = h.server.login_failures().expect("the throttle is on");
    assert_eq!(failures.delay_for(None, Some(ALICE)), BASE * 2);
    assert_eq!(failures.delay_for(LOOPBACK, None), BASE * 2);

    // A success clears the user's counter, not the IP's.
    let (answer, _) = pass(&h, ALICE, PASSWORD).await;
    assert!(answer.starts_with("+OK"), "{answer}");
    assert_eq!(failures.delay_for(None, Some(ALICE)), Duration::ZERO);
    assert_eq!(failures.delay_for(LOOPBACK, None), BASE * 2);
}

#[tokio::test]
async fn the_throttle_can_be_turned_off() {
    let mut config = test_config();
    config.login_throttle = None;
    let h = Harness::start_with(config, None, TlsMode::Plain).await;
    assert!(h.server.login_failures().is_none());
    let (answer, _) = pass(&h, ALICE, "wrong").await;
    assert_eq!(answer, "-ERR [AUTH] Authentication failed");
}

/// An IMAP server on loopback over `store` whose throttle uses `failures`.
async fn imap_on(
    store: Arc<MemoryStore>,
    failures: Arc<LoginFailures>,
) -> mailroom_testkit::Spawned<std::io::Result<()>> {
    let storage: Arc<dyn Storage> = store;
    let config = ImapConfig {
        allow_plaintext_auth: true,
        ..ImapConfig::default()
    };
    let server =
        ImapServer::new(storage, None, Arc::new(USERS), config).with_login_failures(failures);
    spawn_on_loopback(move |listener, stop| {
        server.serve(listener, mailroom_imap::TlsMode::Plain, stop)
    })
    .await
}

/// `a LOGIN user password` on a new IMAP connection; the tagged answer
/// and how long it took.
async fn imap_login(addr: std::net::SocketAddr, user: &str, password: &str) -> (String, Duration) {
    let mut c = Client::new(TcpStream::connect(addr).await.unwrap());
    assert!(c.line().await.starts_with("* OK"));
    let start = Instant::now();
    c.send_line(&format!("a LOGIN \"{user}\" \"{password}\""))
        .await;
    let answer = loop {
        let line = c.line().await;
        if line.starts_with("a ") {
            break line;
        }
    };
    (answer, start.elapsed())
}

#[tokio::test]
async fn one_shared_table_throttles_imap_and_pop3_together() {
    let failures = Arc::new(LoginFailures::new(throttled(BASE)));
    let store = Arc::new(MemoryStore::new());
    let mut imap = imap_on(store.clone(), failures.clone()).await;
    let storage: Arc<dyn Storage> = store.clone();
    let pop3 = mailroom_pop3::Pop3Server::new(storage, Arc::new(USERS), test_config())
        .with_login_failures(failures.clone());
    assert!(Arc::ptr_eq(pop3.login_failures().unwrap(), &failures));
    let serve = pop3.clone();
    let mut pop3_serving =
        spawn_on_loopback(move |listener, stop| serve.serve(listener, TlsMode::Plain, stop)).await;
    let pop3_addr = pop3_serving.addr();

    // A wrong password over IMAP...
    let (answer, _) = imap_login(imap.addr(), ALICE, "wrong").await;
    assert!(answer.starts_with("a NO"), "{answer}");
    assert_eq!(failures.delay_for(LOOPBACK, Some(ALICE)), BASE);

    // ...slows the next POP3 attempt from that IP, even with the right password.
    let mut c = Client::new(TcpStream::connect(pop3_addr).await.unwrap());
    assert!(c.line().await.starts_with("+OK"));
    assert_eq!(c.cmd(&format!("USER {ALICE}")).await, "+OK send PASS");
    let start = Instant::now();
    let answer = c.cmd(&format!("PASS {PASSWORD}")).await;
    let took = start.elapsed();
    assert!(answer.starts_with("+OK"), "{answer}");
    assert!(
        took >= BASE,
        "POP3 after an IMAP failure waited only {took:?}"
    );
    assert_eq!(c.cmd("QUIT").await.get(..3), Some("+OK"));

    // And the other way round: a POP3 failure (the IP's second) slows IMAP.
    let mut c = Client::new(TcpStream::connect(pop3_addr).await.unwrap());
    assert!(c.line().await.starts_with("+OK"));
    assert_eq!(c.cmd(&format!("USER {BOB}")).await, "+OK send PASS");
    assert_eq!(
        c.cmd("PASS wrong").await,
        "-ERR [AUTH] Authentication failed"
    );
    let (answer, took) = imap_login(imap.addr(), BOB, PASSWORD).await;
    assert!(answer.starts_with("a OK"), "{answer}");
    assert!(
        took >= BASE * 2,
        "IMAP after a POP3 failure waited only {took:?}"
    );
    assert_eq!(failures.delay_for(None, Some(BOB)), Duration::ZERO);

    imap.shutdown().await;
    pop3_serving.shutdown().await;
}
