//! RFC 1939 / 2449 / 3206 / 5034 behaviour over real sockets, including the
//! three regression bugs of issue 4.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use mailroom_core::access::MailAccess;
use mailroom_core::{Flag, Principal, Storage, Uid};
use mailroom_pop3::TlsMode;
use mailroom_pop3::codec::octets;

const MSG1: &[u8] = b"From: a@example.org\r\nSubject: one\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";
const MSG2: &[u8] = b"From: b@example.org\r\nSubject: two\r\n\r\nbody of two\r\n";

async fn two_messages(h: &Harness) {
    h.deliver(ALICE, MSG1).await;
    h.deliver(ALICE, MSG2).await;
}

#[tokio::test]
async fn greeting_has_no_apop_timestamp_and_capa_lists_everything() {
    let h = Harness::start().await;
    let mut c = h.connect().await;
    let greeting = c.line().await;
    assert_eq!(greeting, "+OK pop.test Mailroom POP3 server ready");
    assert!(
        !greeting.contains('<'),
        "no APOP: the authenticator cannot do it"
    );
    let (status, caps) = c.multi("CAPA").await;
    assert_eq!(status, "+OK Capability list follows");
    assert_eq!(
        caps,
        [
            "TOP",
            "UIDL",
            "USER",
            "SASL PLAIN LOGIN",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "LOGIN-DELAY 0",
            "IMPLEMENTATION Mailroom"
        ]
    );
    assert!(
        c.cmd("APOP alice@example.com c4c9334bac560ecc979e58001b3e22fb")
            .await
            .starts_with("-ERR")
    );
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK pop.test Mailroom POP3 server signing off"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn rfc1939_session_stat_list_retr_dele_rset_quit() {
    let h = Harness::start().await;
    two_messages(&h).await;
    let (n1, n2) = (MSG1.len(), MSG2.len());
    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.cmd(&format!("USER {ALICE}")).await, "+OK send PASS");
    assert_eq!(
        c.cmd(&format!("PASS {PASSWORD}")).await,
        format!("+OK {ALICE}'s maildrop has 2 messages ({} octets)", n1 + n2)
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 2 {}", n1 + n2));
    let (status, list) = c.multi("LIST").await;
    assert_eq!(status, format!("+OK 2 messages ({} octets)", n1 + n2));
    assert_eq!(list, [format!("1 {n1}"), format!("2 {n2}")]);
    assert_eq!(c.cmd("LIST 2").await, format!("+OK 2 {n2}"));
    assert_eq!(c.cmd("LIST 3").await, "-ERR no such message");
    assert_eq!(c.cmd("LIST 0").await, "-ERR no such message");
    let (status, msg) = c.retrieve("RETR 1").await;
    assert_eq!(status, format!("+OK {n1} octets"));
    assert_eq!(msg, MSG1);
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.cmd("DELE 1").await, "-ERR message 1 already deleted");
    assert_eq!(c.cmd("RETR 1").await, "-ERR message 1 already deleted");
    assert_eq!(c.cmd("LIST 1").await, "-ERR message 1 already deleted");
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {n2}"));
    let (_, list) = c.multi("LIST").await;
    assert_eq!(list, [format!("2 {n2}")], "numbers do not shift after DELE");
    assert_eq!(c.cmd("NOOP").await, "+OK");
    assert_eq!(
        c.cmd("RSET").await,
        format!("+OK maildrop has 2 messages ({} octets)", n1 + n2)
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 2 {}", n1 + n2));
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(
        h.inbox_uids(ALICE).await,
        [1, 2],
        "nothing deleted before QUIT"
    );
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK pop.test Mailroom POP3 server signing off (1 messages left)"
    );
    c.expect_closed().await;
    assert_eq!(h.inbox_uids(ALICE).await, [2]);
    let mut c = h.login(ALICE).await;
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {n2}"));
    let (_, msg) = c.retrieve("RETR 1").await;
    assert_eq!(msg, MSG2);
}

#[tokio::test]
async fn regression_top_works() {
    let h = Harness::start().await;
    two_messages(&h).await;
    let mut c = h.login(ALICE).await;
    let (status, lines) = c.multi("TOP 1 0").await;
    assert!(status.starts_with("+OK"), "{status}");
    assert_eq!(lines, ["From: a@example.org", "Subject: one", ""]);
    let (_, lines) = c.multi("TOP 1 2").await;
    assert_eq!(
        lines,
        [
            "From: a@example.org",
            "Subject: one",
            "",
            "line 1",
            "line 2"
        ]
    );
    let (_, lines) = c.multi("TOP 1 100").await;
    assert_eq!(lines.len(), 6);
    assert_eq!(c.cmd("TOP 9 1").await, "-ERR no such message");
    assert!(c.cmd("TOP 1").await.starts_with("-ERR"));
    // TOP does not count as retrieval: the message is not marked \Seen at QUIT.
    c.cmd("QUIT").await;
    let access = MailAccess::new(h.storage(), None, Principal::user(ALICE));
    let sel = access.select("INBOX", true).await.unwrap();
    let snap = sel.mailbox().snapshot().await.unwrap();
    assert!(!snap.messages[0].flags.contains(&Flag::Seen));
}

#[tokio::test]
async fn regression_uidl_n_answers_plus_ok_n_uid_exactly() {
    let h = Harness::start().await;
    two_messages(&h).await;
    let uv = {
        let mb = h
            .store
            .open(
                &mailroom_core::MailboxRef::new(ALICE, mailroom_core::MailboxName::inbox()),
                ALICE,
            )
            .await
            .unwrap();
        mb.snapshot().await.unwrap().uid_validity
    };
    let mut c = h.login(ALICE).await;
    assert_eq!(c.cmd("UIDL 1").await, format!("+OK 1 {uv}.1"));
    assert_eq!(c.cmd("UIDL 2").await, format!("+OK 2 {uv}.2"));
    let (status, lines) = c.multi("UIDL").await;
    assert_eq!(status, "+OK");
    assert_eq!(lines, [format!("1 {uv}.1"), format!("2 {uv}.2")]);
    assert_eq!(c.cmd("UIDL 3").await, "-ERR no such message");
    c.cmd("DELE 1").await;
    assert_eq!(c.cmd("UIDL 1").await, "-ERR message 1 already deleted");
    let (_, lines) = c.multi("UIDL").await;
    assert_eq!(lines, [format!("2 {uv}.2")]);
    c.cmd("QUIT").await;
    // Stable across sessions; never reused for a new message.
    h.deliver(ALICE, b"Subject: three\r\n\r\n3\r\n").await;
    let mut c = h.login(ALICE).await;
    let (_, lines) = c.multi("UIDL").await;
    assert_eq!(lines, [format!("1 {uv}.2"), format!("2 {uv}.3")]);
    for line in &lines {
        let uidl = line.split(' ').nth(1).unwrap();
        assert!(uidl.len() <= 70 && uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
}

#[tokio::test]
async fn regression_delivery_into_empty_mailbox_is_visible_at_next_login() {
    let h = Harness::start().await;
    let mut c = h.login(ALICE).await;
    assert_eq!(c.cmd("STAT").await, "+OK 0 0");
    let (_, list) = c.multi("LIST").await;
    assert!(list.is_empty());
    c.cmd("QUIT").await;
    h.deliver(ALICE, MSG1).await;
    // The very next POP3 login, nothing else in between.
    let mut c = h.login(ALICE).await;
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", MSG1.len()));
    c.cmd("QUIT").await;
    // And again with a delivery while a session is open: visible to the next one.
    let mut c = h.login(ALICE).await;
    h.deliver(ALICE, MSG2).await;
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 1 {}", MSG1.len()),
        "a session's view is fixed"
    );
    c.cmd("QUIT").await;
    let mut c = h.login(ALICE).await;
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 2 {}", MSG1.len() + MSG2.len())
    );
}

#[tokio::test]
async fn second_session_on_same_maildrop_is_in_use() {
    let h = Harness::start().await;
    two_messages(&h).await;
    let mut a = h.login(ALICE).await;
    let mut b = h.connect().await;
    b.line().await;
    b.cmd(&format!("USER {ALICE}")).await;
    assert_eq!(
        b.cmd(&format!("PASS {PASSWORD}")).await,
        "-ERR [IN-USE] maildrop already locked by another POP3 session"
    );
    // Another user is not affected.
    let mut bob = h.login(BOB).await;
    assert_eq!(bob.cmd("STAT").await, "+OK 0 0");
    // B stays in AUTHORIZATION and may retry after A quits.
    assert_eq!(b.cmd("STAT").await, "-ERR command not valid in this state");
    a.cmd("QUIT").await;
    a.expect_closed().await;
    b.cmd(&format!("USER {ALICE}")).await;
    assert!(b.cmd(&format!("PASS {PASSWORD}")).await.starts_with("+OK"));
}

#[tokio::test]
async fn dropped_connection_releases_lock_and_deletes_nothing() {
    let h = Harness::start().await;
    two_messages(&h).await;
    let mut a = h.login(ALICE).await;
    a.cmd("DELE 1").await;
    a.cmd("DELE 2").await;
    drop(a);
    // The lock goes when the server notices the close.
    let mut ok = false;
    for _ in 0..50 {
        let mut c = h.connect().await;
        c.line().await;
        c.cmd(&format!("USER {ALICE}")).await;
        if c.cmd(&format!("PASS {PASSWORD}")).await.starts_with("+OK") {
            assert_eq!(c.cmd("STAT").await.split(' ').nth(1), Some("2"));
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "lock released after disconnect");
    assert_eq!(h.inbox_uids(ALICE).await, [1, 2]);
}

#[tokio::test]
async fn pop3_and_imap_coexist_and_imap_sees_deletions_after_quit() {
    let h = Harness::start().await;
    two_messages(&h).await;
    // An "IMAP" session: a selected mailbox through the same access layer.
    let access = MailAccess::new(h.storage(), None, Principal::user(ALICE));
    let imap = access.select("INBOX", false).await.unwrap();
    let mut watch = imap.mailbox().watch();
    let mut c = h.login(ALICE).await;
    c.cmd("DELE 2").await;
    assert_eq!(imap.mailbox().snapshot().await.unwrap().messages.len(), 2);
    c.retrieve("RETR 1").await;
    c.cmd("QUIT").await;
    c.expect_closed().await;
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .unwrap();
    let snap = imap.mailbox().snapshot().await.unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(snap.messages[0].uid, Uid(1));
    assert!(
        snap.messages[0].flags.contains(&Flag::Seen),
        "RETR marks \\Seen at QUIT"
    );
}

#[tokio::test]
async fn crlf_normalisation_and_byte_stuffing() {
    let h = Harness::start().await;
    // Bare LF line ends, dot lines, no final newline.
    let raw: &[u8] = b"Subject: dots\n\n.\n..two\n.leading\nlast line";
    h.deliver(ALICE, raw).await;
    let expected: &[u8] = b"Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nlast line\r\n";
    assert_eq!(octets(raw), expected.len() as u64);
    let mut c = h.login(ALICE).await;
    assert_eq!(c.cmd("LIST 1").await, format!("+OK 1 {}", expected.len()));
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", expected.len()));
    assert_eq!(
        c.cmd("RETR 1").await,
        format!("+OK {} octets", expected.len())
    );
    let wire = c.raw_body().await;
    assert_eq!(
        wire,
        [
            &b"Subject: dots"[..],
            b"",
            b"..",
            b"...two",
            b"..leading",
            b"last line"
        ]
    );
    let (_, msg) = c.retrieve("RETR 1").await;
    assert_eq!(msg, expected);
    assert_eq!(msg.len() as u64, octets(raw));
}

#[tokio::test]
async fn empty_message_retrieves_as_terminator_only() {
    let h = Harness::start().await;
    h.deliver(ALICE, b"").await;
    let mut c = h.login(ALICE).await;
    assert_eq!(c.cmd("LIST 1").await, "+OK 1 0");
    let (status, msg) = c.retrieve("RETR 1").await;
    assert_eq!(status, "+OK 0 octets");
    assert!(msg.is_empty());
}

#[tokio::test]
async fn auth_plain_with_initial_response_and_continuation() {
    let h = Harness::start().await;
    h.deliver(ALICE, MSG1).await;
    let ir = mailroom_pop3::codec::base64_encode(format!("\0{ALICE}\0{PASSWORD}").as_bytes());
    let mut c = h.connect().await;
    c.line().await;
    let r = c.cmd(&format!("AUTH PLAIN {ir}")).await;
    assert!(
        r.starts_with(&format!("+OK {ALICE}'s maildrop has 1 messages")),
        "{r}"
    );
    c.cmd("QUIT").await;

    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(c.cmd(&ir).await.starts_with("+OK"));
    c.cmd("QUIT").await;

    // Cancel, bad base64, wrong password.
    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("*").await, "-ERR AUTH exchange cancelled");
    assert_eq!(
        c.cmd("AUTH PLAIN !!!").await,
        "-ERR invalid base64 in AUTH exchange"
    );
    assert_eq!(c.cmd("AUTH PLAIN =").await, "-ERR malformed PLAIN message");
    let bad = mailroom_pop3::codec::base64_encode(format!("\0{ALICE}\0wrong").as_bytes());
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {bad}")).await,
        "-ERR [AUTH] Authentication failed"
    );
    assert_eq!(
        c.cmd("AUTH CRAM-MD5").await,
        "-ERR Unsupported authentication mechanism"
    );
    let (status, mechs) = c.multi("AUTH").await;
    assert_eq!(status, "+OK");
    assert_eq!(mechs, ["PLAIN", "LOGIN"]);
}

#[tokio::test]
async fn auth_login_exchange() {
    let h = Harness::start().await;
    let b64 = mailroom_pop3::codec::base64_encode;
    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64(ALICE.as_bytes())).await, "+ UGFzc3dvcmQ6");
    assert!(c.cmd(&b64(PASSWORD.as_bytes())).await.starts_with("+OK"));
}

#[tokio::test]
async fn three_failed_logins_close_the_connection() {
    let h = Harness::start().await;
    let mut c = h.connect().await;
    c.line().await;
    for i in 0..3 {
        assert_eq!(c.cmd(&format!("USER {ALICE}")).await, "+OK send PASS");
        let r = c.cmd("PASS nope").await;
        if i < 2 {
            assert_eq!(r, "-ERR [AUTH] Authentication failed");
        } else {
            assert_eq!(r, "-ERR [AUTH] Authentication failed; too many attempts");
        }
    }
    c.expect_closed().await;
}

#[tokio::test]
async fn wrong_state_and_malformed_commands_get_err_and_keep_the_connection() {
    let h = Harness::start().await;
    h.deliver(ALICE, MSG1).await;
    let mut c = h.connect().await;
    c.line().await;
    for cmd in [
        "STAT", "LIST", "RETR 1", "DELE 1", "RSET", "NOOP", "TOP 1 1", "UIDL",
    ] {
        assert_eq!(
            c.cmd(cmd).await,
            "-ERR command not valid in this state",
            "{cmd}"
        );
    }
    assert_eq!(c.cmd("PASS x").await, "-ERR USER first");
    assert_eq!(c.cmd("STLS").await, "-ERR STLS not available");
    assert_eq!(c.cmd("RETR x").await, "-ERR invalid message number");
    assert_eq!(c.cmd("XYZZY").await, "-ERR unknown command");
    assert_eq!(c.cmd("").await, "-ERR empty command");
    let long = "A".repeat(5000);
    assert_eq!(c.cmd(&long).await, "-ERR line too long");
    c.send(b"NOOP\x00\r\n").await;
    assert_eq!(c.line().await, "-ERR control character in command line");
    c.send(b"USER \xff\xfe\r\n").await;
    assert_eq!(c.line().await, "-ERR command line is not valid UTF-8");
    c.cmd(&format!("USER {ALICE}")).await;
    c.cmd(&format!("PASS {PASSWORD}")).await;
    assert_eq!(
        c.cmd("USER bob").await,
        "-ERR command not valid in this state"
    );
    assert_eq!(c.cmd("STLS").await, "-ERR command not valid in this state");
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "-ERR command not valid in this state"
    );
    assert_eq!(c.cmd("RETR 4294967295").await, "-ERR no such message");
    assert_eq!(
        c.cmd("RETR 1 2").await,
        "-ERR invalid message number"
            .replace("invalid message number", "a message number is required")
    );
    assert_eq!(
        c.cmd("STAT 1").await,
        "-ERR this command takes no arguments"
    );
    let (_, caps) = c.multi("CAPA").await;
    assert!(
        !caps.iter().any(|c| c == "USER" || c.starts_with("SASL")),
        "{caps:?}"
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", MSG1.len()));
}

#[tokio::test]
async fn too_many_bad_commands_close_the_connection() {
    let mut config = test_config();
    config.max_bad_commands = 3;
    let h = Harness::start_with(config, None, TlsMode::Plain).await;
    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.cmd("BAD1").await, "-ERR unknown command");
    assert_eq!(c.cmd("BAD2").await, "-ERR unknown command");
    assert_eq!(
        c.cmd("BAD3").await,
        "-ERR too many bad commands; closing connection"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let h = Harness::start().await;
    two_messages(&h).await;
    let mut c = h.connect().await;
    c.line().await;
    c.send(
        format!("USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 2\r\nLIST\r\nNOOP\r\nQUIT\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(c.line().await, "+OK send PASS");
    assert!(c.line().await.starts_with("+OK alice"));
    assert!(c.line().await.starts_with("+OK 2 "));
    assert!(c.line().await.starts_with("+OK 2 "));
    assert!(c.line().await.starts_with("+OK 2 messages"));
    assert_eq!(c.raw_body().await.len(), 2);
    assert_eq!(c.line().await, "+OK");
    assert!(c.line().await.starts_with("+OK pop.test"));
    c.expect_closed().await;
}

#[tokio::test]
async fn graceful_shutdown_tells_open_sessions_and_returns() {
    let mut h = Harness::start().await;
    let mut idle = h.login(ALICE).await;
    idle.cmd("DELE 1").await; // (no such message: harmless)
    h.shutdown().await;
    assert_eq!(idle.line().await, "-ERR [SYS/TEMP] server shutting down");
    idle.expect_closed().await;
    assert!(
        tokio::net::TcpStream::connect(h.addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn connection_limit_refuses_extra_connections() {
    let mut config = test_config();
    config.max_connections = 1;
    let h = Harness::start_with(config, None, TlsMode::Plain).await;
    let mut first = h.connect().await;
    assert!(first.line().await.starts_with("+OK"));
    let mut second = h.connect().await;
    assert_eq!(
        second.line().await,
        "-ERR [SYS/TEMP] too many connections; try again later"
    );
    second.expect_closed().await;
    first.cmd("QUIT").await;
    first.expect_closed().await;
    let mut ok = false;
    for _ in 0..50 {
        let mut third = h.connect().await;
        if third.line().await.starts_with("+OK") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "a slot frees up after QUIT");
}

#[tokio::test]
async fn idle_connections_are_logged_out() {
    let mut config = test_config();
    config.idle_timeout = Duration::from_millis(200);
    let h = Harness::start_with(config, None, TlsMode::Plain).await;
    let mut c = h.connect().await;
    c.line().await;
    assert_eq!(c.line().await, "-ERR autologout: idle for too long");
    c.expect_closed().await;
}

#[tokio::test]
async fn quit_after_imap_expunged_some_of_the_same_messages() {
    let h = Harness::start().await;
    two_messages(&h).await;
    h.deliver(ALICE, b"Subject: three\r\n\r\n3\r\n").await;
    let mut c = h.login(ALICE).await;
    c.cmd("DELE 1").await;
    c.cmd("DELE 3").await;
    // Meanwhile an IMAP client expunges message 1 itself.
    let access = MailAccess::new(h.storage(), None, Principal::user(ALICE));
    let imap = access.select("INBOX", false).await.unwrap();
    let deleted: mailroom_core::Flags = [Flag::Deleted].into_iter().collect();
    imap.store(&[Uid(1)], &mailroom_core::StoreOp::Add(deleted), None)
        .await
        .unwrap();
    imap.expunge(Some(&[Uid(1)])).await.unwrap();
    assert_eq!(c.cmd("RETR 1").await, "-ERR message 1 already deleted");
    let (status, _) = c.multi("TOP 2 0").await;
    assert!(status.starts_with("+OK"));
    let r = c.cmd("QUIT").await;
    assert!(r.starts_with("+OK"), "{r}");
    assert_eq!(h.inbox_uids(ALICE).await, [2]);
}

#[tokio::test]
async fn sessions_can_be_wrapped_in_tower_layers() {
    use tower::ServiceBuilder;
    let store = std::sync::Arc::new(mailroom_store_memory::MemoryStore::new());
    let server = mailroom_pop3::Pop3Server::new(
        store,
        std::sync::Arc::new(StaticAuth::new()),
        test_config(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = ServiceBuilder::new()
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with(listener, TlsMode::Plain, layer, async {
        let _ = rx.await;
    }));
    let mut c = Client::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    c.line().await;
    assert_eq!(c.cmd(&format!("USER {ALICE}")).await, "+OK send PASS");
    assert!(c.cmd(&format!("PASS {PASSWORD}")).await.starts_with("+OK"));
    assert_eq!(c.cmd("STAT").await, "+OK 0 0");
    tx.send(()).unwrap();
    assert_eq!(c.line().await, "-ERR [SYS/TEMP] server shutting down");
    task.await.unwrap().unwrap();
}
