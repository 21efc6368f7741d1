//! `mailroom-billing-archive`: the archive billing plugin. It records
//! archive events in a durable ledger and reports, per business (domain)
//! and month, what the archive cost.
//!
//! Built as a `cdylib`, it is loaded by a Mailroom host as a
//! [`BillingSink`](mailroom_plugin::BillingSink):
//!
//! ```toml
//! [[plugin]]
//! path = "/usr/lib/mailroom/libmailroom_billing_archive.so"
//! kind = "billing"
//! [plugin.settings]
//! ledger = "/var/lib/mailroom/billing.sqlite"   # created if missing
//! [plugin.settings.price]
//! currency = "EUR"
//! user_day = "0.05"    # per archived user per day
//! message = "0.001"    # per message archived
//! gb_month = "0.50"    # per GB-month stored
//! ```
//!
//! # The price table
//!
//! Prices are decimal strings (never floats: money must add up exactly)
//! with at most six decimals, in `currency`:
//!
//! | setting | charged per |
//! |---|---|
//! | `user_day` | user-day: a UTC calendar day of the month on which the user's archiving was on at some moment |
//! | `message` | message archived during the month |
//! | `gb_month` | GB-month: 10^9 bytes kept in the business's archive for the whole month (bytes × seconds kept, over 10^9 × the month's seconds) |
//!
//! A business's charge is `user_days × user_day + messages × message +
//! GB-months × gb_month`, computed exactly (in rationals) and rounded once,
//! half up, to the cent. The reported GB-months are rounded half up to
//! millionths.
//!
//! # Report semantics
//!
//! - *Archived users*: users with at least one user-day in the month,
//!   users compared by name exactly as the host sends them (its canonical
//!   `local@domain`: the local part keeps its case).
//! - Archiving is on from an `enabled` event until the next `disabled`
//!   (repeats of either are ignored); a user still enabled at the end of a
//!   month is on until its end. The state carries over from earlier months.
//! - *Stored bytes* of a business: the sizes of all messages archived
//!   before the moment, minus the bytes removed under overrides (never
//!   below zero).
//! - Events timed at or after the month's end are not counted; the month
//!   is `[first day 00:00:00 UTC, next month's first day 00:00:00 UTC)`.
//! - A business appears when it has user-days, messages, stored bytes or
//!   overrides in the month.
//!
//! # The ledger
//!
//! One SQLite database (through `rusqlite`, SQLite bundled), one row per
//! event:
//!
//! ```sql
//! CREATE TABLE events (
//!     event_id TEXT PRIMARY KEY NOT NULL,   -- the host's idempotency key
//!     kind     TEXT NOT NULL CHECK (kind IN
//!              ('enabled', 'disabled', 'message-archived', 'override-used')),
//!     at_unix  INTEGER NOT NULL,            -- seconds since 1970-01-01 UTC
//!     domain   TEXT NOT NULL,
//!     user     TEXT NOT NULL,
//!     size     INTEGER NOT NULL,            -- bytes archived or removed, else 0
//!     mailbox  TEXT,                        -- override-used: the archive mailbox
//!     reason   TEXT                         -- override-used: why
//! ) STRICT, WITHOUT ROWID;
//! CREATE INDEX events_by_domain_time ON events (domain, at_unix);
//! PRAGMA user_version = 1;
//! ```
//!
//! Why this is exactly-once across crashes and restarts:
//!
//! - **The event id is the primary key.** Recording is one `INSERT ... ON
//!   CONFLICT (event_id) DO NOTHING`: an event sent again (after a crash, a
//!   timeout, a restart of either side) finds its row and changes nothing.
//!   A reused id with different content is refused, not silently merged.
//! - **WAL with `synchronous = FULL`.** Each insert is its own transaction;
//!   `record` returns only after SQLite has fsynced the commit to the
//!   write-ahead log. In WAL mode `NORMAL` would survive a process crash
//!   but could lose the last commits on power loss; `FULL` makes "recorded"
//!   mean "on disk". WAL also lets reports read while events are appended.
//! - **The host retries until acknowledged.** An event is durable exactly
//!   when `record` has returned; a crash before that loses nothing the host
//!   believes recorded, and the host's retry of an event that did commit
//!   is a duplicate.
//!
//! A crash-safe append-only file would need its own torn-write detection,
//! an index for the id check and a reader for reports; SQLite provides all
//! three, well tested, and the ledger stays inspectable with `sqlite3`.
//!
//! # Example
//!
//! ```
//! use mailroom_billing_archive::ArchiveBilling;
//! use mailroom_plugin::{ArchiveEvent, ArchiveEventKind, BillingMonth, BillingPlugin, Plugin, Recorded};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let settings = format!(
//!     "ledger = {:?}\n[price]\ncurrency = \"EUR\"\nuser_day = \"0.10\"\nmessage = \"0\"\ngb_month = \"0\"\n",
//!     dir.path().join("ledger.sqlite").display().to_string()
//! );
//! let billing = ArchiveBilling::init(&settings).unwrap();
//! let enabled = ArchiveEvent {
//!     id: "e1".into(),
//!     at_unix: 1_794_614_400, // 2026-11-14 00:00:00 UTC
//!     domain: "example.com".into(),
//!     user: "alice@example.com".into(),
//!     kind: ArchiveEventKind::Enabled,
//! };
//! assert_eq!(billing.record(&enabled).unwrap(), Recorded::New);
//! assert_eq!(billing.record(&enabled).unwrap(), Recorded::Duplicate);
//! let report = billing.report("2026-11".parse().unwrap()).unwrap();
//! assert_eq!(report.businesses[0].user_days, 17); // the 14th to the 30th
//! assert_eq!(report.businesses[0].charge_cents, 170);
//! ```
//!
//! # Dependencies
//!
//! `rusqlite` (bundled SQLite: the ledger format does not depend on the
//! system's library), `time` (calendar months to UTC seconds; already in
//! the workspace through rcgen).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use mailroom_plugin::{
    ArchiveEvent, ArchiveEventKind, BillingMonth, BillingPlugin, BillingReport, BusinessReport,
    Plugin, PluginFailure, Recorded, parse_settings,
};
use rusqlite::{Connection, OptionalExtension, params};

/// The ledger schema (version 1).
pub const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN
             ('enabled', 'disabled', 'message-archived', 'override-used')),
    at_unix  INTEGER NOT NULL,
    domain   TEXT NOT NULL,
    user     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    mailbox  TEXT,
    reason   TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_domain_time ON events (domain, at_unix);
";

/// The ledger schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_UNIT: u128 = 1_000_000;
const BYTES_PER_GB: u128 = 1_000_000_000;

/// A price in millionths of the currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Micros(pub u64);

impl std::str::FromStr for Micros {
    type Err = PluginFailure;

    /// Parses `12`, `0.5`, `0.000001` (at most six decimals, no sign).
    fn from_str(s: &str) -> Result<Micros, PluginFailure> {
        let bad = || {
            PluginFailure::invalid_input(format!(
                "price {s:?}: expected a decimal like \"0.05\" with at most 6 decimals"
            ))
        };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || whole.len() > 12
            || frac.len() > 6
            || (s.contains('.') && frac.is_empty())
            || !whole
                .bytes()
                .chain(frac.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let mut micros: u64 = 0;
        for (i, d) in frac.bytes().enumerate() {
            micros += u64::from(d - b'0') * 10u64.pow(5 - i as u32);
        }
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(micros))
            .map(Micros)
            .ok_or_else(bad)
    }
}

/// The price table (see the [crate docs](crate)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    /// The currency code.
    pub currency: String,
    /// Per user-day.
    pub user_day: Micros,
    /// Per message archived.
    pub message: Micros,
    /// Per GB-month stored.
    pub gb_month: Micros,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceSettings {
    currency: String,
    user_day: String,
    message: String,
    gb_month: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    ledger: PathBuf,
    price: PriceSettings,
}

impl PriceTable {
    fn from_settings(p: PriceSettings) -> Result<PriceTable, PluginFailure> {
        if p.currency.is_empty()
            || p.currency.len() > 8
            || !p.currency.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(PluginFailure::invalid_input(
                "price.currency must be an upper-case code like \"EUR\"",
            ));
        }
        Ok(PriceTable {
            currency: p.currency,
            user_day: p.user_day.parse()?,
            message: p.message.parse()?,
            gb_month: p.gb_month.parse()?,
        })
    }
}

fn db_failure(e: rusqlite::Error) -> PluginFailure {
    match e.sqlite_error_code() {
        Some(
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::DiskFull
            | rusqlite::ErrorCode::SystemIoFailure,
        ) => PluginFailure::temporary(format!("ledger: {e}")),
        _ => PluginFailure::failed(format!("ledger: {e}")),
    }
}

/// Opens (creating if needed) the ledger in WAL mode with `synchronous =
/// FULL` and checks its schema version.
pub fn open_ledger(path: &std::path::Path) -> Result<Connection, PluginFailure> {
    let conn = Connection::open(path)
        .map_err(|e| PluginFailure::failed(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db_failure)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(db_failure)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(PluginFailure::failed(format!(
            "{}: cannot use WAL (journal mode {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_failure)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db_failure)?;
    match version {
        0 => conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE;\n{SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
            ))
            .map_err(db_failure)?,
        SCHEMA_VERSION => {}
        other => {
            return Err(PluginFailure::failed(format!(
                "{}: ledger schema version {other}, this plugin reads version {SCHEMA_VERSION}",
                path.display()
            )));
        }
    }
    Ok(conn)
}

/// One stored event, as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    kind: String,
    at_unix: i64,
    domain: String,
    user: String,
    size: i64,
    mailbox: Option<String>,
    reason: Option<String>,
}

fn row_of(event: &ArchiveEvent) -> Result<Row, PluginFailure> {
    let size_of = |size: u64| {
        i64::try_from(size).map_err(|_| PluginFailure::invalid_input("size above 2^63 bytes"))
    };
    let (kind, size, mailbox, reason) = match &event.kind {
        ArchiveEventKind::Enabled => ("enabled", 0, None, None),
        ArchiveEventKind::Disabled => ("disabled", 0, None, None),
        ArchiveEventKind::MessageArchived { size } => {
            ("message-archived", size_of(*size)?, None, None)
        }
        ArchiveEventKind::OverrideUsed {
            mailbox,
            reason,
            removed_bytes,
        } => (
            "override-used",
            size_of(*removed_bytes)?,
            Some(mailbox.clone()),
            Some(reason.clone()),
        ),
        _ => {
            return Err(PluginFailure::invalid_input(
                "an event kind this plugin does not know",
            ));
        }
    };
    if event.at_unix < 0 {
        return Err(PluginFailure::invalid_input("event time before 1970"));
    }
    Ok(Row {
        kind: kind.to_owned(),
        at_unix: event.at_unix,
        domain: event.domain.clone(),
        user: event.user.clone(),
        size,
        mailbox,
        reason,
    })
}

/// The archive billing plugin: see the [crate docs](crate).
pub struct ArchiveBilling {
    path: PathBuf,
    prices: PriceTable,
    writer: Mutex<Connection>,
}

impl std::fmt::Debug for ArchiveBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveBilling")
            .field("path", &self.path)
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

impl ArchiveBilling {
    /// The price table in force.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }
}

impl Plugin for ArchiveBilling {
    fn init(settings: &str) -> Result<Self, PluginFailure> {
        let settings: Settings = parse_settings(settings)?;
        let prices = PriceTable::from_settings(settings.price)?;
        let conn = open_ledger(&settings.ledger)?;
        Ok(ArchiveBilling {
            path: settings.ledger,
            prices,
            writer: Mutex::new(conn),
        })
    }
}

impl BillingPlugin for ArchiveBilling {
    fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginFailure> {
        event.validate().map_err(PluginFailure::invalid_input)?;
        let row = row_of(event)?;
        let conn = self
            .writer
            .lock()
            .map_err(|_| PluginFailure::failed("ledger lock poisoned by an earlier panic"))?;
        let inserted = conn
            .execute(
                "INSERT INTO events (event_id, kind, at_unix, domain, user, size, mailbox, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (event_id) DO NOTHING",
                params![
                    event.id,
                    row.kind,
                    row.at_unix,
                    row.domain,
                    row.user,
                    row.size,
                    row.mailbox,
                    row.reason
                ],
            )
            .map_err(db_failure)?;
        if inserted == 1 {
            return Ok(Recorded::New);
        }
        let stored = conn
            .query_row(
                "SELECT kind, at_unix, domain, user, size, mailbox, reason FROM events WHERE event_id = ?1",
                params![event.id],
                read_row,
            )
            .optional()
            .map_err(db_failure)?;
        match stored {
            Some(stored) if stored == row => Ok(Recorded::Duplicate),
            Some(_) => Err(PluginFailure::invalid_input(format!(
                "event id {} was recorded before with different content",
                event.id
            ))),
            None => Err(PluginFailure::failed(format!(
                "event id {}: neither inserted nor found",
                event.id
            ))),
        }
    }

    fn report(&self, month: BillingMonth) -> Result<BillingReport, PluginFailure> {
        let (start, end) = month_bounds(month)?;
        // A separate connection: with WAL the report reads a consistent
        // snapshot while events keep being recorded.
        let conn = open_ledger(&self.path)?;
        let mut stmt = conn
            .prepare(
                "SELECT kind, at_unix, domain, user, size, mailbox, reason FROM events
                 WHERE at_unix < ?1 ORDER BY domain, at_unix, event_id",
            )
            .map_err(db_failure)?;
        let rows = stmt.query_map(params![end], read_row).map_err(db_failure)?;
        let mut by_domain: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for row in rows {
            let row = row.map_err(db_failure)?;
            by_domain.entry(row.domain.clone()).or_default().push(row);
        }
        let businesses = by_domain
            .into_iter()
            .filter_map(|(domain, rows)| business(&domain, &rows, start, end, &self.prices))
            .collect();
        Ok(BillingReport {
            month,
            currency: self.prices.currency.clone(),
            businesses,
        })
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        kind: r.get(0)?,
        at_unix: r.get(1)?,
        domain: r.get(2)?,
        user: r.get(3)?,
        size: r.get(4)?,
        mailbox: r.get(5)?,
        reason: r.get(6)?,
    })
}

/// The month as `[start, end)` in seconds since 1970 UTC.
fn month_bounds(month: BillingMonth) -> Result<(i64, i64), PluginFailure> {
    let first = |year: i32, m: u8| -> Result<i64, PluginFailure> {
        let m =
            time::Month::try_from(m).map_err(|_| PluginFailure::invalid_input("no such month"))?;
        let date = time::Date::from_calendar_date(year, m, 1)
            .map_err(|_| PluginFailure::invalid_input("no such month"))?;
        Ok(date.midnight().assume_utc().unix_timestamp())
    };
    let (next_year, next_month) = if month.month() == 12 {
        (month.year() + 1, 1)
    } else {
        (month.year(), month.month() + 1)
    };
    Ok((
        first(month.year(), month.month())?,
        first(next_year, next_month)?,
    ))
}

/// Rounds `num / den` half up.
fn div_round(num: u128, den: u128) -> u128 {
    (num + den / 2) / den
}

/// Marks the days of `[from, to)` within `[start, end)` as days `user` had
/// archiving on.
fn mark_days<'a>(
    days: &mut BTreeMap<&'a str, BTreeSet<i64>>,
    user: &'a str,
    from: i64,
    to: i64,
    start: i64,
    end: i64,
) {
    let (from, to) = (from.max(start), to.min(end));
    if from < to {
        let set = days.entry(user).or_default();
        for day in (from - start) / SECONDS_PER_DAY..=(to - 1 - start) / SECONDS_PER_DAY {
            set.insert(day);
        }
    }
}

/// The report line of one business, or `None` without activity in the month.
fn business(
    domain: &str,
    rows: &[Row],
    start: i64,
    end: i64,
    prices: &PriceTable,
) -> Option<BusinessReport> {
    // Per user: whether archiving is on, since when, and the days it was on.
    let mut on_since: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    let mut days: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut stored: u128 = 0;
    let mut byte_seconds: u128 = 0;
    let mut clock = start;
    let (mut messages, mut bytes_archived, mut overrides) = (0u64, 0u64, 0u64);
    for row in rows {
        if row.at_unix >= start {
            byte_seconds += stored * (row.at_unix - clock) as u128;
            clock = row.at_unix;
        }
        let in_month = row.at_unix >= start;
        let size = u128::try_from(row.size).unwrap_or(0);
        match row.kind.as_str() {
            "enabled" => {
                let since = on_since.entry(&row.user).or_insert(None);
                if since.is_none() {
                    *since = Some(row.at_unix);
                }
            }
            "disabled" => {
                if let Some(Some(since)) = on_since.insert(&row.user, None) {
                    mark_days(&mut days, &row.user, since, row.at_unix, start, end);
                }
            }
            "message-archived" => {
                stored += size;
                if in_month {
                    messages += 1;
                    bytes_archived = bytes_archived.saturating_add(size as u64);
                }
            }
            "override-used" => {
                stored = stored.saturating_sub(size);
                if in_month {
                    overrides += 1;
                }
            }
            _ => {}
        }
    }
    byte_seconds += stored * (end - clock) as u128;
    for (user, since) in &on_since {
        if let Some(since) = since {
            mark_days(&mut days, user, *since, end, start, end);
        }
    }
    let archived_users = days.values().filter(|d| !d.is_empty()).count() as u64;
    let user_days: u64 = days.values().map(|d| d.len() as u64).sum();
    if archived_users == 0 && messages == 0 && byte_seconds == 0 && overrides == 0 {
        return None;
    }
    let month_seconds = (end - start) as u128;
    let gb_month_seconds = BYTES_PER_GB * month_seconds;
    // The charge in millionths, times gb_month_seconds, exactly.
    let scaled = (u128::from(user_days) * u128::from(prices.user_day.0)
        + u128::from(messages) * u128::from(prices.message.0))
        * gb_month_seconds
        + byte_seconds * u128::from(prices.gb_month.0);
    let charge_cents = div_round(scaled, gb_month_seconds * (MICROS_PER_UNIT / 100));
    let gb_month_millionths = div_round(byte_seconds * MICROS_PER_UNIT, gb_month_seconds);
    Some(BusinessReport {
        domain: domain.to_owned(),
        archived_users,
        user_days,
        messages,
        bytes_archived,
        gb_month_millionths: u64::try_from(gb_month_millionths).unwrap_or(u64::MAX),
        overrides_used: overrides,
        charge_cents: u64::try_from(charge_cents).unwrap_or(u64::MAX),
    })
}

mailroom_plugin::export_billing_plugin!(ArchiveBilling);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        let p = |s: &str| s.parse::<Micros>().map(|m| m.0);
        assert_eq!(p("0.05"), Ok(50_000));
        assert_eq!(p("12"), Ok(12_000_000));
        assert_eq!(p("0.000001"), Ok(1));
        assert_eq!(p("1.5"), Ok(1_500_000));
        for bad in [
            "",
            ".5",
            "1.",
            "-1",
            "1.0000001",
            "1e3",
            "0,5",
            " 1",
            "9999999999999",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn users_are_compared_as_sent() {
        let dir = tempfile::tempdir().unwrap();
        let settings = format!(
            "ledger = {:?}\n[price]\ncurrency = \"EUR\"\nuser_day = \"1\"\nmessage = \"0\"\ngb_month = \"0\"\n",
            dir.path().join("l.sqlite").display().to_string()
        );
        let billing = ArchiveBilling::init(&settings).unwrap();
        for (id, user) in [("e1", "Ann@x.org"), ("e2", "ann@x.org")] {
            let event = ArchiveEvent {
                id: id.into(),
                at_unix: 1_793_491_200,
                domain: "x.org".into(),
                user: user.into(),
                kind: ArchiveEventKind::Enabled,
            };
            assert_eq!(billing.record(&event).unwrap(), Recorded::New);
        }
        let report = billing.report("2026-11".parse().unwrap()).unwrap();
        assert_eq!(report.businesses[0].archived_users, 2);
        assert_eq!(report.businesses[0].user_days, 60);
        assert_eq!(report.businesses[0].charge_cents, 6000);
    }

    #[test]
    fn month_bounds_are_utc_midnights() {
        let m = |s: &str| month_bounds(s.parse().unwrap()).unwrap();
        assert_eq!(m("2026-11"), (1_793_491_200, 1_796_083_200));
        assert_eq!(m("2026-12").1, 1_798_761_600);
        assert_eq!(m("2024-02").1 - m("2024-02").0, 29 * SECONDS_PER_DAY);
    }

    fn row(kind: &str, at: i64, user: &str, size: i64) -> Row {
        Row {
            kind: kind.into(),
            at_unix: at,
            domain: "x.org".into(),
            user: user.into(),
            size,
            mailbox: None,
            reason: None,
        }
    }

    #[test]
    fn days_and_storage() {
        let prices = PriceTable {
            currency: "EUR".into(),
            user_day: Micros(1_000_000),
            message: Micros(0),
            gb_month: Micros(1_000_000),
        };
        let (start, end) = (0, 10 * SECONDS_PER_DAY);
        let rows = [
            row("enabled", 0, "a@x.org", 0),
            row("enabled", 5, "a@x.org", 0), // repeated: ignored
            row("disabled", 2 * SECONDS_PER_DAY, "a@x.org", 0), // days 0, 1
            row("disabled", 3 * SECONDS_PER_DAY, "a@x.org", 0), // repeated: ignored
            row("enabled", 4 * SECONDS_PER_DAY + 1, "a@x.org", 0), // days 4..9
            row(
                "message-archived",
                5 * SECONDS_PER_DAY,
                "a@x.org",
                2_000_000_000,
            ),
        ];
        let b = business("x.org", &rows, start, end, &prices).unwrap();
        assert_eq!((b.archived_users, b.user_days, b.messages), (1, 8, 1));
        // 2 GB for half of the month: 1 GB-month.
        assert_eq!(b.gb_month_millionths, 1_000_000);
        assert_eq!(b.charge_cents, 900);
        assert!(business("x.org", &[], start, end, &prices).is_none());
    }

    mod oracle {
        use super::*;
        use proptest::prelude::*;

        const HOUR: i64 = 3600;
        const START: i64 = 2 * SECONDS_PER_DAY;
        const END: i64 = 7 * SECONDS_PER_DAY;
        const USERS: [&str; 2] = ["u0@x.org", "u1@x.org"];

        fn arb_row() -> impl Strategy<Value = Row> {
            (0..7 * 24i64, 0..4usize, 0..2usize, 0..2_000_000i64).prop_map(
                |(hour, kind, user, size)| {
                    let kind = ["enabled", "disabled", "message-archived", "override-used"][kind];
                    let size = if kind.ends_with("archived") || kind.starts_with("override") {
                        size
                    } else {
                        0
                    };
                    row(kind, hour * HOUR, USERS[user], size)
                },
            )
        }

        fn in_month<'a>(rows: &'a [Row], kind: &'a str) -> impl Iterator<Item = &'a Row> {
            rows.iter()
                .filter(move |r| r.kind == kind && r.at_unix >= START)
        }

        /// The state after every event at or before `t`, in order.
        fn replay(rows: &[Row], t: i64) -> (BTreeSet<&str>, i64) {
            let mut on = BTreeSet::new();
            let mut stored: i64 = 0;
            for r in rows.iter().filter(|r| r.at_unix <= t) {
                match r.kind.as_str() {
                    "enabled" => {
                        on.insert(r.user.as_str());
                    }
                    "disabled" => {
                        on.remove(r.user.as_str());
                    }
                    "message-archived" => stored += r.size,
                    _ => stored = (stored - r.size).max(0),
                }
            }
            (on, stored)
        }

        proptest! {
            /// The sweep in `business` against a brute-force replay at every
            /// hour of the month (events fall on whole hours, so the state is
            /// constant within each hour).
            #[test]
            fn business_matches_an_hourly_replay(mut rows in proptest::collection::vec(arb_row(), 0..40)) {
                rows.sort_by_key(|r| r.at_unix);
                let prices = PriceTable {
                    currency: "EUR".into(),
                    user_day: Micros(0),
                    message: Micros(0),
                    gb_month: Micros(0),
                };
                let mut days: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
                let mut byte_seconds: u128 = 0;
                for hour in 0..(END - START) / HOUR {
                    let t = START + hour * HOUR;
                    let (on, stored) = replay(&rows, t);
                    for user in on {
                        days.entry(user).or_default().insert(hour / 24);
                    }
                    byte_seconds += stored as u128 * HOUR as u128;
                }
                let messages = in_month(&rows, "message-archived").count() as u64;
                let bytes: i64 = in_month(&rows, "message-archived").map(|r| r.size).sum();
                let overrides = in_month(&rows, "override-used").count() as u64;
                let user_days: u64 = days.values().map(|d| d.len() as u64).sum();
                let got = business("x.org", &rows, START, END, &prices);
                if user_days == 0 && messages == 0 && byte_seconds == 0 && overrides == 0 {
                    prop_assert_eq!(got, None);
                } else {
                    let got = got.unwrap();
                    prop_assert_eq!(got.archived_users, days.len() as u64);
                    prop_assert_eq!(got.user_days, user_days);
                    prop_assert_eq!(got.messages, messages);
                    prop_assert_eq!(got.bytes_archived, bytes as u64);
                    prop_assert_eq!(got.overrides_used, overrides);
                    let month = BYTES_PER_GB * (END - START) as u128;
                    prop_assert_eq!(
                        u128::from(got.gb_month_millionths),
                        div_round(byte_seconds * MICROS_PER_UNIT, month)
                    );
                }
            }

            #[test]
            fn prices_round_trip(whole in 0u64..1_000_000, frac in 0u64..1_000_000, digits in 0usize..=6) {
                let frac = frac % 10u64.pow(digits as u32);
                let text = if digits == 0 {
                    whole.to_string()
                } else {
                    format!("{whole}.{frac:0digits$}")
                };
                let want = whole * 1_000_000 + frac * 10u64.pow(6 - digits as u32);
                prop_assert_eq!(text.parse::<Micros>().map(|m| m.0), Ok(want));
            }

            #[test]
            fn price_parsing_never_panics(text in "\\PC{0,24}") {
                let _ = text.parse::<Micros>();
            }
        }
    }
}
