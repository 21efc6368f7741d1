//! The IMAP URL harness (CATENATE, RFC 4469 / RFC 5092) shared by the fuzz
//! target `url` and the corpus replay test: any bytes, as a URL, must parse
//! or be refused without a panic; a URL that parses must print in its
//! canonical form and parse back to the same value, and name a UID.

#![allow(unreachable_pub)] // shared with the fuzz target, where it is a binary's module

use mailroom_imap::extension::catenate::{MAX_URL_LEN, parse_url};

/// Checks one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = parse_url(text) else {
        return;
    };
    assert!(text.len() <= MAX_URL_LEN, "a URL over the limit was taken");
    assert_ne!(url.uid, 0, "UID 0 taken from {text:?}");
    let canonical = url.to_string();
    assert_eq!(
        parse_url(&canonical),
        Ok(url),
        "{text:?} printed as {canonical:?} reads back differently"
    );
}
