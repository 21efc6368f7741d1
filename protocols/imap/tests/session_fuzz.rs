//! Fuzz-style test: 10,000 random byte strings (pure noise and noise mixed
//! with fragments of real commands, before and after login) never panic
//! the server, and it keeps serving new connections afterwards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAGMENTS: &[&[u8]] = &[
    b"a1 ",
    b"LOGIN ",
    b"alice@example.com secret",
    b"SELECT INBOX",
    b"EXAMINE INBOX",
    b"FETCH 1:* (FLAGS BODY.PEEK[1.2.MIME]<0.10> ENVELOPE BODYSTRUCTURE)",
    b"UID ",
    b"SEARCH OR (SEEN) NOT BODY \"x\" ",
    b"STORE 1 +FLAGS.SILENT (\\Seen)",
    b"APPEND INBOX ",
    b"{5}\r\n",
    b"{3+}\r\n",
    b"IDLE\r\n",
    b"DONE\r\n",
    b"AUTHENTICATE PLAIN\r\n",
    b"*\r\n",
    b"LIST \"\" *",
    b"STATUS INBOX (MESSAGES UNSEEN)",
    b"ENABLE QRESYNC",
    b"(",
    b")",
    b"\"",
    b"\\",
    b"[",
    b"]",
    b"<",
    b">",
    b"%",
    b"*",
    b"\0",
    b"\r\n",
    b"\n",
    b" ",
    b"1:*",
    b"4294967296",
    b"SELECT INBOX (QRESYNC (1 1 1:*))",
    b"COPY 1 Trash",
    b"MOVE 1:* Junk",
    b"EXPUNGE",
    b"NOOP",
    b"&Jjo-",
    b"&",
    b"CREATE \"&AOQ-\"",
    b"RENAME INBOX x",
    b"SETACL INBOX bob lr",
    b"ID (",
];

fn random_input(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    let parts = rng.random_range(1..8);
    for _ in 0..parts {
        if rng.random_bool(0.5) {
            let n = rng.random_range(0..64);
            out.extend((0..n).map(|_| rng.random::<u8>()));
        } else {
            out.extend_from_slice(FRAGMENTS[rng.random_range(0..FRAGMENTS.len())]);
        }
    }
    if rng.random_bool(0.7) {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_inputs_never_panic_the_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let srv = start().await;
    {
        let mut c = Client::login(srv.addr, "alice@example.com").await;
        for i in 0..3 {
            c.append("INBOX", "", &message(&format!("m{i}"), "body"))
                .await;
        }
    }
    let mut rng = StdRng::seed_from_u64(0x1ba5_eba1);
    let mut sent = 0usize;
    let mut connections = 0usize;
    let mut answered = 0usize;
    while sent < 10_000 {
        connections += 1;
        let mut stream = TcpStream::connect(srv.addr).await.unwrap();
        let (mut rd, mut wr) = stream.split();
        // Half the connections log in first, so the selected-state code is reached too.
        if connections.is_multiple_of(2) {
            wr.write_all(b"l LOGIN alice@example.com secret\r\ns SELECT INBOX\r\n")
                .await
                .unwrap();
        }
        let drain = async {
            let mut buf = vec![0u8; 64 * 1024];
            let mut lines = 0usize;
            loop {
                match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
                }
            }
            lines
        };
        let send = async {
            let mut n = 0;
            while n < 500 && sent + n < 10_000 {
                let input = random_input(&mut rng);
                if wr.write_all(&input).await.is_err() {
                    break;
                }
                n += 1;
            }
            let _ = wr.write_all(b"\r\nDONE\r\nz LOGOUT\r\n").await;
            let _ = wr.shutdown().await;
            n
        };
        let (n, lines) = tokio::join!(send, drain);
        sent += n.max(1);
        answered += lines;
    }
    eprintln!("fuzz: {sent} inputs over {connections} connections, {answered} response lines");
    // The server really read the input (most of it is answered with BAD).
    assert!(answered > 2_000, "only {answered} response lines");
    // Still serving.
    let mut c = Client::login(srv.addr, "alice@example.com").await;
    c.ok("SELECT INBOX").await;
    c.ok("NOOP").await;
    srv.shutdown().await.unwrap();
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the server panicked");
}
