//! 10,000 random byte strings never panic a session, whatever its state,
//! and every reply is a well-formed POP3 status line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::BytesMut;
use common::*;
use mailroom_pop3::codec::{Command, Pop3Codec, Reply};
use mailroom_pop3::{ConnectionInfo, Pop3Server};
use mailroom_testkit::store::deliver;
use mailroom_testkit::{Rng, random_input};
use tower::{Service, ServiceExt};

const WORDS: &[&str] = &[
    "USER ",
    "PASS ",
    "AUTH ",
    "AUTH PLAIN ",
    "AUTH LOGIN",
    "STLS",
    "STAT",
    "LIST ",
    "RETR ",
    "DELE ",
    "NOOP",
    "RSET",
    "TOP ",
    "UIDL ",
    "CAPA",
    "QUIT",
    "APOP ",
    "*",
    "=",
    "1",
    "0",
    " ",
    "\r\n",
    "\n",
    "\r",
    ".",
    "4294967296",
    "alice@example.com",
    "correct horse",
];

fn check(reply: Reply) -> bool {
    let mut out = BytesMut::new();
    let ok = reply.is_ok();
    let writer = reply.encode(&mut out);
    assert!(
        out.starts_with(b"+OK") || out.starts_with(b"-ERR") || out.starts_with(b"+ "),
        "{out:?}"
    );
    let first = out.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(out[first - 1], b'\r');
    if let Some(mut w) = writer {
        while !w.fill(&mut out, 4096) {}
    }
    ok
}

#[tokio::test]
async fn ten_thousand_random_inputs_never_panic_a_session() {
    let store = Arc::new(mailroom_store_memory::MemoryStore::new());
    let server = Pop3Server::new(store.clone(), Arc::new(StaticAuth::new()), test_config());
    deliver(&store, ALICE, b"Subject: a\r\n\r\n.body\r\n").await;
    deliver(&store, ALICE, b"x").await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let info = ConnectionInfo {
        peer: Some("127.0.0.1:1".parse().unwrap()),
        tls: false,
        stls_available: true,
    };
    let (mut oks, mut errs) = (0u32, 0u32);
    for i in 0..10_000 {
        let mut session = server.session(info);
        let mut codec = Pop3Codec::new(255);
        // Half the sessions start logged in, to reach TRANSACTION commands.
        if i % 2 == 0 {
            for cmd in [Command::User(ALICE.into()), Command::Pass(PASSWORD.into())] {
                session.ready().await.unwrap().call(cmd).await.unwrap();
            }
        }
        let mut input = random_input(&mut rng, WORDS, 12, 20);
        input.extend_from_slice(b"\r\n");
        let mut buf = BytesMut::from(&input[..]);
        while let Some(cmd) = codec.decode(&mut buf) {
            match session.ready().await.unwrap().call(cmd).await {
                Ok(reply) => {
                    codec.set_expect_sasl_response(
                        reply.status == mailroom_pop3::codec::Status::Continue,
                    );
                    if check(reply) {
                        oks += 1;
                    } else {
                        errs += 1;
                    }
                }
                // After QUIT or a closing reply the session refuses more work.
                Err(mailroom_pop3::Pop3Error::SessionClosed) => break,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        // Never a QUIT that would delete: close without committing.
        drop(session);
    }
    // The generator reaches both success and failure paths in quantity.
    assert!(oks > 300 && errs > 1_000, "oks {oks}, errs {errs}");
}
