//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3).
//!
//! IMAP4rev1 clients that have not enabled `UTF8=ACCEPT` (RFC 6855) write
//! non-ASCII mailbox names in a variant of UTF-7: printable ASCII stands for
//! itself except `&`, which is written `&-`; any other run of characters is
//! written as `&`, the modified base64 (`,` instead of `/`, no padding) of
//! its UTF-16BE form, and `-`.
//!
//! Mailroom keeps names as UTF-8 internally and converts only at the IMAP
//! edge: [`decode`] on the way in, [`encode`] on the way out. It lives in
//! core because backends meet it too: Dovecot's Maildir folder names are
//! modified UTF-7 on disk.
//!
//! ```
//! use mailroom_core::utf7;
//! assert_eq!(utf7::encode("Entwürfe"), "Entw&APw-rfe");
//! assert_eq!(utf7::decode("Entw&APw-rfe").as_deref(), Some("Entwürfe"));
//! assert_eq!(utf7::decode("AT&T"), None); // a bare `&` is not valid
//! ```

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Encodes a UTF-8 mailbox name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for u in units.drain(..) {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out.push('-');
}

/// Decodes a modified UTF-7 mailbox name to UTF-8.
///
/// Returns `None` for anything that is not valid modified UTF-7: a byte
/// outside printable ASCII, an unterminated or malformed `&...-` run, bits
/// left over, an unpaired surrogate, or a base64 run that encodes printable
/// ASCII (which RFC 3501 forbids).
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        i += 1;
        let start = i;
        while i < bytes.len() && bytes[i] != b'-' {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let run = &bytes[start..i];
        i += 1; // the '-'
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
        let mut acc: u32 = 0;
        let mut bits = 0u32;
        for &b in run {
            acc = (acc << 6) | b64_value(b)?;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push(((acc >> bits) & 0xffff) as u16);
                acc &= (1 << bits) - 1;
            }
        }
        // Leftover bits must be fewer than 6 and all zero.
        if bits >= 6 || acc != 0 {
            return None;
        }
        for ch in char::decode_utf16(units.iter().copied()) {
            let ch = ch.ok()?;
            if (' '..='~').contains(&ch) {
                return None;
            }
            out.push(ch);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_examples() {
        // RFC 3501 §5.1.3
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("a&b"), "a&-b");
        assert_eq!(decode("a&-b").as_deref(), Some("a&b"));
        assert_eq!(encode("😀"), "&2D3eAA-");
        assert_eq!(decode("&2D3eAA-").as_deref(), Some("😀"));
    }

    #[test]
    fn rejects_invalid() {
        assert_eq!(decode("&"), None);
        assert_eq!(decode("&U,BTFw"), None);
        assert_eq!(decode("&AGE-"), None); // encodes "a"
        assert_eq!(decode("&2D0-"), None); // unpaired surrogate
        assert_eq!(decode("&U,BTF-"), None); // leftover bits
        assert_eq!(decode("&U*BTFw-"), None);
        assert_eq!(decode("é"), None);
        assert_eq!(decode("a\tb"), None);
    }

    proptest! {
        #[test]
        fn roundtrip(s in "\\PC{0,40}") {
            let e = encode(&s);
            prop_assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(&e), Some(s));
        }

        #[test]
        fn decode_never_panics(s in "[ -~]{0,40}") {
            if let Some(d) = decode(&s) {
                // Canonical inputs round-trip exactly.
                let _ = encode(&d);
            }
        }
    }
}
