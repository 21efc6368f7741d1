//! Archive billing: the events a billing plugin receives, its monthly
//! report, and [`BillingSink`], the trait the host sees a billing plugin as.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::error::PluginError;

/// The longest event id accepted, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 200;
/// The longest user or domain name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 254;
/// The longest mailbox name or override reason accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveEventKind {
    /// Archiving was enabled for the user.
    Enabled,
    /// Archiving was disabled for the user.
    Disabled,
    /// A message was archived for the user.
    MessageArchived {
        /// Its size in bytes.
        size: u64,
    },
    /// A server admin's override was used on an archive mailbox (retention
    /// deletion).
    OverrideUsed {
        /// The archive mailbox.
        mailbox: String,
        /// The reason given with the override.
        reason: String,
        /// Bytes removed from the archive under it.
        removed_bytes: u64,
    },
}

/// One archive event. The host gives every event an id that it reuses
/// whenever it sends the same event again (after a crash, a timeout, a
/// restart), so the plugin can record each event exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEvent {
    /// The idempotency key (at most [`MAX_EVENT_ID_BYTES`]).
    pub id: String,
    /// When it happened, seconds since 1970-01-01 UTC.
    pub at_unix: i64,
    /// The business (domain).
    pub domain: String,
    /// The user (`local@domain`).
    pub user: String,
    /// What happened.
    pub kind: ArchiveEventKind,
}

impl ArchiveEvent {
    /// Checks the bounds and shapes both sides rely on: a non-empty id of
    /// printable ASCII, names within [`MAX_NAME_BYTES`], the user in the
    /// event's domain.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.id.is_empty() || self.id.len() > MAX_EVENT_ID_BYTES {
            return Err("event id must be 1 to 200 bytes");
        }
        if !self.id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("event id must be printable ASCII without spaces");
        }
        if self.domain.is_empty() || self.domain.len() > MAX_NAME_BYTES {
            return Err("domain must be 1 to 254 bytes");
        }
        if self
            .domain
            .bytes()
            .any(|b| b.is_ascii_uppercase() || b.is_ascii_control())
        {
            return Err("domain must be lower case without control characters");
        }
        if self.user.len() > MAX_NAME_BYTES || self.user.chars().any(char::is_control) {
            return Err("user must be at most 254 bytes without control characters");
        }
        match self.user.rsplit_once('@') {
            Some((local, domain))
                if !local.is_empty() && domain.eq_ignore_ascii_case(&self.domain) => {}
            _ => return Err("user must be local@domain in the event's domain"),
        }
        if let ArchiveEventKind::OverrideUsed {
            mailbox, reason, ..
        } = &self.kind
            && (mailbox.len() > MAX_TEXT_BYTES || reason.len() > MAX_TEXT_BYTES)
        {
            return Err("mailbox and reason must be at most 1024 bytes");
        }
        Ok(())
    }
}

/// Whether [`BillingSink::record`] stored the event now or had it already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now (durably, before the call returned).
    New,
    /// The id was stored before; nothing changed.
    Duplicate,
}

/// A calendar month (UTC), written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillingMonth {
    year: i32,
    month: u8,
}

impl BillingMonth {
    /// The month, if `year` is 1970..=9999 and `month` 1..=12.
    pub fn new(year: i32, month: u8) -> Option<BillingMonth> {
        ((1970..=9999).contains(&year) && (1..=12).contains(&month))
            .then_some(BillingMonth { year, month })
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }
}

impl fmt::Display for BillingMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A month that is not `YYYY-MM` (1970-01 to 9999-12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a month (YYYY-MM): {0:?}")]
pub struct BadMonth(String);

impl FromStr for BillingMonth {
    type Err = BadMonth;

    fn from_str(s: &str) -> Result<BillingMonth, BadMonth> {
        let bad = || BadMonth(s.chars().take(32).collect());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let year = y.parse().map_err(|_| bad())?;
        let month = m.parse().map_err(|_| bad())?;
        BillingMonth::new(year, month).ok_or_else(bad)
    }
}

/// One business's line of a [`BillingReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessReport {
    /// The business (domain).
    pub domain: String,
    /// Users whose archiving was on during at least one day of the month.
    pub archived_users: u64,
    /// The sum over users of the days (UTC) archiving was on, in part or whole.
    pub user_days: u64,
    /// Messages archived during the month.
    pub messages: u64,
    /// Bytes archived during the month.
    pub bytes_archived: u64,
    /// Storage, in millionths of a GB-month: bytes kept in the archive,
    /// integrated over the month, over 10^9 bytes × the month's length.
    pub gb_month_millionths: u64,
    /// Overrides used during the month.
    pub overrides_used: u64,
    /// The charge, in hundredths of the currency unit.
    pub charge_cents: u64,
}

/// The archive billing report of one month, one line per business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingReport {
    /// The month.
    pub month: BillingMonth,
    /// The currency of the charges.
    pub currency: String,
    /// The businesses with archive activity, by domain.
    pub businesses: Vec<BusinessReport>,
}

impl fmt::Display for BillingReport {
    /// A fixed-width table, one business per line, with a header.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "archive billing {} ({})", self.month, self.currency)?;
        writeln!(
            f,
            "{:<32} {:>6} {:>9} {:>9} {:>12} {:>10} {:>12}",
            "business", "users", "user-days", "messages", "GB-months", "overrides", "charge"
        )?;
        for b in &self.businesses {
            writeln!(
                f,
                "{:<32} {:>6} {:>9} {:>9} {:>5}.{:06} {:>10} {:>9}.{:02}",
                b.domain,
                b.archived_users,
                b.user_days,
                b.messages,
                b.gb_month_millionths / 1_000_000,
                b.gb_month_millionths % 1_000_000,
                b.overrides_used,
                b.charge_cents / 100,
                b.charge_cents % 100
            )?;
        }
        Ok(())
    }
}

/// Where the host sends archive events, and asks for reports: a billing
/// plugin as the host sees it (see [`crate::load_billing_sink`]).
///
/// `record` is idempotent by [`ArchiveEvent::id`]: when it returns `Ok`,
/// the event is durable; when it fails or times out, the host sends the
/// same event (same id) again later, and it is counted once.
#[async_trait]
pub trait BillingSink: Send + Sync + fmt::Debug {
    /// Records one event.
    async fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginError>;

    /// The report of one month.
    async fn report(&self, month: BillingMonth) -> Result<BillingReport, PluginError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, user: &str, domain: &str) -> ArchiveEvent {
        ArchiveEvent {
            id: id.into(),
            at_unix: 0,
            domain: domain.into(),
            user: user.into(),
            kind: ArchiveEventKind::Enabled,
        }
    }

    #[test]
    fn month_parse() {
        assert_eq!(
            "2026-12".parse(),
            Ok(BillingMonth {
                year: 2026,
                month: 12
            })
        );
        for bad in [
            "2026-13", "2026-00", "26-01", "2026-1", "2026/01", "", "1969-12", "+026-01",
        ] {
            assert!(bad.parse::<BillingMonth>().is_err(), "{bad}");
        }
        assert_eq!(
            BillingMonth::new(2027, 1).map(|m| m.to_string()),
            Some("2027-01".into())
        );
    }

    #[test]
    fn event_validation() {
        assert_eq!(event("e1", "a@x.org", "x.org").validate(), Ok(()));
        assert!(event("", "a@x.org", "x.org").validate().is_err());
        assert!(event("e 1", "a@x.org", "x.org").validate().is_err());
        assert!(event("e1", "a@y.org", "x.org").validate().is_err());
        assert!(event("e1", "@x.org", "x.org").validate().is_err());
        assert!(event("e1", "a@X.org", "X.org").validate().is_err());
        assert!(
            event(&"e".repeat(201), "a@x.org", "x.org")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn report_table() {
        let r = BillingReport {
            month: BillingMonth {
                year: 2026,
                month: 11,
            },
            currency: "EUR".into(),
            businesses: vec![BusinessReport {
                domain: "x.org".into(),
                archived_users: 2,
                user_days: 45,
                messages: 7,
                bytes_archived: 7000,
                gb_month_millionths: 1_500_000,
                overrides_used: 0,
                charge_cents: 1205,
            }],
        };
        let text = r.to_string();
        assert!(
            text.starts_with("archive billing 2026-11 (EUR)\n"),
            "{text}"
        );
        assert!(text.contains("x.org"), "{text}");
        assert!(text.contains("    1.500000"), "{text}");
        assert!(text.trim_end().ends_with("12.05"), "{text}");
    }

    proptest::proptest! {
        #[test]
        fn months_round_trip(year in 1970i32..=9999, month in 1u8..=12) {
            let m = BillingMonth::new(year, month).unwrap();
            proptest::prop_assert_eq!(m.to_string().parse::<BillingMonth>(), Ok(m));
        }

        #[test]
        fn month_parsing_never_panics(text in "\\PC{0,12}") {
            if let Ok(m) = text.parse::<BillingMonth>() {
                proptest::prop_assert_eq!(m.to_string(), text);
            }
        }
    }
}
