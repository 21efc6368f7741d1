//! The billing plugin built as a cdylib by the workspace and loaded through
//! the loader: a child process recording a stream of events is killed with
//! SIGKILL mid-stream (twice), the stream is replayed, and the ledger has
//! lost nothing and counted nothing twice: the monthly reports equal the
//! tables computed by hand below.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailroom_plugin::{
    ArchiveEvent, ArchiveEventKind, BillingMonth, BillingPluginHandle, BusinessReport, CallLimits,
    FailureKind, PluginError, PluginKind, PluginLibrary, Recorded, load_billing_sink,
};
use mailroom_testkit::cdylib;

const CHILD_LEDGER: &str = "MAILROOM_BILLING_TEST_CHILD_LEDGER";
const CHILD_PLUGIN: &str = "MAILROOM_BILLING_TEST_CHILD_PLUGIN";
const THIS_TEST: &str = "sigkill_mid_stream_loses_nothing_and_counts_nothing_twice";

// 2026, seconds since 1970 UTC.
const OCT_05: i64 = 1_791_158_400;
const OCT_09: i64 = 1_791_504_000;
const OCT_20: i64 = 1_792_454_400;
const OCT_25: i64 = 1_792_886_400;
const NOV_11_NOON: i64 = 1_794_398_400;
const NOV_16: i64 = 1_794_787_200;
const NOV_21: i64 = 1_795_219_200;
const NOV_25_0600: i64 = 1_795_586_400;
const NOV_26: i64 = 1_795_651_200;
const DEC_01: i64 = 1_796_083_200;

fn settings(ledger: &Path) -> String {
    format!(
        "ledger = {:?}\n[price]\ncurrency = \"EUR\"\nuser_day = \"0.05\"\nmessage = \"0.001\"\ngb_month = \"0.50\"\n",
        ledger.display().to_string()
    )
}

fn event(id: String, at_unix: i64, user: &str, kind: ArchiveEventKind) -> ArchiveEvent {
    let domain = user
        .rsplit_once('@')
        .map(|(_, d)| d.to_owned())
        .unwrap_or_default();
    ArchiveEvent {
        id,
        at_unix,
        domain,
        user: user.into(),
        kind,
    }
}

/// The test traffic: 599 events over October and November 2026.
fn events() -> Vec<ArchiveEvent> {
    use ArchiveEventKind::*;
    let msg = |size| MessageArchived { size };
    let (u1, u2, u3, u4) = (
        "u1@a.example",
        "u2@a.example",
        "u3@b.example",
        "u4@c.example",
    );
    let mut e = vec![
        event("c-u4-on".into(), OCT_05, u4, Enabled),
        event("c-u4-off".into(), OCT_09, u4, Disabled),
        event("a-u1-on".into(), OCT_20, u1, Enabled),
        event("a-u1-oct-msg".into(), OCT_25, u1, msg(1_000_000_000)),
        event("a-u2-on".into(), NOV_11_NOON, u2, Enabled),
    ];
    for i in 0..480 {
        let user = if i % 2 == 0 { u1 } else { u2 };
        e.push(event(format!("a-msg-{i:03}"), NOV_16, user, msg(2_000_000)));
    }
    e.push(event("a-u1-off".into(), NOV_21, u1, Disabled));
    e.push(event("a-u1-on-again".into(), NOV_25_0600, u1, Enabled));
    e.push(event(
        "a-retention".into(),
        NOV_26,
        u1,
        OverrideUsed {
            mailbox: "u1@a.example/2026-10/in".into(),
            reason: "retention: 30 days".into(),
            removed_bytes: 1_000_000_000,
        },
    ));
    e.push(event("b-u3-on".into(), DEC_01 - 1, u3, Enabled));
    for i in 0..100 {
        e.push(event(format!("b-msg-{i:03}"), DEC_01 - 1, u3, msg(500_000)));
    }
    for i in 0..10 {
        e.push(event(format!("a-dec-msg-{i}"), DEC_01, u2, msg(1_000_000)));
    }
    e
}

/// November 2026 (30 days = 2,592,000 s), by hand:
///
/// a.example: u1 on Nov 1–20 (off at Nov 21 00:00) and Nov 25–30: 26 days;
/// u2 on Nov 11–30: 20 days. 480 messages of 2,000,000 bytes. Stored: the
/// 10^9-byte October message all month, minus from Nov 26 (5 days) after the
/// retention override, plus 9.6·10^8 bytes from Nov 16 (15 days):
/// (10^9·2,592,000 + 9.6·10^8·1,296,000 − 10^9·432,000) / (10^9·2,592,000)
/// = 1.3133333… GB-months. Charge 46·0.05 + 480·0.001 + 1.3133333·0.50 =
/// 2.30 + 0.48 + 0.6566667 = 3.4366667 → 3.44.
///
/// b.example: u3 on from Nov 30 23:59:59: 1 day; 100 messages of 500,000
/// bytes stored for 1 s (0.0000000193 GB-months → 0). Charge 0.05 + 0.10 =
/// 0.15. The December messages and c.example (October only) do not count.
fn november() -> Vec<BusinessReport> {
    vec![
        BusinessReport {
            domain: "a.example".into(),
            archived_users: 2,
            user_days: 46,
            messages: 480,
            bytes_archived: 960_000_000,
            gb_month_millionths: 1_313_333,
            overrides_used: 1,
            charge_cents: 344,
        },
        BusinessReport {
            domain: "b.example".into(),
            archived_users: 1,
            user_days: 1,
            messages: 100,
            bytes_archived: 50_000_000,
            gb_month_millionths: 0,
            overrides_used: 0,
            charge_cents: 15,
        },
    ]
}

/// October 2026 (31 days = 2,678,400 s), by hand:
///
/// a.example: u1 on Oct 20–31: 12 days; 1 message of 10^9 bytes stored
/// from Oct 25 (7 days): 604,800 / 2,678,400 = 0.2258064 GB-months.
/// Charge 0.60 + 0.001 + 0.1129032 = 0.7139032 → 0.71.
/// c.example: u4 on Oct 5 to Oct 9 00:00: 4 days; 0.20.
fn october() -> Vec<BusinessReport> {
    vec![
        BusinessReport {
            domain: "a.example".into(),
            archived_users: 1,
            user_days: 12,
            messages: 1,
            bytes_archived: 1_000_000_000,
            gb_month_millionths: 225_806,
            overrides_used: 0,
            charge_cents: 71,
        },
        BusinessReport {
            domain: "c.example".into(),
            archived_users: 1,
            user_days: 4,
            messages: 0,
            bytes_archived: 0,
            gb_month_millionths: 0,
            overrides_used: 0,
            charge_cents: 20,
        },
    ]
}

/// The child: loads the plugin and records every event from the first,
/// printing `ack INDEX` after each acknowledged one, until it is killed.
fn child(ledger: PathBuf, plugin: PathBuf) -> ! {
    let library = PluginLibrary::load(&plugin, PluginKind::Billing).unwrap();
    let handle = BillingPluginHandle::new(library.into(), &settings(&ledger)).unwrap();
    for (i, e) in events().iter().enumerate() {
        handle.record(e).unwrap();
        println!("ack {i}");
    }
    std::process::exit(0)
}

/// Runs a child that replays the stream; SIGKILLs it after `kill_after`
/// acknowledgements. Returns the indexes it acknowledged.
fn run_child_and_kill(ledger: &Path, plugin: &Path, kill_after: usize) -> BTreeSet<usize> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_LEDGER, ledger)
        .env(CHILD_PLUGIN, plugin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = BTreeSet::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(i) = line.strip_prefix("ack ") {
            acked.insert(i.parse::<usize>().unwrap());
            if acked.len() == kill_after {
                child.kill().unwrap();
            }
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was killed mid-stream: {status:?}"
    );
    assert!(
        acked.len() >= kill_after && acked.len() < events().len(),
        "{}",
        acked.len()
    );
    acked
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_counts_nothing_twice() {
    if let (Some(ledger), Some(plugin)) = (
        std::env::var_os(CHILD_LEDGER),
        std::env::var_os(CHILD_PLUGIN),
    ) {
        child(ledger.into(), plugin.into());
    }
    let plugin = cdylib::build("mailroom-billing-archive");
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite");
    let all = events();

    // Two crashes: each child starts the stream from the beginning again,
    // as a host re-sending everything not known to be recorded would.
    let first = run_child_and_kill(&ledger, &plugin, 150);
    let second = run_child_and_kill(&ledger, &plugin, 350);
    let acked: BTreeSet<usize> = first.union(&second).copied().collect();

    // The restarted host.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sink = load_billing_sink(&plugin, &settings(&ledger), CallLimits::default()).unwrap();
        // Nothing acknowledged was lost.
        for &i in &acked {
            assert_eq!(
                sink.record(&all[i]).await.unwrap(),
                Recorded::Duplicate,
                "event {i}"
            );
        }
        // Replaying the whole stream records the rest once...
        let mut new = 0;
        for e in &all {
            if sink.record(e).await.unwrap() == Recorded::New {
                new += 1;
            }
        }
        assert!(
            new <= all.len() - acked.len(),
            "{new} new of {} unacknowledged",
            all.len() - acked.len()
        );
        eprintln!(
            "children acknowledged {} and {} events before SIGKILL ({} distinct); \
             the replay recorded {new} new of {}",
            first.len(),
            second.len(),
            acked.len(),
            all.len()
        );
        // ... and a second replay changes nothing.
        for e in &all {
            assert_eq!(
                sink.record(e).await.unwrap(),
                Recorded::Duplicate,
                "{}",
                e.id
            );
        }

        let nov = sink
            .report(BillingMonth::new(2026, 11).unwrap())
            .await
            .unwrap();
        assert_eq!(nov.currency, "EUR");
        assert_eq!(nov.businesses, november());
        let oct = sink
            .report(BillingMonth::new(2026, 10).unwrap())
            .await
            .unwrap();
        assert_eq!(oct.businesses, october());
        let dec = sink
            .report(BillingMonth::new(2026, 12).unwrap())
            .await
            .unwrap();
        assert_eq!(dec.businesses.iter().map(|b| b.messages).sum::<u64>(), 10);
        let text = nov.to_string();
        assert!(
            text.contains("a.example") && text.contains("3.44"),
            "{text}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_with_other_content_is_refused() {
    let plugin = cdylib::build("mailroom-billing-archive");
    let dir = tempfile::tempdir().unwrap();
    let sink = load_billing_sink(
        &plugin,
        &settings(&dir.path().join("l.sqlite")),
        CallLimits::default(),
    )
    .unwrap();
    let e = event(
        "id-1".into(),
        NOV_16,
        "u@a.example",
        ArchiveEventKind::MessageArchived { size: 10 },
    );
    assert_eq!(sink.record(&e).await.unwrap(), Recorded::New);
    let mut other = e.clone();
    other.kind = ArchiveEventKind::MessageArchived { size: 11 };
    let err = sink.record(&other).await;
    assert!(
        matches!(&err, Err(PluginError::Call { kind: FailureKind::InvalidInput, message, .. })
            if message.contains("different content")),
        "{err:?}"
    );
    let report = sink
        .report(BillingMonth::new(2026, 11).unwrap())
        .await
        .unwrap();
    assert_eq!(report.businesses[0].bytes_archived, 10);
}

#[test]
fn bad_settings_are_refused_at_load() {
    let plugin = cdylib::build("mailroom-billing-archive");
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l.sqlite");
    let bad_price = settings(&ledger).replace("\"0.05\"", "\"0.05.1\"");
    let err = load_billing_sink(&plugin, &bad_price, CallLimits::default())
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&err, Err(m) if m.contains("price \"0.05.1\"")),
        "{err:?}"
    );
    let float_price = settings(&ledger).replace("\"0.05\"", "0.05");
    assert!(load_billing_sink(&plugin, &float_price, CallLimits::default()).is_err());
    // An auth plugin is not a billing plugin.
    let auth = cdylib::build("mailroom-plugin-test-panics");
    let err = load_billing_sink(&auth, &settings(&ledger), CallLimits::default()).map(|_| ());
    assert!(
        matches!(err, Err(PluginError::KindMismatch { .. })),
        "{err:?}"
    );
}
