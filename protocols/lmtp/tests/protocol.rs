//! RFC 2033 behaviour over real sockets: every command and reply code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use mailroom_core::{Delivery, DeliveryOutcome, DeliveryRequest, Error, MailboxName, Uid};
use mailroom_lmtp::LmtpConfig;

const MSG: &[u8] = b"From: chris@bar.com\r\nTo: pat@foo.edu\r\nSubject: hello\r\n\r\nbody line\r\n";

#[tokio::test]
async fn rfc2033_example_session() {
    let h = Harness::start().await;
    let mut c = h.connect().await;
    assert_eq!(c.reply().await, ["220 lmtp.test LMTP Mailroom ready"]);
    assert_eq!(
        c.cmd("LHLO foo.edu").await,
        [
            "250-lmtp.test",
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-8BITMIME",
            &format!("250 SIZE {}", LmtpConfig::default().max_message_size)
        ]
    );
    assert_eq!(
        c.cmd1("MAIL FROM:<chris@bar.com>").await,
        "250 2.1.0 sender OK"
    );
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{ALICE}>")).await,
        format!("250 2.1.5 <{ALICE}> recipient OK")
    );
    assert_eq!(
        c.cmd1("RCPT TO:<jones@foo.edu>").await,
        "550 5.1.1 <jones@foo.edu> user unknown"
    );
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{BOB}>")).await,
        format!("250 2.1.5 <{BOB}> recipient OK")
    );
    assert_eq!(
        c.cmd1("DATA").await,
        "354 start mail input; end with <CRLF>.<CRLF>"
    );
    // One reply per accepted recipient, in RCPT order.
    assert_eq!(
        c.data(MSG, 2).await,
        [
            format!("250 2.0.0 <{ALICE}> delivered"),
            format!("250 2.0.0 <{BOB}> delivered")
        ]
    );
    assert_eq!(
        c.cmd1("QUIT").await,
        "221 2.0.0 lmtp.test closing connection"
    );
    c.expect_closed().await;
    for user in [ALICE, BOB] {
        let stored = h.messages(user, "INBOX").await;
        assert_eq!(stored.len(), 1);
        let (trace, body) = strip_trace(&stored[0]);
        assert_eq!(body, MSG);
        assert!(trace.starts_with("Return-Path: <chris@bar.com>\r\nReceived: from foo.edu ([127.0.0.1])\r\n\tby lmtp.test (Mailroom) with LMTP id "), "{trace}");
        assert!(
            !trace.contains("for <"),
            "no 'for' clause with two recipients: {trace}"
        );
    }
}

#[tokio::test]
async fn reply_is_sent_after_the_message_is_stored() {
    let h = Harness::start().await;
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<>").await;
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1("DATA").await;
    // Raw wire bytes: stuffed dot lines and bare LFs inside the data.
    c.send(b"Subject: x\r\n\r\n...dot\r\n..\r\nbare\nlf\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await, [format!("250 2.0.0 <{ALICE}> delivered")]);
    // Nothing else happened between the reply and this read.
    let stored = h.messages(ALICE, "INBOX").await;
    assert_eq!(stored.len(), 1);
    let (trace, body) = strip_trace(&stored[0]);
    assert!(trace.starts_with("Return-Path: <>\r\n"), "{trace}");
    assert!(trace.contains(&format!("\r\n\tfor <{ALICE}>; ")), "{trace}");
    assert_eq!(
        body, b"Subject: x\r\n\r\n..dot\r\n.\r\nbare\nlf\r\n",
        "unstuffed, otherwise untouched"
    );
}

#[tokio::test]
async fn over_quota_is_452_then_delivered_after_raising_the_quota() {
    let h = Harness::start().await;
    h.set_quota(ALICE, Some(100)).await;
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<sender@example.org>").await;
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1(&format!("RCPT TO:<{BOB}>")).await;
    c.cmd1("DATA").await;
    let big = [MSG, &b"x".repeat(200)[..], b"\r\n"].concat();
    assert_eq!(
        c.data(&big, 2).await,
        [
            format!("452 4.2.2 <{ALICE}> mailbox is full"),
            format!("250 2.0.0 <{BOB}> delivered")
        ]
    );
    assert!(
        h.messages(ALICE, "INBOX").await.is_empty(),
        "nothing stored for alice"
    );
    assert_eq!(h.used(ALICE).await, 0);
    // The MTA retries after the operator raises the quota.
    h.set_quota(ALICE, Some(10_000)).await;
    c.cmd1("MAIL FROM:<sender@example.org>").await;
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1("DATA").await;
    assert_eq!(
        c.data(&big, 1).await,
        [format!("250 2.0.0 <{ALICE}> delivered")]
    );
    let stored = h.messages(ALICE, "INBOX").await;
    assert_eq!(stored.len(), 1, "delivered exactly once");
    assert_eq!(strip_trace(&stored[0]).1, &big[..]);
}

/// Many LMTP connections deliver to one user at once, near their quota:
/// the store charges each message atomically with its append, so usage
/// never passes the limit; every connection gets `250` (stored) or `452
/// 4.2.2` (not stored), and exactly the `250`s are in the mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_never_overshoot_the_quota() {
    const CONNECTIONS: usize = 24;
    let h = Harness::start().await;
    h.store_ensure(ALICE).await;
    let body = [MSG, &b"x".repeat(1000)[..], b"\r\n"].concat();
    // room for about 8 of the 24 (each is the body plus ~250 bytes of trace headers)
    let limit = 8 * (body.len() as u64 + 250);
    h.set_quota(ALICE, Some(limit)).await;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut c = h.session().await;
        c.cmd1("MAIL FROM:<sender@example.org>").await;
        c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
        assert!(c.cmd1("DATA").await.starts_with("354 "));
        clients.push(c);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(CONNECTIONS));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let (barrier, body) = (barrier.clone(), body.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                c.data(&body, 1).await.remove(0)
            })
        })
        .collect();
    let mut delivered = 0;
    let mut full = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        if reply.starts_with("250 2.0.0") {
            delivered += 1;
        } else {
            assert_eq!(reply, format!("452 4.2.2 <{ALICE}> mailbox is full"));
            full += 1;
        }
    }
    let stored = h.messages(ALICE, "INBOX").await;
    let used = h.used(ALICE).await;
    assert!(
        used <= limit,
        "quota overshot: {used} bytes used, limit {limit}"
    );
    assert_eq!(stored.len(), delivered, "exactly the 250s are stored");
    assert!(
        full > 0 && delivered > 0,
        "{delivered} delivered, {full} full"
    );
    let largest = stored.iter().map(Vec::len).max().unwrap() as u64;
    assert!(
        used + largest > limit,
        "a refused message would have fitted: {used} of {limit} used"
    );
}

#[tokio::test]
async fn size_limit_552_at_mail_and_after_data() {
    let mut config = test_config();
    config.max_message_size = 1000;
    let h = Harness::start_with(config).await;
    let mut c = h.session().await;
    assert_eq!(
        c.cmd1("MAIL FROM:<a@b.example> SIZE=2000").await,
        "552 5.3.4 message size exceeds fixed maximum"
    );
    assert_eq!(
        c.cmd1("MAIL FROM:<a@b.example> SIZE=500").await,
        "250 2.1.0 sender OK"
    );
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1(&format!("RCPT TO:<{BOB}>")).await;
    c.cmd1("DATA").await;
    let big = [&b"Subject: big\r\n\r\n"[..], &b"y".repeat(5000), b"\r\n"].concat();
    assert_eq!(
        c.data(&big, 2).await,
        [
            format!("552 5.3.4 <{ALICE}> message size exceeds fixed maximum"),
            format!("552 5.3.4 <{BOB}> message size exceeds fixed maximum")
        ]
    );
    assert_eq!(c.cmd1("NOOP").await, "250 2.0.0 OK");
    assert!(h.messages(ALICE, "INBOX").await.is_empty());
}

#[tokio::test]
async fn sequence_errors_are_503() {
    let h = Harness::start().await;
    let mut c = h.connect().await;
    c.reply().await;
    assert_eq!(
        c.cmd1("MAIL FROM:<a@b.example>").await,
        "503 5.5.1 send LHLO first"
    );
    c.cmd("LHLO x.example").await;
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{ALICE}>")).await,
        "503 5.5.1 need MAIL command"
    );
    assert_eq!(c.cmd1("DATA").await, "503 5.5.1 need MAIL command");
    c.cmd1("MAIL FROM:<a@b.example>").await;
    assert_eq!(
        c.cmd1("MAIL FROM:<a@b.example>").await,
        "503 5.5.1 nested MAIL command"
    );
    assert_eq!(c.cmd1("DATA").await, "503 5.5.1 no valid recipients");
    c.cmd1("RCPT TO:<nobody@example.com>").await;
    assert_eq!(c.cmd1("DATA").await, "503 5.5.1 no valid recipients");
    assert_eq!(c.cmd1("RSET").await, "250 2.0.0 OK");
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{ALICE}>")).await,
        "503 5.5.1 need MAIL command"
    );
    // LHLO resets a transaction too.
    c.cmd1("MAIL FROM:<a@b.example>").await;
    c.cmd("LHLO x.example").await;
    assert_eq!(c.cmd1("DATA").await, "503 5.5.1 need MAIL command");
}

#[tokio::test]
async fn bad_commands_and_parameters() {
    let h = Harness::start().await;
    let mut c = h.connect().await;
    c.reply().await;
    assert_eq!(
        c.cmd1("EHLO x.example").await,
        "500 5.5.1 this is LMTP: use LHLO"
    );
    assert_eq!(
        c.cmd1("HELO x.example").await,
        "500 5.5.1 this is LMTP: use LHLO"
    );
    assert_eq!(c.cmd1("XYZZY").await, "500 5.5.1 command unrecognized");
    assert_eq!(c.cmd1("VRFY alice").await, "502 5.5.1 VRFY not implemented");
    assert_eq!(
        c.cmd1("STARTTLS").await,
        "502 5.5.1 STARTTLS not implemented"
    );
    assert_eq!(
        c.cmd1("BDAT 10 LAST").await,
        "502 5.5.1 BDAT not implemented"
    );
    assert_eq!(c.cmd1("LHLO").await, "501 5.5.4 syntax: LHLO domain");
    c.cmd("LHLO x.example").await;
    assert!(
        c.cmd1("MAIL FROM:a@b.example")
            .await
            .starts_with("501 5.5.4 ")
    );
    assert_eq!(
        c.cmd1("MAIL FROM:<a@b.example> BODY=BINARYMIME").await,
        "555 5.5.4 unsupported MAIL parameter"
    );
    assert_eq!(
        c.cmd1("MAIL FROM:<a@b.example> BODY=8BITMIME").await,
        "250 2.1.0 sender OK"
    );
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{ALICE}> NOTIFY=NEVER")).await,
        "555 5.5.4 unsupported RCPT parameter"
    );
    let long = format!("NOOP {}", "a".repeat(10_000));
    assert_eq!(c.cmd1(&long).await, "500 5.5.2 line too long");
    assert_eq!(c.cmd1("NOOP").await, "250 2.0.0 OK");
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1("DATA").await;
    let eight_bit = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve \u{2603}\r\n".as_bytes();
    assert_eq!(
        c.data(eight_bit, 1).await,
        [format!("250 2.0.0 <{ALICE}> delivered")]
    );
    let stored = h.messages(ALICE, "INBOX").await;
    let (trace, body) = strip_trace(&stored[0]);
    assert_eq!(body, eight_bit);
    assert!(trace.contains("(8BITMIME)"), "{trace}");
}

#[tokio::test]
async fn too_many_errors_close_with_421() {
    let mut config = test_config();
    config.max_bad_commands = 3;
    let h = Harness::start_with(config).await;
    let mut c = h.session().await;
    c.cmd1("BAD1").await;
    c.cmd1("BAD2").await;
    assert_eq!(
        c.cmd1("BAD3").await,
        "421 4.7.0 too many errors; closing connection"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn too_many_recipients_452_4_5_3() {
    let mut config = test_config();
    config.max_recipients = 2;
    let h = Harness::start_with(config).await;
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<a@b.example>").await;
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1(&format!("RCPT TO:<{BOB}>")).await;
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{ALICE}>")).await,
        "452 4.5.3 too many recipients"
    );
}

#[tokio::test]
async fn plus_addressing_files_into_existing_folder() {
    let h = Harness::start().await;
    let access = mailroom_core::access::MailAccess::new(
        h.store.clone(),
        None,
        mailroom_core::Principal::user(ALICE),
    );
    h.store_ensure(ALICE).await;
    access.create("lists", None).await.unwrap();
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<a@b.example>").await;
    assert_eq!(
        c.cmd1("RCPT TO:<alice+lists@example.com>").await,
        "250 2.1.5 <alice+lists@example.com> recipient OK"
    );
    c.cmd1("RCPT TO:<alice+nosuchfolder@example.com>").await;
    assert_eq!(
        c.cmd1("RCPT TO:<nobody+lists@example.com>").await,
        "550 5.1.1 <nobody+lists@example.com> user unknown"
    );
    c.cmd1("DATA").await;
    assert_eq!(
        c.data(MSG, 2).await,
        [
            "250 2.0.0 <alice+lists@example.com> delivered",
            "250 2.0.0 <alice+nosuchfolder@example.com> delivered"
        ]
    );
    assert_eq!(h.messages(ALICE, "lists").await.len(), 1);
    assert_eq!(h.messages(ALICE, "INBOX").await.len(), 1);
}

#[tokio::test]
async fn local_part_fallback_and_lookup_failure() {
    let h = Harness::start().await;
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<a@b.example>").await;
    assert_eq!(
        c.cmd1("RCPT TO:<carol@any.example>").await,
        "250 2.1.5 <carol@any.example> recipient OK"
    );
    assert_eq!(
        c.cmd1(&format!("RCPT TO:<{FLAKY}>")).await,
        "451 4.3.0 recipient lookup failed; try again later"
    );
    c.cmd1("DATA").await;
    c.data(MSG, 1).await;
    assert_eq!(h.messages(CAROL, "INBOX").await.len(), 1);
}

/// A delivery that answers from a script, to reach every outcome mapping.
#[derive(Debug)]
struct Scripted {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Delivery for Scripted {
    async fn deliver(&self, request: &DeliveryRequest) -> Vec<DeliveryOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut out: Vec<DeliveryOutcome> = vec![
            DeliveryOutcome::TemporaryFailure(Error::Busy("mailbox locked".into())),
            DeliveryOutcome::TemporaryFailure(Error::Io(std::io::Error::other("disk"))),
            DeliveryOutcome::PermanentFailure(Error::NoSuchUser),
            DeliveryOutcome::PermanentFailure(Error::TooBig { limit: 1 }),
            DeliveryOutcome::PermanentFailure(Error::Cannot("nope")),
            DeliveryOutcome::PermanentFailure(Error::PermissionDenied(
                mailroom_core::Right::Insert,
            )),
            DeliveryOutcome::Delivered {
                mailbox: MailboxName::inbox(),
                uid: Uid(7),
            },
        ];
        // Answer for one recipient fewer than asked: the last gets a 451.
        out.truncate(request.recipients.len().saturating_sub(1));
        out
    }
}

#[tokio::test]
async fn outcome_codes_451_550_552_554() {
    let store = Arc::new(mailroom_store_memory::MemoryStore::new());
    let delivery = Arc::new(Scripted {
        calls: AtomicUsize::new(0),
    });
    let h = Harness::start_delivery(store, delivery.clone(), test_config()).await;
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<a@b.example>").await;
    for _ in 0..8 {
        c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    }
    c.cmd1("DATA").await;
    let a = ALICE;
    assert_eq!(
        c.data(MSG, 8).await,
        [
            format!("451 4.3.0 <{a}> temporary failure, try again later"),
            format!("451 4.3.0 <{a}> temporary failure, try again later"),
            format!("550 5.1.1 <{a}> user unknown"),
            format!("552 5.3.4 <{a}> message too big"),
            format!("554 5.3.0 <{a}> delivery failed"),
            format!("550 5.7.1 <{a}> delivery not authorised"),
            format!("250 2.0.0 <{a}> delivered"),
            format!("451 4.3.0 <{a}> no delivery result; try again later"),
        ]
    );
    assert_eq!(
        delivery.calls.load(Ordering::SeqCst),
        1,
        "one pipeline call per message"
    );
}

#[tokio::test]
async fn pipelined_transaction() {
    let h = Harness::start().await;
    let mut c = h.connect().await;
    c.reply().await;
    c.send(
        format!(
            "LHLO pipe.example\r\nMAIL FROM:<p@pipe.example>\r\nRCPT TO:<{ALICE}>\r\nRCPT TO:<nobody@x.example>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.len(), 5);
    assert_eq!(c.reply().await, ["250 2.1.0 sender OK"]);
    assert!(c.reply().await[0].starts_with("250 2.1.5"));
    assert!(c.reply().await[0].starts_with("550 5.1.1"));
    assert!(c.reply().await[0].starts_with("250 2.1.5"));
    assert!(c.reply().await[0].starts_with("354"));
    // Message, then the next transaction pipelined right behind it.
    c.send(
        format!(
            "{}.\r\nRSET\r\nMAIL FROM:<p@pipe.example>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n",
            std::str::from_utf8(MSG).unwrap()
        )
        .as_bytes(),
    )
    .await;
    assert!(c.reply().await[0].starts_with("250 2.0.0"));
    assert!(c.reply().await[0].starts_with("250 2.0.0"));
    assert_eq!(c.reply().await, ["250 2.0.0 OK"]);
    assert!(c.reply().await[0].starts_with("250 2.1.0"));
    assert!(c.reply().await[0].starts_with("250 2.1.5"));
    assert!(c.reply().await[0].starts_with("354"));
    assert_eq!(c.data(b"second\r\n", 1).await.len(), 1);
    assert_eq!(h.messages(ALICE, "INBOX").await.len(), 2);
    assert_eq!(h.messages(BOB, "INBOX").await.len(), 1);
}

#[tokio::test]
async fn unix_socket_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lmtp.sock");
    let store = Arc::new(mailroom_store_memory::MemoryStore::new());
    let quota: Arc<dyn mailroom_core::Quota> = store.clone();
    let delivery = Arc::new(mailroom_core::delivery::Pipeline::standard(
        store.clone(),
        quota,
    ));
    let server = mailroom_lmtp::LmtpServer::new(delivery, Arc::new(StaticAuth), test_config());
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = server.clone();
    let task = tokio::spawn(async move {
        s.serve_unix(listener, async {
            let _ = rx.await;
        })
        .await
    });
    let mut c = Client::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    c.reply().await;
    c.cmd("LHLO local").await;
    c.cmd1("MAIL FROM:<a@b.example>").await;
    c.cmd1(&format!("RCPT TO:<{BOB}>")).await;
    c.cmd1("DATA").await;
    assert_eq!(
        c.data(MSG, 1).await,
        [format!("250 2.0.0 <{BOB}> delivered")]
    );
    let mb = mailroom_core::Storage::open(
        &*store,
        &mailroom_core::MailboxRef::new(BOB, MailboxName::inbox()),
        BOB,
    )
    .await
    .unwrap();
    let content = mb.content(Uid(1)).await.unwrap();
    let (trace, body) = strip_trace(&content);
    assert!(
        trace.contains("Received: from local (unix socket)"),
        "{trace}"
    );
    assert_eq!(body, MSG);
    tx.send(()).unwrap();
    assert_eq!(
        c.try_line().await.as_deref(),
        Some("421 4.3.2 server shutting down")
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn graceful_shutdown_and_connection_limit() {
    let mut config = test_config();
    config.max_connections = 1;
    let mut h = Harness::start_with(config).await;
    let mut first = h.session().await;
    let mut second = h.connect().await;
    assert_eq!(
        second.reply().await,
        ["421 4.3.2 too many connections; try again later"]
    );
    second.expect_closed().await;
    h.shutdown().await;
    assert_eq!(
        first.try_line().await.as_deref(),
        Some("421 4.3.2 server shutting down")
    );
    first.expect_closed().await;
}

#[tokio::test]
async fn shutdown_waits_for_a_message_in_flight() {
    let mut h = Harness::start().await;
    let mut c = h.session().await;
    c.cmd1("MAIL FROM:<a@b.example>").await;
    c.cmd1(&format!("RCPT TO:<{ALICE}>")).await;
    c.cmd1("DATA").await;
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stop = h.stop_signal();
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(b"second half\r\n.\r\n").await;
    assert_eq!(c.reply().await, [format!("250 2.0.0 <{ALICE}> delivered")]);
    assert_eq!(
        c.try_line().await.as_deref(),
        Some("421 4.3.2 server shutting down")
    );
    h.shutdown().await;
    assert_eq!(h.messages(ALICE, "INBOX").await.len(), 1);
}

#[tokio::test]
async fn idle_timeout_421() {
    let mut config = test_config();
    config.idle_timeout = Duration::from_millis(200);
    let h = Harness::start_with(config).await;
    let mut c = h.connect().await;
    c.reply().await;
    assert_eq!(
        c.reply().await,
        ["421 4.4.2 idle for too long; closing connection"]
    );
    c.expect_closed().await;
}

/// An authenticator whose lookup of `gate@foo.edu` waits until the test
/// opens the gate.
#[derive(Debug)]
struct GatedAuth {
    gate: Arc<tokio::sync::Semaphore>,
}

const GATED: &str = "gate@foo.edu";

#[async_trait::async_trait]
impl mailroom_core::Authenticator for GatedAuth {
    async fn authenticate(
        &self,
        c: &mailroom_core::Credentials,
    ) -> mailroom_core::Result<mailroom_core::Principal> {
        StaticAuth.authenticate(c).await
    }

    async fn lookup(&self, user: &str) -> mailroom_core::Result<Option<mailroom_core::Principal>> {
        if user == GATED {
            let _open = self.gate.acquire().await;
            return StaticAuth.lookup(ALICE).await;
        }
        StaticAuth.lookup(user).await
    }
}

/// A message's `250` is sent as soon as it is delivered, not held back until
/// the commands pipelined behind it are answered: here the next
/// transaction's RCPT waits on the directory, and the client waits for the
/// `250` of the message before it lets the directory answer. (Before, the
/// replies of everything in the read buffer went out together, so this
/// waited for ever.)
#[tokio::test]
async fn a_message_is_acknowledged_before_the_commands_pipelined_behind_it_are_answered() {
    use mailroom_core::Authenticator as _;
    let store = Arc::new(mailroom_store_memory::MemoryStore::new());
    let delivery = Arc::new(mailroom_testkit::store::standard_pipeline(&store));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let server = mailroom_lmtp::LmtpServer::new(
        delivery,
        Arc::new(GatedAuth { gate: gate.clone() }),
        test_config(),
    );
    let serving = mailroom_testkit::spawn_on_loopback(|listener, stop| async move {
        server.serve_tcp(listener, stop).await
    })
    .await;
    let _ = StaticAuth.lookup(ALICE).await;
    let mut c = Client::new(
        tokio::net::TcpStream::connect(serving.addr())
            .await
            .unwrap(),
    );
    c.reply().await;
    assert!(
        c.cmd("LHLO pipe.example")
            .await
            .last()
            .unwrap()
            .starts_with("250 ")
    );
    c.send(format!("MAIL FROM:<p@pipe.example>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n").as_bytes())
        .await;
    assert!(c.reply().await[0].starts_with("250"));
    assert!(c.reply().await[0].starts_with("250"));
    assert!(c.reply().await[0].starts_with("354"));
    c.send(
        format!(
            "{}.\r\nMAIL FROM:<p@pipe.example>\r\nRCPT TO:<{GATED}>\r\nDATA\r\n",
            std::str::from_utf8(MSG).unwrap()
        )
        .as_bytes(),
    )
    .await;
    let delivered = tokio::time::timeout(Duration::from_secs(5), c.reply())
        .await
        .expect("the message's 250 came before the pipelined RCPT was answered");
    assert!(delivered[0].starts_with("250 2.0.0"), "{delivered:?}");
    gate.add_permits(1);
    assert!(c.reply().await[0].starts_with("250 2.1.0"));
    assert!(c.reply().await[0].starts_with("250 2.1.5"));
    assert!(c.reply().await[0].starts_with("354"));
    assert_eq!(c.data(b"second\r\n", 1).await.len(), 1);
    let inbox = mailroom_testkit::store::messages(&store, ALICE, MailboxName::inbox()).await;
    assert_eq!(inbox.len(), 2);
}
