//! A real QRESYNC client across a split brain: imapclient (Python,
//! `tests/clients/qresync.py`) caches INBOX from mailroom-imap served on
//! each end of a CRC-store replication pair; both ends are then written
//! apart (deliveries taking the same UIDs, flag changes on the same
//! messages, expunges) and merged; a new imapclient session on each end
//! resyncs its cache with `UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED)`
//! and arrives at exactly the merged mailbox, which is the same on both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use mailroom_core::{Flag, ModSeq, Replication, Storage, StoreOp, Uid};
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_sync::{Primary, ReplicaConfig, Verdict};
use mailroom_testkit::{Spawned, StaticAuthenticator, spawn_on_loopback};

const USER: &str = "grace@example.com";
const AUTH: StaticAuthenticator = StaticAuthenticator::new(&[USER]).password("secret");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/qresync.py");

async fn serve_imap<S: Replication + mailroom_core::Quota + 'static>(
    store: Arc<S>,
) -> Spawned<std::io::Result<()>> {
    let config = ImapConfig {
        allow_plaintext_auth: true,
        ..ImapConfig::default()
    };
    let server = ImapServer::new(store.clone(), Some(store), Arc::new(AUTH), config);
    spawn_on_loopback(|listener, stop| server.serve(listener, TlsMode::Plain, stop)).await
}

/// Runs the script; its output, asserted to end well.
async fn client(phase: &str, addr: SocketAddr, state: &std::path::Path) -> String {
    let args = [
        SCRIPT.to_owned(),
        phase.to_owned(),
        addr.port().to_string(),
        state.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(&args)
            .output()
            .expect("python3 runs (imapclient is installed by .ci/run)")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("ALL OK"),
        "{phase}: {text}"
    );
    text
}

/// The UIDs and flags (sorted names, as the script prints them) of INBOX.
async fn mailbox_flags<S: Replication>(store: &S) -> BTreeMap<String, Vec<String>> {
    let m = store.open(&inbox(USER), USER).await.unwrap();
    let snapshot = m.snapshot().await.unwrap();
    snapshot
        .messages
        .iter()
        .map(|meta| {
            let mut names: Vec<String> = meta
                .flags
                .iter()
                .map(|f| f.to_string())
                .filter(|f| f != "\\Recent")
                .collect();
            names.sort();
            (meta.uid.0.to_string(), names)
        })
        .collect()
}

fn resynced(out: &str) -> serde_json_lite::State {
    let json = out
        .lines()
        .skip_while(|l| *l != "RESYNCED")
        .nth(1)
        .unwrap_or_else(|| panic!("no resynced state in {out}"));
    serde_json_lite::parse(json)
}

/// Just enough JSON for the script's one line (no serde in this crate).
mod serde_json_lite {
    use std::collections::BTreeMap;

    #[derive(Debug)]
    pub(crate) struct State {
        pub(crate) highest_modseq: u64,
        pub(crate) messages: BTreeMap<String, Vec<String>>,
    }

    pub(crate) fn parse(json: &str) -> State {
        let number = |key: &str| -> u64 {
            let at = json.find(&format!("\"{key}\": ")).unwrap() + key.len() + 4;
            json[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        };
        let body = &json[json.find("\"messages\": {").unwrap() + 13..];
        let mut messages = BTreeMap::new();
        let mut rest = body;
        while let Some(q) = rest.find('"') {
            if rest[..q].contains('}') {
                break;
            }
            let uid_end = q + 1 + rest[q + 1..].find('"').unwrap();
            let uid = rest[q + 1..uid_end].to_owned();
            let list_start = uid_end + rest[uid_end..].find('[').unwrap();
            let list_end = list_start + rest[list_start..].find(']').unwrap();
            let flags = rest[list_start + 1..list_end]
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches('"').replace("\\\\", "\\"))
                .collect();
            messages.insert(uid, flags);
            rest = &rest[list_end + 1..];
        }
        State {
            highest_modseq: number("highestmodseq"),
            messages,
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
    assert_eq!(b.expunge(Some(&[Uid(uid)])).await.unwrap(), vec![Uid(uid)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imapclient_resyncs_with_qresync_after_a_split_brain_merge() {
    let (pd, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let p = crc_store(pd.path());
    let r = crc_store(rd.path());
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 6, 400).await;
    flag(&*p, 2, Flag::Seen).await;
    let primary = Primary::new(Arc::clone(&p) as Arc<dyn Replication>, primary_config());
    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    wait_identical(&*p, &*r, USER).await;
    drop(conn);

    // Clients cache INBOX on both ends before the split.
    let imap_p = serve_imap(Arc::clone(&p)).await;
    let imap_r = serve_imap(Arc::clone(&r)).await;
    let state_p = scratch.path().join("primary.json");
    let state_r = scratch.path().join("replica.json");
    client("sync", imap_p.addr(), &state_p).await;
    client("sync", imap_r.addr(), &state_r).await;
    let split_modseq = p.status(&inbox(USER), USER).await.unwrap().highest_modseq;

    // Apart: both deliver two messages (the same UIDs 7 and 8), both flag
    // UID 1 (the replica later), the primary expunges 3, the replica
    // expunges 4 and flags 5.
    append_n(&*p, &inbox(USER), 100, 2, 400).await;
    flag(&*p, 1, Flag::Flagged).await;
    expunge(&*p, 3).await;
    append_n(&*r, &inbox(USER), 200, 2, 400).await;
    flag(&*r, 1, Flag::Answered).await;
    flag(&*r, 1, Flag::Keyword("$Later".into())).await;
    expunge(&*r, 4).await;
    flag(&*r, 5, Flag::Draft).await;

    let mut conn = connect_to(&primary, listener.addr).await;
    let verdicts = conn.sync_all().await.unwrap();
    assert!(
        verdicts[USER]
            .iter()
            .any(|(n, v)| n.is_inbox() && *v == Verdict::Merged),
        "{verdicts:?}"
    );
    wait_identical(&*p, &*r, USER).await;
    let merged = mailbox_flags(&*p).await;
    assert_eq!(merged, mailbox_flags(&*r).await, "both ends identical");
    assert_eq!(
        merged.len(),
        8,
        "6 + 2 + 2 delivered, 2 expunged: {merged:?}"
    );
    assert!(
        !merged.contains_key("7") && !merged.contains_key("8"),
        "the contested UIDs were given up on both ends: {merged:?}"
    );

    // Each end's client resyncs from its cache to the merged mailbox.
    for (imap, state) in [(&imap_p, &state_p), (&imap_r, &state_r)] {
        let out = client("resync", imap.addr(), state).await;
        let got = resynced(&out);
        assert_eq!(got.messages, merged, "{out}");
        assert!(ModSeq(got.highest_modseq) > split_modseq, "{out}");
        assert!(
            out.contains("vanished [3, 4]") || out.contains("vanished [3, 4, "),
            "{out}"
        );
    }
    listener.task.abort();
}
