//! Memory follows the work: after many accounts log in, select their INBOX
//! and log out, the server holds no mailbox open (no index mapped, no file
//! of the store open) once the grace period has passed, and its memory has
//! not grown with the number of accounts it has seen.
//!
//! Measured on the `mailroomd serve` child: mappings from
//! `/proc/PID/maps`, open files from `/proc/PID/fd`, USS = Private_Clean +
//! Private_Dirty from `/proc/PID/smaps_rollup`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, add_user, plain, write_config};
use mailroom_store_crc::CrcStore;

/// Accounts that log in before the baseline (the hashing threads and the
/// runtime's worker threads have all run once by then).
const WARM_UP: usize = 10;
/// Accounts that log in after it.
const ACCOUNTS: usize = 100;
/// The most USS the server may grow by for those 100 accounts: 8 MiB
/// (80 KiB each). Before memory followed the work it grew by about
/// 2.7 MiB per account (argon2's blocks kept in per-thread arenas of the
/// blocking pool, and every selected mailbox kept mapped).
const MAX_GROWTH_KIB: u64 = 8 * 1024;
const PASSWORD: &str = "memory-test-pw";

fn uss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("Private_Clean:") || l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// The files the CRC store over `store` keeps open whatever the number of
/// accounts (its lock file, the delivery journal's segments): the store
/// lists them ([`CrcStore::store_wide_files`]).
fn store_wide(store: &Path) -> Vec<PathBuf> {
    CrcStore::store_wide_files(store.canonicalize().unwrap()).unwrap()
}

/// The store's files the process has mapped or open, the store-wide ones
/// aside (checked by `store_wide_files_open`).
fn store_files_held(pid: u32, store: &Path) -> Vec<String> {
    let wide = store_wide(store);
    let store = store.canonicalize().unwrap();
    let prefix = store.to_string_lossy().into_owned();
    let mut held: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with(&prefix))
        .map(|p| format!("mapped {p}"))
        .collect();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy().into_owned();
            if t.starts_with(&prefix) && !wide.contains(&target) {
                held.push(format!("open {t}"));
            }
        }
    }
    held
}

/// How many of the store-wide files the process has open (the lock file,
/// the journal's current segment, the segment the filler made ahead, and
/// during a checkpoint the one being retired: it must not grow with the
/// accounts that came and went).
fn store_wide_files_open(pid: u32, store: &Path) -> usize {
    let wide = store_wide(store);
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| wide.contains(t))
        .count()
}

fn login_select_logout(addr: std::net::SocketAddr, user: &str) {
    let mut c = plain(addr);
    let greeting = c.line();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let (_, st) = c.command(&format!("LOGIN {user} {PASSWORD}"));
    assert!(st.starts_with("OK"), "LOGIN {user}: {st}");
    let (untagged, st) = c.command("SELECT INBOX");
    assert!(st.starts_with("OK"), "SELECT: {st}");
    assert!(
        untagged.iter().any(|l| l.ends_with("EXISTS\r\n")),
        "{untagged:?}"
    );
    let (_, st) = c.command("LOGOUT");
    assert!(st.starts_with("OK"), "LOGOUT: {st}");
}

#[test]
fn many_accounts_in_and_out_leave_no_mailbox_open_and_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[auth]\nallow_plaintext = true\n\n[store]\nopen_mailbox_grace_secs = 1\n",
    );
    let cfg = cfg.to_str().unwrap();
    // one real argon2 hash (default parameters), shared by every account
    add_user(dir.path(), cfg, "u0@example.com", PASSWORD);
    let users_file = dir.path().join("data/users.toml");
    let text = std::fs::read_to_string(&users_file).unwrap();
    let phc = text
        .lines()
        .find_map(|l| l.strip_prefix("password = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let mut users = String::new();
    for i in 0..WARM_UP + ACCOUNTS {
        users.push_str(&format!(
            "[[user]]\nname = \"u{i}@example.com\"\npassword = \"{phc}\"\n\n"
        ));
    }
    std::fs::write(&users_file, users).unwrap();

    let mut server = Server::start(dir.path(), &["-c", cfg, "serve"]);
    let pid = server.child.id();
    let addr = server.imap.unwrap();
    let store = dir.path().join("data/store");

    for i in 0..WARM_UP {
        login_select_logout(addr, &format!("u{i}@example.com"));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let before = uss_kib(pid);
    for i in WARM_UP..WARM_UP + ACCOUNTS {
        login_select_logout(addr, &format!("u{i}@example.com"));
    }
    let right_after = store_files_held(pid, &store);
    assert!(
        !right_after.is_empty(),
        "the last mailboxes are kept during their grace period"
    );
    // grace 1 s, and the evictor looks every 250 ms
    std::thread::sleep(Duration::from_millis(2500));
    let held = store_files_held(pid, &store);
    let after = uss_kib(pid);
    let growth = after.saturating_sub(before);
    eprintln!(
        "USS before {before} KiB, after {ACCOUNTS} accounts {after} KiB: +{growth} KiB ({} KiB per account)",
        growth / ACCOUNTS as u64
    );
    let wide = store_wide_files_open(pid, &store);
    assert!(
        wide <= 4,
        "{wide} store-wide files (lock, journal segments) open after {ACCOUNTS} accounts: {:#?}",
        store_wide(&store)
    );
    assert!(
        held.is_empty(),
        "{} store files still mapped or open after the grace period (USS +{growth} KiB): {held:#?}",
        held.len()
    );
    assert!(
        growth <= MAX_GROWTH_KIB,
        "USS grew by {growth} KiB for {ACCOUNTS} accounts (bound {MAX_GROWTH_KIB} KiB)"
    );
    let _ = server.signal_and_wait("TERM", Duration::from_secs(10));
}
