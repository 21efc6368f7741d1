//! WITHIN (RFC 5032): the SEARCH keys `OLDER <interval>` and
//! `YOUNGER <interval>`, an interval in seconds (`nz-number`) measured back
//! from the moment the SEARCH runs, against the message's INTERNALDATE
//! (its exact time, not its day as BEFORE/SINCE compare).
//!
//! The boundary is Dovecot's: a message exactly `n` seconds old is both
//! `OLDER n` and `YOUNGER n`. Every message of one SEARCH is measured
//! against the same "now".

use mailroom_core::InternalDate;

/// `OLDER n`: the message arrived `n` seconds or more before `now`.
pub(crate) fn older(interval: u32, date: &InternalDate, now: i64) -> bool {
    now.saturating_sub(date.timestamp) >= i64::from(interval)
}

/// `YOUNGER n`: the message arrived at most `n` seconds before `now` (or
/// after it, if the clock moved back).
pub(crate) fn younger(interval: u32, date: &InternalDate, now: i64) -> bool {
    now.saturating_sub(date.timestamp) <= i64::from(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(timestamp: i64) -> InternalDate {
        InternalDate {
            timestamp,
            offset_minutes: 120,
        }
    }

    #[test]
    fn boundaries() {
        let now = 1_000_000;
        assert!(older(60, &at(now - 61), now));
        assert!(older(60, &at(now - 60), now));
        assert!(!older(60, &at(now - 59), now));
        assert!(younger(60, &at(now - 60), now));
        assert!(younger(60, &at(now - 1), now));
        assert!(!younger(60, &at(now - 61), now));
        // The zone a date is shown in does not matter.
        assert!(younger(1, &at(now + 3600), now));
        assert!(older(u32::MAX, &at(i64::MIN), now));
    }
}
