//! Metrics: one registry of counters and latency histograms that every
//! protocol's metrics layer writes into, rendered in the Prometheus text
//! exposition format.
//!
//! An integrator creates one [`Metrics`] and hands it, behind an `Arc`, to
//! the metrics layers of every server it runs (`mailroom_imap::layer::metrics`,
//! `mailroom_pop3::layer::metrics`, `mailroom_lmtp::layer::metrics`), then
//! serves [`Metrics::render_prometheus`] wherever its scraper looks.
//!
//! What is recorded, per [`Protocol`]:
//!
//! | series | type | labels |
//! |---|---|---|
//! | `mailroom_commands_total` | counter | `protocol`, `command`, `status` |
//! | `mailroom_command_duration_seconds` | histogram ([`LATENCY_BUCKETS`]) | `protocol`, `command` |
//! | `mailroom_connections_opened_total` | counter | `protocol` |
//! | `mailroom_connections_open` | gauge | `protocol` |
//! | `mailroom_login_failures_total` | counter | `protocol` |
//! | `mailroom_lmtp_deliveries_total` | counter | `result` (per recipient) |
//!
//! ## Bounded cardinality
//!
//! Every label value comes from a fixed list in this module, never from the
//! client's bytes: a command name is looked up in [`Protocol::commands`] and
//! anything else (a made-up keyword, a command this list does not know yet)
//! is counted as [`OTHER`]; a status outside [`Protocol::statuses`] is
//! counted as [`OTHER`] too. User names, mailbox names and addresses are
//! never labels. So the registry is a fixed block of atomics allocated once
//! by [`Metrics::new`], no map grows, and recording is a few relaxed atomic
//! additions: no lock, no allocation.
//!
//! Series of commands that were never seen are left out of the rendering
//! (as Prometheus client libraries do for labelled series); the connection,
//! login and delivery series are always there, at zero if nothing happened.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use mailroom_core::metrics::{Metrics, Protocol};
//!
//! let metrics = Arc::new(Metrics::new());
//! let conn = metrics.connection_opened(Protocol::Imap);
//! metrics.record_command(Protocol::Imap, "NOOP", "OK", Duration::from_micros(300));
//! // Not a known command: counted, but as "other".
//! metrics.record_command(Protocol::Imap, "XYZZY", "BAD", Duration::from_micros(80));
//! assert_eq!(metrics.commands(Protocol::Imap, "NOOP", "OK"), 1);
//! assert_eq!(metrics.commands(Protocol::Imap, "other", "BAD"), 1);
//! assert_eq!(metrics.connections_open(Protocol::Imap), 1);
//! drop(conn);
//! assert_eq!(metrics.connections_open(Protocol::Imap), 0);
//!
//! let text = metrics.render_prometheus();
//! assert!(text.contains(r#"mailroom_commands_total{protocol="imap",command="NOOP",status="OK"} 1"#));
//! assert!(text.contains(r#"mailroom_command_duration_seconds_bucket{protocol="imap",command="NOOP",le="0.001"} 1"#));
//! assert!(!text.contains("XYZZY"));
//! ```
//!
//! The module is plain `std` (atomics); no metrics crate is needed for a
//! fixed set of series and one text format.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The label value for a command or status outside the fixed lists.
pub const OTHER: &str = "other";

/// The IMAP command names counted by name (the names
/// `mailroom_imap::command::Command::name` gives; `UID FETCH` counts as
/// `FETCH`).
pub const IMAP_COMMANDS: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "ID",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGIN",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "XLIST",
    "NAMESPACE",
    "STATUS",
    "APPEND",
    "ENABLE",
    "IDLE",
    "GETACL",
    "SETACL",
    "DELETEACL",
    "LISTRIGHTS",
    "MYRIGHTS",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
];

/// The POP3 command names counted by name (RFC 1939, RFC 2449, RFC 2595,
/// RFC 5034).
pub const POP3_COMMANDS: &[&str] = &[
    "CAPA", "USER", "PASS", "APOP", "AUTH", "STLS", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET",
    "QUIT", "TOP", "UIDL",
];

/// The LMTP command names counted by name. `MESSAGE` is the message sent
/// after `DATA`'s `354`, answered once per recipient.
pub const LMTP_COMMANDS: &[&str] = &[
    "LHLO", "MAIL", "RCPT", "DATA", "MESSAGE", "RSET", "NOOP", "QUIT",
];

/// IMAP outcomes: the tagged completion, or `BYE` when the command ended
/// the connection without one (a timeout, a failed service).
pub const IMAP_STATUSES: &[&str] = &["OK", "NO", "BAD", "BYE"];

/// POP3 outcomes.
pub const POP3_STATUSES: &[&str] = &["+OK", "-ERR"];

/// LMTP outcomes: the reply class.
pub const LMTP_STATUSES: &[&str] = &["2xx", "3xx", "4xx", "5xx"];

/// The upper bounds of the command latency histogram's buckets (the last,
/// `+Inf`, is implied).
pub const LATENCY_BUCKETS: [Duration; 7] = [
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(25),
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_millis(2500),
    Duration::from_secs(10),
];

/// The `le` label of each bucket, `+Inf` last.
const BUCKET_LABELS: [&str; 8] = ["0.001", "0.005", "0.025", "0.1", "0.5", "2.5", "10", "+Inf"];

/// A protocol with metrics of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// IMAP4rev1.
    Imap,
    /// POP3.
    Pop3,
    /// LMTP.
    Lmtp,
}

impl Protocol {
    /// Every protocol, in rendering order.
    pub const ALL: [Protocol; 3] = [Protocol::Imap, Protocol::Pop3, Protocol::Lmtp];

    /// The `protocol` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Lmtp => "lmtp",
        }
    }

    /// The command names counted by name; anything else is [`OTHER`].
    pub fn commands(self) -> &'static [&'static str] {
        match self {
            Protocol::Imap => IMAP_COMMANDS,
            Protocol::Pop3 => POP3_COMMANDS,
            Protocol::Lmtp => LMTP_COMMANDS,
        }
    }

    /// The outcomes counted by name; anything else is [`OTHER`].
    pub fn statuses(self) -> &'static [&'static str] {
        match self {
            Protocol::Imap => IMAP_STATUSES,
            Protocol::Pop3 => POP3_STATUSES,
            Protocol::Lmtp => LMTP_STATUSES,
        }
    }

    fn index(self) -> usize {
        match self {
            Protocol::Imap => 0,
            Protocol::Pop3 => 1,
            Protocol::Lmtp => 2,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one LMTP recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryResult {
    /// Delivered (a `2xx` reply for the recipient after the message).
    Accepted,
    /// Refused for now (`4xx`, at `RCPT` or after the message): the MTA retries.
    TempFailed,
    /// Refused for good (`5xx`, at `RCPT` or after the message): the MTA bounces.
    PermFailed,
}

impl DeliveryResult {
    /// Every result, in rendering order.
    pub const ALL: [DeliveryResult; 3] = [
        DeliveryResult::Accepted,
        DeliveryResult::TempFailed,
        DeliveryResult::PermFailed,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Accepted => "accepted",
            DeliveryResult::TempFailed => "temp_failed",
            DeliveryResult::PermFailed => "perm_failed",
        }
    }

    fn index(self) -> usize {
        match self {
            DeliveryResult::Accepted => 0,
            DeliveryResult::TempFailed => 1,
            DeliveryResult::PermFailed => 2,
        }
    }
}

/// One latency histogram: per-bucket (not cumulative) counts and the sum in
/// microseconds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; 8],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| elapsed <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The cumulative bucket counts (`+Inf` last, which is the count).
    fn cumulative(&self) -> [u64; 8] {
        let mut out = [0; 8];
        let mut total = 0u64;
        for (slot, bucket) in out.iter_mut().zip(&self.buckets) {
            total = total.saturating_add(bucket.load(Ordering::Relaxed));
            *slot = total;
        }
        out
    }
}

/// The series of one protocol.
#[derive(Debug)]
struct ProtocolMetrics {
    protocol: Protocol,
    /// `(commands + 1) × (statuses + 1)` counters, [`OTHER`] last on both axes.
    commands: Box<[AtomicU64]>,
    /// One histogram per command, [`OTHER`] last.
    latency: Box<[Histogram]>,
    connections_opened: AtomicU64,
    connections_open: AtomicU64,
    login_failures: AtomicU64,
}

impl ProtocolMetrics {
    fn new(protocol: Protocol) -> ProtocolMetrics {
        let commands = protocol.commands().len() + 1;
        let statuses = protocol.statuses().len() + 1;
        ProtocolMetrics {
            protocol,
            commands: (0..commands * statuses)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: (0..commands).map(|_| Histogram::default()).collect(),
            connections_opened: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            login_failures: AtomicU64::new(0),
        }
    }

    /// The index of `command` in the protocol's list, or of [`OTHER`].
    fn command_index(&self, command: &str) -> usize {
        let known = self.protocol.commands();
        known
            .iter()
            .position(|c| c.eq_ignore_ascii_case(command))
            .unwrap_or(known.len())
    }

    fn status_index(&self, status: &str) -> usize {
        let known = self.protocol.statuses();
        known
            .iter()
            .position(|s| s.eq_ignore_ascii_case(status))
            .unwrap_or(known.len())
    }

    fn counter(&self, command: usize, status: usize) -> &AtomicU64 {
        &self.commands[command * (self.protocol.statuses().len() + 1) + status]
    }

    fn command_name(&self, index: usize) -> &'static str {
        self.protocol
            .commands()
            .get(index)
            .copied()
            .unwrap_or(OTHER)
    }

    fn status_name(&self, index: usize) -> &'static str {
        self.protocol
            .statuses()
            .get(index)
            .copied()
            .unwrap_or(OTHER)
    }
}

/// The registry: create one, share it (`Arc<Metrics>`) between every
/// server's metrics layer, render it with [`Metrics::render_prometheus`].
/// See the [module docs](self).
pub struct Metrics {
    protocols: [ProtocolMetrics; 3],
    deliveries: [AtomicU64; 3],
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Metrics");
        for p in &self.protocols {
            s.field(
                p.protocol.as_str(),
                &format_args!(
                    "{} connections open",
                    p.connections_open.load(Ordering::Relaxed)
                ),
            );
        }
        s.finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty registry (every series at zero).
    pub fn new() -> Metrics {
        Metrics {
            protocols: Protocol::ALL.map(ProtocolMetrics::new),
            deliveries: Default::default(),
        }
    }

    fn of(&self, protocol: Protocol) -> &ProtocolMetrics {
        &self.protocols[protocol.index()]
    }

    /// Records one completed command: its name (outside
    /// [`Protocol::commands`]: counted as [`OTHER`]), its outcome (outside
    /// [`Protocol::statuses`]: [`OTHER`]) and how long it took.
    pub fn record_command(
        &self,
        protocol: Protocol,
        command: &str,
        status: &str,
        elapsed: Duration,
    ) {
        let p = self.of(protocol);
        let command = p.command_index(command);
        p.counter(command, p.status_index(status))
            .fetch_add(1, Ordering::Relaxed);
        p.latency[command].observe(elapsed);
    }

    /// Counts a failed login (wrong password, unknown user, refused
    /// mechanism that reached the authenticator).
    pub fn login_failed(&self, protocol: Protocol) {
        self.of(protocol)
            .login_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts what became of one LMTP recipient.
    pub fn delivery(&self, result: DeliveryResult) {
        self.deliveries[result.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new connection; it stays in `mailroom_connections_open`
    /// until the returned guard is dropped.
    pub fn connection_opened(self: &Arc<Self>, protocol: Protocol) -> ConnectionGuard {
        let p = self.of(protocol);
        p.connections_opened.fetch_add(1, Ordering::Relaxed);
        p.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            metrics: self.clone(),
            protocol,
        }
    }

    /// How many times `command` ended with `status` (both looked up as
    /// [`Metrics::record_command`] does, so `"other"` reads the catch-all).
    pub fn commands(&self, protocol: Protocol, command: &str, status: &str) -> u64 {
        let p = self.of(protocol);
        p.counter(p.command_index(command), p.status_index(status))
            .load(Ordering::Relaxed)
    }

    /// How many latencies were observed for `command` (all outcomes).
    pub fn command_latency_count(&self, protocol: Protocol, command: &str) -> u64 {
        let p = self.of(protocol);
        p.latency[p.command_index(command)].cumulative()[BUCKET_LABELS.len() - 1]
    }

    /// Connections opened since the registry was created.
    pub fn connections_opened(&self, protocol: Protocol) -> u64 {
        self.of(protocol).connections_opened.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn connections_open(&self, protocol: Protocol) -> u64 {
        self.of(protocol).connections_open.load(Ordering::Relaxed)
    }

    /// Failed logins counted.
    pub fn login_failures(&self, protocol: Protocol) -> u64 {
        self.of(protocol).login_failures.load(Ordering::Relaxed)
    }

    /// LMTP recipients with this result.
    pub fn deliveries(&self, result: DeliveryResult) -> u64 {
        self.deliveries[result.index()].load(Ordering::Relaxed)
    }

    /// The registry in the Prometheus text exposition format (version
    /// 0.0.4: serve it as `text/plain; version=0.0.4`).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) -> fmt::Result {
        header(
            out,
            "mailroom_commands_total",
            "Commands completed, by protocol, command and outcome.",
            "counter",
        )?;
        for p in &self.protocols {
            let statuses = p.protocol.statuses().len() + 1;
            for command in 0..p.latency.len() {
                for status in 0..statuses {
                    let n = p.counter(command, status).load(Ordering::Relaxed);
                    if n > 0 {
                        writeln!(
                            out,
                            "mailroom_commands_total{{protocol=\"{}\",command=\"{}\",status=\"{}\"}} {n}",
                            p.protocol,
                            p.command_name(command),
                            p.status_name(status),
                        )?;
                    }
                }
            }
        }

        header(
            out,
            "mailroom_command_duration_seconds",
            "Time from a command reaching the session stack to its completion.",
            "histogram",
        )?;
        for p in &self.protocols {
            for (command, histogram) in p.latency.iter().enumerate() {
                let cumulative = histogram.cumulative();
                let count = cumulative[cumulative.len() - 1];
                if count == 0 {
                    continue;
                }
                let labels = format!(
                    "protocol=\"{}\",command=\"{}\"",
                    p.protocol,
                    p.command_name(command)
                );
                for (le, n) in BUCKET_LABELS.iter().zip(cumulative) {
                    writeln!(
                        out,
                        "mailroom_command_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                    )?;
                }
                let micros = histogram.sum_micros.load(Ordering::Relaxed);
                writeln!(
                    out,
                    "mailroom_command_duration_seconds_sum{{{labels}}} {}.{:06}",
                    micros / 1_000_000,
                    micros % 1_000_000
                )?;
                writeln!(
                    out,
                    "mailroom_command_duration_seconds_count{{{labels}}} {count}"
                )?;
            }
        }

        let per_protocol: [(&str, &str, &str, CounterOf); 3] = [
            (
                "mailroom_connections_opened_total",
                "Connections opened.",
                "counter",
                |p| &p.connections_opened,
            ),
            (
                "mailroom_connections_open",
                "Connections open now.",
                "gauge",
                |p| &p.connections_open,
            ),
            (
                "mailroom_login_failures_total",
                "Failed logins.",
                "counter",
                |p| &p.login_failures,
            ),
        ];
        for (name, help, kind, counter) in per_protocol {
            header(out, name, help, kind)?;
            for p in &self.protocols {
                let value = counter(p).load(Ordering::Relaxed);
                writeln!(out, "{name}{{protocol=\"{}\"}} {value}", p.protocol)?;
            }
        }

        header(
            out,
            "mailroom_lmtp_deliveries_total",
            "LMTP recipients, by what became of them.",
            "counter",
        )?;
        for result in DeliveryResult::ALL {
            writeln!(
                out,
                "mailroom_lmtp_deliveries_total{{result=\"{}\"}} {}",
                result.as_str(),
                self.deliveries(result)
            )?;
        }
        Ok(())
    }
}

/// Picks one per-protocol counter.
type CounterOf = fn(&ProtocolMetrics) -> &AtomicU64;

fn header(out: &mut String, name: &str, help: &str, kind: &str) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// Keeps a connection counted in `mailroom_connections_open` until dropped
/// (see [`Metrics::connection_opened`]).
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
    protocol: Protocol,
}

impl ConnectionGuard {
    /// The registry the connection is counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The connection's protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .of(self.protocol)
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn renders_a_small_registry_exactly() {
        let metrics = Arc::new(Metrics::new());
        let _imap = metrics.connection_opened(Protocol::Imap);
        drop(metrics.connection_opened(Protocol::Lmtp));
        metrics.record_command(Protocol::Imap, "LOGIN", "OK", Duration::from_micros(1500));
        metrics.record_command(Protocol::Imap, "fetch", "OK", Duration::from_micros(250));
        metrics.record_command(Protocol::Imap, "FETCH", "NO", 3 * Duration::from_secs(4));
        metrics.record_command(Protocol::Pop3, "NOPE", "-ERR", MS);
        metrics.record_command(Protocol::Lmtp, "RCPT", "5xx", 30 * MS);
        metrics.login_failed(Protocol::Pop3);
        metrics.delivery(DeliveryResult::Accepted);
        metrics.delivery(DeliveryResult::PermFailed);
        metrics.delivery(DeliveryResult::PermFailed);

        let expected = r#"# HELP mailroom_commands_total Commands completed, by protocol, command and outcome.
# TYPE mailroom_commands_total counter
mailroom_commands_total{protocol="imap",command="LOGIN",status="OK"} 1
mailroom_commands_total{protocol="imap",command="FETCH",status="OK"} 1
mailroom_commands_total{protocol="imap",command="FETCH",status="NO"} 1
mailroom_commands_total{protocol="pop3",command="other",status="-ERR"} 1
mailroom_commands_total{protocol="lmtp",command="RCPT",status="5xx"} 1
# HELP mailroom_command_duration_seconds Time from a command reaching the session stack to its completion.
# TYPE mailroom_command_duration_seconds histogram
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="0.001"} 0
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="0.005"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="0.025"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="0.1"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="0.5"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="2.5"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="10"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="LOGIN",le="+Inf"} 1
mailroom_command_duration_seconds_sum{protocol="imap",command="LOGIN"} 0.001500
mailroom_command_duration_seconds_count{protocol="imap",command="LOGIN"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="0.001"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="0.005"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="0.025"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="0.1"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="0.5"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="2.5"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="10"} 1
mailroom_command_duration_seconds_bucket{protocol="imap",command="FETCH",le="+Inf"} 2
mailroom_command_duration_seconds_sum{protocol="imap",command="FETCH"} 12.000250
mailroom_command_duration_seconds_count{protocol="imap",command="FETCH"} 2
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="0.001"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="0.005"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="0.025"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="0.1"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="0.5"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="2.5"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="10"} 1
mailroom_command_duration_seconds_bucket{protocol="pop3",command="other",le="+Inf"} 1
mailroom_command_duration_seconds_sum{protocol="pop3",command="other"} 0.001000
mailroom_command_duration_seconds_count{protocol="pop3",command="other"} 1
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="0.001"} 0
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="0.005"} 0
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="0.025"} 0
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="0.1"} 1
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="0.5"} 1
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="2.5"} 1
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="10"} 1
mailroom_command_duration_seconds_bucket{protocol="lmtp",command="RCPT",le="+Inf"} 1
mailroom_command_duration_seconds_sum{protocol="lmtp",command="RCPT"} 0.030000
mailroom_command_duration_seconds_count{protocol="lmtp",command="RCPT"} 1
# HELP mailroom_connections_opened_total Connections opened.
# TYPE mailroom_connections_opened_total counter
mailroom_connections_opened_total{protocol="imap"} 1
mailroom_connections_opened_total{protocol="pop3"} 0
mailroom_connections_opened_total{protocol="lmtp"} 1
# HELP mailroom_connections_open Connections open now.
# TYPE mailroom_connections_open gauge
mailroom_connections_open{protocol="imap"} 1
mailroom_connections_open{protocol="pop3"} 0
mailroom_connections_open{protocol="lmtp"} 0
# HELP mailroom_login_failures_total Failed logins.
# TYPE mailroom_login_failures_total counter
mailroom_login_failures_total{protocol="imap"} 0
mailroom_login_failures_total{protocol="pop3"} 1
mailroom_login_failures_total{protocol="lmtp"} 0
# HELP mailroom_lmtp_deliveries_total LMTP recipients, by what became of them.
# TYPE mailroom_lmtp_deliveries_total counter
mailroom_lmtp_deliveries_total{result="accepted"} 1
mailroom_lmtp_deliveries_total{result="temp_failed"} 0
mailroom_lmtp_deliveries_total{result="perm_failed"} 2
"#;
        assert_eq!(metrics.render_prometheus(), expected);
    }

    #[test]
    fn bucket_bounds_are_inclusive() {
        let metrics = Metrics::new();
        for bound in LATENCY_BUCKETS {
            metrics.record_command(Protocol::Pop3, "STAT", "+OK", bound);
        }
        metrics.record_command(Protocol::Pop3, "STAT", "+OK", Duration::from_secs(11));
        let text = metrics.render_prometheus();
        for (i, le) in BUCKET_LABELS.iter().enumerate() {
            let line = format!(
                "mailroom_command_duration_seconds_bucket{{protocol=\"pop3\",command=\"STAT\",le=\"{le}\"}} {}\n",
                i + 1
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains(
            "mailroom_command_duration_seconds_sum{protocol=\"pop3\",command=\"STAT\"} 24.131000\n"
        ));
    }

    #[test]
    fn empty_registry_has_only_the_fixed_series() {
        let text = Metrics::new().render_prometheus();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        // 3 protocols × (opened, open, login failures) + 3 delivery results.
        assert_eq!(samples.len(), 12);
        assert!(samples.iter().all(|l| l.ends_with(" 0")));
        // Every family is declared even when it has no sample yet.
        assert_eq!(text.matches("# TYPE ").count(), 6);
    }

    #[test]
    fn connection_guards_count_open_connections() {
        let metrics = Arc::new(Metrics::new());
        let a = metrics.connection_opened(Protocol::Pop3);
        let b = metrics.connection_opened(Protocol::Pop3);
        assert_eq!(metrics.connections_open(Protocol::Pop3), 2);
        drop(a);
        assert_eq!(metrics.connections_open(Protocol::Pop3), 1);
        assert_eq!(b.protocol(), Protocol::Pop3);
        drop(b);
        assert_eq!(metrics.connections_open(Protocol::Pop3), 0);
        assert_eq!(metrics.connections_opened(Protocol::Pop3), 2);
        assert_eq!(metrics.connections_opened(Protocol::Imap), 0);
    }

    #[test]
    fn known_names_are_distinct_and_never_other() {
        for protocol in Protocol::ALL {
            for list in [protocol.commands(), protocol.statuses()] {
                let mut seen = std::collections::HashSet::new();
                for name in list {
                    assert!(seen.insert(name.to_ascii_uppercase()), "{name} twice");
                    assert_ne!(*name, OTHER);
                }
            }
        }
    }

    /// The most sample lines a registry can ever render.
    fn series_bound() -> usize {
        let mut n = 12;
        for protocol in Protocol::ALL {
            let commands = protocol.commands().len() + 1;
            n += commands * (protocol.statuses().len() + 1) + commands * (BUCKET_LABELS.len() + 2);
        }
        n
    }

    proptest! {
        /// Whatever names a client makes up, no label value comes from them
        /// and the number of series stays under the fixed bound.
        #[test]
        fn cardinality_is_bounded(
            records in proptest::collection::vec(
                (0usize..3, "[A-Za-z\"{}=\\\\ ]{0,12}", "[-+A-Za-z0-9]{0,5}", 0u64..20_000_000),
                0..200,
            )
        ) {
            let metrics = Metrics::new();
            for (p, command, status, micros) in &records {
                metrics.record_command(Protocol::ALL[*p], command, status, Duration::from_micros(*micros));
            }
            let text = metrics.render_prometheus();
            let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            prop_assert!(samples.len() <= series_bound());
            let total: u64 = Protocol::ALL
                .iter()
                .map(|p| {
                    let mut n = 0;
                    for c in p.commands().iter().chain([&OTHER]) {
                        n += metrics.command_latency_count(*p, c);
                    }
                    n
                })
                .sum();
            prop_assert_eq!(total, records.len() as u64);
            for line in samples {
                for label in line.split(['{', ',']).skip(1) {
                    let Some((key, value)) = label.split_once('=') else { continue };
                    let value = value.trim_end_matches(|c: char| c != '"').trim_matches('"');
                    let allowed = match key {
                        "protocol" => Protocol::ALL.iter().any(|p| p.as_str() == value),
                        "command" => value == OTHER
                            || Protocol::ALL.iter().any(|p| p.commands().contains(&value)),
                        "status" => value == OTHER
                            || Protocol::ALL.iter().any(|p| p.statuses().contains(&value)),
                        "le" => BUCKET_LABELS.contains(&value),
                        "result" => DeliveryResult::ALL.iter().any(|r| r.as_str() == value),
                        _ => false,
                    };
                    prop_assert!(allowed, "label {} in {}", label, line);
                }
            }
        }
    }
}
