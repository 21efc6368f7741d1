//! [`HeaderTexts`]: what SEARCH's header keys (FROM, TO, CC, BCC,
//! SUBJECT, HEADER) match of a header block, computed once: each field's
//! lower-case name, its value decoded (RFC 2047 words, address lists as
//! `Name <addr>`) and raw (unfolded), both in their `i;unicode-casemap`
//! form, so that matching a message is a few substring searches with no
//! parsing and no allocation. A store may keep them per message while a
//! mailbox is open ([`crate::Mailbox::search_headers`]): parsing the
//! header with `mail-parser` and casemapping it was most of the time of a
//! `SEARCH FROM` over 100,000 messages (`perf record` of
//! `mailroom-bench sort`), and a message's header never changes under its
//! UID.
//!
//! One value holds all its text in one string (names, decoded and raw
//! values one after the other) and the ends of each field's three parts:
//! two allocations per message. A raw value equal to its decoded value
//! (plain ASCII fields, most of them) is kept once.

use mail_parser::{Address, HeaderValue, MessageParser};

use super::SortFields;
use super::collate::unicode_casemap;

/// Where one field's parts end in [`HeaderTexts::text`] (each starts
/// where the one before ends; the first field's name at 0). A raw value
/// kept once (equal to the decoded one) is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ends {
    name: u32,
    decoded: u32,
    raw: u32,
}

/// The searchable text of a header block (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderTexts {
    text: Box<str>,
    fields: Box<[Ends]>,
}

/// One field of [`HeaderTexts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderText<'a> {
    /// The field name, lower case.
    pub name: &'a str,
    /// The value decoded, in `i;unicode-casemap` form.
    pub decoded: &'a str,
    /// The value raw and unfolded, in `i;unicode-casemap` form; empty when
    /// it is the same as `decoded`.
    pub raw: &'a str,
}

impl HeaderText<'_> {
    /// Whether the decoded or the raw value contains `needle` (a string
    /// in `i;unicode-casemap` form): what a header key matches.
    pub fn contains(&self, needle: &str) -> bool {
        self.decoded.contains(needle) || self.raw.contains(needle)
    }
}

impl HeaderTexts {
    /// The texts of every field of a raw header block.
    pub fn of_header(header: &[u8]) -> HeaderTexts {
        let parser = MessageParser::new().default_header_text();
        let Some(msg) = parser.parse_headers(header) else {
            return HeaderTexts::default();
        };
        let mut text = String::new();
        let mut fields = Vec::with_capacity(msg.headers().len());
        let end = |text: &String| u32::try_from(text.len()).unwrap_or(u32::MAX);
        for h in msg.headers() {
            let start = (h.offset_start as usize).min(header.len());
            let stop = (h.offset_end as usize).clamp(start, header.len());
            let raw = unicode_casemap(&unfold(&String::from_utf8_lossy(&header[start..stop])));
            let decoded = unicode_casemap(&render_value(&h.value));
            text.push_str(&h.name.as_str().to_ascii_lowercase());
            let name = end(&text);
            text.push_str(&decoded);
            let decoded_end = end(&text);
            if raw != decoded {
                text.push_str(&raw);
            }
            fields.push(Ends {
                name,
                decoded: decoded_end,
                raw: end(&text),
            });
        }
        HeaderTexts {
            text: text.into_boxed_str(),
            fields: fields.into_boxed_slice(),
        }
    }

    /// The texts of the fields SEARCH's FROM, TO, CC, BCC and SUBJECT keys
    /// look at ([`SortFields::search_header`]; `None`: no fields).
    pub fn of(fields: Option<&SortFields>) -> HeaderTexts {
        fields.map_or_else(HeaderTexts::default, |f| {
            HeaderTexts::of_header(&f.search_header)
        })
    }

    /// The fields, in header order.
    pub fn iter(&self) -> impl Iterator<Item = HeaderText<'_>> {
        let mut start = 0usize;
        self.fields.iter().map(move |e| {
            let part = |from: usize, to: u32| self.text.get(from..to as usize).unwrap_or_default();
            let t = HeaderText {
                name: part(start, e.name),
                decoded: part(e.name as usize, e.decoded),
                raw: part(e.decoded as usize, e.raw),
            };
            start = e.raw as usize;
            t
        })
    }

    /// Whether a field named `name` (lower case) contains `needle` (in
    /// `i;unicode-casemap` form), decoded or raw: SEARCH's header keys.
    pub fn contains(&self, name: &str, needle: &str) -> bool {
        self.iter().any(|h| h.name == name && h.contains(needle))
    }

    /// Bytes this value holds on the heap and inline (what a cache of it
    /// costs per message, besides the cache's own table).
    pub fn memory(&self) -> usize {
        std::mem::size_of::<HeaderTexts>()
            + self.text.len()
            + self.fields.len() * std::mem::size_of::<Ends>()
    }
}

/// A header value with its line breaks removed and trimmed (what the raw
/// side of a header key and TEXT match).
pub fn unfold(s: &str) -> String {
    s.replace("\r\n", "").replace('\n', "").trim().to_owned()
}

/// A parsed header value as SEARCH matches it decoded: address lists as
/// `Name <addr>, ...` (groups as `Group: ...`), text as it decodes.
fn render_value(v: &HeaderValue<'_>) -> String {
    fn addr(out: &mut String, name: Option<&str>, address: Option<&str>) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        if let Some(n) = name {
            out.push_str(n);
            out.push(' ');
        }
        if let Some(a) = address {
            out.push('<');
            out.push_str(a);
            out.push('>');
        }
    }
    match v {
        HeaderValue::Address(Address::List(list)) => {
            let mut out = String::new();
            for a in list {
                addr(&mut out, a.name.as_deref(), a.address.as_deref());
            }
            out
        }
        HeaderValue::Address(Address::Group(groups)) => {
            let mut out = String::new();
            for g in groups {
                if let Some(n) = &g.name {
                    out.push_str(n);
                    out.push_str(": ");
                }
                for a in &g.addresses {
                    addr(&mut out, a.name.as_deref(), a.address.as_deref());
                }
            }
            out
        }
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(", "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decoded_raw_and_casemapped() {
        let h = HeaderTexts::of_header(
            b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: plain\r\n\
X-Tag: Blue\r\n green\r\n\r\n",
        );
        let got: Vec<HeaderText<'_>> = h.iter().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].name, "from");
        assert_eq!(got[0].decoded, "JU\u{308}RGEN <J@EXAMPLE.ORG>");
        assert_eq!(got[0].raw, "=?UTF-8?Q?J=C3=BCRGEN?= <J@EXAMPLE.ORG>");
        // Raw equal to decoded: kept once, matched the same.
        assert_eq!(
            (got[1].name, got[1].decoded, got[1].raw),
            ("subject", "PLAIN", "")
        );
        // Folded: decoded as mail-parser leaves it, raw unfolded.
        assert_eq!(
            (got[2].decoded, got[2].raw),
            ("BLUE\r\n GREEN", "BLUE GREEN")
        );
        assert!(h.contains("x-tag", "BLUE GREEN"));
        assert!(h.contains("from", "JU\u{308}R"));
        assert!(h.contains("from", "=?UTF-8"));
        assert!(h.contains("subject", "LAI"));
        assert!(h.contains("x-tag", ""));
        assert!(!h.contains("x-other", ""));
        assert!(!h.contains("subject", "BLUE"));
        assert!(h.memory() >= std::mem::size_of::<HeaderTexts>() + 3 * 12);
        assert_eq!(HeaderTexts::of(None).iter().count(), 0);
        assert_eq!(HeaderTexts::of_header(b"").iter().count(), 0);
    }
}
