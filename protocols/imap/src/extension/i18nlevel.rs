//! I18NLEVEL=1 (RFC 5255 §4.1): SEARCH and SORT compare strings under
//! the `i;unicode-casemap` collation (RFC 5051) instead of
//! `i;ascii-casemap`. Level 1 needs no COMPARATOR command (that is level
//! 2); the collation is simply the default, for SEARCH's substring
//! matches (FROM, TO, CC, BCC, SUBJECT, HEADER, BODY, TEXT) and for SORT's
//! string keys (SUBJECT, FROM, TO, CC, DISPLAYFROM, DISPLAYTO). THREAD
//! groups base subjects under it too, as Dovecot does.
//!
//! RFC 5051 §2: a string is compared by its canonical form, made by
//! 1. replacing every character by its titlecase (the *simple* titlecase
//!    mapping of UnicodeData.txt: one character for one, so `ß` stays
//!    `ß` and `ǆ` becomes `ǅ`), then
//! 2. normalizing the result to NFKD (compatibility decomposition: `ﬁ`
//!    becomes `fi`, `é` becomes `e` followed by U+0301).
//!
//! Two strings are equal when their forms are; one sorts before another
//! when its form (as UTF-8, i.e. by code point) does; a SEARCH key matches
//! when its form is a substring of the value's form. ASCII text takes a
//! short cut (its form is its upper case), so all-ASCII mail costs what
//! `i;ascii-casemap` did.
//!
//! The forms are computed by `mailroom_core::mime::collate` (where the
//! crates used, and why, are named), so that a store can keep them
//! precomputed per message for SORT.

pub use mailroom_core::mime::collate::{unicode_casemap, unicode_casemap_bytes};

/// The capability.
pub const CAPABILITY: &str = "I18NLEVEL=1";

/// The name of the collation (RFC 5051).
pub const COLLATION: &str = "i;unicode-casemap";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_upper_cased() {
        assert_eq!(unicode_casemap("Hello, World 1"), "HELLO, WORLD 1");
    }

    #[test]
    fn titlecase_then_nfkd() {
        // Titlecase, then the accent decomposed.
        assert_eq!(unicode_casemap("é"), "E\u{301}");
        assert_eq!(unicode_casemap("É"), unicode_casemap("é"));
        assert_eq!(unicode_casemap("Grüße"), "GRU\u{308}ßE");
        // Simple mappings only: ß has no one-character titlecase.
        assert_ne!(unicode_casemap("ß"), unicode_casemap("ss"));
        // The digraphs take their titlecase form (U+01C5), not the upper
        // case one, which NFKD then splits into D + z + caron.
        assert_eq!(unicode_casemap("ǆ"), unicode_casemap("Ǆ"));
        assert_eq!(unicode_casemap("ǆ"), "Dz\u{30C}");
        // Compatibility decomposition: full-width forms. A ligature has
        // no one-character titlecase, so it decomposes to lower case
        // (RFC 5051 titlecases before it decomposes).
        assert_eq!(unicode_casemap("ＡＢ"), "AB");
        assert_eq!(unicode_casemap("ﬁle"), "fiLE");
        // Greek and Cyrillic fold as their scripts do.
        assert_eq!(unicode_casemap("σ"), unicode_casemap("Σ"));
        assert_eq!(unicode_casemap("привет"), unicode_casemap("ПРИВЕТ"));
    }

    #[test]
    fn precomposed_and_decomposed_are_equal() {
        assert_eq!(unicode_casemap("caf\u{e9}"), unicode_casemap("CAFE\u{301}"));
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        assert_eq!(unicode_casemap_bytes(b"ab\xffc"), "AB\u{FFFD}C".as_bytes());
    }
}
