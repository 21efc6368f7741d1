//! The metrics layer over real sessions: exact counts per command and
//! outcome, failed logins, connections, the streamed FETCH completion, IDLE,
//! the AUTHENTICATE continuation and a timed-out command.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use mailroom_core::metrics::{IMAP_COMMANDS, IMAP_STATUSES, Metrics, OTHER, Protocol};
use mailroom_imap::command::{Command, FetchAttr, Request};
use mailroom_imap::layer::metrics::MetricsLayer;
use mailroom_imap::layer::timeout::CommandTimeoutLayer;
use mailroom_imap::response::Response;
use mailroom_imap::session::ConnectionInfo;
use mailroom_imap::{ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;
use tower::{Service, ServiceBuilder, ServiceExt};

/// The default stack (rate limit, tracing, a login throttle with short
/// delays, a command timeout) with the metrics layer added around it the way
/// an integrator adds it: `ImapServer::layer`.
fn server(store: &Arc<MemoryStore>, metrics: &Arc<Metrics>) -> ImapServer {
    ImapServer::new(store.clone(), None, Arc::new(TestAuth), test_config())
        .layer(MetricsLayer::new(metrics.clone()))
}

/// Every command counted, all outcomes and names together.
fn total_commands(metrics: &Metrics) -> u64 {
    let mut n = 0;
    for command in IMAP_COMMANDS.iter().chain([&OTHER]) {
        for status in IMAP_STATUSES.iter().chain([&OTHER]) {
            n += metrics.commands(Protocol::Imap, command, status);
        }
    }
    n
}

/// Waits until the server has dropped every IMAP session.
async fn until_no_connection_open(metrics: &Metrics) {
    for _ in 0..500 {
        if metrics.connections_open(Protocol::Imap) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{} IMAP connections still open",
        metrics.connections_open(Protocol::Imap)
    );
}

#[tokio::test]
async fn counts_every_command_by_name_and_outcome() {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let srv = start_server(server(&store, &metrics), store, TlsMode::Plain).await;

    let mut c = Client::connect(srv.addr).await;
    assert_eq!(metrics.connections_open(Protocol::Imap), 1);
    let r = c.cmd("LOGIN alice@example.com wrong").await;
    assert_eq!(Client::status(&r), "NO", "{r}");
    c.ok(&format!("LOGIN alice@example.com {PASSWORD}")).await;
    c.ok("NOOP").await;
    c.ok("NOOP").await;
    // No mailbox selected: the session answers BAD.
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    // A syntax error never reaches the session stack: not counted.
    let r = c.cmd("FROBNICATE").await;
    assert_eq!(Client::status(&r), "BAD", "{r}");
    c.append("INBOX", "", &message("hello", "body")).await;
    c.ok("SELECT INBOX").await;
    let r = c.ok("FETCH 1 (FLAGS BODY[])").await;
    assert!(r.contains("body"), "{r}");
    c.ok("LOGOUT").await;
    assert!(c.read_response().await.is_none());
    until_no_connection_open(&metrics).await;

    let count = |command, status| metrics.commands(Protocol::Imap, command, status);
    assert_eq!(count("LOGIN", "NO"), 1);
    assert_eq!(count("LOGIN", "OK"), 1);
    assert_eq!(count("NOOP", "OK"), 2);
    assert_eq!(count("FETCH", "BAD"), 1);
    assert_eq!(count("FETCH", "OK"), 1);
    assert_eq!(count("APPEND", "OK"), 1);
    assert_eq!(count("SELECT", "OK"), 1);
    assert_eq!(count("LOGOUT", "OK"), 1);
    assert_eq!(count("other", "BAD"), 0);
    assert_eq!(total_commands(&metrics), 9);
    assert_eq!(metrics.command_latency_count(Protocol::Imap, "NOOP"), 2);
    assert_eq!(metrics.command_latency_count(Protocol::Imap, "FETCH"), 2);
    assert_eq!(metrics.login_failures(Protocol::Imap), 1);
    assert_eq!(metrics.connections_opened(Protocol::Imap), 1);
    assert_eq!(metrics.connections_open(Protocol::Imap), 0);

    let text = metrics.render_prometheus();
    for line in [
        r#"mailroom_commands_total{protocol="imap",command="NOOP",status="OK"} 2"#,
        r#"mailroom_commands_total{protocol="imap",command="FETCH",status="BAD"} 1"#,
        r#"mailroom_command_duration_seconds_count{protocol="imap",command="NOOP"} 2"#,
        r#"mailroom_login_failures_total{protocol="imap"} 1"#,
        r#"mailroom_connections_opened_total{protocol="imap"} 1"#,
        r#"mailroom_connections_open{protocol="imap"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    // No user name, password or mailbox name in any label.
    for secret in ["alice", PASSWORD, "wrong", "INBOX", "FROBNICATE"] {
        assert!(!text.contains(secret), "{secret} leaked into\n{text}");
    }
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_are_counted_while_open() {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let srv = start_server(server(&store, &metrics), store, TlsMode::Plain).await;
    let a = Client::connect(srv.addr).await;
    let b = Client::connect(srv.addr).await;
    assert_eq!(metrics.connections_open(Protocol::Imap), 2);
    drop(a);
    drop(b);
    until_no_connection_open(&metrics).await;
    assert_eq!(metrics.connections_opened(Protocol::Imap), 2);
    assert_eq!(total_commands(&metrics), 0);
    srv.shutdown().await.unwrap();
}

/// The `+` of AUTHENTICATE is not a command of its own; IDLE is counted
/// when it starts.
#[tokio::test]
async fn authenticate_continuation_and_idle_count_once() {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let srv = start_server(server(&store, &metrics), store, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    c.send_raw(b"a1 AUTHENTICATE PLAIN\r\n").await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(b"AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\n")
        .await;
    let r = c.until_tagged("a1").await;
    assert!(r.contains("a1 OK"), "{r}");
    c.ok("SELECT INBOX").await;
    c.send_raw(b"i1 IDLE\r\n").await;
    let cont = c.read_response().await.unwrap();
    assert!(cont.starts_with("+ "), "{cont}");
    c.send_raw(b"DONE\r\n").await;
    let r = c.until_tagged("i1").await;
    assert!(r.contains("i1 OK"), "{r}");

    let count = |command, status| metrics.commands(Protocol::Imap, command, status);
    assert_eq!(count("AUTHENTICATE", "OK"), 1);
    assert_eq!(count("IDLE", "OK"), 1);
    assert_eq!(count("SELECT", "OK"), 1);
    assert_eq!(total_commands(&metrics), 3);
    assert_eq!(metrics.login_failures(Protocol::Imap), 0);
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timed_out_command_counts_as_bye() {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let layer = MetricsLayer::new(metrics.clone());
    let srv = ImapServer::new(store.clone(), None, Arc::new(TestAuth), test_config()).with_stack(
        move |_, session| {
            ServiceBuilder::new()
                .layer(layer.clone())
                .layer(CommandTimeoutLayer::new(Duration::from_millis(50)))
                .and_then(|reply| async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::convert::Infallible>(reply)
                })
                .service(session)
        },
    );
    let srv = start_server(srv, store, TlsMode::Plain).await;
    let mut c = Client::connect(srv.addr).await;
    c.send_raw(b"a NOOP\r\n").await;
    let r = c.read_response().await.unwrap();
    assert!(r.starts_with("* BYE"), "{r}");
    until_no_connection_open(&metrics).await;
    assert_eq!(metrics.commands(Protocol::Imap, "NOOP", "BYE"), 1);
    assert_eq!(total_commands(&metrics), 1);
    srv.shutdown().await.unwrap();
}

/// A FETCH reply streams its tagged completion after the data: the command
/// is recorded when the stream yields it, not when the call returns.
#[tokio::test]
async fn a_streamed_fetch_is_recorded_at_its_completion() {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let srv = server(&store, &metrics);
    let info = ConnectionInfo::new(None, false, 1);
    let mut svc = srv.service_for(&info);
    assert_eq!(metrics.connections_open(Protocol::Imap), 1);
    let mut call = async |tag: &str, command: Command| {
        let request = Request {
            tag: tag.to_owned(),
            command,
        };
        svc.ready().await.unwrap().call(request).await.unwrap()
    };
    let mut reply = call(
        "a",
        Command::Login {
            username: "alice@example.com".into(),
            password: PASSWORD.into(),
        },
    )
    .await;
    reply.drain_tail().await;
    let mut reply = call(
        "b",
        Command::Append {
            mailbox: "INBOX".into(),
            flags: vec![],
            date: None,
            message: message("s", "b").into(),
        },
    )
    .await;
    reply.drain_tail().await;
    let mut reply = call(
        "c",
        Command::Select {
            mailbox: "INBOX".into(),
            params: Default::default(),
        },
    )
    .await;
    reply.drain_tail().await;
    let mut reply = call(
        "d",
        Command::Fetch {
            uid: true,
            set: "1:*".parse().unwrap(),
            items: vec![FetchAttr::Flags],
            changed_since: None,
            vanished: false,
        },
    )
    .await;
    assert!(reply.tail.is_some(), "FETCH is expected to stream");
    assert_eq!(metrics.commands(Protocol::Imap, "FETCH", "OK"), 0);
    reply.drain_tail().await;
    assert_eq!(
        reply.completion().map(|s| s.tag.clone()),
        Some(Some("d".into()))
    );
    assert_eq!(metrics.commands(Protocol::Imap, "FETCH", "OK"), 1);
    assert_eq!(total_commands(&metrics), 4);

    // A reply dropped halfway (the connection went away) counts as BYE.
    let mut reply = call(
        "e",
        Command::Fetch {
            uid: false,
            set: "1".parse().unwrap(),
            items: vec![FetchAttr::Flags],
            changed_since: None,
            vanished: false,
        },
    )
    .await;
    let mut tail = reply.tail.take().expect("FETCH streams");
    assert!(matches!(tail.next().await, Some(Response::Data(_))));
    drop(tail);
    assert_eq!(metrics.commands(Protocol::Imap, "FETCH", "OK"), 1);
    assert_eq!(metrics.commands(Protocol::Imap, "FETCH", "BYE"), 1);
    drop(svc);
    assert_eq!(metrics.connections_open(Protocol::Imap), 0);
}
