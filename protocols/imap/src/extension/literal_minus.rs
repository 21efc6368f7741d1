//! LITERAL- (RFC 7888): non-synchronizing literals (`{n+}`) only up to
//! 4096 octets, for a server that would rather not take large uploads
//! unannounced. Mailroom offers LITERAL+ (any size up to
//! [`Limits::max_literal`]) by default, as Dovecot does; with
//! [`Limits::literal_minus`] it advertises LITERAL- instead (RFC 7888 §5:
//! never both) and a larger non-synchronizing literal is answered
//! `BAD [TOOBIG]` (§4). Its bytes are read and dropped, so the connection
//! goes on with the next command; synchronizing literals are unaffected.

use crate::parser::Limits;

/// The largest non-synchronizing literal LITERAL- allows.
pub const MAX_NON_SYNC_LITERAL: u64 = 4096;

/// The capability for the literals the server takes: `LITERAL-` or
/// `LITERAL+`.
pub(crate) fn capability(limits: &Limits) -> &'static str {
    if limits.literal_minus {
        "LITERAL-"
    } else {
        "LITERAL+"
    }
}

/// Whether a literal of `n` octets, non-synchronizing unless `sync`, is
/// over what LITERAL- allows.
pub(crate) fn refuses(limits: &Limits, n: u64, sync: bool) -> bool {
    limits.literal_minus && !sync && n > MAX_NON_SYNC_LITERAL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_non_synchronizing_literals_under_literal_minus() {
        let plus = Limits::default();
        let minus = Limits {
            literal_minus: true,
            ..Limits::default()
        };
        assert_eq!(capability(&plus), "LITERAL+");
        assert_eq!(capability(&minus), "LITERAL-");
        assert!(!refuses(&plus, 1 << 20, false));
        assert!(!refuses(&minus, 4096, false));
        assert!(refuses(&minus, 4097, false));
        assert!(!refuses(&minus, 1 << 20, true));
    }
}
