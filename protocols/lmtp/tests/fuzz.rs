//! 10,000 random byte strings never panic a session, whatever its state,
//! and every reply is a well-formed SMTP reply line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::BytesMut;
use common::*;
use mailroom_lmtp::codec::LmtpCodec;
use mailroom_lmtp::{Action, LmtpServer, Peer};
use mailroom_testkit::store::standard_pipeline;
use mailroom_testkit::{Rng, random_input};
use tower::{Service, ServiceExt};

const WORDS: &[&str] = &[
    "LHLO x.example\r\n",
    "MAIL FROM:<a@b.example>",
    "MAIL FROM:<>",
    " SIZE=",
    " BODY=8BITMIME",
    "RCPT TO:<alice@example.com>",
    "RCPT TO:<alice+lists@example.com>",
    "RCPT TO:<flaky@example.com>",
    "RCPT TO:<",
    "DATA",
    "RSET",
    "NOOP",
    "QUIT",
    "EHLO",
    "\r\n",
    "\n",
    "\r",
    ".",
    "\r\n.\r\n",
    "<",
    ">",
    ":",
    "999999999999999999999",
];

#[tokio::test]
async fn ten_thousand_random_inputs_never_panic_a_session() {
    let store = Arc::new(mailroom_store_memory::MemoryStore::new());
    let mut config = test_config();
    config.max_message_size = 4096;
    let server = LmtpServer::new(
        Arc::new(standard_pipeline(&store)),
        Arc::new(StaticAuth),
        config,
    );
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut positive, mut negative) = (0u32, 0u32);
    for _ in 0..10_000 {
        let mut session = server.session(Peer::Unknown);
        let mut codec = LmtpCodec::new(512, 4096);
        let input = random_input(&mut rng, WORDS, 16, 24);
        let mut buf = BytesMut::from(&input[..]);
        'session: while let Some(cmd) = codec.decode(&mut buf) {
            let response = match session.ready().await.unwrap().call(cmd).await {
                Ok(r) => r,
                Err(mailroom_lmtp::LmtpError::SessionClosed) => break,
                Err(e) => panic!("unexpected error {e}"),
            };
            let mut out = BytesMut::new();
            response.encode(&mut out);
            for line in out[..].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                assert!(
                    line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit),
                    "{line:?}"
                );
                assert!(matches!(line[3], b' ' | b'-' | b'\r'), "{line:?}");
                assert_eq!(line.last(), Some(&b'\r'));
                if line[0] < b'4' {
                    positive += 1;
                } else {
                    negative += 1;
                }
            }
            match response.action {
                Action::ReceiveData => codec.start_data(),
                Action::Close => break 'session,
                _ => {}
            }
        }
    }
    assert!(
        positive > 1_000 && negative > 1_000,
        "positive {positive}, negative {negative}"
    );
}
