//! File helpers: durable writes, escaping of names into path components.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use sha1::{Digest, Sha1};

/// Fsyncs a directory (so a rename or create in it is durable).
pub(crate) fn sync_dir(dir: &Path, durable: bool) -> io::Result<()> {
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes `data` to `path` atomically: a temporary file beside it, fsync,
/// rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path without parent"))?;
    let mut tmp_name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path without file name"))?
        .to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_data()?;
        }
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir, durable)
}

/// Escapes an arbitrary string (user name, viewer name) into one safe path
/// component: ASCII letters, digits and `-_@+=,` stay, everything else
/// (including `.`, `/`, `%` and every non-ASCII byte) becomes `%XX`. A result
/// longer than 200 bytes is replaced by `~` and the SHA-1 of the input, so
/// the component never exceeds file-name limits. No result is `.`, `..` or
/// contains `/`: no path traversal is possible.
pub(crate) fn escape_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_@+=,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    if out.len() > 200 {
        let digest = Sha1::digest(s.as_bytes());
        let mut h = String::from("~");
        for b in digest {
            h.push_str(&format!("{b:02x}"));
        }
        return h;
    }
    out
}

/// Reverses [`escape_component`]; `None` for a component that is not its
/// output or was hashed (`~`: too long to keep the name).
pub(crate) fn unescape_component(s: &str) -> Option<String> {
    if s.starts_with('~') || s == "%" {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (escape_component(&name) == s).then_some(name)
}

/// Escapes a string for one whitespace-separated token of a text file:
/// bytes outside `!`..`~` and `%` itself become `%XX`.
pub(crate) fn escape_token(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

/// Reverses [`escape_token`]; `None` if malformed.
pub(crate) fn unescape_token(s: &str) -> Option<String> {
    if s == "%" {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unescape_reverses_escape() {
        for name in ["alice@example.com", "b.o b/%x", "ü"] {
            assert_eq!(
                unescape_component(&escape_component(name)).as_deref(),
                Some(name)
            );
        }
        assert_eq!(
            unescape_component(&escape_component(&"x".repeat(300))),
            None
        );
        assert_eq!(unescape_component("%4"), None);
    }

    #[test]
    fn components_are_safe() {
        for s in ["..", ".", "a/b", "../../etc", "", "ä", "%2F"] {
            let e = escape_component(s);
            assert!(
                !e.contains('/') && e != "." && e != ".." && !e.is_empty(),
                "{s} -> {e}"
            );
        }
        assert_eq!(escape_component("alice@example.com"), "alice@example%2Ecom");
        assert_eq!(escape_component(&"x".repeat(300)).len(), 41);
    }

    proptest! {
        #[test]
        fn token_roundtrip(s in ".{0,40}") {
            let e = escape_token(&s);
            prop_assert!(!e.contains(char::is_whitespace));
            prop_assert_eq!(unescape_token(&e).unwrap(), s);
        }

        #[test]
        fn component_injective(a in ".{0,20}", b in ".{0,20}") {
            if a != b {
                prop_assert_ne!(escape_component(&a), escape_component(&b));
            }
        }
    }
}
