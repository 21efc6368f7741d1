//! A primary stopped in the middle of its work, for any two backends
//! (`interrupted.rs` has the why): its connection is cut before a chosen
//! RECORDS frame, then a new primary over the same store compares again;
//! optionally the replica's process dies at the cut too and starts again
//! over the same data.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use mailroom_core::{Flag, MessageGuid, Replication, Storage, StoreOp, Uid};
use mailroom_sync::msgs::{Records, kind};
use mailroom_sync::wire::Frame;
use mailroom_sync::{Primary, PrimaryConfig, ReplicaConfig, Verdict};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::*;

const USER: &str = "ada@example.com";

/// Starts a replica's store again over the same data, given the old one
/// (the last handle on it: the store of a process that died).
pub type Reopen<R> = Box<dyn FnOnce(Arc<R>) -> BoxFuture<'static, Arc<R>> + Send>;

/// Cuts a primary's connection before its `n`th RECORDS frame for INBOX.
#[derive(Clone)]
pub struct Cutter {
    seen: Arc<AtomicUsize>,
    before: usize,
    cut: Arc<AtomicBool>,
    /// The socket, handed over at the cut: the test closes it and reads
    /// the replica's last answers, so the replica applies every frame that
    /// was sent before it sees the end (deterministically).
    socket: Arc<Mutex<Option<TcpStream>>>,
}

impl Cutter {
    pub fn new(before: usize) -> Cutter {
        Cutter {
            seen: Arc::new(AtomicUsize::new(0)),
            before,
            cut: Arc::new(AtomicBool::new(false)),
            socket: Arc::new(Mutex::new(None)),
        }
    }

    /// A primary configuration of `batch_records` records per frame whose
    /// outgoing hook counts RECORDS frames for INBOX and cuts.
    pub fn config(&self, batch_records: usize) -> PrimaryConfig {
        let mut c = primary_config();
        c.batch_records = batch_records;
        let k = self.clone();
        c.outgoing_hook = Some(Arc::new(move |frame: &mut Frame| {
            if frame.kind == kind::RECORDS
                && Records::from_frame(frame).is_ok_and(|r| r.key.name.is_inbox())
                && k.seen.fetch_add(1, Ordering::SeqCst) + 1 == k.before
            {
                k.cut.store(true, Ordering::SeqCst);
            }
            Vec::new()
        }));
        c
    }

    pub async fn connect(&self, addr: std::net::SocketAddr) -> CutIo {
        CutIo {
            inner: Some(TcpStream::connect(addr).await.unwrap()),
            cutter: self.clone(),
        }
    }

    /// After the cut: closes the socket and reads what the replica still
    /// answers, until it closes too.
    pub async fn finish(&self) {
        assert!(self.cut.load(Ordering::SeqCst), "the cut happened");
        let mut socket = self
            .socket
            .lock()
            .unwrap()
            .take()
            .expect("socket handed over");
        socket.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    }
}

/// The primary's side of the connection: once the cut is set, nothing
/// more is written (the socket goes to the test) and every call fails.
pub struct CutIo {
    inner: Option<TcpStream>,
    cutter: Cutter,
}

impl CutIo {
    fn live(&mut self) -> std::io::Result<&mut TcpStream> {
        if self.cutter.cut.load(Ordering::SeqCst)
            && let Some(s) = self.inner.take()
        {
            *self.cutter.socket.lock().unwrap() = Some(s);
        }
        self.inner
            .as_mut()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "cut"))
    }
}

impl AsyncRead for CutIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for CutIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

async fn flag<S: Storage + ?Sized>(store: &S, uid: u32, flag: Flag) {
    let b = store.open(&inbox(USER), USER).await.unwrap();
    b.store(
        &[Uid(uid)],
        &StoreOp::Add([flag].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
}

async fn expunge<S: Storage + ?Sized>(store: &S, uid: u32) {
    flag(store, uid, Flag::Deleted).await;
    let b = store.open(&inbox(USER), USER).await.unwrap();
    assert_eq!(b.expunge(None).await.unwrap(), vec![Uid(uid)]);
}

/// How many times each GUID is held, over every mailbox of the account.
pub fn guid_counts(p: &Picture) -> BTreeMap<MessageGuid, usize> {
    let mut out = BTreeMap::new();
    for (_, records, _) in &p.mailboxes {
        for r in records {
            *out.entry(r.guid).or_insert(0) += 1;
        }
    }
    out
}

/// The pair in step: `p` holds 5 messages, `r` the same, sync points on
/// both ends. Returns the replica's listener.
pub async fn in_step<
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
>(
    p: &Arc<P>,
    r: &Arc<R>,
) -> ReplicaListener {
    let mut listener = listen(Arc::clone(r), ReplicaConfig::new(secret())).await;
    p.ensure_account(USER).await.unwrap();
    append_n(&**p, &inbox(USER), 0, 5, 300).await;
    let primary = Primary::new(Arc::clone(p) as Arc<dyn Replication>, primary_config());
    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    drop(conn);
    listener.results.recv().await.unwrap().unwrap();
    wait_identical(&**p, &**r, USER).await;
    listener
}

/// A restarted primary compares everything: returns its verdict for INBOX
/// and its split-brain merges.
pub async fn restart<P: Replication + mailroom_core::Quota + 'static>(
    p: &Arc<P>,
    listener: &ReplicaListener,
) -> (Verdict, u64, Primary) {
    let primary = Primary::new(Arc::clone(p) as Arc<dyn Replication>, primary_config());
    let mut conn = connect_to(&primary, listener.addr).await;
    let verdicts = conn.sync_all().await.unwrap();
    let inbox_verdict = verdicts[USER].iter().find(|(n, _)| n.is_inbox()).unwrap().1;
    let again = conn.sync_all().await.unwrap();
    assert!(
        again[USER].iter().all(|(_, v)| *v == Verdict::InStep),
        "a second pass finds nothing to do: {again:?}"
    );
    let merges = primary.stats().split_brain_merges;
    (inbox_verdict, merges, primary)
}

/// `restart_replica`: the replica's process dies at the cut and starts
/// again before the primary does.
pub async fn batch_cut_between_two_frames<
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
>(
    p: Arc<P>,
    r: Arc<R>,
    restart_replica: Option<Reopen<R>>,
) {
    let mut listener = in_step(&p, &r).await;
    // Ten new messages (UIDs 6..=15) and a flag change on UID 1: in UID
    // order (as frames carry them) UID 1 comes first with the highest
    // modseq, so the first frame alone already raises the replica's
    // HIGHESTMODSEQ to the primary's.
    append_n(&*p, &inbox(USER), 100, 10, 300).await;
    flag(&*p, 1, Flag::Flagged).await;
    let ours = p.status(&inbox(USER), USER).await.unwrap();

    // Two records a frame: six frames; cut before the third.
    let cutter = Cutter::new(3);
    let killed = Primary::new(Arc::clone(&p) as Arc<dyn Replication>, cutter.config(2));
    let mut conn = killed
        .connect(cutter.connect(listener.addr).await)
        .await
        .unwrap();
    assert!(conn.sync_all().await.is_err(), "cut");
    drop(conn);
    cutter.finish().await;
    let _ = listener.results.recv().await;
    let (r, listener) = match restart_replica {
        None => (r, listener),
        Some(reopen) => {
            // The listener, its connections and the replica's store go.
            let ReplicaListener { task, replica, .. } = listener;
            task.abort();
            let _ = task.await;
            drop(replica);
            let r = reopen(r).await;
            let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
            (r, listener)
        }
    };
    let between = r.status(&inbox(USER), USER).await.unwrap();
    assert_eq!(
        between.messages, 8,
        "two frames of the batch applied (UIDs 1 and 6, 7 and 8): {between:?}"
    );
    assert_eq!(between.uid_next, Uid(9), "{between:?}");
    assert!(between.highest_modseq <= ours.highest_modseq, "{between:?}");

    let (verdict, merges, _) = restart(&p, &listener).await;
    assert_eq!(merges, 0, "no split brain");
    assert_eq!(verdict, Verdict::Updated);
    let (after_p, after_r) = (
        picture(&*p, USER).await.unwrap(),
        picture(&*r, USER).await.unwrap(),
    );
    assert_eq!(after_p, after_r, "both ends identical");
    assert_same_usage(&*p, &*r, USER).await;
    assert_eq!(
        after_p.mailboxes.iter().map(|m| m.1.len()).sum::<usize>(),
        15
    );
    listener.task.abort();
}

/// `before`: the RECORDS frame of the merge's replica half the cut comes
/// before (1: the replica got none of it; 2: one frame of it).
pub async fn merge_cut_between_its_halves<
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
>(
    p: Arc<P>,
    r: Arc<R>,
    before: usize,
) {
    let mut listener = in_step(&p, &r).await;
    // Apart. The old primary: UIDs 6, 7 taken, UID 2 expunged. The promoted
    // replica: UIDs 6, 7 taken by other messages, a keyword on UID 2 (so
    // that it is kept, under a new UID), \Seen on 3.
    append_n(&*p, &inbox(USER), 100, 2, 300).await;
    expunge(&*p, 2).await;
    append_n(&*r, &inbox(USER), 200, 2, 300).await;
    flag(&*r, 2, Flag::Keyword("$Important".into())).await;
    flag(&*r, 3, Flag::Seen).await;
    let mut want = guid_counts(&picture(&*p, USER).await.unwrap());
    want.extend(guid_counts(&picture(&*r, USER).await.unwrap()));
    let want: BTreeMap<MessageGuid, usize> = want.into_keys().map(|g| (g, 1)).collect();
    assert_eq!(want.len(), 9);

    // The merge, cut before the `before`th RECORDS frame (two records a
    // frame): this primary has applied its half.
    let cutter = Cutter::new(before);
    let killed = Primary::new(Arc::clone(&p) as Arc<dyn Replication>, cutter.config(2));
    let mut conn = killed
        .connect(cutter.connect(listener.addr).await)
        .await
        .unwrap();
    assert!(conn.sync_all().await.is_err(), "cut");
    drop(conn);
    cutter.finish().await;
    let _ = listener.results.recv().await;
    assert_eq!(
        guid_counts(&picture(&*p, USER).await.unwrap()),
        want,
        "the primary's half applied: every message once on the primary"
    );

    let (verdict, merges, _) = restart(&p, &listener).await;
    assert_eq!(verdict, Verdict::Merged);
    assert_eq!(merges, 1, "the merge is done again (it is a split brain)");
    let (after_p, after_r) = (
        picture(&*p, USER).await.unwrap(),
        picture(&*r, USER).await.unwrap(),
    );
    assert_eq!(
        after_p, after_r,
        "both ends identical (cut before frame {before})"
    );
    assert_same_usage(&*p, &*r, USER).await;
    assert_eq!(
        guid_counts(&after_p),
        want,
        "every message once, none moved twice (cut before frame {before})"
    );
    let kept = after_p
        .mailboxes
        .iter()
        .flat_map(|m| m.1.iter())
        .find(|m| m.flags.contains(&Flag::Keyword("$Important".into())))
        .expect("the replica's change to UID 2 kept");
    assert!(kept.uid.0 >= 8, "{kept:?}");
    listener.task.abort();
}
