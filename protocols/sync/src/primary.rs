//! The primary side: [`Primary`] compares each changed account with the
//! replica and streams what differs, over a [`PrimaryConnection`].
//!
//! Where a round starts is the replica's own state: for every mailbox the
//! replica reports its HIGHESTMODSEQ, and only records changed after it
//! (and expunges after it) are sent. A replica or primary that restarts
//! therefore resumes where it stopped, with no position kept anywhere else.
//! After every batch the replica's head (UIDNEXT, HIGHESTMODSEQ, message
//! count, state CRC) must equal the primary's as of the batch; if not, the
//! mailbox is resynced from record digests, sending only the records that
//! differ and message bytes only where the replica lacks them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mailroom_core::replication::{
    AccountState, ApplyBatch, ChangePosition, MailboxHead, MailboxState, NamespaceOp,
    PendingSyncPoint, ReplicaMessage, ReplicaRecord, StateCrc, SyncPoint, namespace_digest,
};
use mailroom_core::{MailboxName, MailboxRef, ModSeq, Replication, Uid, UidValidity};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::error::{Result, SyncError};
use crate::handshake::{SUPPORTED_VERSIONS, Secret, nonce};
use crate::io::{ByteCounters, CountingIo};
use crate::msgs::{
    self, AppliedFrame, ErrorFrame, GetRecords, Hello, MailboxKey, NamespaceRequest,
    RECORD_OVERHEAD, Records, RecordsPage, Role, kind,
};
use crate::wire::{Field, FieldReader, Frame, FrameCodec, Limits};

/// A function that sees every request frame after the handshake before it
/// is sent. It may add fields, and it returns frames to send ahead of it.
/// Meant for tests of version skew (a "newer" sender) and for tracing.
pub type OutgoingHook = Arc<dyn Fn(&mut Frame) -> Vec<Frame> + Send + Sync>;

/// How a primary replicates.
#[derive(Clone)]
pub struct PrimaryConfig {
    /// The secret shared with the replica.
    pub secret: Secret,
    /// Bounds on frames received (and the largest frame sent).
    pub limits: Limits,
    /// The protocol versions offered.
    pub versions: RangeInclusive<u32>,
    /// Most records in one RECORDS frame.
    pub batch_records: usize,
    /// Most message bytes in one RECORDS frame (a larger message goes alone).
    pub batch_bytes: usize,
    /// Longest wait for an answer.
    pub request_timeout: Duration,
    /// How often every account is compared even without a change.
    pub verify_interval: Duration,
    /// Wait after a failed connection before the next (doubles up to 30 s).
    pub reconnect_delay: Duration,
    /// See [`OutgoingHook`].
    pub outgoing_hook: Option<OutgoingHook>,
    /// Application files sent in FILE frames (see [`crate::files`]).
    pub files: Option<Arc<dyn crate::AppFiles>>,
    /// How often the application files are read and compared with what
    /// was last sent (also after every round).
    pub file_check_interval: Duration,
}

impl std::fmt::Debug for PrimaryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryConfig")
            .field("secret", &self.secret)
            .field("limits", &self.limits)
            .field("versions", &self.versions)
            .field("batch_records", &self.batch_records)
            .field("batch_bytes", &self.batch_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("verify_interval", &self.verify_interval)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("outgoing_hook", &self.outgoing_hook.is_some())
            .field("files", &self.files)
            .field("file_check_interval", &self.file_check_interval)
            .finish()
    }
}

impl PrimaryConfig {
    /// Defaults around a secret: 1,000 records or 8 MiB per batch, 30 s
    /// per request, a full comparison every 60 s, reconnect after 100 ms.
    pub fn new(secret: Secret) -> PrimaryConfig {
        PrimaryConfig {
            secret,
            limits: Limits::default(),
            versions: SUPPORTED_VERSIONS,
            batch_records: 1000,
            batch_bytes: 8 << 20,
            request_timeout: Duration::from_secs(30),
            verify_interval: Duration::from_secs(60),
            reconnect_delay: Duration::from_millis(100),
            outgoing_hook: None,
            files: None,
            file_check_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    connects: AtomicU64,
    rounds: AtomicU64,
    records_sent: AtomicU64,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    mismatches: AtomicU64,
    repaired: AtomicU64,
    unsupported_answers: AtomicU64,
    merges: AtomicU64,
    renumbered: AtomicU64,
    sync_timeouts: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
    connected: std::sync::atomic::AtomicBool,
    replicated: Replicated,
    /// The change position the last completed round covered.
    caught_up: AtomicU64,
    last_round: std::sync::Mutex<Option<std::time::Instant>>,
    /// When a round last compared every account (on connect and every
    /// `verify_interval`).
    last_full_round: std::sync::Mutex<Option<std::time::SystemTime>>,
    /// Held while one account is compared and brought in step, so that
    /// an on-demand comparison over a second connection (an operator's
    /// `verify`) never interleaves with the rolling one.
    exclusive: tokio::sync::Mutex<()>,
}

impl ReplicationStatus {
    /// The status as Prometheus text exposition lines (`mailroom_replication_*`
    /// series, no labels), for an integrator to append to its metrics
    /// endpoint next to `mailroom_core::metrics::Metrics::render_prometheus`.
    pub fn render_prometheus(&self) -> String {
        let s = &self.stats;
        let lag = if self.lag == Duration::MAX {
            "+Inf".to_owned()
        } else {
            self.lag.as_secs_f64().to_string()
        };
        let series: [(&str, &str, &str, String); 16] = [
            (
                "connected",
                "gauge",
                "1 while connected to the replica.",
                u64::from(self.connected).to_string(),
            ),
            (
                "pending_accounts",
                "gauge",
                "Accounts changed since the last completed round.",
                self.pending_accounts.to_string(),
            ),
            (
                "pending_changes",
                "gauge",
                "Changes made since the last completed round began.",
                self.pending_changes.to_string(),
            ),
            (
                "lag_seconds",
                "gauge",
                "0 when caught up, else seconds since the last completed round.",
                lag,
            ),
            (
                "connects_total",
                "counter",
                "Successful handshakes with the replica.",
                s.connects.to_string(),
            ),
            (
                "rounds_total",
                "counter",
                "Comparison rounds completed.",
                s.rounds.to_string(),
            ),
            (
                "records_sent_total",
                "counter",
                "Records sent, with or without message bytes.",
                s.records_sent.to_string(),
            ),
            (
                "messages_sent_total",
                "counter",
                "Messages whose bytes were sent.",
                s.messages_sent.to_string(),
            ),
            (
                "bytes_sent_total",
                "counter",
                "Bytes written to the replica.",
                s.bytes_sent.to_string(),
            ),
            (
                "bytes_received_total",
                "counter",
                "Bytes read from the replica.",
                s.bytes_received.to_string(),
            ),
            (
                "mismatches_total",
                "counter",
                "Mailboxes found different from the primary.",
                s.mismatches.to_string(),
            ),
            (
                "repaired_total",
                "counter",
                "Mailboxes repaired by a digest resync.",
                s.repaired.to_string(),
            ),
            (
                "split_brain_merges_total",
                "counter",
                "Mailboxes merged after a split brain.",
                s.split_brain_merges.to_string(),
            ),
            (
                "renumbered_total",
                "counter",
                "Messages given new UIDs by merges.",
                s.renumbered.to_string(),
            ),
            (
                "unsupported_total",
                "counter",
                "UNSUPPORTED answers (the primary fell back).",
                s.unsupported_answers.to_string(),
            ),
            (
                "sync_timeouts_total",
                "counter",
                "Synchronous waits that timed out (fallbacks to asynchronous).",
                s.sync_timeouts.to_string(),
            ),
        ];
        let mut out = String::with_capacity(2048);
        for (name, kind, help, value) in series {
            out.push_str(&format!(
                "# HELP mailroom_replication_{name} {help}\n# TYPE mailroom_replication_{name} {kind}\nmailroom_replication_{name} {value}\n"
            ));
        }
        out
    }
}

/// Per mailbox (owner, UIDVALIDITY), the HIGHESTMODSEQ the replica was
/// last verified to hold, and a generation counter that wakes waiters.
#[derive(Debug)]
struct Replicated {
    through: std::sync::Mutex<HashMap<(String, u32), u64>>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for Replicated {
    fn default() -> Self {
        Replicated {
            through: std::sync::Mutex::new(HashMap::new()),
            generation: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Replicated {
    fn record(&self, user: &str, uid_validity: UidValidity, modseq: ModSeq) {
        if let Ok(mut map) = self.through.lock() {
            let entry = map.entry((user.to_owned(), uid_validity.0)).or_insert(0);
            *entry = (*entry).max(modseq.0);
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn holds(&self, user: &str, uid_validity: UidValidity, modseq: ModSeq) -> bool {
        self.through.lock().is_ok_and(|map| {
            map.get(&(user.to_owned(), uid_validity.0))
                .is_some_and(|m| *m >= modseq.0)
        })
    }
}

/// Where rolling replication stands (for `replication status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStatus {
    /// Whether [`Primary::run`] holds an authenticated connection.
    pub connected: bool,
    /// Accounts changed after the last completed round (0: caught up).
    pub pending_accounts: u64,
    /// Changes (positions of the store's change feed) made after the
    /// start of the last completed round, and at least
    /// [`ReplicationStatus::pending_accounts`]: 0 exactly when caught up.
    /// For a store whose positions only order changes
    /// ([`Replication::positions_count_changes`] false: PostgreSQL), the
    /// pending accounts.
    pub pending_changes: u64,
    /// Zero when caught up; else the time since the last completed round,
    /// an upper bound on how long the oldest pending change has waited
    /// (`Duration::MAX` before the first round completed).
    pub lag: Duration,
    /// When every account was last compared with the replica (on each
    /// connect and every [`PrimaryConfig::verify_interval`]), if ever.
    pub last_full_compare: Option<std::time::SystemTime>,
    /// The counters.
    pub stats: PrimaryStats,
}

/// A snapshot of a primary's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrimaryStats {
    /// Successful handshakes.
    pub connects: u64,
    /// Comparison rounds completed.
    pub rounds: u64,
    /// Records sent (with or without bytes).
    pub records_sent: u64,
    /// Messages whose bytes were sent.
    pub messages_sent: u64,
    /// Bytes written to replicas (frames of every kind).
    pub bytes_sent: u64,
    /// Bytes read from replicas.
    pub bytes_received: u64,
    /// Mailboxes found different after a batch or at comparison.
    pub mismatches: u64,
    /// Mailboxes resynced from digests and found equal afterwards.
    pub repaired: u64,
    /// UNSUPPORTED answers received (the sender fell back).
    pub unsupported_answers: u64,
    /// Mailboxes merged after a split brain.
    pub split_brain_merges: u64,
    /// Messages given new UIDs by those merges.
    pub renumbered: u64,
    /// [`Primary::wait_replicated`] calls that timed out (each a fallback
    /// from synchronous to asynchronous replication).
    pub sync_timeouts: u64,
    /// The last connection's error, if it ended with one.
    pub last_error: Option<String>,
}

/// What one mailbox comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Equal heads: nothing was sent.
    InStep,
    /// Changes were streamed and the heads then matched.
    Updated,
    /// The heads disagreed (damage or divergence on the replica); the
    /// differing records were resent and the heads then matched.
    Repaired,
    /// Both ends had changed since their last sync point (split brain);
    /// the changes of both were merged into both and the heads then matched.
    Merged,
}

/// The primary: streams a store's changes to a replica.
#[derive(Debug, Clone)]
pub struct Primary {
    store: Arc<dyn Replication>,
    config: Arc<PrimaryConfig>,
    counters: Arc<Counters>,
}

impl Primary {
    /// A primary reading from `store`.
    pub fn new(store: Arc<dyn Replication>, config: PrimaryConfig) -> Primary {
        Primary {
            store,
            config: Arc::new(config),
            counters: Arc::new(Counters::default()),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> PrimaryStats {
        let c = &self.counters;
        PrimaryStats {
            connects: c.connects.load(Ordering::Relaxed),
            rounds: c.rounds.load(Ordering::Relaxed),
            records_sent: c.records_sent.load(Ordering::Relaxed),
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            mismatches: c.mismatches.load(Ordering::Relaxed),
            repaired: c.repaired.load(Ordering::Relaxed),
            unsupported_answers: c.unsupported_answers.load(Ordering::Relaxed),
            split_brain_merges: c.merges.load(Ordering::Relaxed),
            renumbered: c.renumbered.load(Ordering::Relaxed),
            sync_timeouts: c.sync_timeouts.load(Ordering::Relaxed),
            last_error: c.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Where replication stands: connected, pending changes, lag.
    pub async fn status(&self) -> Result<ReplicationStatus> {
        let c = &self.counters;
        let since = ChangePosition(c.caught_up.load(Ordering::Relaxed));
        let current = self.store.watch_changes().current();
        let round_done = c.last_round.lock().ok().and_then(|t| *t).is_some();
        // A completed round that began at the feed's current position
        // covered everything, also position 0 (a store reopened with no
        // change since: its feed reports every account after 0).
        let pending = if round_done && since >= current {
            0
        } else {
            self.store.changed_accounts(since).await?.users.len() as u64
        };
        // Changes of the feed since the round began, and at least one per
        // pending account (after a restart the feed starts again at 0 while
        // every account is still to be compared).
        let pending_changes = if pending == 0 {
            0
        } else if self.store.positions_count_changes() {
            current.0.saturating_sub(since.0).max(pending)
        } else {
            pending
        };
        let lag = match (pending, c.last_round.lock().ok().and_then(|t| *t)) {
            (0, _) => Duration::ZERO,
            (_, Some(t)) => t.elapsed(),
            (_, None) => Duration::MAX,
        };
        Ok(ReplicationStatus {
            connected: c.connected.load(Ordering::Relaxed),
            pending_accounts: pending,
            pending_changes,
            lag,
            last_full_compare: c.last_full_round.lock().ok().and_then(|t| *t),
            stats: self.stats(),
        })
    }

    /// Waits until the replica is known to hold a change of `owner`'s
    /// mailbox with this UIDVALIDITY up to `modseq` (an append's
    /// [`mailroom_core::Appended`] gives both), at most `timeout`. `true`
    /// once it does; `false` on timeout. This is the building block of
    /// synchronous replication: acknowledge a delivery only after `true`,
    /// and on `false` fall back to asynchronous (log it, count it).
    pub async fn wait_replicated(
        &self,
        owner: &str,
        uid_validity: UidValidity,
        modseq: ModSeq,
        timeout: Duration,
    ) -> bool {
        let replicated = &self.counters.replicated;
        let mut generation = replicated.generation.subscribe();
        let wait = async {
            loop {
                if replicated.holds(owner, uid_validity, modseq) {
                    return;
                }
                if generation.changed().await.is_err() {
                    // The primary is gone: never replicated from here.
                    std::future::pending::<()>().await;
                }
            }
        };
        let held = tokio::time::timeout(timeout, wait).await.is_ok();
        if !held {
            self.counters.sync_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                owner,
                uid_validity = uid_validity.0,
                modseq = modseq.0,
                timeout_ms = timeout.as_millis() as u64,
                "replica did not confirm in time: falling back to asynchronous replication"
            );
        }
        held
    }

    /// Runs the handshake over `io` (the primary speaks first).
    pub async fn connect<IO>(&self, io: IO) -> Result<PrimaryConnection<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let bytes = Arc::new(ByteCounters::default());
        let io = CountingIo::new(io, Arc::clone(&bytes));
        let mut conn = PrimaryConnection {
            framed: Framed::new(io, FrameCodec::new(self.config.limits)),
            primary: self.clone(),
            bytes,
            reported: (0, 0),
            ready: false,
            namespaces: HashMap::new(),
            files_sent: HashMap::new(),
            files_unsupported: false,
            announced: None,
        };
        conn.handshake().await?;
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// Rolling replication until `shutdown` completes: connects with
    /// `connect`, compares every account, then streams each change as the
    /// store reports it, and compares everything again every
    /// [`PrimaryConfig::verify_interval`]. A failed connection is logged and
    /// retried after [`PrimaryConfig::reconnect_delay`] (doubling to 30 s).
    pub async fn run<C, F, IO>(&self, mut connect: C, shutdown: impl Future<Output = ()>)
    where
        C: FnMut() -> F,
        F: Future<Output = std::io::Result<IO>>,
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::pin!(shutdown);
        // `connected` is false again however this ends: a failed
        // connection, the shutdown, or the future dropped mid-connection.
        let _disconnected = Disconnected(&self.counters.connected);
        let mut delay = self.config.reconnect_delay;
        loop {
            let attempt = async {
                let io = connect().await?;
                let mut conn = self.connect(io).await?;
                delay = self.config.reconnect_delay;
                self.counters.connected.store(true, Ordering::Relaxed);
                conn.follow().await
            };
            tokio::select! {
                _ = &mut shutdown => return,
                result = attempt => {
                    self.counters.connected.store(false, Ordering::Relaxed);
                    let e = match result {
                        Ok(()) => SyncError::Unexpected("replica closed the connection"),
                        Err(e) => e,
                    };
                    if e.is_retryable() {
                        tracing::warn!(error = %e, "replication connection lost; reconnecting");
                    } else {
                        tracing::error!(error = %e, "replication refused; retrying");
                    }
                    if let Ok(mut last) = self.counters.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}

/// Sets a primary's `connected` counter to false when dropped.
struct Disconnected<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Disconnected<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// One authenticated connection to a replica.
#[derive(Debug)]
pub struct PrimaryConnection<IO> {
    framed: Framed<CountingIo<IO>, FrameCodec>,
    primary: Primary,
    bytes: Arc<ByteCounters>,
    reported: (u64, u64),
    ready: bool,
    /// The [`namespace_digest`] of each mailbox (by UIDVALIDITY) of the
    /// account being compared, as the primary has it once the namespaces
    /// are in step: what its sync points record.
    namespaces: HashMap<u32, u32>,
    /// The SHA-256 of each application file as last sent on this connection.
    files_sent: HashMap<String, Vec<u8>>,
    /// The replica answered FILE with UNSUPPORTED: no more files here.
    files_unsupported: bool,
    /// The pending changes last announced to the replica (PENDING).
    announced: Option<u64>,
}

impl<IO> PrimaryConnection<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn config(&self) -> &PrimaryConfig {
        &self.primary.config
    }

    /// The sync point at `head`, with the primary's namespace digest of
    /// that mailbox.
    fn point_at(&self, head: &MailboxHead) -> SyncPoint {
        point_of(head, self.namespaces.get(&head.uid_validity.0).copied())
    }

    fn store(&self) -> &Arc<dyn Replication> {
        &self.primary.store
    }

    /// Records `head` as the pending sync point before a batch with it as
    /// the expected head is sent: the replica records its sync point as
    /// soon as it applied the batch, so if this primary stops before it
    /// records its own, the next comparison still knows the replica is at
    /// this head (rather than ahead of the last sync point: a split brain).
    async fn propose(
        &mut self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        head: MailboxHead,
    ) -> Result<()> {
        let pending = PendingSyncPoint {
            head,
            namespace: self.namespaces.get(&head.uid_validity.0).copied(),
        };
        let store = Arc::clone(self.store());
        store
            .set_pending_sync_point(mailbox, uid_validity, pending)
            .await?;
        Ok(())
    }

    fn report_bytes(&mut self) {
        let written = self.bytes.written.load(Ordering::Relaxed);
        let read = self.bytes.read.load(Ordering::Relaxed);
        let c = &self.primary.counters;
        c.bytes_sent
            .fetch_add(written - self.reported.0, Ordering::Relaxed);
        c.bytes_received
            .fetch_add(read - self.reported.1, Ordering::Relaxed);
        self.reported = (written, read);
    }

    async fn send(&mut self, frame: Frame) -> Result<()> {
        let r = self.framed.send(frame).await;
        self.report_bytes();
        r
    }

    /// The next frame that is not an ignorable one of an unknown kind.
    async fn receive(&mut self) -> Result<Frame> {
        let timeout = self.config().request_timeout;
        loop {
            let next = tokio::time::timeout(timeout, self.framed.next()).await;
            self.report_bytes();
            let frame = match next {
                Err(_) => return Err(SyncError::Timeout),
                Ok(None) => {
                    return Err(SyncError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "replica closed the connection",
                    )));
                }
                Ok(Some(frame)) => frame?,
            };
            if frame.is_ignorable() && !is_known(frame.kind) {
                continue;
            }
            return Ok(frame);
        }
    }

    async fn handshake(&mut self) -> Result<()> {
        let ours = (
            *self.config().versions.start(),
            *self.config().versions.end(),
        );
        let primary_nonce = nonce();
        self.send(
            Hello {
                min_version: ours.0,
                max_version: ours.1,
                role: Role::Primary,
                nonce: primary_nonce,
                chosen: None,
            }
            .to_frame(),
        )
        .await?;
        let answer = self.receive().await?;
        if answer.kind == kind::ERROR {
            return Err(ErrorFrame::from_frame(&answer)?.into_error(ours));
        }
        let hello = Hello::from_frame(&answer)?;
        if hello.role != Role::Replica {
            return Err(SyncError::Unexpected(
                "HELLO from a node that is not a replica",
            ));
        }
        let chosen = hello.chosen.ok_or(SyncError::Malformed(
            "replica HELLO without a chosen version",
        ))?;
        if !self.config().versions.contains(&chosen) {
            return Err(SyncError::VersionUnsupported {
                peer_min: hello.min_version,
                peer_max: hello.max_version,
                ours_min: ours.0,
                ours_max: ours.1,
            });
        }
        let proof = self
            .config()
            .secret
            .proof(Role::Primary, &primary_nonce, &hello.nonce);
        self.send(Frame::new(
            kind::AUTH,
            vec![Field::bytes(1, bytes::Bytes::copy_from_slice(&proof))],
        ))
        .await?;
        let answer = self.receive().await?;
        if answer.kind == kind::ERROR {
            return Err(ErrorFrame::from_frame(&answer)?.into_error(ours));
        }
        msgs::expect(&answer, kind::AUTH)?;
        let theirs = FieldReader::new(&answer.fields).bytes(1, "AUTH without proof")?;
        self.config()
            .secret
            .verify(Role::Replica, &primary_nonce, &hello.nonce, theirs)?;
        self.ready = true;
        tracing::info!(version = chosen, "replication connected");
        Ok(())
    }

    /// Sends a request and returns the answer; an ERROR answer is an error.
    pub async fn request(&mut self, mut frame: Frame) -> Result<Frame> {
        let extras = match (&self.config().outgoing_hook, self.ready) {
            (Some(hook), true) => hook(&mut frame),
            _ => Vec::new(),
        };
        for extra in extras {
            let ignorable = extra.is_ignorable();
            self.send(extra).await?;
            if !ignorable {
                let answer = self.receive().await?;
                if answer.kind == kind::UNSUPPORTED {
                    // The replica does not know it: fall back to not using it.
                    self.primary
                        .counters
                        .unsupported_answers
                        .fetch_add(1, Ordering::Relaxed);
                } else if answer.kind == kind::ERROR {
                    return Err(ErrorFrame::from_frame(&answer)?.into_error((0, 0)));
                }
            }
        }
        self.send(frame).await?;
        let answer = self.receive().await?;
        if answer.kind == kind::ERROR {
            let ours = (
                *self.config().versions.start(),
                *self.config().versions.end(),
            );
            return Err(ErrorFrame::from_frame(&answer)?.into_error(ours));
        }
        Ok(answer)
    }

    /// Sends every application file whose content differs from what was
    /// last sent on this connection. A file that cannot be read is logged
    /// and tried again at the next check; a replica that answers
    /// UNSUPPORTED gets no more files on this connection.
    pub async fn sync_files(&mut self) -> Result<()> {
        use sha2::Digest;
        let Some(files) = self.config().files.clone() else {
            return Ok(());
        };
        if self.files_unsupported {
            return Ok(());
        }
        let read = tokio::task::spawn_blocking(move || files.read()).await;
        let current = match read {
            Ok(Ok(current)) => current,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "replicated files not read; trying again later");
                return Ok(());
            }
            Err(_) => return Err(SyncError::Unexpected("reading replicated files panicked")),
        };
        for (name, content) in current {
            let digest = sha2::Sha256::digest(&content).to_vec();
            if self.files_sent.get(&name) == Some(&digest) {
                continue;
            }
            if content.len() > msgs::MAX_FILE {
                tracing::warn!(file = %name, bytes = content.len(), "replicated file larger than 16 MiB not sent");
                continue;
            }
            let len = content.len();
            let answer = self.request(msgs::file(&name, content)).await?;
            if answer.kind == kind::UNSUPPORTED {
                self.primary
                    .counters
                    .unsupported_answers
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    file = %name,
                    "the replica does not take replicated files (older version?): not sent; copy it by hand"
                );
                self.files_unsupported = true;
                return Ok(());
            }
            msgs::expect(&answer, kind::OK)?;
            tracing::info!(file = %name, bytes = len, "replicated file sent");
            self.files_sent.insert(name, digest);
        }
        Ok(())
    }

    /// Tells the replica this primary's pending changes (as
    /// [`Primary::status`] counts them) if they differ from what it last
    /// told it: a PENDING frame, ignorable and unanswered, at the start and
    /// the end of every round, so that a replica's `replication status`
    /// shows what it lacks (0 once the round that brought it in step ends).
    async fn announce_pending(&mut self) -> Result<()> {
        let pending = self.primary.status().await?.pending_changes;
        if self.announced == Some(pending) {
            return Ok(());
        }
        self.send(msgs::pending(pending)).await?;
        self.announced = Some(pending);
        Ok(())
    }

    /// Streams changes until the connection fails (never returns `Ok`
    /// unless the store's change feed ends).
    pub async fn follow(&mut self) -> Result<()> {
        let store = Arc::clone(self.store());
        let mut watch = store.watch_changes();
        let mut position = ChangePosition(0);
        let verify = self.config().verify_interval;
        let mut next_verify = tokio::time::Instant::now() + verify;
        let mut file_check = tokio::time::interval(self.config().file_check_interval);
        file_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut files_only = false;
        loop {
            self.sync_files().await?;
            if !files_only {
                let changed = store.changed_accounts(position).await?;
                if !changed.users.is_empty() {
                    self.announce_pending().await?;
                }
                for user in &changed.users {
                    self.sync_account(user).await?;
                }
                let c = &self.primary.counters;
                c.rounds.fetch_add(1, Ordering::Relaxed);
                c.caught_up.fetch_max(changed.position.0, Ordering::Relaxed);
                if let Ok(mut t) = c.last_round.lock() {
                    *t = Some(std::time::Instant::now());
                }
                if position == ChangePosition(0)
                    && let Ok(mut t) = c.last_full_round.lock()
                {
                    *t = Some(std::time::SystemTime::now());
                }
                position = changed.position;
                self.announce_pending().await?;
            }
            files_only = false;
            tokio::select! {
                change = watch.changed() => {
                    if change.is_none() {
                        return Ok(());
                    }
                }
                // While idle, the replica says nothing; reading notices at
                // once when it goes away (or refuses us with an ERROR).
                next = self.framed.next() => {
                    self.report_bytes();
                    match next {
                        None => {
                            return Err(SyncError::Io(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "replica closed the connection",
                            )));
                        }
                        Some(Err(e)) => return Err(e),
                        Some(Ok(frame)) if frame.kind == kind::ERROR => {
                            let ours = (
                                *self.config().versions.start(),
                                *self.config().versions.end(),
                            );
                            return Err(ErrorFrame::from_frame(&frame)?.into_error(ours));
                        }
                        Some(Ok(frame)) if frame.is_ignorable() && !is_known(frame.kind) => {}
                        Some(Ok(_)) => {
                            return Err(SyncError::Unexpected("unsolicited frame from the replica"));
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_verify) => {
                    position = ChangePosition(0);
                    next_verify = tokio::time::Instant::now() + verify;
                }
                _ = file_check.tick() => files_only = true,
            }
        }
    }

    /// Compares one account thoroughly, as `replication verify` does: brings
    /// it in step as [`PrimaryConnection::sync_account`] does, then compares
    /// every mailbox record by record, the replica reading every message
    /// back against its GUID, and repairs what differs (records, damaged
    /// message bytes). One verdict per mailbox: `InStep` is "ok".
    pub async fn verify_account(&mut self, user: &str) -> Result<Vec<(MailboxName, Verdict)>> {
        let counters = Arc::clone(&self.primary.counters);
        let _exclusive = counters.exclusive.lock().await;
        let mut verdicts = self.sync_account_now(user).await?;
        let Some(ours) = self.store().account_state(user).await? else {
            return Ok(verdicts);
        };
        for m in &ours.mailboxes {
            let key = MailboxKey {
                user: user.to_owned(),
                name: m.name.clone(),
                uid_validity: m.head.uid_validity,
            };
            let verdict = match self.compare_digests(&key, "verify", true).await {
                Ok(v) => v,
                Err(SyncError::Store(mailroom_core::Error::NoSuchMailbox(_))) => continue,
                Err(e) => return Err(e),
            };
            match verdicts.iter_mut().find(|(n, _)| *n == m.name) {
                Some((_, v)) if verdict != Verdict::InStep => *v = verdict,
                Some(_) => {}
                None => verdicts.push((m.name.clone(), verdict)),
            }
        }
        Ok(verdicts)
    }

    /// Compares every account once and brings the replica in step.
    pub async fn sync_all(&mut self) -> Result<BTreeMap<String, Vec<(MailboxName, Verdict)>>> {
        let mut out = BTreeMap::new();
        for user in self.store().accounts().await? {
            let verdicts = self.sync_account(&user).await?;
            out.insert(user, verdicts);
        }
        self.primary.counters.rounds.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    /// Compares one account and brings the replica in step; one verdict per
    /// mailbox of the primary.
    pub async fn sync_account(&mut self, user: &str) -> Result<Vec<(MailboxName, Verdict)>> {
        let counters = Arc::clone(&self.primary.counters);
        let _exclusive = counters.exclusive.lock().await;
        self.sync_account_now(user).await
    }

    /// [`PrimaryConnection::sync_account`] with the exclusive lock held.
    async fn sync_account_now(&mut self, user: &str) -> Result<Vec<(MailboxName, Verdict)>> {
        let Some(mut ours) = self.store().account_state(user).await? else {
            return Ok(Vec::new());
        };
        let answer = self.request(msgs::get_account(user)).await?;
        let mut theirs = msgs::account_from(&answer)?;
        if self.adopt_replica_mailboxes(&ours, theirs.as_ref()).await? {
            let Some(now) = self.store().account_state(user).await? else {
                return Ok(Vec::new());
            };
            ours = now;
            let answer = self.request(msgs::get_account(user)).await?;
            theirs = msgs::account_from(&answer)?;
        }
        if self.adopt_replica_namespace(&ours, theirs.as_ref()).await? {
            let Some(now) = self.store().account_state(user).await? else {
                return Ok(Vec::new());
            };
            ours = now;
        }
        self.namespaces = ours
            .mailboxes
            .iter()
            .map(|m| (m.head.uid_validity.0, digest_of(m, &ours.subscriptions)))
            .collect();
        let heads = self.sync_namespace(&ours, theirs.as_ref()).await?;
        let mut verdicts = Vec::with_capacity(ours.mailboxes.len());
        for m in &ours.mailboxes {
            let key = MailboxKey {
                user: user.to_owned(),
                name: m.name.clone(),
                uid_validity: m.head.uid_validity,
            };
            let (theirs, their_point) = heads
                .get(&m.head.uid_validity.0)
                .copied()
                .unwrap_or_else(|| (empty_head(m.head.uid_validity), None));
            match self.sync_mailbox(&key, m.head, theirs, their_point).await {
                Ok(v) => {
                    self.primary.counters.replicated.record(
                        user,
                        m.head.uid_validity,
                        m.head.highest_modseq,
                    );
                    verdicts.push((m.name.clone(), v));
                }
                // Renamed, deleted or replaced meanwhile: the next round sees it.
                Err(SyncError::Store(mailroom_core::Error::NoSuchMailbox(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(verdicts)
    }

    /// Keeps what the replica created on its own (after a promotion) before
    /// the namespaces are brought in step: a replica mailbox the primary
    /// does not have, and that changed since its sync point or never had
    /// one, was not deleted on the primary but made on the replica. It is
    /// created on the primary with its UIDVALIDITY (its messages then merge
    /// in), or, if the primary has a mailbox of that name, its messages are
    /// folded into that one (new UIDs, messages already there by GUID
    /// skipped). Returns whether the primary changed.
    async fn adopt_replica_mailboxes(
        &mut self,
        ours: &AccountState,
        theirs: Option<&AccountState>,
    ) -> Result<bool> {
        let Some(theirs) = theirs else {
            return Ok(false);
        };
        let store = Arc::clone(self.store());
        let mut changed = false;
        // Above every UIDVALIDITY either end uses, for a mailbox that has
        // to take a new one.
        let mut fresh_uv = ours
            .mailboxes
            .iter()
            .chain(&theirs.mailboxes)
            .map(|m| m.head.uid_validity.0)
            .max()
            .unwrap_or(0);
        for t in &theirs.mailboxes {
            if let Some(o) = ours
                .mailboxes
                .iter()
                .find(|o| o.head.uid_validity == t.head.uid_validity)
            {
                // A replica mailbox that never had a sync point was made on
                // the replica; if the primary's mailbox of its UIDVALIDITY
                // has another name, both ends picked the same UIDVALIDITY
                // for two mailboxes made apart. Matching them by it would
                // rename one onto the other: the replica's moves to a new
                // UIDVALIDITY instead (the one case where nothing else works).
                if t.sync_point.is_none() && o.name != t.name {
                    fresh_uv = fresh_uv.saturating_add(1);
                    self.readopt(&ours.user, ours, t, UidValidity(fresh_uv))
                        .await?;
                    changed = true;
                }
                continue;
            }
            let untouched = t.sync_point.is_some_and(|p| {
                p.uid_next == t.head.uid_next && p.highest_modseq == t.head.highest_modseq
            });
            if untouched {
                // Deleted on the primary, unchanged here: the delete wins.
                continue;
            }
            let user = ours.user.as_str();
            match ours.mailboxes.iter().find(|o| o.name == t.name) {
                Some(o) => self.fold(user, t, o).await?,
                None => {
                    tracing::warn!(
                        user,
                        mailbox = %t.name,
                        "split brain: mailbox made on the replica; creating it on the primary"
                    );
                    store
                        .apply_namespace(
                            user,
                            NamespaceOp::Create {
                                name: t.name.clone(),
                                uid_validity: t.head.uid_validity,
                                special_use: t.special_use,
                                mailbox_id: t.mailbox_id,
                            },
                        )
                        .await?;
                    if !t.acl.entries.is_empty() {
                        store
                            .apply_namespace(
                                user,
                                NamespaceOp::SetAttributes {
                                    name: t.name.clone(),
                                    special_use: t.special_use,
                                    acl: t.acl.clone(),
                                    mailbox_id: None,
                                },
                            )
                            .await?;
                    }
                    self.primary.counters.merges.fetch_add(1, Ordering::Relaxed);
                }
            }
            changed = true;
        }
        Ok(changed)
    }

    /// Keeps the renames, special uses, ACLs and subscriptions changed on
    /// the replica on its own (while promoted apart) before the namespace
    /// pass makes the replica's namespace the primary's: for a mailbox both
    /// ends hold (same UIDVALIDITY) that differs in any of them, if the
    /// primary's is still what its sync point recorded
    /// ([`SyncPoint::namespace`]), the primary did not change it since, so
    /// the replica's name (unless the primary has another mailbox of that
    /// name), special use, ACL and subscription are applied on the
    /// primary. If both changed, or the primary's sync point has no digest,
    /// the primary's stay. Returns whether the primary changed.
    async fn adopt_replica_namespace(
        &mut self,
        ours: &AccountState,
        theirs: Option<&AccountState>,
    ) -> Result<bool> {
        let Some(theirs) = theirs else {
            return Ok(false);
        };
        let store = Arc::clone(self.store());
        let user = ours.user.as_str();
        let mut changed = false;
        for o in &ours.mailboxes {
            let Some(t) = theirs
                .mailboxes
                .iter()
                .find(|t| t.head.uid_validity == o.head.uid_validity)
            else {
                continue;
            };
            let o_subscribed = ours.subscriptions.contains(&o.name);
            let t_subscribed = theirs.subscriptions.contains(&t.name);
            if (&o.name, o.special_use, &o.acl, o_subscribed)
                == (&t.name, t.special_use, &t.acl, t_subscribed)
            {
                continue;
            }
            let mref = MailboxRef::new(user, o.name.clone());
            let point = store.sync_point(&mref, o.head.uid_validity).await?;
            let Some(recorded) = point.and_then(|p| p.namespace) else {
                continue;
            };
            if recorded != digest_of(o, &ours.subscriptions) {
                tracing::info!(user, mailbox = %o.name, "namespace changed on both ends: the primary's stays");
                continue;
            }
            let mut name = o.name.clone();
            if t.name != o.name && !ours.mailboxes.iter().any(|m| m.name == t.name) {
                store
                    .apply_namespace(
                        user,
                        NamespaceOp::Rename {
                            from: o.name.clone(),
                            to: t.name.clone(),
                        },
                    )
                    .await?;
                name = t.name.clone();
                // the replica's subscription of the old name, too
                let old_subscribed = theirs.subscriptions.contains(&o.name);
                if old_subscribed != o_subscribed {
                    store.set_subscribed(user, &o.name, old_subscribed).await?;
                }
            }
            if (o.special_use, &o.acl) != (t.special_use, &t.acl) {
                store
                    .apply_namespace(
                        user,
                        NamespaceOp::SetAttributes {
                            name: name.clone(),
                            special_use: t.special_use,
                            acl: t.acl.clone(),
                            mailbox_id: None,
                        },
                    )
                    .await?;
            }
            if ours.subscriptions.contains(&name) != t_subscribed {
                store.set_subscribed(user, &name, t_subscribed).await?;
            }
            tracing::warn!(
                user,
                mailbox = %o.name,
                now = %name,
                "split brain: namespace change made on the replica kept on the primary"
            );
            self.primary.counters.merges.fetch_add(1, Ordering::Relaxed);
            changed = true;
        }
        Ok(changed)
    }

    /// The replica's mailbox `t` took a UIDVALIDITY the primary uses for
    /// another mailbox: its messages go into the primary's mailbox of its
    /// name, made with `uid_validity` if there is none, and the replica's
    /// is deleted (the namespace pass then creates the primary's there).
    async fn readopt(
        &mut self,
        user: &str,
        ours: &AccountState,
        t: &MailboxState,
        uid_validity: UidValidity,
    ) -> Result<()> {
        let store = Arc::clone(self.store());
        let target = match ours.mailboxes.iter().find(|o| o.name == t.name) {
            Some(o) => o.clone(),
            None => {
                tracing::warn!(
                    user,
                    mailbox = %t.name,
                    taken = t.head.uid_validity.0,
                    uid_validity = uid_validity.0,
                    "split brain: mailbox made on the replica with a UIDVALIDITY the primary uses for another; giving it a new one"
                );
                store
                    .apply_namespace(
                        user,
                        NamespaceOp::Create {
                            name: t.name.clone(),
                            uid_validity,
                            special_use: t.special_use,
                            mailbox_id: t.mailbox_id,
                        },
                    )
                    .await?;
                if !t.acl.entries.is_empty() {
                    store
                        .apply_namespace(
                            user,
                            NamespaceOp::SetAttributes {
                                name: t.name.clone(),
                                special_use: t.special_use,
                                acl: t.acl.clone(),
                                mailbox_id: None,
                            },
                        )
                        .await?;
                }
                MailboxState {
                    name: t.name.clone(),
                    head: empty_head(uid_validity),
                    special_use: t.special_use,
                    acl: t.acl.clone(),
                    mailbox_id: t.mailbox_id,
                    sync_point: None,
                }
            }
        };
        self.fold(user, t, &target).await?;
        let answer = self
            .request(
                NamespaceRequest::Delete {
                    user: user.to_owned(),
                    name: t.name.clone(),
                }
                .to_frame(),
            )
            .await?;
        msgs::expect(&answer, kind::OK)?;
        Ok(())
    }

    /// Copies the messages of the replica's mailbox `t` into the primary's
    /// mailbox `o` of the same name (a mailbox created on both ends while
    /// apart), with new UIDs above `o`'s UIDNEXT and one new modseq; a
    /// message whose GUID `o` holds already is not copied again. The
    /// replica's mailbox is then deleted by the namespace pass.
    async fn fold(&mut self, user: &str, t: &MailboxState, o: &MailboxState) -> Result<()> {
        let store = Arc::clone(self.store());
        let key = MailboxKey {
            user: user.to_owned(),
            name: t.name.clone(),
            uid_validity: t.head.uid_validity,
        };
        let messages = self.their_changes(&key, ModSeq(0), Uid(1)).await?.records;
        let target = MailboxRef::new(user, o.name.clone());
        let uv = o.head.uid_validity;
        let all = self.our_changes(&target, uv, ModSeq(0)).await?.records;
        let mut held: HashSet<_> = all.values().map(|r| r.guid).collect();
        let modseq = o.head.highest_modseq.next();
        let mut next_uid = o.head.uid_next.0;
        let mut copies = Vec::new();
        for m in messages {
            if !held.insert(m.record.guid) {
                continue;
            }
            copies.push(ReplicaMessage {
                record: ReplicaRecord {
                    uid: Uid(next_uid),
                    modseq,
                    ..m.record
                },
                content: m.content,
            });
            next_uid = next_uid.saturating_add(1);
        }
        tracing::warn!(
            user,
            mailbox = %t.name,
            copied = copies.len(),
            "split brain: mailbox created on both ends; folding the replica's messages into the primary's"
        );
        let copied = copies.len() as u64;
        store
            .apply_messages(
                &target,
                uv,
                ApplyBatch {
                    messages: copies,
                    expunged: Vec::new(),
                    uid_next: Some(Uid(next_uid)),
                    highest_modseq: Some(modseq),
                },
            )
            .await?;
        let c = &self.primary.counters;
        c.merges.fetch_add(1, Ordering::Relaxed);
        c.renumbered.fetch_add(copied, Ordering::Relaxed);
        Ok(())
    }

    /// Brings the replica's namespace in step; returns the replica's head
    /// of every mailbox it holds afterwards, by UIDVALIDITY.
    async fn sync_namespace(
        &mut self,
        ours: &AccountState,
        theirs: Option<&AccountState>,
    ) -> Result<HashMap<u32, (MailboxHead, Option<SyncPoint>)>> {
        let user = ours.user.clone();
        let ours_by_uv: HashMap<u32, &MailboxState> = ours
            .mailboxes
            .iter()
            .map(|m| (m.head.uid_validity.0, m))
            .collect();
        let mut theirs_by_uv: HashMap<u32, MailboxState> = HashMap::new();
        let mut requests = Vec::new();
        for t in theirs.map(|t| t.mailboxes.as_slice()).unwrap_or_default() {
            let uv = t.head.uid_validity.0;
            if ours_by_uv.contains_key(&uv) && !theirs_by_uv.contains_key(&uv) {
                theirs_by_uv.insert(uv, t.clone());
            } else {
                requests.push(NamespaceRequest::Delete {
                    user: user.clone(),
                    name: t.name.clone(),
                });
            }
        }
        // Renames go through a temporary name each, so that swaps and
        // chains (a→b, b→c) never meet an occupied name.
        let mut renames = Vec::new();
        for (uv, t) in &theirs_by_uv {
            if let Some(o) = ours_by_uv.get(uv)
                && o.name != t.name
            {
                renames.push((t.name.clone(), temporary_name(*uv)?, o.name.clone()));
            }
        }
        renames.sort();
        for (from, tmp, _) in &renames {
            requests.push(NamespaceRequest::Rename {
                user: user.clone(),
                from: from.clone(),
                to: tmp.clone(),
            });
        }
        for (_, tmp, to) in &renames {
            requests.push(NamespaceRequest::Rename {
                user: user.clone(),
                from: tmp.clone(),
                to: to.clone(),
            });
        }
        for o in &ours.mailboxes {
            match theirs_by_uv.get(&o.head.uid_validity.0) {
                None => {
                    requests.push(NamespaceRequest::Create {
                        user: user.clone(),
                        name: o.name.clone(),
                        uid_validity: o.head.uid_validity,
                        special_use: o.special_use,
                        mailbox_id: o.mailbox_id,
                    });
                    if !o.acl.entries.is_empty() {
                        requests.push(attributes(&user, o));
                    }
                }
                // a replica mailbox made before replication carried the
                // MAILBOXID takes the primary's (a replica that reports
                // none is older and would ignore it)
                Some(t)
                    if t.special_use != o.special_use
                        || t.acl != o.acl
                        || (t.mailbox_id.is_some()
                            && o.mailbox_id.is_some()
                            && t.mailbox_id != o.mailbox_id) =>
                {
                    requests.push(attributes(&user, o));
                }
                Some(_) => {}
            }
        }
        let their_subs = theirs.map(|t| t.subscriptions.clone()).unwrap_or_default();
        if theirs.is_none() || their_subs != ours.subscriptions {
            requests.push(NamespaceRequest::Subscriptions {
                user: user.clone(),
                names: ours.subscriptions.clone(),
            });
        }
        if theirs.map(|t| t.quota) != Some(ours.quota) {
            requests.push(NamespaceRequest::Quota {
                user: user.clone(),
                limits: ours.quota,
            });
        }
        for r in requests {
            tracing::debug!(?r, "replicating namespace change");
            let answer = self.request(r.to_frame()).await?;
            msgs::expect(&answer, kind::OK)?;
        }
        Ok(theirs_by_uv
            .into_iter()
            .map(|(uv, t)| (uv, (t.head, t.sync_point)))
            .collect())
    }

    /// Brings one mailbox in step, starting from the replica's head.
    async fn sync_mailbox(
        &mut self,
        key: &MailboxKey,
        ours_now: MailboxHead,
        theirs: MailboxHead,
        their_point: Option<SyncPoint>,
    ) -> Result<Verdict> {
        let mailbox = MailboxRef::new(key.user.clone(), key.name.clone());
        let mut point = self.store().sync_point(&mailbox, key.uid_validity).await?;
        let mut pending = None;
        if ours_now != theirs {
            pending = self
                .store()
                .pending_sync_point(&mailbox, key.uid_validity)
                .await?;
        }
        if let Some(pending) = pending.take_if(|p| p.head == theirs) {
            // This primary stopped after the replica recorded a batch's
            // sync point and before it recorded its own: the replica holds
            // exactly that batch (every head field, state CRC included)
            // and nothing of its own, so that head is the sync point. A
            // replica that changed after it (promoted and written) has
            // another head and is merged from the older sync point.
            tracing::info!(
                mailbox = %mailbox,
                uid_next = theirs.uid_next.0,
                highest_modseq = theirs.highest_modseq.0,
                "the replica holds the batch sent before this primary stopped: in step up to it"
            );
            let here = pending.point();
            self.store()
                .set_sync_point(&mailbox, key.uid_validity, here)
                .await?;
            point = Some(here);
        }
        if ours_now == theirs {
            let here = self.point_at(&ours_now);
            if point != Some(here) {
                self.store()
                    .set_sync_point(&mailbox, key.uid_validity, here)
                    .await?;
            }
            if their_point.map(|p| (p.uid_next, p.highest_modseq))
                != Some((here.uid_next, here.highest_modseq))
            {
                // An empty batch with the expected head: the replica
                // records the sync point too.
                self.send_records(key, Vec::new(), Vec::new(), Some(ours_now))
                    .await?;
            }
            return Ok(Verdict::InStep);
        }
        let mut replica_changed = match point {
            Some(p) => theirs.highest_modseq > p.highest_modseq || theirs.uid_next > p.uid_next,
            // Neither end ever recorded a sync point, and the replica's
            // mailbox has taken UIDs: both ends made it apart (the same
            // name and UIDVALIDITY drawn on both), so its messages are
            // merged, never written over.
            None if their_point.is_none() && theirs.uid_next > Uid(1) => true,
            None => {
                theirs.highest_modseq > ours_now.highest_modseq
                    || theirs.uid_next > ours_now.uid_next
            }
        };
        let shared = point.unwrap_or(SyncPoint {
            uid_next: Uid(1),
            highest_modseq: ModSeq(0),
            namespace: None,
        });
        // Where the records to send start: the replica's HIGHESTMODSEQ.
        let mut since = theirs.highest_modseq;
        if pending.is_some() {
            // A batch was in flight when this primary stopped (or the
            // connection broke) and the replica holds another head than
            // the one proposed: it applied only some frames of it. Frames
            // carry records in UID order, so its HIGHESTMODSEQ is no
            // position: resend from the last shared point (bytes only for
            // what it lacks).
            since = since.min(shared.highest_modseq);
            if replica_changed
                && self
                    .holds_only_ours(key, &mailbox, shared, theirs, ours_now)
                    .await?
            {
                tracing::info!(
                    mailbox = %mailbox,
                    uid_next = theirs.uid_next.0,
                    highest_modseq = theirs.highest_modseq.0,
                    "the replica holds part of a batch sent before this primary stopped: resending it, no merge"
                );
                replica_changed = false;
            }
        }
        if replica_changed {
            // The replica accepted changes of its own since the last point
            // both shared: a split brain. Merge, losing nothing.
            return self.merge(key, shared).await;
        }
        let mut after = Uid(0);
        let mut flight = InFlight::default();
        let mut proposed: Option<MailboxHead> = None;
        let mut rereads = 0;
        let (final_head, complete, applied) = loop {
            let page = self
                .store()
                .records_since(
                    &mailbox,
                    key.uid_validity,
                    since,
                    after,
                    self.config().batch_records,
                )
                .await?;
            let last_uid = page.records.last().map(|r| r.uid);
            let store = Arc::clone(self.store());
            let (messages, expunged_meanwhile) = with_contents(
                &*store,
                &mailbox,
                key.uid_validity,
                page.records,
                theirs.uid_next,
            )
            .await?;
            if expunged_meanwhile && rereads < MAX_PAGE_REREADS {
                // A message of the page was expunged between reading the
                // records and reading its bytes: the page's head still
                // counts it, and a batch ending on that head would not
                // match the replica's (a needless digest resync, counted
                // as a repair). The same page again, from a later
                // snapshot, holds its expunge instead.
                rereads += 1;
                continue;
            }
            if let Some(last) = last_uid {
                after = last;
            }
            let last_page = !page.more;
            // Proposed before the first frame (a replica left with some
            // frames of the batch is then recognized: `holds_only_ours`),
            // and again before the last if the head moved meanwhile.
            if proposed.is_none() || (last_page && proposed != Some(page.head)) {
                self.propose(&mailbox, key.uid_validity, page.head).await?;
                proposed = Some(page.head);
            }
            // Sent without waiting for the replica: it applies this page
            // while the next one is read here (`RECORDS_WINDOW`).
            self.queue_records(
                key,
                messages,
                if last_page { page.expunged } else { Vec::new() },
                last_page.then_some(page.head),
                &mut flight,
            )
            .await?;
            if last_page {
                let applied = self.drain(&mut flight).await?;
                break (page.head, page.expunged_complete, applied);
            }
        };
        let applied = self
            .send_missing(key, &mailbox, applied, final_head)
            .await?;
        if !complete {
            return self.resync(key, "expunge history incomplete").await;
        }
        if applied.head != final_head {
            return self.resync(key, "state CRC mismatch after a batch").await;
        }
        self.store()
            .set_sync_point(&mailbox, key.uid_validity, self.point_at(&final_head))
            .await?;
        Ok(Verdict::Updated)
    }

    /// Whether every change the replica holds after the sync point `from`
    /// is one this primary made: each record it changed after it is a
    /// record of this primary's (same UID and GUID) that is either the same
    /// or changed here later (a higher modseq), each of its expunges after
    /// it is one here too, and its UIDNEXT and HIGHESTMODSEQ are not above
    /// this primary's. Such a replica holds part of a batch (frames applied
    /// before the connection broke) and nothing of its own: what a merge
    /// would keep of it is this primary's anyway, so it is brought in step
    /// as usual, and no split brain is counted.
    async fn holds_only_ours(
        &mut self,
        key: &MailboxKey,
        mailbox: &MailboxRef,
        from: SyncPoint,
        theirs: MailboxHead,
        ours_now: MailboxHead,
    ) -> Result<bool> {
        if theirs.highest_modseq > ours_now.highest_modseq || theirs.uid_next > ours_now.uid_next {
            return Ok(false);
        }
        // records only: no bytes
        let theirs = self
            .their_changes(key, from.highest_modseq, Uid(u32::MAX))
            .await?;
        let ours = self
            .our_changes(mailbox, key.uid_validity, from.highest_modseq)
            .await?;
        let records_ours = theirs.records.iter().all(|m| {
            let r = &m.record;
            ours.records.get(&r.uid.0).is_some_and(|o| {
                o.guid == r.guid
                    && (o.modseq > r.modseq
                        || (o.modseq == r.modseq
                            && o.state_crc() == r.state_crc()
                            && o.seen_by == r.seen_by))
            })
        });
        let our_expunged: HashSet<Uid> = ours.expunged.iter().map(|(u, _)| *u).collect();
        let expunges_ours = theirs
            .expunged
            .iter()
            .all(|(u, _)| our_expunged.contains(u));
        Ok(records_ours && expunges_ours)
    }

    /// This primary's records of a mailbox changed after `since`: see
    /// [`changes_of`].
    async fn our_changes(
        &mut self,
        mailbox: &MailboxRef,
        uid_validity: UidValidity,
        since: ModSeq,
    ) -> Result<MailboxChanges<BTreeMap<u32, ReplicaRecord>>> {
        let store = Arc::clone(self.store());
        changes_of(&*store, mailbox, uid_validity, since).await
    }

    /// Sends messages in RECORDS frames within the batch bounds; the last
    /// frame carries the expunges and the final head. Returns the replica's
    /// answer to the last frame, with every frame's missing UIDs.
    async fn send_records(
        &mut self,
        key: &MailboxKey,
        messages: Vec<ReplicaMessage>,
        expunged: Vec<(Uid, ModSeq)>,
        head: Option<MailboxHead>,
    ) -> Result<AppliedFrame> {
        let mut flight = InFlight::default();
        self.queue_records(key, messages, expunged, head, &mut flight)
            .await?;
        self.drain(&mut flight).await
    }

    /// Sends messages in RECORDS frames within the batch bounds, without
    /// waiting for the answers beyond [`RECORDS_WINDOW`] frames in flight
    /// (see [`InFlight`]); the last frame carries the expunges and `head`.
    async fn queue_records(
        &mut self,
        key: &MailboxKey,
        messages: Vec<ReplicaMessage>,
        expunged: Vec<(Uid, ModSeq)>,
        head: Option<MailboxHead>,
        flight: &mut InFlight,
    ) -> Result<()> {
        let max_records = self.config().batch_records.max(1);
        let max_bytes = self.config().batch_bytes;
        let mut batch: Vec<ReplicaMessage> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut iter = messages.into_iter().peekable();
        loop {
            let next_size = iter.peek().map(message_wire_size);
            let flush = match next_size {
                None => true,
                Some(size) => {
                    !batch.is_empty()
                        && (batch.len() >= max_records || batch_bytes + size > max_bytes)
                }
            };
            if flush {
                let last = iter.peek().is_none();
                let records = Records {
                    key: key.clone(),
                    messages: std::mem::take(&mut batch),
                    expunged: if last { expunged.clone() } else { Vec::new() },
                    uid_next: if last { head.map(|h| h.uid_next) } else { None },
                    highest_modseq: if last {
                        head.map(|h| h.highest_modseq)
                    } else {
                        None
                    },
                    expected: if last { head } else { None },
                };
                let c = &self.primary.counters;
                c.records_sent
                    .fetch_add(records.messages.len() as u64, Ordering::Relaxed);
                c.messages_sent.fetch_add(
                    records
                        .messages
                        .iter()
                        .filter(|m| m.content.is_some())
                        .count() as u64,
                    Ordering::Relaxed,
                );
                self.send_pipelined(records.to_frame(), flight).await?;
                batch_bytes = 0;
                if last {
                    return Ok(());
                }
            }
            if let Some(m) = iter.next() {
                batch_bytes += message_wire_size(&m);
                batch.push(m);
            }
        }
    }

    /// Sends a request whose answer is read later ([`PrimaryConnection::drain`]),
    /// with the outgoing hook's extra frames ahead of it as
    /// [`PrimaryConnection::request`] sends them; reads answers first while
    /// [`RECORDS_WINDOW`] requests are unanswered.
    async fn send_pipelined(&mut self, mut frame: Frame, flight: &mut InFlight) -> Result<()> {
        let extras = match (&self.config().outgoing_hook, self.ready) {
            (Some(hook), true) => hook(&mut frame),
            _ => Vec::new(),
        };
        for extra in extras {
            let ignorable = extra.is_ignorable();
            self.send(extra).await?;
            if !ignorable {
                flight.expected.push_back(Expect::Extra);
            }
        }
        self.send(frame).await?;
        flight.expected.push_back(Expect::Applied);
        while flight.expected.len() > RECORDS_WINDOW {
            self.receive_one(flight).await?;
        }
        Ok(())
    }

    /// Reads the answer to the oldest request in flight.
    async fn receive_one(&mut self, flight: &mut InFlight) -> Result<()> {
        let Some(expect) = flight.expected.pop_front() else {
            return Ok(());
        };
        let answer = self.receive().await?;
        if answer.kind == kind::ERROR {
            let ours = (
                *self.config().versions.start(),
                *self.config().versions.end(),
            );
            return Err(ErrorFrame::from_frame(&answer)?.into_error(ours));
        }
        match expect {
            Expect::Extra => {
                if answer.kind == kind::UNSUPPORTED {
                    // The replica does not know it: fall back to not using it.
                    self.primary
                        .counters
                        .unsupported_answers
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Expect::Applied => {
                let mut applied = AppliedFrame::from_frame(&answer)?;
                flight.missing.append(&mut applied.missing);
                flight.last = Some(applied);
            }
        }
        Ok(())
    }

    /// Reads every answer still in flight; the replica's answer to the last
    /// RECORDS frame, with the missing UIDs of all of them.
    async fn drain(&mut self, flight: &mut InFlight) -> Result<AppliedFrame> {
        while !flight.expected.is_empty() {
            self.receive_one(flight).await?;
        }
        let mut last = flight
            .last
            .take()
            .ok_or(SyncError::Unexpected("no RECORDS frame was sent"))?;
        last.missing = std::mem::take(&mut flight.missing);
        Ok(last)
    }

    /// Resends, with their bytes, the records the replica reported missing.
    async fn send_missing(
        &mut self,
        key: &MailboxKey,
        mailbox: &MailboxRef,
        mut applied: AppliedFrame,
        head: MailboxHead,
    ) -> Result<AppliedFrame> {
        for _ in 0..3 {
            if applied.missing.is_empty() {
                break;
            }
            let records = self
                .store()
                .records(mailbox, key.uid_validity, &applied.missing)
                .await?;
            let (messages, _) =
                with_contents(&**self.store(), mailbox, key.uid_validity, records, Uid(0)).await?;
            applied = self
                .send_records(key, messages, Vec::new(), Some(head))
                .await?;
        }
        Ok(applied)
    }

    /// Fetches every record the replica changed after `since` (bytes for
    /// UIDs at or above `content_from`), and its expunges after `since`.
    async fn their_changes(
        &mut self,
        key: &MailboxKey,
        since: ModSeq,
        content_from: Uid,
    ) -> Result<MailboxChanges<Vec<ReplicaMessage>>> {
        let mut after = Uid(0);
        let mut messages = Vec::new();
        loop {
            let get = GetRecords {
                key: key.clone(),
                since,
                after,
                limit: u32::try_from(self.config().batch_records).unwrap_or(u32::MAX),
                content_from,
            };
            let answer = self.request(get.to_frame()).await?;
            let page = RecordsPage::from_frame(&answer)?;
            if let Some(last) = page.messages.last() {
                after = last.record.uid;
            }
            let more = page.more && !page.messages.is_empty();
            messages.extend(page.messages);
            if !more {
                return Ok(MailboxChanges {
                    head: page.head,
                    records: messages,
                    expunged: page.expunged,
                });
            }
        }
    }

    /// Merges a mailbox both ends changed since `since` (split brain), so
    /// that nothing either end acknowledged is lost:
    ///
    /// - a UID taken after the split on both ends by different messages
    ///   (or taken on one end and expunged on the other) is given up on
    ///   both: each message gets a new UID above both UIDNEXTs, on both;
    /// - a message present on one end only is copied to the other;
    /// - a message changed on both ends keeps the flags of the change with
    ///   the higher modseq (the primary's on a tie);
    /// - an expunge on one end is applied on the other, unless the message
    ///   changed there after the split: then it is kept, under a new UID on
    ///   both ends (the old one was expunged for some clients);
    /// - every record the merge touches takes one new modseq above both
    ///   ends' HIGHESTMODSEQ, so CONDSTORE/QRESYNC clients of either end see
    ///   the changes; UIDVALIDITY stays.
    async fn merge(&mut self, key: &MailboxKey, since: SyncPoint) -> Result<Verdict> {
        let mailbox = MailboxRef::new(key.user.clone(), key.name.clone());
        let uv = key.uid_validity;
        let store = Arc::clone(self.store());
        // Ours since the split, all pages.
        let MailboxChanges {
            head: our_head,
            records: ours,
            expunged: our_expunged,
        } = self.our_changes(&mailbox, uv, since.highest_modseq).await?;
        let MailboxChanges {
            head: their_head,
            records: theirs,
            expunged: their_expunged,
        } = self
            .their_changes(key, since.highest_modseq, since.uid_next)
            .await?;
        let mut theirs: BTreeMap<u32, ReplicaMessage> =
            theirs.into_iter().map(|m| (m.record.uid.0, m)).collect();
        let our_expunged: HashMap<u32, ModSeq> =
            our_expunged.into_iter().map(|(u, m)| (u.0, m)).collect();
        let their_expunged: HashMap<u32, ModSeq> =
            their_expunged.into_iter().map(|(u, m)| (u.0, m)).collect();

        let modseq = our_head
            .highest_modseq
            .max(their_head.highest_modseq)
            .next();
        let mut next_uid = our_head.uid_next.max(their_head.uid_next).0;
        let mut to_ours: Vec<ReplicaMessage> = Vec::new();
        let mut to_theirs: Vec<ReplicaMessage> = Vec::new();
        let mut expunge_ours: Vec<(Uid, ModSeq)> = Vec::new();
        let mut expunge_theirs: Vec<(Uid, ModSeq)> = Vec::new();
        let mut renumbered = 0u64;

        let mut uids: Vec<u32> = ours
            .keys()
            .chain(theirs.keys())
            .chain(our_expunged.keys())
            .chain(their_expunged.keys())
            .copied()
            .collect();
        uids.sort_unstable();
        uids.dedup();
        // What was moved already on one end: an earlier merge stopped
        // between its two halves (this primary applied its own and stopped
        // before the replica had all of its), or a client that copied a
        // message within the mailbox and expunged the original. A message
        // one end expunged whose GUID that end holds at a UID taken after
        // the split is there; moving the other end's copy again would
        // duplicate it, so that copy is expunged and the moved one is
        // merged under its own UID. The GUIDs each end holds at such UIDs:
        let new_since = |records: &mut dyn Iterator<Item = &ReplicaRecord>| {
            records
                .filter(|r| r.uid >= since.uid_next)
                .map(|r| r.guid)
                .collect::<std::collections::HashSet<_>>()
        };
        let our_new = new_since(&mut ours.values());
        let their_new = new_since(&mut theirs.values().map(|m| &m.record));
        // Messages to give new UIDs on both ends: (record, bytes if known).
        let mut moves: Vec<(ReplicaRecord, Option<bytes::Bytes>, bool)> = Vec::new();
        for uid in uids {
            let o = ours.get(&uid);
            let t = theirs.remove(&uid);
            let oe = our_expunged.contains_key(&uid);
            let te = their_expunged.contains_key(&uid);
            let after_split = uid >= since.uid_next.0;
            match (o, t) {
                (Some(o), Some(t)) if o.guid == t.record.guid => {
                    // The same message changed on both: the later change wins.
                    let winner = if t.record.modseq > o.modseq {
                        t.record.clone()
                    } else {
                        o.clone()
                    };
                    let record = ReplicaRecord { modseq, ..winner };
                    to_ours.push(ReplicaMessage {
                        record: record.clone(),
                        content: None,
                    });
                    to_theirs.push(ReplicaMessage {
                        record,
                        content: None,
                    });
                }
                (Some(o), Some(t)) => {
                    // One UID, two messages: both move on both ends.
                    moves.push((o.clone(), None, true));
                    moves.push((t.record, t.content, false));
                    expunge_ours.push((Uid(uid), modseq));
                    expunge_theirs.push((Uid(uid), modseq));
                }
                (Some(o), None) => {
                    if te && their_new.contains(&o.guid) {
                        // Moved on the replica already: merged under its
                        // new UID there.
                        expunge_ours.push((Uid(uid), modseq));
                    } else if te {
                        // Expunged there, changed here after the split: keep.
                        moves.push((o.clone(), None, true));
                        expunge_ours.push((Uid(uid), modseq));
                    } else {
                        let record = ReplicaRecord {
                            modseq,
                            ..o.clone()
                        };
                        let content = if after_split {
                            Some(store.message_content(&mailbox, uv, Uid(uid)).await?)
                        } else {
                            None
                        };
                        to_theirs.push(ReplicaMessage {
                            record: record.clone(),
                            content,
                        });
                        to_ours.push(ReplicaMessage {
                            record,
                            content: None,
                        });
                    }
                }
                (None, Some(t)) => {
                    if oe && our_new.contains(&t.record.guid) {
                        // Moved here already (by this primary's half of an
                        // interrupted merge): merged under its new UID here.
                        expunge_theirs.push((Uid(uid), modseq));
                    } else if oe {
                        moves.push((t.record, t.content, false));
                        expunge_theirs.push((Uid(uid), modseq));
                    } else {
                        let record = ReplicaRecord { modseq, ..t.record };
                        to_ours.push(ReplicaMessage {
                            record: record.clone(),
                            content: t.content,
                        });
                        to_theirs.push(ReplicaMessage {
                            record,
                            content: None,
                        });
                    }
                }
                (None, None) => {
                    if oe && !te && !after_split {
                        expunge_theirs.push((Uid(uid), modseq));
                    } else if te && !oe && !after_split {
                        expunge_ours.push((Uid(uid), modseq));
                    }
                }
            }
        }
        for (record, content, from_ours) in moves {
            let content = match content {
                Some(c) => c,
                None if from_ours => store.message_content(&mailbox, uv, record.uid).await?,
                None => self.their_content(key, record.uid).await?,
            };
            let record = ReplicaRecord {
                uid: Uid(next_uid),
                modseq,
                ..record
            };
            next_uid = next_uid.saturating_add(1);
            renumbered += 1;
            to_ours.push(ReplicaMessage {
                record: record.clone(),
                content: Some(content.clone()),
            });
            to_theirs.push(ReplicaMessage {
                record,
                content: Some(content),
            });
        }
        tracing::warn!(
            mailbox = %mailbox,
            since_modseq = since.highest_modseq.0,
            since_uid_next = since.uid_next.0,
            to_primary = to_ours.len(),
            to_replica = to_theirs.len(),
            expunged_on_primary = expunge_ours.len(),
            expunged_on_replica = expunge_theirs.len(),
            renumbered,
            "split brain: merging the changes of both ends"
        );
        let uid_next = Uid(next_uid);
        let applied_ours = store
            .apply_messages(
                &mailbox,
                uv,
                ApplyBatch {
                    messages: to_ours,
                    expunged: expunge_ours,
                    uid_next: Some(uid_next),
                    highest_modseq: Some(modseq),
                },
            )
            .await?;
        let ours_head = applied_ours.head;
        self.propose(&mailbox, uv, ours_head).await?;
        let applied = self
            .send_records(key, to_theirs, expunge_theirs, Some(ours_head))
            .await?;
        let applied = self.send_missing(key, &mailbox, applied, ours_head).await?;
        let c = &self.primary.counters;
        c.merges.fetch_add(1, Ordering::Relaxed);
        c.renumbered.fetch_add(renumbered, Ordering::Relaxed);
        if applied.head != ours_head {
            return self.resync(key, "heads differ after a merge").await;
        }
        store
            .set_sync_point(&mailbox, uv, self.point_at(&ours_head))
            .await?;
        Ok(Verdict::Merged)
    }

    /// One message's bytes from the replica.
    async fn their_content(&mut self, key: &MailboxKey, uid: Uid) -> Result<bytes::Bytes> {
        let get = GetRecords {
            key: key.clone(),
            since: ModSeq(0),
            after: Uid(uid.0.saturating_sub(1)),
            limit: 1,
            content_from: uid,
        };
        let answer = self.request(get.to_frame()).await?;
        RecordsPage::from_frame(&answer)?
            .messages
            .into_iter()
            .find(|m| m.record.uid == uid)
            .and_then(|m| m.content)
            .ok_or(SyncError::Unexpected(
                "replica lost a message during a merge",
            ))
    }

    /// Resyncs one mailbox from digests: sends only the records that differ
    /// (bytes only where the replica lacks the message) and expunges what
    /// the primary does not hold.
    async fn resync(&mut self, key: &MailboxKey, reason: &'static str) -> Result<Verdict> {
        self.compare_digests(key, reason, false).await
    }

    /// Compares digests (with `check_content`, the replica also reads every
    /// message back against its GUID) and sends what differs: the records
    /// whose CRC differs or that the replica lacks, the bytes of messages
    /// it lacks or holds damaged; expunges what only it holds. `InStep` if
    /// nothing differed.
    async fn compare_digests(
        &mut self,
        key: &MailboxKey,
        reason: &'static str,
        check_content: bool,
    ) -> Result<Verdict> {
        let mailbox = MailboxRef::new(key.user.clone(), key.name.clone());
        for attempt in 1..=3 {
            let request = if check_content {
                msgs::get_digests_checked(key)
            } else {
                msgs::get_digests(key)
            };
            let answer = self.request(request).await?;
            let (their_head, theirs) = msgs::digests_from(&answer)?;
            let damaged = msgs::digests_damaged(&answer)?;
            let (ours_head, ours) = self
                .store()
                .record_digests(&mailbox, key.uid_validity)
                .await?;
            let theirs: HashMap<u32, u32> = theirs.into_iter().map(|(u, c)| (u.0, c)).collect();
            let ours_map: HashMap<u32, u32> = ours.iter().map(|(u, c)| (u.0, *c)).collect();
            let differing: Vec<Uid> = ours
                .iter()
                .filter(|(u, c)| theirs.get(&u.0) != Some(c) || damaged.contains(u))
                .map(|(u, _)| *u)
                .collect();
            let mut gone: Vec<(Uid, ModSeq)> = theirs
                .keys()
                .filter(|u| !ours_map.contains_key(u))
                .map(|u| (Uid(*u), ours_head.highest_modseq))
                .collect();
            gone.sort_unstable();
            if attempt == 1 {
                if differing.is_empty() && gone.is_empty() && their_head == ours_head {
                    return Ok(Verdict::InStep);
                }
                self.primary
                    .counters
                    .mismatches
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    mailbox = %mailbox,
                    reason,
                    differing = differing.len(),
                    damaged = damaged.len(),
                    expunged = gone.len(),
                    "replica mailbox differs; resyncing it"
                );
            }
            let records = self
                .store()
                .records(&mailbox, key.uid_validity, &differing)
                .await?;
            let mut messages = Vec::with_capacity(records.len());
            for record in records {
                let content =
                    if theirs.contains_key(&record.uid.0) && !damaged.contains(&record.uid) {
                        None
                    } else {
                        match self
                            .store()
                            .message_content(&mailbox, key.uid_validity, record.uid)
                            .await
                        {
                            Ok(c) => Some(c),
                            Err(mailroom_core::Error::NoSuchMessage(_)) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    };
                messages.push(ReplicaMessage { record, content });
            }
            tracing::info!(
                mailbox = %mailbox,
                differing = messages.len(),
                expunged = gone.len(),
                attempt,
                "resync: sending differing records"
            );
            self.propose(&mailbox, key.uid_validity, ours_head).await?;
            let applied = self
                .send_records(key, messages, gone, Some(ours_head))
                .await?;
            let applied = self.send_missing(key, &mailbox, applied, ours_head).await?;
            if applied.head == ours_head {
                self.store()
                    .set_sync_point(&mailbox, key.uid_validity, self.point_at(&ours_head))
                    .await?;
                self.primary
                    .counters
                    .repaired
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(mailbox = %mailbox, "replica mailbox repaired");
                return Ok(Verdict::Repaired);
            }
        }
        tracing::error!(mailbox = %mailbox, "replica mailbox still differs after 3 resyncs");
        Err(SyncError::Unexpected(
            "replica mailbox still differs after resync",
        ))
    }
}

/// One end's changes to a mailbox after a modseq, every page read: this
/// primary's records by UID ([`changes_of`]), or the replica's messages
/// (`PrimaryConnection::their_changes`).
struct MailboxChanges<R> {
    /// The head as of the last page.
    head: MailboxHead,
    /// The records changed after the modseq.
    records: R,
    /// The UIDs expunged after it, with their modseqs.
    expunged: Vec<(Uid, ModSeq)>,
}

/// A store's records of a mailbox changed after `since` (every page), by
/// UID, with the expunges after it and the head as of the last page.
async fn changes_of(
    store: &dyn Replication,
    mailbox: &MailboxRef,
    uid_validity: UidValidity,
    since: ModSeq,
) -> Result<MailboxChanges<BTreeMap<u32, ReplicaRecord>>> {
    let mut records = BTreeMap::new();
    let mut after = Uid(0);
    loop {
        let page = store
            .records_since(mailbox, uid_validity, since, after, 10_000)
            .await?;
        if let Some(last) = page.records.last() {
            after = last.uid;
        }
        records.extend(page.records.into_iter().map(|r| (r.uid.0, r)));
        if !page.more {
            return Ok(MailboxChanges {
                head: page.head,
                records,
                expunged: page.expunged,
            });
        }
    }
}

/// [`namespace_digest`] of a mailbox of an account with `subscriptions`.
fn digest_of(m: &MailboxState, subscriptions: &[MailboxName]) -> u32 {
    namespace_digest(
        &m.name,
        m.special_use,
        &m.acl,
        subscriptions.contains(&m.name),
    )
}

/// The sync point at `head`; `namespace` is the primary's digest of the
/// mailbox then (see `PrimaryConnection::namespaces`).
fn point_of(head: &MailboxHead, namespace: Option<u32>) -> SyncPoint {
    SyncPoint {
        uid_next: head.uid_next,
        highest_modseq: head.highest_modseq,
        namespace,
    }
}

fn is_known(k: u16) -> bool {
    matches!(
        k,
        kind::HELLO
            | kind::AUTH
            | kind::ERROR
            | kind::UNSUPPORTED
            | kind::OK
            | kind::PENDING
            | kind::GET_ACCOUNT
            | kind::ACCOUNT
            | kind::CREATE
            | kind::DELETE
            | kind::RENAME
            | kind::ATTRIBUTES
            | kind::SUBSCRIPTIONS
            | kind::QUOTA
            | kind::FILE
            | kind::RECORDS
            | kind::APPLIED
            | kind::GET_DIGESTS
            | kind::DIGESTS
            | kind::GET_RECORDS
            | kind::RECORDS_PAGE
    )
}

/// The records with their bytes where the replica needs them (UIDs at
/// or above `content_from`), read in one call to the store; a record
/// whose message was expunged since the page was read is left out, and
/// the second value says whether one was.
async fn with_contents(
    store: &dyn Replication,
    mailbox: &MailboxRef,
    uid_validity: UidValidity,
    records: Vec<ReplicaRecord>,
    content_from: Uid,
) -> Result<(Vec<ReplicaMessage>, bool)> {
    let wanted: Vec<Uid> = records
        .iter()
        .map(|r| r.uid)
        .filter(|u| *u >= content_from)
        .collect();
    let mut contents = if wanted.is_empty() {
        Vec::new()
    } else {
        store
            .message_contents(mailbox, uid_validity, &wanted)
            .await?
    }
    .into_iter()
    .peekable();
    let mut messages = Vec::with_capacity(records.len());
    let mut expunged_meanwhile = false;
    for record in records {
        let content = if record.uid >= content_from {
            // both ascend by UID (the store answers in the order asked)
            while contents.next_if(|(u, _)| *u < record.uid).is_some() {}
            match contents.next_if(|(u, _)| *u == record.uid) {
                Some((_, c)) => Some(c),
                // Expunged since the page was read.
                None => {
                    expunged_meanwhile = true;
                    continue;
                }
            }
        } else {
            None
        };
        messages.push(ReplicaMessage { record, content });
    }
    Ok((messages, expunged_meanwhile))
}

/// How many times one page of records is read again because messages of
/// it were expunged before their bytes were read (then it is sent as it is,
/// and a digest resync after the batch mends the difference).
const MAX_PAGE_REREADS: u32 = 3;

/// Most RECORDS frames sent ahead of their APPLIED answers. The replica
/// applies them in order and answers each (an answer is a few bytes, so the
/// unread ones never fill a socket buffer); meanwhile the primary reads the
/// next page, so reading, the wire and applying overlap instead of taking
/// turns. A refused frame still ends the round with its error; the frames
/// after it that were applied leave a gap that the head comparison (state
/// CRC) finds and a digest resync fills.
const RECORDS_WINDOW: usize = 4;

/// What an answer in flight answers.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A RECORDS frame: APPLIED.
    Applied,
    /// An extra frame of the outgoing hook (OK or UNSUPPORTED).
    Extra,
}

/// The requests of one mailbox's RECORDS stream whose answers are unread.
#[derive(Debug, Default)]
struct InFlight {
    expected: std::collections::VecDeque<Expect>,
    /// The missing UIDs of every APPLIED read so far.
    missing: Vec<Uid>,
    /// The last APPLIED read.
    last: Option<AppliedFrame>,
}

fn message_wire_size(m: &ReplicaMessage) -> usize {
    RECORD_OVERHEAD + m.content.as_ref().map_or(0, |c| c.len())
}

fn empty_head(uid_validity: UidValidity) -> MailboxHead {
    MailboxHead {
        uid_validity,
        uid_next: Uid(1),
        highest_modseq: ModSeq(0),
        messages: 0,
        state_crc: StateCrc(0),
    }
}

fn attributes(user: &str, m: &MailboxState) -> NamespaceRequest {
    NamespaceRequest::Attributes {
        user: user.to_owned(),
        name: m.name.clone(),
        special_use: m.special_use,
        acl: m.acl.clone(),
        mailbox_id: m.mailbox_id,
    }
}

/// The name a mailbox takes for a moment while renames are applied.
fn temporary_name(uid_validity: u32) -> Result<MailboxName> {
    MailboxName::new(&format!("#mailroom-sync-rename/{uid_validity}"))
        .map_err(|_| SyncError::Malformed("temporary name"))
}
