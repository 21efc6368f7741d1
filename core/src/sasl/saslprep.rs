//! SASLprep (RFC 4013), the stringprep profile (RFC 3454) that SCRAM
//! (RFC 5802 §2.2, RFC 7677) and PLAIN (RFC 4616 §2) apply to user names
//! and passwords before they are compared or hashed, so that the same
//! password typed on two keyboards (a composed `ä` and `a` + combining
//! diaeresis, a no-break space and a space, full-width letters) is the same
//! password.
//!
//! The steps (RFC 4013 §2): non-ASCII spaces (table C.1.2) map to SPACE,
//! the "commonly mapped to nothing" characters (B.1, such as SOFT HYPHEN)
//! are removed, the result is normalized to NFKC, then refused if it holds a
//! prohibited character (C.1.2 to C.9: controls, private use,
//! non-characters, surrogates, tagging and display-changing characters), if
//! it mixes right-to-left and left-to-right text against RFC 3454 §6, or
//! if it holds a code point unassigned in Unicode 3.2 (A.1).
//!
//! Two uses, as RFC 4013 §2.5 distinguishes them:
//!
//! - [`prepare_stored`]: a password being set (`user add`, `user passwd`):
//!   refused when SASLprep refuses it, so every stored verifier and hash is
//!   of a prepared string;
//! - [`prepare_query`]: a string a client presents at login: its prepared
//!   form, or, when SASLprep refuses it, the string as given. Such a string
//!   was never stored by [`prepare_stored`]'s callers, so it cannot match a
//!   verifier made since; compared as given, it still matches an entry
//!   stored before passwords were prepared (and RFC 4013 lets a query hold
//!   unassigned code points, which the library below always refuses).
//!
//! ASCII without controls, the common case, is returned borrowed and
//! unchanged: such passwords hash as they always did.
//!
//! The tables are those of RFC 3454 (Unicode 3.2), from the `stringprep`
//! crate; NFKC comes from `unicode-normalization`, of a later Unicode
//! version, which gives the same result for every string SASLprep accepts
//! (Unicode's normalization stability policy; such strings hold only code
//! points assigned in 3.2).
//!
//! ```
//! use mailroom_core::sasl::saslprep::{prepare_query, prepare_stored};
//!
//! assert_eq!(prepare_stored("I\u{00AD}X").unwrap(), "IX");
//! assert_eq!(prepare_stored("pa\u{0308}ss").unwrap(), "päss");
//! assert_eq!(prepare_stored("a\u{00A0}b").unwrap(), "a b");
//! assert!(prepare_stored("bell\u{0007}").is_err());
//! assert_eq!(prepare_query("bell\u{0007}"), "bell\u{0007}");
//! ```

use std::borrow::Cow;

/// Why SASLprep refuses a string. `Display` names the reason (and the
/// character, escaped: it is never a whole secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SASLprep (RFC 4013) refuses it: {0}")]
pub struct SaslprepError(String);

/// SASLprep for a string to be stored (RFC 4013 §2.5: unassigned code
/// points prohibited). An empty result (a string of characters mapped to
/// nothing) is refused too: no mechanism can present it.
pub fn prepare_stored(s: &str) -> Result<Cow<'_, str>, SaslprepError> {
    let prepared = stringprep::saslprep(s).map_err(|e| SaslprepError(escape(&e.to_string())))?;
    if prepared.is_empty() {
        return Err(SaslprepError("nothing is left after mapping".to_owned()));
    }
    Ok(prepared)
}

/// SASLprep for a string a client presents: the prepared form, or `s`
/// unchanged when SASLprep refuses it (see the [module docs](self)).
pub fn prepare_query(s: &str) -> Cow<'_, str> {
    match stringprep::saslprep(s) {
        Ok(prepared) if !prepared.is_empty() => prepared,
        _ => Cow::Borrowed(s),
    }
}

/// The library's message with its character escaped (a control character
/// must not reach a terminal or a log line raw).
fn escape(message: &str) -> String {
    message.chars().flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of RFC 4013 §3.
    #[test]
    fn rfc4013_examples() {
        assert_eq!(prepare_stored("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(prepare_stored("user").unwrap(), "user");
        assert_eq!(prepare_stored("USER").unwrap(), "USER");
        assert_eq!(prepare_stored("\u{00AA}").unwrap(), "a");
        assert_eq!(prepare_stored("\u{2168}").unwrap(), "IX");
        let bell = prepare_stored("\u{0007}").unwrap_err();
        assert!(bell.to_string().contains("prohibited character"), "{bell}");
        assert!(bell.to_string().contains("\\u{7}"), "{bell}");
        let bidi = prepare_stored("\u{0627}\u{0031}").unwrap_err();
        assert!(bidi.to_string().contains("bidirectional"), "{bidi}");
    }

    #[test]
    fn composed_and_decomposed_agree() {
        let composed = "p\u{00E4}ssw\u{00F6}rd";
        let decomposed = "pa\u{0308}sswo\u{0308}rd";
        assert_eq!(prepare_stored(composed).unwrap(), composed);
        assert_eq!(prepare_stored(decomposed).unwrap(), composed);
        assert_eq!(prepare_query(decomposed), composed);
        // Non-ASCII spaces map to SPACE; full-width letters to ASCII.
        assert_eq!(prepare_stored("a\u{00A0}b\u{2003}c").unwrap(), "a b c");
        assert_eq!(prepare_stored("\u{FF41}\u{FF42}").unwrap(), "ab");
    }

    #[test]
    fn ascii_is_borrowed_and_unchanged() {
        let s = "sasl pw, with = signs";
        assert!(matches!(prepare_stored(s).unwrap(), Cow::Borrowed(b) if b == s));
        assert!(matches!(prepare_query(s), Cow::Borrowed(b) if b == s));
    }

    #[test]
    fn refused_strings() {
        for bad in [
            "tab\there",         // C.2.1 ASCII control
            "\u{E000}private",   // C.3 private use
            "\u{FFFF}",          // C.4 non-character
            "a\u{200E}b",        // C.8 display-changing
            "\u{E0001}tag",      // C.9 tagging
            "\u{0627}x\u{0627}", // RandALCat with LCat
            "\u{1F600} (unassigned in 3.2)",
            "\u{00AD}", // nothing left
        ] {
            assert!(prepare_stored(bad).is_err(), "{bad:?}");
            assert_eq!(prepare_query(bad), bad, "{bad:?}");
        }
        // Right-to-left text that starts and ends right-to-left is fine.
        assert!(prepare_stored("\u{0627}1\u{0628}").is_ok());
    }
}
