//! The MIME structure of a message as FETCH needs it, parsed once at append
//! time with `mail-parser` and kept in the store's cache.
//!
//! [`MessageSummary::parse`] gives the envelope (RFC 3501 ENVELOPE fields,
//! raw header values) and the body structure tree with every part's byte
//! offsets, so `BODY[1.2]`, `BODY[1.MIME]` and friends are slices of the
//! stored message, and ENVELOPE/BODYSTRUCTURE never need the message file.

/// One address of an ENVELOPE address list (RFC 3501 §7.4.2). A group is
/// written as a start marker (`mailbox` = group name, `host` = None) and an end
/// marker (all `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Display name, raw (encoded words are left encoded).
    pub name: Option<Vec<u8>>,
    /// Source route (obsolete), normally `None`.
    pub adl: Option<Vec<u8>>,
    /// Local part, or the group name in a group start marker.
    pub mailbox: Option<Vec<u8>>,
    /// Domain; `None` in group markers.
    pub host: Option<Vec<u8>>,
}

/// The ENVELOPE of a message or of an embedded message/rfc822 part.
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
    /// `inline`, `attachment`, ...
    pub kind: String,
    /// Its parameters.
    pub params: Vec<(String, String)>,
}

/// What kind of part this is, with its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// Any non-multipart, non-message/rfc822 part.
    Single,
    /// A multipart with its parts (at least one).
    Multipart(Vec<BodyPart>),
    /// A message/rfc822 (or message/global) part with the embedded message.
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
    /// Length of the body in bytes (the IMAP body size).
    pub body_len: u64,
    /// Number of lines in the body (reported for text/* and message/rfc822).
    pub lines: u32,
    /// Media type, lower case (`text`); `text` when absent.
    pub media_type: String,
    /// Media subtype, lower case (`plain`); `plain` when absent.
    pub media_subtype: String,
    /// Content-Type parameters (names lower case), `charset=us-ascii` added for text when absent.
    pub params: Vec<(String, String)>,
    /// `Content-ID:`.
    pub id: Option<String>,
    /// `Content-Description:`.
    pub description: Option<String>,
    /// `Content-Transfer-Encoding:`, `7BIT` when absent.
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
    /// Parses a message. Never fails: malformed input yields a best-effort
    /// structure (a single text/plain part at worst), as IMAP servers must
    /// still serve such messages.
    pub fn parse(message: &[u8]) -> MessageSummary {
        // Minimal placeholder structure until the mail-parser mapping lands:
        // header block and one text/plain body.
        let header_len = find_header_end(message);
        let body = &message[header_len..];
        MessageSummary {
            envelope: Envelope::default(),
            structure: BodyPart {
                header_offset: 0,
                body_offset: header_len as u64,
                body_len: body.len() as u64,
                lines: count_lines(body),
                media_type: "text".into(),
                media_subtype: "plain".into(),
                params: vec![("charset".into(), "us-ascii".into())],
                id: None,
                description: None,
                encoding: "7BIT".into(),
                md5: None,
                disposition: None,
                language: Vec::new(),
                location: None,
                kind: PartKind::Single,
            },
            header: message[..header_len].to_vec(),
            sent_date: None,
        }
    }
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

/// Counts lines as IMAP does: the number of line ends, plus one if the last
/// line is not terminated.
pub fn count_lines(data: &[u8]) -> u32 {
    let n = data.iter().filter(|&&b| b == b'\n').count();
    let extra = usize::from(!data.is_empty() && data.last() != Some(&b'\n'));
    u32::try_from(n + extra).unwrap_or(u32::MAX)
}
