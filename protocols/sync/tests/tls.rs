//! Replication over TLS: the replica listens on the shared server runtime
//! with implicit TLS (`Server::implicit_tls`), the primary connects through
//! `tokio_rustls` trusting only the replica's certificate (pinned as its
//! one root). A primary that does not trust the certificate never gets to
//! send a byte of replication, and the shared secret is still required
//! inside TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use mailroom_core::{Replication, Storage};
use mailroom_server::Server;
use mailroom_store_memory::MemoryStore;
use mailroom_sync::{Primary, Replica, ReplicaConfig};
use mailroom_testkit::tls_pair;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const USER: &str = "ivan@example.com";

async fn tls_to(
    addr: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(client).connect(name, tcp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_over_tls_with_the_certificate_checked() {
    let (server_tls, client_tls) = tls_pair();
    let (_, stranger_tls) = tls_pair();
    let p = Arc::new(MemoryStore::new());
    let r = Arc::new(MemoryStore::new());
    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 5, 800).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let replica = Replica::new(Arc::clone(&r) as _, ReplicaConfig::new(secret()));
    let server = Server::new(replica.clone()).implicit_tls(server_tls);
    let task = tokio::spawn(server.serve(listener, std::future::pending()));

    // A primary that does not trust the replica's certificate: refused
    // during the TLS handshake.
    let err = tls_to(addr, stranger_tls).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    // The right certificate but the wrong secret: refused inside TLS.
    let intruder = Primary::new(
        Arc::clone(&p) as _,
        mailroom_sync::PrimaryConfig::new(
            mailroom_sync::Secret::new(*b"a different shared secret...").unwrap(),
        ),
    );
    let io = tls_to(addr, Arc::clone(&client_tls)).await.unwrap();
    assert!(intruder.connect(io).await.is_err());
    assert!(r.accounts().await.unwrap().is_empty(), "nothing applied");

    // The real primary, rolling, over TLS.
    let primary = Primary::new(Arc::clone(&p) as _, primary_config());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let primary = primary.clone();
        let client_tls = Arc::clone(&client_tls);
        tokio::spawn(async move {
            primary
                .run(move || tls_to(addr, Arc::clone(&client_tls)), async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    wait_identical(&*p, &*r, USER).await;
    append_n(&*p, &inbox(USER), 100, 3, 800).await;
    wait_identical(&*p, &*r, USER).await;
    assert_eq!(r.status(&inbox(USER), USER).await.unwrap().messages, 8);
    assert!(primary.stats().bytes_sent > 8 * 800);
    stop.send(()).unwrap();
    runner.await.unwrap();
    task.abort();
}
