//! The replica side: [`ReplicaSession`], a `tower::Service<Frame>` holding
//! one connection's state (HELLO, AUTH, ready), and [`Replica`], the
//! factory that builds one per connection and drives it over a socket
//! ([`Replica::serve_connection`]).

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use mailroom_core::replication::{ApplyBatch, NamespaceOp, ReplicaMessage, SyncPoint};
use mailroom_core::{MailboxRef, MessageGuid, Replication};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;
use tower::Service;

use crate::error::{Result, SyncError};
use crate::handshake::{SUPPORTED_VERSIONS, Secret, negotiate, nonce};
use crate::io::{ByteCounters, CountingIo};
use crate::msgs::{
    self, AppliedFrame, ErrorFrame, GetRecords, Hello, NONCE_LEN, NamespaceRequest, Records,
    RecordsPage, Role, kind,
};
use crate::wire::{Field, FieldReader, Frame, FrameCodec, Limits};

/// How a replica listens.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The secret shared with the primary.
    pub secret: Secret,
    /// Bounds on incoming frames.
    pub limits: Limits,
    /// The protocol versions accepted (tests and staged upgrades narrow it).
    pub versions: RangeInclusive<u32>,
    /// Time allowed for the whole handshake (HELLO and AUTH).
    pub handshake_timeout: Duration,
    /// Time a ready connection may stay silent before it is closed.
    pub idle_timeout: Duration,
    /// Where FILE frames are installed; without it they are answered
    /// UNSUPPORTED (see [`crate::files`]).
    pub files: Option<Arc<dyn crate::AppFiles>>,
}

impl ReplicaConfig {
    /// Defaults around a secret: [`Limits::default`], every supported
    /// version, 10 s for the handshake, 10 minutes idle.
    pub fn new(secret: Secret) -> ReplicaConfig {
        ReplicaConfig {
            secret,
            limits: Limits::default(),
            versions: SUPPORTED_VERSIONS,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            files: None,
        }
    }
}

/// Counters of a [`Replica`], over all its connections.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    batches: AtomicU64,
    messages: AtomicU64,
    bytes_received: AtomicU64,
    /// The last PENDING count received, and when.
    pending: std::sync::Mutex<Option<(u64, std::time::SystemTime)>>,
}

/// A snapshot of a replica's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaStats {
    /// Connections served.
    pub connections: u64,
    /// Connections closed because of the peer (bad bytes, failed proof,
    /// version, protocol violation, timeout).
    pub refused: u64,
    /// RECORDS batches applied.
    pub batches: u64,
    /// Messages (with bytes) applied.
    pub messages: u64,
    /// Bytes received on all connections.
    pub bytes_received: u64,
    /// What this replica knows it lacks: the primary's count of changes
    /// not yet replicated, as the primary last announced it (PENDING, at
    /// the start and the end of each of its rounds; 0 once a round brought
    /// this replica in step). After the connection is lost it stays at the
    /// last announcement (changes made since on the primary cannot be
    /// known here); 0 before any announcement.
    pub pending_changes: u64,
    /// When the last announcement came (`None`: none since this replica
    /// started, or the primary is older and sends none).
    pub pending_announced: Option<std::time::SystemTime>,
}

/// The replica: builds a [`ReplicaSession`] per connection over one store.
#[derive(Debug, Clone)]
pub struct Replica {
    store: Arc<dyn Replication>,
    config: Arc<ReplicaConfig>,
    counters: Arc<Counters>,
}

impl Replica {
    /// A replica applying to `store`.
    pub fn new(store: Arc<dyn Replication>, config: ReplicaConfig) -> Replica {
        Replica {
            store,
            config: Arc::new(config),
            counters: Arc::new(Counters::default()),
        }
    }

    /// A fresh session for one connection (`MakeService` style).
    pub fn session(&self) -> ReplicaSession {
        ReplicaSession {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            counters: Arc::clone(&self.counters),
            state: State::Hello,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ReplicaStats {
        let c = &self.counters;
        let pending = c.pending.lock().ok().and_then(|p| *p);
        ReplicaStats {
            connections: c.connections.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            messages: c.messages.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            pending_changes: pending.map_or(0, |(n, _)| n),
            pending_announced: pending.map(|(_, t)| t),
        }
    }

    /// Serves one connection until the primary closes it. A connection the
    /// peer gets wrong (bad bytes, CRC, length, proof, version, a frame out
    /// of place, a timeout) is answered with an ERROR frame where possible,
    /// logged with its reason at `warn`, and closed; the error is returned.
    /// Nothing a refused frame carried has been applied.
    pub async fn serve_connection<IO>(&self, io: IO) -> Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.serve_connection_until(io, std::future::pending())
            .await
    }

    /// [`Replica::serve_connection`] that also ends, between two requests
    /// (never in the middle of applying one), when `shutdown` completes.
    pub async fn serve_connection_until<IO>(
        &self,
        io: IO,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let bytes = Arc::new(ByteCounters::default());
        let io = CountingIo::new(io, Arc::clone(&bytes));
        let mut framed = Framed::new(io, FrameCodec::new(self.config.limits));
        let mut session = self.session();
        let result = self.drive(&mut framed, &mut session, shutdown).await;
        self.counters
            .bytes_received
            .fetch_add(bytes.read.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Err(e) = &result {
            if e.is_peer_fault() || matches!(e, SyncError::Timeout) {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(error = %e, "replication connection closed");
            // Best effort: the peer may be gone or may not be listening.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                framed.send(ErrorFrame::from_error(e).to_frame()),
            )
            .await;
        }
        result
    }

    async fn drive<IO>(
        &self,
        framed: &mut Framed<CountingIo<IO>, FrameCodec>,
        session: &mut ReplicaSession,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let wait = if session.is_ready() {
                self.config.idle_timeout
            } else {
                self.config.handshake_timeout
            };
            let next = tokio::select! {
                next = tokio::time::timeout(wait, framed.next()) => next,
                () = &mut shutdown => {
                    tracing::info!("replica shutting down: connection closed between requests");
                    return Ok(());
                }
            };
            let frame = match next {
                Err(_) => return Err(SyncError::Timeout),
                Ok(None) => return Ok(()),
                Ok(Some(frame)) => frame?,
            };
            if let Some(answer) = session.call(frame).await? {
                framed.send(answer).await?;
            }
        }
    }
}

#[derive(Debug)]
enum State {
    Hello,
    Auth {
        primary_nonce: [u8; NONCE_LEN],
        replica_nonce: [u8; NONCE_LEN],
    },
    Ready,
}

/// One connection's session: the handshake state machine, then requests
/// applied to the store. `call` answers with at most one frame; an `Err`
/// ends the connection (the driver sends it as an ERROR frame).
#[derive(Debug)]
pub struct ReplicaSession {
    store: Arc<dyn Replication>,
    config: Arc<ReplicaConfig>,
    counters: Arc<Counters>,
    state: State,
}

impl ReplicaSession {
    /// Whether the handshake is done.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    fn hello(&mut self, frame: &Frame) -> Result<Frame> {
        if frame.kind != kind::HELLO {
            return Err(SyncError::Unexpected("expected HELLO"));
        }
        let hello = Hello::from_frame(frame)?;
        if hello.role != Role::Primary {
            return Err(SyncError::Unexpected(
                "HELLO from a node that is not a primary",
            ));
        }
        let chosen = negotiate(&self.config.versions, hello.min_version, hello.max_version)?;
        let replica_nonce = nonce();
        self.state = State::Auth {
            primary_nonce: hello.nonce,
            replica_nonce,
        };
        Ok(Hello {
            min_version: *self.config.versions.start(),
            max_version: *self.config.versions.end(),
            role: Role::Replica,
            nonce: replica_nonce,
            chosen: Some(chosen),
        }
        .to_frame())
    }

    fn auth(
        &mut self,
        frame: &Frame,
        primary_nonce: [u8; NONCE_LEN],
        replica_nonce: [u8; NONCE_LEN],
    ) -> Result<Frame> {
        if frame.kind != kind::AUTH {
            return Err(SyncError::Unexpected("expected AUTH"));
        }
        let proof = FieldReader::new(&frame.fields).bytes(1, "AUTH without proof")?;
        self.config
            .secret
            .verify(Role::Primary, &primary_nonce, &replica_nonce, proof)?;
        self.state = State::Ready;
        tracing::info!("replication primary authenticated");
        let ours = self
            .config
            .secret
            .proof(Role::Replica, &primary_nonce, &replica_nonce);
        Ok(Frame::new(
            kind::AUTH,
            vec![Field::bytes(1, bytes::Bytes::copy_from_slice(&ours))],
        ))
    }
}

/// A request's failure that the connection survives: reported in an ERROR
/// frame, the primary decides what to do.
fn refusal(error: &SyncError) -> Frame {
    ErrorFrame::from_error(error).to_frame()
}

async fn handle(
    store: Arc<dyn Replication>,
    counters: Arc<Counters>,
    files: Option<Arc<dyn crate::AppFiles>>,
    frame: Frame,
) -> Result<Option<Frame>> {
    match frame.kind {
        kind::PENDING => {
            let n = msgs::pending_from(&frame)?;
            if let Ok(mut p) = counters.pending.lock() {
                *p = Some((n, std::time::SystemTime::now()));
            }
            Ok(None)
        }
        kind::FILE => {
            let Some(files) = files else {
                tracing::debug!("FILE without an application to install it: UNSUPPORTED");
                return Ok(Some(msgs::unsupported(kind::FILE)));
            };
            let (name, content) = match msgs::file_from_frame(&frame) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "replicated file refused");
                    return Ok(Some(refusal(&e)));
                }
            };
            let len = content.len();
            let installed = {
                let name = name.clone();
                tokio::task::spawn_blocking(move || files.install(&name, &content)).await
            };
            Ok(Some(match installed {
                Ok(Ok(())) => {
                    tracing::info!(file = %name, bytes = len, "replicated file installed");
                    msgs::ok()
                }
                Ok(Err(e)) => {
                    tracing::warn!(file = %name, error = %e, "replicated file not installed");
                    refusal(&SyncError::Io(e))
                }
                Err(_) => refusal(&SyncError::Unexpected("file installation panicked")),
            }))
        }
        kind::GET_ACCOUNT => {
            let user = msgs::get_account_user(&frame)?;
            Ok(Some(match store.account_state(&user).await {
                Ok(state) => msgs::account(&user, state.as_ref()),
                Err(e) => refusal(&e.into()),
            }))
        }
        kind::CREATE
        | kind::DELETE
        | kind::RENAME
        | kind::ATTRIBUTES
        | kind::SUBSCRIPTIONS
        | kind::QUOTA => {
            let request = NamespaceRequest::from_frame(&frame)?;
            let created = match &request {
                NamespaceRequest::Create {
                    user,
                    name,
                    uid_validity,
                    ..
                } => Some((MailboxRef::new(user.clone(), name.clone()), *uid_validity)),
                _ => None,
            };
            let (user, op) = namespace_op(request);
            tracing::debug!(user, ?op, "replica namespace change");
            if let Err(e) = store.apply_namespace(&user, op).await {
                return Ok(Some(refusal(&e.into())));
            }
            // A mailbox the primary created starts at a sync point: if the
            // primary deletes it before any batch, the delete wins.
            if let Some((mailbox, uv)) = created
                && let Ok((head, _)) = store.record_digests(&mailbox, uv).await
            {
                let point = SyncPoint {
                    uid_next: head.uid_next,
                    highest_modseq: head.highest_modseq,
                    namespace: None,
                };
                if let Err(e) = store.set_sync_point(&mailbox, uv, point).await {
                    tracing::warn!(error = %e, %mailbox, "sync point not recorded");
                }
            }
            Ok(Some(msgs::ok()))
        }
        kind::RECORDS => {
            let records = Records::from_frame(&frame)?;
            for m in &records.messages {
                if let Some(content) = &m.content
                    && (MessageGuid::of(content) != m.record.guid
                        || content.len() as u64 != m.record.size)
                {
                    let e = SyncError::GuidMismatch {
                        uid: m.record.uid.0,
                    };
                    tracing::warn!(error = %e, mailbox = %records.key.name, "batch refused");
                    return Ok(Some(refusal(&e)));
                }
            }
            let with_content = records
                .messages
                .iter()
                .filter(|m| m.content.is_some())
                .count() as u64;
            let mailbox = MailboxRef::new(records.key.user.clone(), records.key.name.clone());
            let expected = records.expected;
            let batch = ApplyBatch {
                messages: records.messages,
                expunged: records.expunged,
                uid_next: records.uid_next,
                highest_modseq: records.highest_modseq,
            };
            let uv = records.key.uid_validity;
            let mut result = store.apply_messages(&mailbox, uv, batch.clone()).await;
            if let Err(mailroom_core::Error::Corruption(detail)) = &result {
                // A damaged index record: drop it and apply again; the
                // heads then differ and the primary resends what was dropped.
                tracing::warn!(%mailbox, %detail, "damaged records; salvaging for the primary to repair");
                if store.salvage(&mailbox, uv).await.is_ok() {
                    result = store.apply_messages(&mailbox, uv, batch).await;
                }
            }
            Ok(Some(match result {
                Ok(applied) => {
                    if expected == Some(applied.head) {
                        let point = SyncPoint {
                            uid_next: applied.head.uid_next,
                            highest_modseq: applied.head.highest_modseq,
                            namespace: None,
                        };
                        if let Err(e) = store
                            .set_sync_point(&mailbox, records.key.uid_validity, point)
                            .await
                        {
                            tracing::warn!(error = %e, %mailbox, "sync point not recorded");
                        }
                    }
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                    counters.messages.fetch_add(with_content, Ordering::Relaxed);
                    AppliedFrame {
                        head: applied.head,
                        missing: applied.missing,
                    }
                    .to_frame()
                }
                Err(e) => refusal(&e.into()),
            }))
        }
        kind::GET_RECORDS => {
            let get = GetRecords::from_frame(&frame)?;
            Ok(Some(match records_page(&*store, &get).await {
                Ok(page) => page.to_frame(),
                Err(e) => refusal(&e.into()),
            }))
        }
        kind::GET_DIGESTS => {
            let key = msgs::get_digests_key(&frame)?;
            let check = msgs::get_digests_check_content(&frame)?;
            let mailbox = MailboxRef::new(key.user, key.name);
            let uv = key.uid_validity;
            let (head, list) = match store.record_digests(&mailbox, uv).await {
                Ok(d) => d,
                Err(mailroom_core::Error::Corruption(detail)) => {
                    // A damaged index record: drop what fails its checks
                    // and answer with the rest; the primary resends the
                    // dropped messages (they are missing from the digests).
                    tracing::warn!(%mailbox, %detail, "damaged records; salvaging for the primary to repair");
                    let salvaged = store.salvage(&mailbox, uv).await;
                    match salvaged {
                        Ok(_) => match store.record_digests(&mailbox, uv).await {
                            Ok(d) => d,
                            Err(e) => return Ok(Some(refusal(&e.into()))),
                        },
                        Err(e) => return Ok(Some(refusal(&e.into()))),
                    }
                }
                Err(e) => return Ok(Some(refusal(&e.into()))),
            };
            let mut damaged = Vec::new();
            if check {
                // Read every message back and check it against its GUID.
                for (uid, _) in &list {
                    match store.message_content(&mailbox, uv, *uid).await {
                        Ok(_) | Err(mailroom_core::Error::NoSuchMessage(_)) => {}
                        Err(e) => {
                            tracing::warn!(%mailbox, uid = uid.0, error = %e, "damaged message found by verify");
                            damaged.push(*uid);
                        }
                    }
                }
            }
            Ok(Some(msgs::digests_with_damage(&head, &list, &damaged)))
        }
        kind::HELLO
        | kind::AUTH
        | kind::ERROR
        | kind::UNSUPPORTED
        | kind::OK
        | kind::ACCOUNT
        | kind::APPLIED
        | kind::DIGESTS
        | kind::RECORDS_PAGE => Err(SyncError::Unexpected(
            "frame kind not accepted from a primary",
        )),
        unknown if frame.is_ignorable() => {
            tracing::debug!(kind = unknown, "ignorable frame of an unknown kind skipped");
            Ok(None)
        }
        unknown => {
            tracing::debug!(kind = unknown, "frame of an unknown kind: UNSUPPORTED");
            Ok(Some(msgs::unsupported(unknown)))
        }
    }
}

/// Most message bytes in one RECORDS_PAGE.
const PAGE_BYTES: usize = 8 << 20;

/// The answer to GET_RECORDS: a page of changed records, with bytes from
/// `content_from` on, within [`PAGE_BYTES`] (a larger message goes alone).
async fn records_page(
    store: &dyn Replication,
    get: &GetRecords,
) -> mailroom_core::Result<RecordsPage> {
    let mailbox = MailboxRef::new(get.key.user.clone(), get.key.name.clone());
    let uv = get.key.uid_validity;
    let limit = get.limit.clamp(1, 10_000) as usize;
    let page = store
        .records_since(&mailbox, uv, get.since, get.after, limit)
        .await?;
    let mut messages = Vec::with_capacity(page.records.len());
    let mut bytes = 0usize;
    let mut cut = false;
    for record in page.records {
        let content = if record.uid >= get.content_from {
            let c = store.message_content(&mailbox, uv, record.uid).await?;
            if !messages.is_empty() && bytes + c.len() > PAGE_BYTES {
                cut = true;
                break;
            }
            bytes += c.len();
            Some(c)
        } else {
            None
        };
        messages.push(ReplicaMessage { record, content });
    }
    Ok(RecordsPage {
        head: page.head,
        messages,
        more: page.more || cut,
        expunged: if cut { Vec::new() } else { page.expunged },
        expunged_complete: page.expunged_complete,
    })
}

fn namespace_op(request: NamespaceRequest) -> (String, NamespaceOp) {
    match request {
        NamespaceRequest::Create {
            user,
            name,
            uid_validity,
            special_use,
            mailbox_id,
        } => (
            user,
            NamespaceOp::Create {
                name,
                uid_validity,
                special_use,
                mailbox_id,
            },
        ),
        NamespaceRequest::Delete { user, name } => (user, NamespaceOp::Delete { name }),
        NamespaceRequest::Rename { user, from, to } => (user, NamespaceOp::Rename { from, to }),
        NamespaceRequest::Attributes {
            user,
            name,
            special_use,
            acl,
            mailbox_id,
        } => (
            user,
            NamespaceOp::SetAttributes {
                name,
                special_use,
                acl,
                mailbox_id,
            },
        ),
        NamespaceRequest::Subscriptions { user, names } => {
            (user, NamespaceOp::SetSubscriptions(names))
        }
        NamespaceRequest::Quota { user, limits } => (user, NamespaceOp::SetQuota(limits)),
    }
}

impl Service<Frame> for ReplicaSession {
    type Response = Option<Frame>;
    type Error = SyncError;
    type Future = BoxFuture<'static, Result<Option<Frame>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, frame: Frame) -> Self::Future {
        let answer = match self.state {
            State::Hello => self.hello(&frame).map(Some),
            State::Auth {
                primary_nonce,
                replica_nonce,
            } => self.auth(&frame, primary_nonce, replica_nonce).map(Some),
            State::Ready => {
                return Box::pin(handle(
                    Arc::clone(&self.store),
                    Arc::clone(&self.counters),
                    self.config.files.clone(),
                    frame,
                ));
            }
        };
        Box::pin(std::future::ready(answer))
    }
}

/// The replica as a listener of the shared server runtime
/// (`mailroom_server::Server::new(replica)`): the runtime brings accept,
/// limits, PROXY, TLS, socket timeouts and shutdown; a connection over a
/// limit is refused with an ERROR frame (code 6, temporary) naming the
/// limit, which the primary reports and retries after its reconnect delay.
impl mailroom_server::Protocol for Replica {
    fn name(&self) -> &'static str {
        "replication"
    }

    fn refusal(&self, refusal: mailroom_server::limit::Refusal) -> bytes::Bytes {
        let frame = ErrorFrame {
            code: msgs::error_code::TEMPORARY,
            message: refusal.to_string(),
            versions: None,
        }
        .to_frame();
        frame
            .to_bytes(self.config.limits.max_frame)
            .unwrap_or_default()
    }

    fn serve(&self, connection: mailroom_server::Connection) -> BoxFuture<'static, ()> {
        let replica = self.clone();
        let mailroom_server::Connection {
            stream,
            info,
            mut shutdown,
            ..
        } = connection;
        let span = tracing::info_span!("replication", id = info.id, peer = ?info.peer);
        Box::pin(tracing::Instrument::instrument(
            async move {
                // The outcome is logged inside; the runtime needs nothing back.
                let _ = replica
                    .serve_connection_until(stream, async move { shutdown.requested().await })
                    .await;
            },
            span,
        ))
    }
}
