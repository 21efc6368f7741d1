//! The checks run on every input of the `disk` fuzz target and of its
//! corpus replay (`tests/disk_fuzz_corpus.rs`). Files on disk are untrusted
//! input too: a bad disk, a crash of another program, an operator's editor.
//!
//! A small store (two mailboxes, a few messages with flags and keywords) is
//! written once per process. Each input copies it, then damages one of its
//! files: the first byte picks the file, the second how (replace it, write
//! over it at an offset, cut it short and append), the next two bytes give
//! the offset or length, the rest are the bytes written. Then the store is
//! opened and used as a session would use it, and repaired:
//!
//! - nothing panics; every failure is a typed error;
//! - a message body is only ever served if its SHA-1 is the GUID its index
//!   record carries, and it has the size the record announces (never
//!   silently wrong data);
//! - after `reconstruct` succeeds, `verify` finds the mailbox sound.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use mailroom_core::{
    Flag, Flags, MailboxName, MailboxRef, MessageGuid, NewMessage, Storage, StoreOp, Uid,
};
use mailroom_store_crc::{CrcOptions, CrcStore};

const USER: &str = "alice";

struct Template {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// Every file of the store, relative to `root`, sorted.
    files: Vec<PathBuf>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn options() -> CrcOptions {
    CrcOptions {
        durability: false,
        ..CrcOptions::default()
    }
}

fn mailboxes() -> [MailboxRef; 2] {
    [
        MailboxRef::new(USER, MailboxName::inbox()),
        MailboxRef::new(USER, MailboxName::new("Work").expect("a valid name")),
    ]
}

fn message(n: usize) -> Bytes {
    Bytes::from(format!(
        "From: s{n}@example.org\r\nTo: alice@example.com\r\nSubject: m{n}\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\npart {n}\r\n--b--\r\n"
    ))
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("store");
        runtime().block_on(async {
            let store = CrcStore::open(&root, options()).expect("a new store");
            store.ensure_account(USER).await.expect("account");
            let [inbox, work] = mailboxes();
            store.create(&work, None).await.expect("create Work");
            let mut keyword = Flags::default();
            keyword.insert(Flag::parse("$Label1").expect("a keyword"));
            for n in 0..4 {
                let flags = if n % 2 == 0 {
                    keyword.clone()
                } else {
                    Flags::default()
                };
                let target = if n == 3 { &work } else { &inbox };
                store
                    .append(
                        target,
                        NewMessage {
                            flags,
                            internal_date: None,
                            content: message(n),
                        },
                    )
                    .await
                    .expect("append");
            }
            let m = store.open(&inbox, USER).await.expect("open INBOX");
            let mut seen = Flags::default();
            seen.insert(Flag::Seen);
            m.store(&[Uid(1)], &StoreOp::Add(seen), None)
                .await
                .expect("store");
        });
        let mut files = Vec::new();
        collect(&root, &root, &mut files);
        files.sort();
        Template {
            _dir: dir,
            root,
            files,
        }
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable template") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Damages the copy as `data` says, then uses and repairs the store
/// (panics on a violated invariant).
pub(crate) fn run(data: &[u8]) {
    let t = template();
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("store");
    copy_tree(&t.root, &root);
    let (head, bytes) = data.split_at(data.len().min(4));
    let pick = |i: usize| head.get(i).copied().unwrap_or(0);
    let file = root.join(&t.files[usize::from(pick(0)) % t.files.len()]);
    let at = usize::from(u16::from_le_bytes([pick(2), pick(3)]));
    let mut content = std::fs::read(&file).unwrap_or_default();
    match pick(1) % 3 {
        0 => content = bytes.to_vec(),
        1 => {
            let at = at.min(content.len());
            let end = (at + bytes.len()).min(content.len());
            content.splice(at..end, bytes.iter().copied());
        }
        _ => {
            content.truncate(at.min(content.len()));
            content.extend_from_slice(bytes);
        }
    }
    std::fs::write(&file, &content).expect("write the damaged file");
    runtime().block_on(exercise(&root));
}

async fn exercise(root: &Path) {
    let Ok(store) = CrcStore::open(root, options()) else {
        return;
    };
    let _ = store.ensure_account(USER).await;
    let _ = store.list(USER).await;
    let _ = store.subscriptions(USER).await;
    for mailbox in mailboxes() {
        let _ = store.status(&mailbox, USER).await;
        if let Ok(m) = store.open(&mailbox, USER).await {
            let uids: Vec<Uid> = match m.snapshot().await {
                Ok(s) => s.messages.iter().map(|meta| meta.uid).collect(),
                Err(_) => (1..=5).map(Uid).collect(),
            };
            let _ = m.summaries(&uids).await;
            if let Ok(metas) = m.fetch_meta(&uids).await {
                for meta in metas {
                    if let Ok(body) = m.content(meta.uid).await {
                        assert_eq!(
                            MessageGuid::of(&body),
                            meta.guid,
                            "UID {} served with bytes that are not its GUID's",
                            meta.uid
                        );
                        assert_eq!(body.len() as u64, meta.size, "UID {} size", meta.uid);
                    }
                }
            }
            let mut flags = Flags::default();
            flags.insert(Flag::Deleted);
            let _ = m
                .store(&uids[..uids.len().min(1)], &StoreOp::Add(flags), None)
                .await;
            let _ = m.expunge(None).await;
        }
        let _ = store
            .append(
                &mailbox,
                NewMessage {
                    flags: Flags::default(),
                    internal_date: None,
                    content: message(9),
                },
            )
            .await;
    }
    // Repair: whatever reconstruct rebuilds must verify.
    if let Ok(rebuilt) = store.reconstruct(USER, None).await {
        for (name, _) in rebuilt {
            let mailbox = MailboxRef::new(USER, name);
            if let Err(e) = store.verify(&mailbox).await {
                panic!("{mailbox:?} does not verify after reconstruct: {e}");
            }
        }
    }
}
