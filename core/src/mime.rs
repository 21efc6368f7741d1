//! The MIME structure of a message as FETCH needs it, parsed once at append
//! time and kept in the store's cache.
//!
//! [`MessageSummary::parse`] gives the envelope (RFC 3501 ENVELOPE fields,
//! raw header values) and the body structure tree with every part's byte
//! offsets, so `BODY[1.2]`, `BODY[1.MIME]` and friends are slices of the
//! stored message, and ENVELOPE/BODYSTRUCTURE never need the message file.
//!
//! ```
//! use mailroom_core::mime::{MessageSummary, PartKind};
//!
//! let raw = b"From: Ann <ann@example.com>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\
//! Content-Type: multipart/mixed; boundary=b\r\n\r\n\
//! --b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
//! let summary = MessageSummary::parse(raw);
//! // Header values stay raw: encoded words are not decoded.
//! assert_eq!(summary.envelope.subject.as_deref(), Some(&b"=?utf-8?q?caf=C3=A9?="[..]));
//! assert_eq!(summary.envelope.from[0].host.as_deref(), Some(&b"example.com"[..]));
//! let PartKind::Multipart(children) = &summary.structure.kind else { panic!() };
//! let text = &children[0];
//! let start = text.body_offset as usize;
//! assert_eq!(&raw[start..start + text.body_len as usize], b"hello");
//! ```
//!
//! # How the tree is cut
//!
//! The MIME grammar leaves a lot to the reader when a message is not quite
//! well formed, and IMAP clients cache what the server said about a message
//! forever, so the splitting rules follow what the most widely deployed IMAP
//! server (Dovecot) reports, which is what clients have been tested against:
//!
//! - a boundary line is `--` followed by any active boundary of an enclosing
//!   multipart as a *prefix* (the longest match wins, the innermost on a tie);
//!   `--boundary--` closes its multipart;
//! - a part ends just before the line break that precedes the boundary line,
//!   so that line break is in no part's body (but a part whose body starts
//!   with the boundary line keeps its header's blank line);
//! - a boundary line inside a part's header block ends that part too;
//! - preamble and epilogue belong to the multipart's own body, to no child;
//! - `Content-*` fields count only in a MIME part: a child of a multipart or
//!   a header with `MIME-Version` or `Content-Type`; otherwise the part is
//!   `text/plain` (`message/rfc822` under `multipart/digest`);
//! - nesting deeper than [`MAX_DEPTH`] or more than [`MAX_PARTS`] parts stop
//!   the splitting: the rest is the body of an `application/octet-stream`
//!   leaf.
//!
//! Content-Type and Content-Disposition parameters are parsed by
//! `mail-parser` (RFC 2231 continuations and charsets decoded, RFC 2047
//! words in values decoded, names in lower case); everything else here is
//! ours. Header text kept as `String` (parameters, Content-ID, -Description,
//! ...) that is not valid UTF-8 is read as ISO-8859-1; the envelope keeps
//! raw bytes.

mod address;
pub mod codec;
pub mod collate;
mod header;
mod header_texts;
mod sort_fields;
mod sort_keys;
mod structure;
#[cfg(test)]
mod tests;

pub use header_texts::{HeaderText, HeaderTexts, unfold};
pub use sort_fields::{SEARCH_FIELDS, SortFields, header_field, header_fields};
pub use sort_keys::{SortKeys, SortText, rank_keys, text_ranks};

/// Parts nested deeper than this become leaves (the same limit as Dovecot's
/// `mail_max_nested_mime_parts` default, so clients see the same tree).
pub const MAX_DEPTH: usize = 100;

/// After this many parts, the splitter stops: everything left is the body of
/// the part being read.
pub const MAX_PARTS: usize = 10_000;

/// One address of an ENVELOPE address list (RFC 3501 §7.4.2). A group is
/// written as a start marker (`mailbox` = group name, `host` = None) and an end
/// marker (all `None`).
///
/// An address missing its local part or domain gets the placeholders
/// `MISSING_MAILBOX` / `MISSING_DOMAIN` (and an unparseable `<...>` the domain
/// `SYNTAX_ERROR`), as Dovecot does, so that `host` is `None` only in group
/// markers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Display name, raw (encoded words are left encoded), or the comment of
    /// an `addr@host (Comment)` address.
    pub name: Option<Vec<u8>>,
    /// Source route (obsolete), normally `None`.
    pub adl: Option<Vec<u8>>,
    /// Local part, or the group name in a group start marker.
    pub mailbox: Option<Vec<u8>>,
    /// Domain; `None` in group markers.
    pub host: Option<Vec<u8>>,
}

/// The ENVELOPE of a message or of an embedded message/rfc822 part.
///
/// String fields are the raw header value, unfolded (line breaks of folded
/// lines removed, whitespace kept) with leading whitespace removed;
/// `Some(vec![])` for a present but empty field, `None` for a missing one.
/// When a field is repeated, the last string field wins and address lists
/// add up (as Dovecot reports them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `Date:` raw.
    pub date: Option<Vec<u8>>,
    /// `Subject:` raw.
    pub subject: Option<Vec<u8>>,
    /// `From:`.
    pub from: Vec<Address>,
    /// `Sender:`, or From when absent (RFC 3501 §7.4.2).
    pub sender: Vec<Address>,
    /// `Reply-To:`, or From when absent.
    pub reply_to: Vec<Address>,
    /// `To:`.
    pub to: Vec<Address>,
    /// `Cc:`.
    pub cc: Vec<Address>,
    /// `Bcc:`.
    pub bcc: Vec<Address>,
    /// `In-Reply-To:` raw.
    pub in_reply_to: Option<Vec<u8>>,
    /// `Message-ID:` raw.
    pub message_id: Option<Vec<u8>>,
}

/// A `Content-Disposition` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// `inline`, `attachment`, ... (lower case).
    pub kind: String,
    /// Its parameters (names lower case, values decoded as for Content-Type).
    pub params: Vec<(String, String)>,
}

/// What kind of part this is, with its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// Any non-multipart, non-message/rfc822 part. A multipart or message
    /// part cut short by [`MAX_DEPTH`] or [`MAX_PARTS`] is a `Single` of type
    /// `application/octet-stream`.
    Single,
    /// A multipart with its parts. Empty when the multipart has no boundary
    /// parameter or no boundary line was found; IMAP then shows one empty
    /// text/plain part, as RFC 3501 requires at least one.
    Multipart(Vec<BodyPart>),
    /// A message/rfc822 (or message/global, RFC 9051 §7.5.2) part with the
    /// embedded message.
    Message {
        /// The embedded message's envelope.
        envelope: Box<Envelope>,
        /// The embedded message's root part.
        body: Box<BodyPart>,
    },
}

/// One MIME part with its byte offsets in the whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart {
    /// Offset of the part's header block.
    pub header_offset: u64,
    /// Offset of the part's body (just after the blank line ending the header).
    pub body_offset: u64,
    /// Length of the body in bytes (the IMAP body size). For a child of a
    /// multipart, the line break before the next boundary line is not included.
    pub body_len: u64,
    /// Number of lines (LF characters) in the body; IMAP reports it for
    /// text/* and message/rfc822.
    pub lines: u32,
    /// Media type, lower case (`text`); `text` when absent or invalid.
    pub media_type: String,
    /// Media subtype, lower case (`plain`); `plain` when absent or invalid.
    pub media_subtype: String,
    /// Content-Type parameters (names lower case), `charset=us-ascii` added
    /// (last) for text parts without a charset.
    pub params: Vec<(String, String)>,
    /// `Content-ID:`.
    pub id: Option<String>,
    /// `Content-Description:`.
    pub description: Option<String>,
    /// `Content-Transfer-Encoding:` token as written, `7bit` when absent or invalid.
    pub encoding: String,
    /// `Content-MD5:`.
    pub md5: Option<String>,
    /// `Content-Disposition:`.
    pub disposition: Option<Disposition>,
    /// `Content-Language:` values.
    pub language: Vec<String>,
    /// `Content-Location:`.
    pub location: Option<String>,
    /// Children.
    pub kind: PartKind,
}

impl BodyPart {
    /// The end of the part in the message (`body_offset + body_len`).
    pub fn end_offset(&self) -> u64 {
        self.body_offset + self.body_len
    }

    /// Whether IMAP reports a line count for this part (`text/*` leaves and
    /// message/rfc822 parts).
    pub fn has_lines(&self) -> bool {
        match self.kind {
            PartKind::Single => self.media_type == "text",
            PartKind::Message { .. } => true,
            PartKind::Multipart(_) => false,
        }
    }
}

/// Everything about a message's content that FETCH and SEARCH need often,
/// computed once at append time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// The message's ENVELOPE.
    pub envelope: Envelope,
    /// The root part (for a non-multipart message, the message itself).
    pub structure: BodyPart,
    /// The raw header block of the message, including the blank line that ends it.
    pub header: Vec<u8>,
    /// The `Date:` header as seconds since the epoch with its zone in minutes, if parseable.
    pub sent_date: Option<(i64, i16)>,
}

impl MessageSummary {
    /// Parses a message. Never fails and never panics: malformed input yields
    /// a best-effort structure (a single text/plain part at worst), as IMAP
    /// servers must still serve such messages. Work is linear in the size of
    /// the message; nesting and part counts are bounded by [`MAX_DEPTH`] and
    /// [`MAX_PARTS`].
    pub fn parse(message: &[u8]) -> MessageSummary {
        let (structure, envelope) = structure::parse(message);
        let header_len = usize::try_from(structure.body_offset)
            .unwrap_or(message.len())
            .min(message.len());
        let sent_date = envelope.date.as_deref().and_then(parse_date);
        MessageSummary {
            envelope,
            structure,
            header: message[..header_len].to_vec(),
            sent_date,
        }
    }
}

/// Parses an RFC 5322 date (with the obsolete forms `mail-parser` accepts)
/// into seconds since the epoch and the zone offset in minutes.
fn parse_date(value: &[u8]) -> Option<(i64, i16)> {
    let text = String::from_utf8_lossy(value);
    let date = mail_parser::DateTime::parse_rfc822(&text)?;
    if !date.is_valid() {
        return None;
    }
    let minutes = i16::from(date.tz_hour) * 60 + i16::from(date.tz_minute);
    let zone = if date.tz_before_gmt {
        -minutes
    } else {
        minutes
    };
    Some((date.to_timestamp(), zone))
}

/// The length of the header block at the start of `data`, including the
/// empty line that ends it (CRLF CRLF or LF LF); all of `data` if it has no
/// body.
pub fn find_header_end(data: &[u8]) -> usize {
    let mut i = 0;
    while i < data.len() {
        // at start of a line
        if data[i] == b'\n' {
            return i + 1;
        }
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            return i + 2;
        }
        match data[i..].iter().position(|&b| b == b'\n') {
            Some(p) => i += p + 1,
            None => return data.len(),
        }
    }
    data.len()
}

/// Counts lines as IMAP servers report them: the number of LF characters.
/// A last line without a line end is not counted (a part's last line before
/// a boundary never has one: that line break belongs to the boundary).
pub fn count_lines(data: &[u8]) -> u32 {
    let n = data.iter().filter(|&&b| b == b'\n').count();
    u32::try_from(n).unwrap_or(u32::MAX)
}
