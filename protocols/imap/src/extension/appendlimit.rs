//! APPENDLIMIT (RFC 7889): the largest message APPEND takes, told before
//! the client uploads it.
//!
//! The limit is server-wide: [`Limits::max_literal`], the largest literal
//! the decoder accepts, advertised as `APPENDLIMIT=<octets>` and reported
//! by the `APPENDLIMIT` STATUS item (also through LIST-STATUS) for every
//! mailbox. An APPEND whose synchronising literal is larger is answered
//! `NO [TOOBIG]` before the `+` continuation, so the client never sends it
//! (RFC 7889 §4); any other command with such a literal stays `BAD
//! [TOOBIG]`. A non-synchronising (LITERAL+) literal over the limit cannot
//! be refused in time: `BAD`, then `BYE` (RFC 7888 §4).
//!
//! COPY and MOVE are not uploads and are not limited by it.

use crate::parser::Limits;

/// The capability: `APPENDLIMIT=<octets>`.
pub(crate) fn capability(limits: &Limits) -> String {
    format!("APPENDLIMIT={}", limits.max_literal)
}

/// The value of the `APPENDLIMIT` STATUS item, the same for every mailbox.
pub(crate) fn status_value(limits: &Limits) -> u64 {
    limits.max_literal
}

/// Whether the command whose text so far is `text` (`tag SP name ...`)
/// is an APPEND, so that a literal over the limit gets `NO [TOOBIG]`.
pub(crate) fn is_append(text: &[u8]) -> bool {
    let mut words = text.split(|&b| b == b' ');
    let _tag = words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_is_recognised_by_its_name() {
        assert!(is_append(b"a1 APPEND INBOX (\\Seen) {12}"));
        assert!(is_append(b"a1 append INBOX {12}"));
        assert!(!is_append(b"a1 LOGIN {12}"));
        assert!(!is_append(b"APPEND"));
        assert!(!is_append(b"a1 APPENDX INBOX {1}"));
    }

    #[test]
    fn the_capability_names_the_literal_limit() {
        let limits = Limits {
            max_literal: 1000,
            ..Limits::default()
        };
        assert_eq!(capability(&limits), "APPENDLIMIT=1000");
        assert_eq!(status_value(&limits), 1000);
    }
}
