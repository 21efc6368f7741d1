//! The checker against mailroomd on both stores (0 violations), and
//! against mailroomd behind a proxy that corrupts answers (violations).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::{Options, Summary, run, run_mailroomd, user_name};
use crate::{Mailroomd, StoreKind, Stores};

fn options(clients: usize, secs: u64) -> Options {
    Options {
        clients,
        users: 2,
        duration: Duration::from_secs(secs),
        mailroomd: Some(mailroom_e2e::mailroomd_bin()),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        seed: 7,
        ..Options::default()
    }
}

fn assert_clean(s: &Summary) {
    assert_eq!(s.violations, 0, "violations: {:#?}", s.log);
    for (name, n) in &s.counts {
        if matches!(
            *name,
            "SELECT" | "FETCH" | "STORE" | "EXPUNGE" | "APPEND" | "SEARCH" | "NOOP"
        ) {
            assert!(*n > 0, "no {name} was sent: {:?}", s.counts);
        }
    }
}

#[test]
fn no_violations_against_mailroomd_on_the_memory_store() {
    let o = options(8, 10);
    let s = run_mailroomd(&o, &Stores::default(), StoreKind::Memory, 1, "mailroomd");
    assert_clean(&s.unwrap());
}

#[test]
fn no_violations_against_mailroomd_on_the_crc_store() {
    let o = options(8, 10);
    let s = run_mailroomd(&o, &Stores::default(), StoreKind::Crc, 1, "mailroomd");
    assert_clean(&s.unwrap());
}

/// Three frontends on one PostgreSQL database, each client's connections
/// going round them: what one frontend acknowledged, another shows.
///
/// It failed now and then (1 run in 4) before NOOP, CHECK and IDLE asked
/// the store to poll (`Mailbox::poll_changes`): a NOOP on one frontend did
/// not show a message another frontend had acknowledged before the NOOP
/// was sent, because the change reached it only by a later NOTIFY.
#[test]
fn no_violations_against_three_mailroomd_on_one_postgres_database() {
    let o = options(8, 10);
    let s = run_mailroomd(
        &o,
        &Stores::default(),
        StoreKind::Postgres,
        3,
        "mailroomd x3",
    );
    assert_clean(&s.unwrap());
}

/// A proxy that passes the client's bytes through and rewrites each line
/// the server sends with `corrupt`.
fn proxy(server: SocketAddr, corrupt: fn(&str) -> String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(server) else {
                return;
            };
            let (mut c_read, mut u_write) =
                (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut u_write);
                let _ = u_write.shutdown(std::net::Shutdown::Both);
            });
            let mut to_client = client;
            std::thread::spawn(move || {
                for line in BufReader::new(upstream).lines() {
                    let Ok(line) = line else { break };
                    let out = corrupt(&line);
                    if to_client
                        .write_all(format!("{out}\r\n").as_bytes())
                        .is_err()
                    {
                        break;
                    }
                }
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

/// Runs the checker for a few seconds through a corrupting proxy and
/// returns its violations.
fn corrupted(corrupt: fn(&str) -> String) -> Vec<String> {
    corrupted_for(6, corrupt)
}

/// [`corrupted`] for `secs` seconds (for a fault the clients come upon
/// more seldom).
fn corrupted_for(secs: u64, corrupt: fn(&str) -> String) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..2).map(user_name).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let m = Mailroomd::launch_with(
        tmp.path(),
        "imap",
        &Stores::default().table(StoreKind::Memory, "stress"),
        mailroom_e2e::mailroomd_bin(),
        &names,
    )
    .unwrap();
    let addr = proxy(SocketAddr::from(([127, 0, 0, 1], m.port)), corrupt);
    let o = Options {
        print_limit: 3,
        ..options(4, secs)
    };
    let s = run("mailroomd-corrupted", &[addr], &o).unwrap();
    s.log
}

fn any(log: &[String], needle: &str) -> bool {
    log.iter().any(|l| l.contains(needle))
}

#[test]
fn a_flag_dropped_from_fetch_is_a_violation() {
    let log = corrupted(|l| {
        if l.contains(" FETCH ") {
            l.replace("\\Seen", "")
                .replace("( ", "(")
                .replace("  ", " ")
        } else {
            l.to_owned()
        }
    });
    assert!(any(&log, "\\Seen should be set"), "{log:#?}");
}

#[test]
fn a_keyword_never_announced_is_a_violation() {
    let log = corrupted(|l| {
        if l.starts_with("* FLAGS") {
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_owned()
        } else {
            l.to_owned()
        }
    });
    assert!(
        any(&log, "before an untagged FLAGS announced it"),
        "{log:#?}"
    );
}

#[test]
fn a_uid_or_modseq_going_back_is_a_violation() {
    let log = corrupted(|l| {
        if let Some(i) = l.find("[APPENDUID ") {
            // the UID of every APPEND becomes 1
            let rest = &l[i + 11..];
            let v = rest.split(' ').next().unwrap_or("1");
            let end = rest.find(']').unwrap_or(rest.len());
            return format!("{}[APPENDUID {v} 1{}", &l[..i], &rest[end..]);
        }
        if let Some(i) = l.find("MODSEQ (") {
            return format!(
                "{}MODSEQ (1){}",
                &l[..i],
                &l[i..].split_once(')').map_or("", |x| x.1)
            );
        }
        l.to_owned()
    });
    assert!(any(&log, "APPENDUID: new UID 1 not above"), "{log:#?}");
    assert!(any(&log, "MODSEQ 1, but"), "{log:#?}");
}

/// A byte changed inside a message (the literal keeps its length), and
/// RFC822.SIZE one too many: each answer is held to what was appended.
#[test]
fn a_body_or_size_not_as_appended_is_a_violation() {
    let log = corrupted(|l| {
        let l = l
            .replace("line 0 of", "LINE 0 of")
            .replace("Subject: stress", "Subject: STRESS");
        match l.find("RFC822.SIZE ") {
            Some(i) => {
                let (head, rest) = l.split_at(i + 12);
                let end = rest.find([' ', ')']).unwrap_or(rest.len());
                let n: u64 = rest[..end].parse().unwrap_or(0);
                format!("{head}{}{}", n + 1, &rest[end..])
            }
            None => l,
        }
    });
    assert!(any(&log, "BODY[] is"), "{log:#?}");
    assert!(any(&log, "BODY[HEADER] is"), "{log:#?}");
    assert!(any(&log, "RFC822.SIZE"), "{log:#?}");
}

/// QRESYNC: a SELECT's `VANISHED (EARLIER)` left out; UNCHANGEDSINCE: the
/// `[MODIFIED]` code left out of the STORE's completion.
#[test]
fn vanished_or_modified_left_out_is_a_violation() {
    // (a QRESYNC SELECT back into a mailbox after a UID the client knew was
    // expunged comes ~15 times in 6 s: 20 s make a miss unlikely)
    let log = corrupted_for(20, |l| {
        if l.starts_with("* VANISHED (EARLIER)") {
            return String::new();
        }
        match (l.find("[MODIFIED "), l.find("] ")) {
            (Some(i), Some(j)) if j > i => format!("{}{}", &l[..i], &l[j + 2..]),
            _ => l.to_owned(),
        }
    });
    assert!(any(&log, "not in its VANISHED (EARLIER)"), "{log:#?}");
    assert!(any(&log, "not in [MODIFIED]"), "{log:#?}");
}

/// QRESYNC: `VANISHED (EARLIER)` naming messages no client removed.
#[test]
fn vanished_naming_live_messages_is_a_violation() {
    let log = corrupted(|l| {
        if l.starts_with("* VANISHED (EARLIER)") {
            "* VANISHED (EARLIER) 1:4000000000".to_owned()
        } else {
            l.to_owned()
        }
    });
    assert!(any(&log, "VANISHED (EARLIER) names UIDs"), "{log:#?}");
}

/// The fuzz corpus of the response reader and parser
/// (`tools/bench/fuzz/corpus/responses/`), replayed through the fuzz
/// target's harness.
#[test]
fn response_fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/responses");
    mailroom_testkit::corpus::replay(&dir, 20, super::parse::fuzz_one);
}

/// QRESYNC: the FETCHes of a SELECT's answer (the messages changed since
/// the client's MODSEQ) left out.
#[test]
fn a_qresync_select_without_its_fetches_is_a_violation() {
    thread_local! {
        /// Within a SELECT's answer, after its HIGHESTMODSEQ (one proxy
        /// thread per connection).
        static IN_SELECT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let log = corrupted(|l| {
        if l.starts_with("* OK [HIGHESTMODSEQ") {
            IN_SELECT.with(|c| c.set(true));
        } else if l.starts_with('s') {
            IN_SELECT.with(|c| c.set(false));
        } else if IN_SELECT.with(std::cell::Cell::get) && l.contains(" FETCH (") {
            return String::new();
        }
        l.to_owned()
    });
    assert!(any(&log, "gave no FETCH for"), "{log:#?}");
}

/// Missing UIDs are explained by slots without a UID where they fall in UID
/// order, one each. The 5-minute run of 50 clients (mailroomd, CRC store)
/// reported 2 violations "the session lacks UIDs [307]" after IDLEs of
/// QRESYNC sessions whose unsolicited FETCHes told UIDs in the middle of the
/// new messages (`* 63 FETCH (... UID 308 ...)` with 62 still unknown): the
/// old rule took every slot without a UID for one above every known UID.
#[test]
fn missing_uids_fit_in_the_slots_where_they_fall() {
    use super::fit_in_unknown;
    let v = [Some(1), None, Some(5), None, None];
    assert!(fit_in_unknown(&v, &[3]));
    assert!(fit_in_unknown(&v, &[3, 7, 9]));
    assert!(!fit_in_unknown(&v, &[3, 4]), "one slot between 1 and 5");
    assert!(!fit_in_unknown(&v, &[7, 8, 9]), "two slots after 5");
    assert!(!fit_in_unknown(&[Some(1), Some(5)], &[3]));
    // the run's case: UID 307 below the 308 an unsolicited FETCH told
    assert!(fit_in_unknown(&[Some(300), None, Some(308), None], &[307]));
}
