//! What SORT and THREAD (RFC 5256) read of a message: a few envelope
//! fields, the sent date and the `References:` field, without the body
//! structure and the rest of the header that a [`MessageSummary`] holds.
//! A store gives them for many messages at once
//! ([`crate::Mailbox::sort_fields`]); the CRC store decodes them straight
//! from its cache records ([`super::codec::decode_sort_fields`]).

use super::{Address, MessageSummary};

/// The fields of one message that SORT orders by and THREAD links by.
/// Values are raw as in the ENVELOPE (encoded words left encoded): the
/// protocol turns them into sort keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortFields {
    /// `Subject:`, raw.
    pub subject: Option<Vec<u8>>,
    /// The first entry of the `From:` address list (a group's start
    /// marker for a group).
    pub from: Option<Address>,
    /// The first entry of `To:`.
    pub to: Option<Address>,
    /// The first entry of `Cc:`.
    pub cc: Option<Address>,
    /// The `Date:` field in seconds since the epoch and its zone offset in
    /// minutes, if it parsed (as [`MessageSummary::sent_date`]).
    pub sent_date: Option<(i64, i16)>,
    /// `Message-ID:`, raw.
    pub message_id: Option<Vec<u8>>,
    /// `In-Reply-To:`, raw.
    pub in_reply_to: Option<Vec<u8>>,
    /// The unfolded value of the first `References:` field of the header.
    pub references: Option<Vec<u8>>,
    /// The [`SEARCH_FIELDS`] of the header, raw, as a header block: every
    /// such field whole (name, value, continuation lines and line breaks
    /// as they are), in header order, then an empty line. What SEARCH's
    /// FROM, TO, CC, BCC and SUBJECT keys match, without the rest of the
    /// header.
    pub search_header: Vec<u8>,
}

/// The header fields kept in [`SortFields::search_header`].
pub const SEARCH_FIELDS: [&str; 5] = ["From", "To", "Cc", "Bcc", "Subject"];

impl SortFields {
    /// The fields of a full summary (what stores without a cheaper path
    /// give, see [`crate::Mailbox::sort_fields`]).
    pub fn of(s: &MessageSummary) -> SortFields {
        let e = &s.envelope;
        SortFields {
            subject: e.subject.clone(),
            from: e.from.first().cloned(),
            to: e.to.first().cloned(),
            cc: e.cc.first().cloned(),
            sent_date: s.sent_date,
            message_id: e.message_id.clone(),
            in_reply_to: e.in_reply_to.clone(),
            references: header_field(&s.header, "References"),
            search_header: header_fields(&s.header, &SEARCH_FIELDS),
        }
    }
}

/// The unfolded value of the first `name:` field of a raw header block
/// (continuation lines joined with one space each, the line breaks
/// dropped); `None` when the header has no such field.
pub fn header_field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut lines = header.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii_end()
            .eq_ignore_ascii_case(name.as_bytes())
        {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                let next = next.strip_suffix(b"\r").unwrap_or(next);
                value.push(b' ');
                value.extend_from_slice(next);
                lines.next();
            } else {
                break;
            }
        }
        return Some(value);
    }
    None
}

/// The fields of a raw header block whose names are among `names` (ASCII
/// case ignored), whole and in order, followed by an empty line: a header
/// block of just those fields.
pub fn header_fields(header: &[u8], names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if !line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            keep = line.iter().position(|&b| b == b':').is_some_and(|colon| {
                let name = line[..colon].trim_ascii_end();
                names
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            });
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_summary() {
        let s = MessageSummary::parse(
            b"From: Ann <ann@example.com>, bob@example.com\r\nTo: undisclosed:;\r\n\
Subject: Re: hi\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <m@x>\r\n\
In-Reply-To: <p@x>\r\nReferences: <a@x>\r\n <p@x>\r\n\r\nbody\r\n",
        );
        let f = SortFields::of(&s);
        assert_eq!(f.subject.as_deref(), Some(&b"Re: hi"[..]));
        assert_eq!(f.from.and_then(|a| a.mailbox).as_deref(), Some(&b"ann"[..]));
        assert_eq!(
            f.to.and_then(|a| a.mailbox).as_deref(),
            Some(&b"undisclosed"[..])
        );
        assert_eq!(f.cc, None);
        assert_eq!(f.sent_date, Some((1_700_000_000, 0)));
        assert_eq!(f.message_id.as_deref(), Some(&b"<m@x>"[..]));
        assert_eq!(f.in_reply_to.as_deref(), Some(&b"<p@x>"[..]));
        assert_eq!(f.references.as_deref(), Some(&b" <a@x>  <p@x>"[..]));
        assert_eq!(
            f.search_header,
            b"From: Ann <ann@example.com>, bob@example.com\r\nTo: undisclosed:;\r\n\
Subject: Re: hi\r\n\r\n"
        );
    }

    #[test]
    fn header_fields_are_whole_and_in_order() {
        let h =
            b"Subject: a\r\n b\r\nX-A: 1\r\n c\r\nbcc : x\r\nSUBJECT: again\nbroken line\r\n\r\n";
        assert_eq!(
            header_fields(h, &SEARCH_FIELDS),
            b"Subject: a\r\n b\r\nbcc : x\r\nSUBJECT: again\n\r\n"
        );
        assert_eq!(header_fields(b"", &SEARCH_FIELDS), b"\r\n");
    }

    #[test]
    fn header_field_unfolds_and_ignores_case() {
        let h = b"X-A: 1\r\nreferences : <a@b>\r\n\t<c@d>\r\nReferences: <later@x>\r\n\r\n";
        assert_eq!(
            header_field(h, "References").as_deref(),
            Some(&b" <a@b> \t<c@d>"[..])
        );
        assert_eq!(header_field(h, "X-B"), None);
        assert_eq!(header_field(b"", "References"), None);
    }
}
