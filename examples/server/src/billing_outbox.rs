//! The billing outbox: archive events the billing plugin did not take,
//! kept on disk until it does.
//!
//! [`BillingSink::record`]'s contract is that a failed or timed-out call is
//! made again later with the same event (the plugin counts an id once). A
//! plugin can fail for a while (its database locked, its disk full, a call
//! timing out); the archive copy that caused the event is already durable by
//! then, so dropping the event would lose a charge. [`OutboxSink`] wraps the
//! loaded plugin: an event the plugin refuses is appended to
//! `<data_dir>/billing-outbox` and fsynced before `record` returns, so it
//! survives a crash or restart; [`OutboxSink::flush`] (run by the server
//! every [`FLUSH_INTERVAL`] and before every report) sends the queued
//! events again, oldest first, and keeps only those still refused.
//!
//! ## File format
//!
//! One event per line, each line a JSON object (`serde_json`, already in the
//! workspace for the tests' cargo messages):
//!
//! ```text
//! {"id":"msg:alice@x.org:...","at_unix":1764950400,"domain":"x.org","user":"alice@x.org","kind":{"MessageArchived":{"size":2048}}}
//! ```
//!
//! Lines are only appended (with `O_APPEND`, then `fdatasync`) or the file
//! is replaced whole (written aside, fsynced, renamed, directory fsynced),
//! so a crash leaves at worst a torn last line. A line that does not parse
//! is logged and dropped when the file is next rewritten: it can only be the
//! torn tail of an append whose `record` never returned.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mailroom_plugin::{
    ArchiveEvent, ArchiveEventKind, BillingMonth, BillingReport, BillingSink, PluginError, Recorded,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::fsutil::{parent_dir, sync_dir, write_atomic};

/// The outbox's file name in the data directory.
pub const OUTBOX_FILE: &str = "billing-outbox";

/// How often a running server sends the queued events again.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(30);

/// The largest the outbox file may grow (about a million events); past it
/// `record` fails again and the caller logs the event with its id.
pub const MAX_OUTBOX_BYTES: u64 = 256 * 1024 * 1024;

/// One queued event, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: String,
    at_unix: i64,
    domain: String,
    user: String,
    kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum EntryKind {
    Enabled,
    Disabled,
    MessageArchived {
        size: u64,
    },
    OverrideUsed {
        mailbox: String,
        reason: String,
        removed_bytes: u64,
    },
}

impl Entry {
    /// `None` for a kind this version of mailroomd does not know how to
    /// store (the plugin API's kinds are `#[non_exhaustive]`).
    fn from_event(event: &ArchiveEvent) -> Option<Entry> {
        let kind = match &event.kind {
            ArchiveEventKind::Enabled => EntryKind::Enabled,
            ArchiveEventKind::Disabled => EntryKind::Disabled,
            ArchiveEventKind::MessageArchived { size } => {
                EntryKind::MessageArchived { size: *size }
            }
            ArchiveEventKind::OverrideUsed {
                mailbox,
                reason,
                removed_bytes,
            } => EntryKind::OverrideUsed {
                mailbox: mailbox.clone(),
                reason: reason.clone(),
                removed_bytes: *removed_bytes,
            },
            _ => return None,
        };
        Some(Entry {
            id: event.id.clone(),
            at_unix: event.at_unix,
            domain: event.domain.clone(),
            user: event.user.clone(),
            kind,
        })
    }

    fn to_event(&self) -> ArchiveEvent {
        let kind = match &self.kind {
            EntryKind::Enabled => ArchiveEventKind::Enabled,
            EntryKind::Disabled => ArchiveEventKind::Disabled,
            EntryKind::MessageArchived { size } => {
                ArchiveEventKind::MessageArchived { size: *size }
            }
            EntryKind::OverrideUsed {
                mailbox,
                reason,
                removed_bytes,
            } => ArchiveEventKind::OverrideUsed {
                mailbox: mailbox.clone(),
                reason: reason.clone(),
                removed_bytes: *removed_bytes,
            },
        };
        ArchiveEvent {
            id: self.id.clone(),
            at_unix: self.at_unix,
            domain: self.domain.clone(),
            user: self.user.clone(),
            kind,
        }
    }
}

/// What one [`OutboxSink::flush`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Events the plugin took (new or already known).
    pub sent: usize,
    /// Events still queued.
    pub left: usize,
}

/// A billing sink that never loses an event the plugin refused: see the
/// module docs.
#[derive(Debug)]
pub struct OutboxSink {
    inner: Arc<dyn BillingSink>,
    path: PathBuf,
    /// Serializes appends with the rewrite of a flush.
    file: Mutex<()>,
}

impl OutboxSink {
    /// Wraps `inner`, queueing into the file `path`.
    pub fn new(inner: Arc<dyn BillingSink>, path: impl Into<PathBuf>) -> OutboxSink {
        OutboxSink {
            inner,
            path: path.into(),
            file: Mutex::new(()),
        }
    }

    /// The outbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The events queued now, oldest first.
    pub async fn pending(&self) -> io::Result<Vec<ArchiveEvent>> {
        let _guard = self.file.lock().await;
        let path = self.path.clone();
        let entries = blocking(move || read_entries(&path)).await?;
        Ok(entries.iter().map(Entry::to_event).collect())
    }

    /// Sends every queued event to the plugin again, oldest first, and
    /// keeps those it still refuses. The file is only rewritten when
    /// something changed.
    pub async fn flush(&self) -> io::Result<Flushed> {
        let _guard = self.file.lock().await;
        let path = self.path.clone();
        let entries = blocking(move || read_entries(&path)).await?;
        if entries.is_empty() {
            return Ok(Flushed::default());
        }
        let mut left = Vec::new();
        for entry in &entries {
            match self.inner.record(&entry.to_event()).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(id = %entry.id, error = %e, "queued billing event refused again");
                    left.push(entry.clone());
                }
            }
        }
        let flushed = Flushed {
            sent: entries.len() - left.len(),
            left: left.len(),
        };
        if flushed.sent > 0 {
            let path = self.path.clone();
            blocking(move || rewrite(&path, &left)).await?;
            tracing::info!(
                sent = flushed.sent,
                left = flushed.left,
                "queued billing events sent"
            );
        }
        Ok(flushed)
    }

    async fn enqueue(&self, entry: Entry) -> io::Result<()> {
        let _guard = self.file.lock().await;
        let path = self.path.clone();
        blocking(move || append(&path, &entry)).await
    }

    /// Flushes every `interval` until `stop` completes (mailroomd's
    /// background task; the first flush is at once, for what a previous run
    /// left).
    pub async fn run(self: Arc<Self>, interval: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {
                    if let Err(e) = self.flush().await {
                        tracing::error!(path = %self.path.display(), error = %e, "billing outbox unreadable");
                    }
                }
            }
        }
    }
}

#[async_trait]
impl BillingSink for OutboxSink {
    async fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginError> {
        let refused = match self.inner.record(event).await {
            Ok(recorded) => return Ok(recorded),
            Err(e) => e,
        };
        let Some(entry) = Entry::from_event(event) else {
            return Err(refused);
        };
        match self.enqueue(entry).await {
            Ok(()) => {
                tracing::warn!(
                    id = %event.id,
                    error = %refused,
                    "billing plugin refused an event; queued in the outbox"
                );
                // Durable in the outbox: the contract of `Ok`.
                Ok(Recorded::New)
            }
            Err(e) => {
                tracing::error!(id = %event.id, error = %e, "billing outbox not writable");
                Err(refused)
            }
        }
    }

    async fn report(&self, month: BillingMonth) -> Result<BillingReport, PluginError> {
        // A report counts what the outbox still holds, if the plugin takes it now.
        if let Err(e) = self.flush().await {
            tracing::error!(path = %self.path.display(), error = %e, "billing outbox unreadable");
        }
        self.inner.report(month).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("billing outbox task: {e}")))?
}

fn read_entries(path: &Path) -> io::Result<Vec<Entry>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => entries.push(entry),
            Err(e) => tracing::warn!(
                path = %path.display(),
                line = n + 1,
                error = %e,
                "billing outbox line dropped (torn by a crash during its append)"
            ),
        }
    }
    Ok(entries)
}

fn append(path: &Path, entry: &Entry) -> io::Result<()> {
    let existed = match std::fs::metadata(path) {
        Ok(meta) if meta.len() >= MAX_OUTBOX_BYTES => {
            return Err(io::Error::other("billing outbox full"));
        }
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // A torn line left by an earlier crash must not swallow this one.
    if existed {
        let len = file.metadata()?.len();
        if len > 0 && !ends_with_newline(path, len)? {
            file.write_all(b"\n")?;
        }
    }
    file.write_all(&line)?;
    file.sync_data()?;
    if !existed {
        sync_dir(&parent_dir(path))?;
    }
    Ok(())
}

fn ends_with_newline(path: &Path, len: u64) -> io::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn rewrite(path: &Path, entries: &[Entry]) -> io::Result<()> {
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.extend(serde_json::to_vec(entry).map_err(io::Error::other)?);
        bytes.push(b'\n');
    }
    write_atomic(path, &bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A plugin that refuses the first `fail` calls, then records.
    #[derive(Debug, Default)]
    struct Flaky {
        fail: AtomicUsize,
        recorded: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl BillingSink for Flaky {
        async fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginError> {
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(PluginError::Timeout {
                    plugin: "flaky".into(),
                    function: "record",
                    after: Duration::from_millis(1),
                });
            }
            let mut recorded = self.recorded.lock().unwrap();
            if recorded.contains(&event.id) {
                return Ok(Recorded::Duplicate);
            }
            recorded.push(event.id.clone());
            Ok(Recorded::New)
        }
        async fn report(&self, _month: BillingMonth) -> Result<BillingReport, PluginError> {
            Err(PluginError::ShuttingDown {
                plugin: "flaky".into(),
                function: "report",
            })
        }
    }

    fn event(id: &str, kind: ArchiveEventKind) -> ArchiveEvent {
        ArchiveEvent {
            id: id.into(),
            at_unix: 1_764_950_400,
            domain: "x.org".into(),
            user: "alice@x.org".into(),
            kind,
        }
    }

    #[tokio::test]
    async fn a_refused_event_is_queued_durably_and_sent_once_the_plugin_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OUTBOX_FILE);
        let plugin = Arc::new(Flaky::default());
        let sink = OutboxSink::new(plugin.clone(), &path);

        // accepted at once: nothing queued
        sink.record(&event("a", ArchiveEventKind::Enabled))
            .await
            .unwrap();
        assert!(!path.exists());

        // refused: Ok (durable in the outbox), not yet in the plugin
        plugin.fail.store(2, Ordering::SeqCst);
        let archived = event("b", ArchiveEventKind::MessageArchived { size: 2048 });
        let overridden = event(
            "c",
            ArchiveEventKind::OverrideUsed {
                mailbox: "alice/2026-12/in".into(),
                reason: "retention \"7y\"\nexpired".into(),
                removed_bytes: 10,
            },
        );
        sink.record(&archived).await.unwrap();
        sink.record(&overridden).await.unwrap();
        assert_eq!(*plugin.recorded.lock().unwrap(), vec!["a".to_owned()]);
        assert_eq!(sink.pending().await.unwrap(), vec![archived, overridden]);

        // a restart: a new sink over the same file sends them, in order
        drop(sink);
        let sink = OutboxSink::new(plugin.clone(), &path);
        assert_eq!(sink.flush().await.unwrap(), Flushed { sent: 2, left: 0 });
        assert_eq!(
            *plugin.recorded.lock().unwrap(),
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
        );
        assert!(sink.pending().await.unwrap().is_empty());
        assert_eq!(sink.flush().await.unwrap(), Flushed::default());
    }

    #[tokio::test]
    async fn events_still_refused_stay_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OUTBOX_FILE);
        let plugin = Arc::new(Flaky::default());
        let sink = OutboxSink::new(plugin.clone(), &path);
        plugin.fail.store(3, Ordering::SeqCst);
        sink.record(&event("x", ArchiveEventKind::Disabled))
            .await
            .unwrap();
        sink.record(&event("y", ArchiveEventKind::Enabled))
            .await
            .unwrap();
        // one more refusal: x stays, y goes through
        assert_eq!(sink.flush().await.unwrap(), Flushed { sent: 1, left: 1 });
        let left: Vec<String> = sink
            .pending()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(left, vec!["x".to_owned()]);
        assert_eq!(sink.flush().await.unwrap(), Flushed { sent: 1, left: 0 });
    }

    #[tokio::test]
    async fn a_torn_last_line_is_dropped_and_later_appends_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OUTBOX_FILE);
        let plugin = Arc::new(Flaky::default());
        let sink = OutboxSink::new(plugin.clone(), &path);
        plugin.fail.store(2, Ordering::SeqCst);
        sink.record(&event("first", ArchiveEventKind::Enabled))
            .await
            .unwrap();
        // a crash in the middle of the next append
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"id":"torn","at_u"#)
            .unwrap();
        sink.record(&event("after", ArchiveEventKind::Disabled))
            .await
            .unwrap();
        let ids: Vec<String> = sink
            .pending()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec!["first".to_owned(), "after".to_owned()]);
        assert_eq!(sink.flush().await.unwrap(), Flushed { sent: 2, left: 0 });
    }
}
