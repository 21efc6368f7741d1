//! Shared helpers: a replica listener on a real loopback socket, run by the
//! shared server runtime (`mailroom-server`) with a wrapper that records
//! each connection's result; a rolling primary; a deep comparison of two
//! stores of any backends (the two ends need not be the same kind); stores
//! of each backend; and the scenarios run on more than one pair of
//! backends (`kinds`, `split`, `cut`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use mailroom_core::replication::AccountState;
use mailroom_core::{
    Flags, InternalDate, MailboxName, MailboxRef, NewMessage, Replication, Storage, Uid,
};
use mailroom_server::limit::Refusal;
use mailroom_server::{Connection, Protocol, Server};
use mailroom_sync::{
    Primary, PrimaryConfig, PrimaryConnection, Replica, ReplicaConfig, Secret, SyncError, Verdict,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub mod cut;
pub mod kinds;
pub mod split;

pub const SECRET: &[u8] = b"correct horse battery staple, 32b";

pub fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// The replica's protocol, recording each connection's outcome.
struct Recording {
    replica: Replica,
    results: mpsc::UnboundedSender<Result<(), SyncError>>,
}

impl Protocol for Recording {
    fn name(&self) -> &'static str {
        "replication-test"
    }

    fn refusal(&self, refusal: Refusal) -> Bytes {
        self.replica.refusal(refusal)
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        let replica = self.replica.clone();
        let results = self.results.clone();
        let Connection {
            stream,
            mut shutdown,
            ..
        } = connection;
        Box::pin(async move {
            let result = replica
                .serve_connection_until(stream, async move { shutdown.requested().await })
                .await;
            let _ = results.send(result);
        })
    }
}

/// A replica listening on 127.0.0.1 through the server runtime; every
/// connection's result is sent on `results`. Aborting `task` closes the
/// listener and every connection (a replica process that died).
pub struct ReplicaListener {
    pub addr: SocketAddr,
    pub replica: Replica,
    pub task: JoinHandle<()>,
    pub results: mpsc::UnboundedReceiver<Result<(), SyncError>>,
}

pub async fn listen<S: Replication + 'static>(
    store: Arc<S>,
    config: ReplicaConfig,
) -> ReplicaListener {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let replica = Replica::new(store, config);
    let (tx, results) = mpsc::unbounded_channel();
    let server = Server::new(Recording {
        replica: replica.clone(),
        results: tx,
    });
    let task = tokio::spawn(async move {
        server
            .serve(listener, std::future::pending())
            .await
            .unwrap();
    });
    ReplicaListener {
        addr,
        replica,
        task,
        results,
    }
}

/// A rolling primary connecting to whatever address `target` holds.
pub struct RunningPrimary {
    pub primary: Primary,
    pub target: Arc<Mutex<SocketAddr>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningPrimary {
    /// Drops the `run` future wherever it is (a task aborted, as a server
    /// does when it stops streaming without telling it).
    pub async fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

pub fn primary_config() -> PrimaryConfig {
    let mut c = PrimaryConfig::new(secret());
    c.reconnect_delay = Duration::from_millis(20);
    c
}

pub fn start_primary<S: Replication + 'static>(
    store: Arc<S>,
    addr: SocketAddr,
    config: PrimaryConfig,
) -> RunningPrimary {
    let primary = Primary::new(store, config);
    let target = Arc::new(Mutex::new(addr));
    let (stop, stopped) = oneshot::channel::<()>();
    let p = primary.clone();
    let t = Arc::clone(&target);
    let task = tokio::spawn(async move {
        p.run(
            move || {
                let addr = *t.lock().unwrap();
                TcpStream::connect(addr)
            },
            async {
                let _ = stopped.await;
            },
        )
        .await;
    });
    RunningPrimary {
        primary,
        target,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A connection of `primary` to the replica at `addr`, handshake done.
pub async fn connect_to(primary: &Primary, addr: SocketAddr) -> PrimaryConnection<TcpStream> {
    primary
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap()
}

/// Asserts that one more pass finds every mailbox of `user` in step.
pub async fn assert_in_step<IO>(conn: &mut PrimaryConnection<IO>, user: &str)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let again = conn.sync_all().await.unwrap();
    assert!(
        again[user].iter().all(|(_, v)| *v == Verdict::InStep),
        "{again:?}"
    );
}

pub fn inbox(user: &str) -> MailboxRef {
    MailboxRef::new(user, MailboxName::inbox())
}

pub fn mailbox(user: &str, name: &str) -> MailboxRef {
    MailboxRef::new(user, MailboxName::new(name).unwrap())
}

pub fn message(i: usize, size: usize) -> NewMessage {
    let mut body = format!("Subject: message {i}\r\nMessage-ID: <{i}@test>\r\n\r\n");
    while body.len() + 2 < size {
        body.push_str(&format!("line {i} "));
    }
    body.push_str("\r\n");
    NewMessage {
        flags: Flags::default(),
        internal_date: Some(InternalDate {
            timestamp: 1_700_000_000 + i as i64,
            offset_minutes: 120,
        }),
        content: Bytes::from(body),
    }
}

/// Everything a client could see of one account, content hashes included.
#[derive(Debug, PartialEq, Eq)]
pub struct Picture {
    pub state: AccountState,
    pub mailboxes: Vec<(
        MailboxName,
        Vec<mailroom_core::replication::ReplicaRecord>,
        Vec<Bytes>,
    )>,
}

pub async fn picture<S: Replication + ?Sized>(store: &S, user: &str) -> Option<Picture> {
    let mut state = store.account_state(user).await.unwrap()?;
    // The namespace digest is the primary's own record (the replica keeps none).
    for m in &mut state.mailboxes {
        if let Some(p) = &mut m.sync_point {
            p.namespace = None;
        }
    }
    let mut mailboxes = Vec::new();
    for m in &state.mailboxes {
        let r = MailboxRef::new(user, m.name.clone());
        let uv = m.head.uid_validity;
        let records = store
            .records_since(&r, uv, mailroom_core::ModSeq(0), Uid(0), usize::MAX)
            .await
            .ok()?
            .records;
        let mut contents = Vec::new();
        for rec in &records {
            contents.push(store.message_content(&r, uv, rec.uid).await.ok()?);
        }
        mailboxes.push((m.name.clone(), records, contents));
    }
    Some(Picture { state, mailboxes })
}

/// Waits until the replica's picture of `user` equals the primary's.
pub async fn wait_identical<P: Replication + ?Sized, R: Replication + ?Sized>(
    primary: &P,
    replica: &R,
    user: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let p = picture(primary, user).await;
        let r = picture(replica, user).await;
        if p.is_some() && p == r {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("replica never caught up with {user}:\nprimary {p:#?}\nreplica {r:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn append_n<S: Storage + ?Sized>(
    store: &S,
    mailbox: &MailboxRef,
    from: usize,
    n: usize,
    size: usize,
) {
    for i in from..from + n {
        store.append(mailbox, message(i, size)).await.unwrap();
    }
}

/// A CRC store in `dir`, fsync off (tests), nothing kept loaded once
/// released (so every access reads the files).
pub fn crc_store(dir: &std::path::Path) -> Arc<mailroom_store_crc::CrcStore> {
    Arc::new(
        mailroom_store_crc::CrcStore::open(
            dir,
            mailroom_store_crc::CrcOptions {
                durability: false,
                open_mailbox_grace: Duration::ZERO,
                ..mailroom_store_crc::CrcOptions::default()
            },
        )
        .unwrap(),
    )
}

/// A PostgreSQL store on a new, empty database of this test binary's
/// private cluster (started on first use), migrated; with the database's
/// URL, for more frontends on it ([`pg_frontend`]).
pub async fn pg_store() -> (String, Arc<mailroom_store_postgres::PgStore>) {
    let url = tokio::task::spawn_blocking(|| {
        mailroom_testkit::postgres::PgCluster::shared().create_database("sync")
    })
    .await
    .unwrap();
    let store = pg_frontend(&url).await;
    (url, store)
}

/// Another frontend on the database at `url` (or the same one started
/// again): a store of its own, with its own pool and change listener.
pub async fn pg_frontend(url: &str) -> Arc<mailroom_store_postgres::PgStore> {
    let store = mailroom_store_postgres::PgStore::connect(&mailroom_store_postgres::PgOptions {
        url: url.to_owned(),
        pool_size: 4,
        migrate: true,
        view_records: mailroom_store_postgres::DEFAULT_VIEW_RECORDS,
    })
    .await
    .unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"));
    Arc::new(store)
}

/// Both ends report the same usage of `user`'s quota root (messages and
/// bytes under it) and the same limits: each store keeps its own count as
/// it applies changes, so a count that drifted would show here and in no
/// picture.
pub async fn assert_same_usage<P, R>(p: &P, r: &R, user: &str)
where
    P: mailroom_core::Quota + ?Sized,
    R: mailroom_core::Quota + ?Sized,
{
    let (a, b) = (
        p.usage(&p.root_of(user)).await.unwrap(),
        r.usage(&r.root_of(user)).await.unwrap(),
    );
    assert_eq!(a, b, "usage of {user}");
}

/// Polls the primary's status until `done` holds (10 s at most).
pub async fn wait_status(
    primary: &Primary,
    done: impl Fn(&mailroom_sync::ReplicationStatus) -> bool,
) -> mailroom_sync::ReplicationStatus {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = primary.status().await.unwrap();
        if done(&status) {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
