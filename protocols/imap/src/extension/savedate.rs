//! SAVEDATE (RFC 8514): when a message was saved in the mailbox it is in.
//!
//! - The stores set it on every message a commit adds: APPEND, delivery,
//!   COPY and MOVE into the mailbox (unlike INTERNALDATE, which COPY
//!   keeps). `FETCH SAVEDATE` answers it as a date-time in UTC (`+0000`).
//! - A message stored before the store kept it has none: FETCH answers
//!   `SAVEDATE NIL` (§3 allows NIL), and SAVEDBEFORE, SAVEDON and
//!   SAVEDSINCE compare its INTERNALDATE instead (RFC 8514 leaves this
//!   open; it keeps such messages findable by age).
//! - The SAVED* keys compare days in UTC, ignoring the time of day, as
//!   BEFORE/ON/SINCE do.
//! - SAVEDATESUPPORTED asks whether the mailbox keeps save dates; it is
//!   answered per message: it matches the messages that have one. In the
//!   memory, CRC and PostgreSQL stores that is every message saved since
//!   the store kept them (so every message of a new mailbox; in PostgreSQL,
//!   every row written since schema version 2).

use mailroom_core::MessageMeta;

/// The day (days since 1970-01-01, UTC) the SAVED* keys compare;
/// `internal_day` is the INTERNALDATE's day, used when there is no save
/// date.
pub(crate) fn saved_day(meta: &MessageMeta, internal_day: i64) -> i64 {
    meta.save_date
        .map_or(internal_day, |t| t.div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::{Flags, InternalDate, MessageGuid, ModSeq, Uid};

    #[test]
    fn the_day_in_utc_or_the_internal_date() {
        let mut m = MessageMeta {
            uid: Uid(1),
            flags: Flags::default(),
            modseq: ModSeq(1),
            internal_date: InternalDate::now(),
            size: 1,
            guid: MessageGuid::default(),
            save_date: Some(86_400 * 3 + 5),
        };
        assert_eq!(saved_day(&m, 99), 3);
        m.save_date = Some(-1);
        assert_eq!(saved_day(&m, 99), -1);
        m.save_date = None;
        assert_eq!(saved_day(&m, 99), 99);
    }
}
