//! `QuickAck`: received data is acknowledged at once, so a client without
//! TCP_NODELAY that sends a literal and its final CRLF in two writes
//! (Python's imaplib) does not wait for the 40 ms delayed ACK on every
//! APPEND. The effect on APPEND throughput is measured by
//! `mailroom-bench` (row "imaplib-style client", IMAP); here the mechanism: the
//! socket is back in quick-ACK mode after every read.

#![cfg(any(target_os = "linux", target_os = "android"))]
#![allow(clippy::unwrap_used)]

use mailroom_server::QuickAck;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn quick_ack_mode_is_rearmed_after_every_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let mut server = QuickAck::new(server);
    for round in 0..5u8 {
        // the kernel leaves quick-ACK mode on its own; simulate that
        server.get_ref().set_quickack(false).unwrap();
        assert!(!server.get_ref().quickack().unwrap());
        client.write_all(&[round]).await.unwrap();
        let mut b = [0u8; 1];
        server.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], round);
        assert!(
            server.get_ref().quickack().unwrap(),
            "round {round}: not re-armed after a read"
        );
    }
    // writes pass through
    server.write_all(b"* OK\r\n").await.unwrap();
    let mut line = [0u8; 6];
    client.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"* OK\r\n");
}
