//! Trace headers (RFC 5321 §4.4): `Return-Path:` and `Received:`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A delivery id unique within the process run: seconds since the epoch and a counter.
pub(crate) fn delivery_id() -> String {
    let secs = unix_now();
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{secs:x}.{n:x}")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An RFC 5322 date-time in UTC, e.g. `Tue, 1 Jul 2003 10:52:37 +0000`.
pub(crate) fn rfc5322_date(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let secs = timestamp.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d} {month} {y} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (the well-known era-based algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What the `Received:` header says about the connection.
#[derive(Debug, Clone)]
pub(crate) struct TraceInfo<'a> {
    pub(crate) lhlo: &'a str,
    pub(crate) peer: &'a str,
    pub(crate) hostname: &'a str,
    pub(crate) id: &'a str,
    pub(crate) single_recipient: Option<&'a str>,
    pub(crate) body_8bit: bool,
}

/// The trace headers to put in front of the message.
pub(crate) fn trace_headers(return_path: Option<&str>, t: &TraceInfo<'_>) -> String {
    let mut h = String::with_capacity(256);
    h.push_str("Return-Path: <");
    h.push_str(return_path.unwrap_or(""));
    h.push_str(">\r\n");
    h.push_str(&format!(
        "Received: from {} ({})\r\n\tby {} (Mailroom) with LMTP id {}",
        t.lhlo, t.peer, t.hostname, t.id
    ));
    if t.body_8bit {
        h.push_str(" (8BITMIME)");
    }
    if let Some(r) = t.single_recipient {
        h.push_str(&format!("\r\n\tfor <{r}>"));
    }
    h.push_str(&format!("; {}\r\n", rfc5322_date(unix_now())));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_057_056_757),
            "Tue, 1 Jul 2003 10:52:37 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(4_102_444_799),
            "Thu, 31 Dec 2099 23:59:59 +0000"
        );
    }

    #[test]
    fn headers() {
        let t = TraceInfo {
            lhlo: "mx.example.org",
            peer: "[127.0.0.1]",
            hostname: "mail.example.com",
            id: "abc.1",
            single_recipient: Some("alice@example.com"),
            body_8bit: false,
        };
        let h = trace_headers(None, &t);
        assert!(h.starts_with("Return-Path: <>\r\nReceived: from mx.example.org ([127.0.0.1])\r\n\tby mail.example.com (Mailroom) with LMTP id abc.1\r\n\tfor <alice@example.com>; "));
        assert!(h.ends_with(" +0000\r\n"));
        assert!(trace_headers(Some("a@b.c"), &t).starts_with("Return-Path: <a@b.c>\r\n"));
    }
}
