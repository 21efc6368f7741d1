//! POP3 on the shared runtime, over real sockets: a client that stops
//! reading a RETR is dropped after the write timeout and its maildrop lock
//! released (before the runtime POP3 had no write timeout: such a client
//! kept the lock for ever); over the limit on POP3S the refusal comes
//! inside TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ALICE, Client, Harness, PASSWORD, Pop3Client, test_config, tls_connect, tls_pair};
use mailroom_pop3::TlsMode;
use tokio::net::TcpStream;

#[tokio::test]
async fn a_client_that_stops_reading_a_retr_is_dropped_and_the_lock_released() {
    let mut config = test_config();
    config.write_timeout = Duration::from_secs(1);
    let h = Harness::start_with(config, None, TlsMode::Plain).await;
    // 32 MiB: more than the socket buffers of both ends hold
    let mut message = b"From: a@example.com\r\nSubject: big\r\n\r\n".to_vec();
    message.resize(32 << 20, b'x');
    message.extend_from_slice(b"\r\n");
    h.deliver(ALICE, &message).await;

    let mut stalled = h.login(ALICE).await;
    stalled.send_line("RETR 1").await;
    // ... and never reads. Meanwhile the maildrop is locked:
    let mut second = h.connect().await;
    second.line().await;
    second.cmd(&format!("USER {ALICE}")).await;
    let r = second.cmd(&format!("PASS {PASSWORD}")).await;
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}");
    drop(second);

    // after the write timeout the stalled connection is gone, and a new
    // session gets the maildrop
    let limits = h.server.connection_limits().clone();
    let dropped = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if limits.open() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(dropped.is_ok(), "{} connections still open", limits.open());
    let mut third = h.login(ALICE).await;
    let (status, _) = third.multi("LIST").await;
    assert!(status.starts_with("+OK 1 messages"), "{status}");
    drop(stalled);
}

#[tokio::test]
async fn over_the_limit_on_pop3s_the_refusal_comes_inside_tls() {
    let (server_tls, client_tls) = tls_pair();
    let mut config = test_config();
    config.max_connections = 1;
    let h = Harness::start_with(config, Some(server_tls), TlsMode::Implicit).await;
    let first = TcpStream::connect(h.addr).await.unwrap();
    let mut first = Client::new(tls_connect(first, client_tls.clone()).await);
    assert!(first.line().await.starts_with("+OK"));
    let second = TcpStream::connect(h.addr).await.unwrap();
    let mut second = Client::new(tls_connect(second, client_tls).await);
    assert_eq!(
        second.line().await,
        "-ERR [SYS/TEMP] too many connections; try again later"
    );
    second.expect_closed().await;
}
