//! The MIME splitter: cuts a message into its part tree with exact byte
//! offsets (the rules are listed in the module documentation of `mime`).

use mail_parser::{HeaderValue, parsers::MessageStream};

use super::address::{Lexer, MAX_ADDRESSES, Step, is_atext, parse_list};
use super::header::{self, Field};
use super::{BodyPart, Disposition, Envelope, MAX_DEPTH, MAX_PARTS, PartKind, count_lines};

/// Longer boundary parameters are cut to this many bytes (RFC 2046 allows
/// 70; servers accept a little more).
const MAX_BOUNDARY_LEN: usize = 80;

/// Parses the whole message: the root part and the root envelope.
pub(super) fn parse(data: &[u8]) -> (BodyPart, Envelope) {
    let mut splitter = Splitter {
        data,
        boundaries: Vec::new(),
        parts: 0,
        next_owner: 0,
    };
    let (part, envelope, _) = splitter.part(0, 0, Parent::Root);
    (part, envelope.unwrap_or_default())
}

/// What contains the part being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// The part is the message itself.
    Root,
    /// The part is a child of a multipart (of a `multipart/digest` if set).
    Multipart { digest: bool },
    /// The part is the message embedded in a message/rfc822 part.
    Message,
}

/// A boundary of an open multipart.
#[derive(Debug)]
struct Active {
    owner: usize,
    text: Vec<u8>,
}

/// How the scan of a part ended.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// At the end of the message.
    Eof,
    /// At a boundary line of the multipart `owner`.
    Boundary {
        owner: usize,
        /// Offset of the boundary line (its `--`).
        line: usize,
        /// `--boundary--`.
        is_end: bool,
        /// Where the part that met the boundary ends.
        part_end: usize,
        /// Where the parts between that one and the owner end: the same,
        /// except when the boundary cut a header block short, where the
        /// line break before the boundary line belongs to the enclosing
        /// part.
        ancestor_end: usize,
    },
}

struct Splitter<'a> {
    data: &'a [u8],
    /// Boundaries of the open multiparts, outermost first.
    boundaries: Vec<Active>,
    /// Parts created so far.
    parts: usize,
    next_owner: usize,
}

/// The MIME fields of one part that decide its type.
struct Content {
    media_type: String,
    media_subtype: String,
    params: Vec<(String, String)>,
    boundary: Option<Vec<u8>>,
    id: Option<String>,
    description: Option<String>,
    encoding: Option<String>,
    md5: Option<String>,
    disposition: Option<Disposition>,
    language: Vec<String>,
    location: Option<String>,
}

/// What the splitter does with a part's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Leaf,
    Multipart,
    Message,
}

impl Stop {
    /// Where the part that met this stop ends.
    fn part_end(&self, eof: usize) -> usize {
        match *self {
            Stop::Eof => eof,
            Stop::Boundary { part_end, .. } => part_end,
        }
    }

    /// Where a part that contains the one that met this stop ends.
    fn ancestor_end(&self, eof: usize) -> usize {
        match *self {
            Stop::Eof => eof,
            Stop::Boundary { ancestor_end, .. } => ancestor_end,
        }
    }
}

impl Splitter<'_> {
    /// Parses the part whose header starts at `start`. Returns the part,
    /// its envelope when it is the root or an embedded message, and how
    /// its scan ended.
    fn part(
        &mut self,
        start: usize,
        depth: usize,
        parent: Parent,
    ) -> (BodyPart, Option<Envelope>, Stop) {
        self.parts += 1;
        let data = self.data;
        let (fields_end, body_start, header_stop) = self.scan_header(start);
        let fields: Vec<Field<'_>> = header::fields(&data[start..fields_end]).collect();
        let mut content = Content::from_fields(&fields, parent);
        let envelope = matches!(parent, Parent::Root | Parent::Message).then(|| envelope(&fields));

        let mut shape = match (content.media_type.as_str(), content.media_subtype.as_str()) {
            ("multipart", _) => Shape::Multipart,
            ("message", "rfc822" | "global") => Shape::Message,
            _ => Shape::Leaf,
        };
        if shape != Shape::Leaf && (depth + 1 >= MAX_DEPTH || self.parts >= MAX_PARTS) {
            // Too deep or too many parts: a leaf. A multipart or message
            // type on a leaf would break BODYSTRUCTURE parsers, so it
            // shows as opaque data.
            shape = Shape::Leaf;
            content.media_type = "application".into();
            content.media_subtype = "octet-stream".into();
        }
        let digest = content.media_subtype == "digest";
        let boundary = content.boundary.take();
        let mut part = content.into_part(start, body_start);

        let (kind, end, stop) = if let Some(stop) = header_stop {
            // A boundary cut the header short: the body is empty.
            let kind = match shape {
                Shape::Leaf => PartKind::Single,
                Shape::Multipart => PartKind::Multipart(Vec::new()),
                Shape::Message => {
                    self.parts += 1;
                    let empty = Content::from_fields(&[], Parent::Message)
                        .into_part(body_start, body_start);
                    PartKind::Message {
                        envelope: Box::default(),
                        body: Box::new(empty),
                    }
                }
            };
            (kind, body_start, stop)
        } else {
            match (shape, boundary) {
                (Shape::Multipart, Some(boundary)) => {
                    self.multipart(body_start, depth, digest, boundary)
                }
                (Shape::Message, _) => {
                    let (child, child_envelope, stop) =
                        self.part(body_start, depth + 1, Parent::Message);
                    let kind = PartKind::Message {
                        envelope: Box::new(child_envelope.unwrap_or_default()),
                        body: Box::new(child),
                    };
                    (kind, stop.ancestor_end(data.len()), stop)
                }
                (shape, _) => {
                    // a leaf, or a multipart without a boundary: no children
                    let stop = self.scan_body(body_start);
                    let kind = if shape == Shape::Multipart {
                        PartKind::Multipart(Vec::new())
                    } else {
                        PartKind::Single
                    };
                    (kind, stop.part_end(data.len()), stop)
                }
            }
        };
        let end = end.clamp(body_start, data.len());
        part.kind = kind;
        part.body_len = (end - body_start) as u64;
        part.lines = count_lines(&data[body_start..end]);
        (part, envelope, stop)
    }

    /// Reads the body of a multipart (preamble, children, epilogue) whose
    /// boundary is `boundary`. Returns the children, where the multipart
    /// ends and how.
    fn multipart(
        &mut self,
        body_start: usize,
        depth: usize,
        digest: bool,
        boundary: Vec<u8>,
    ) -> (PartKind, usize, Stop) {
        let eof = self.data.len();
        let owner = self.next_owner;
        self.next_owner += 1;
        self.boundaries.push(Active {
            owner,
            text: boundary,
        });
        let mut children = Vec::new();
        // the preamble
        let mut stop = self.scan_body(body_start);
        let mut met_by_us = true;
        let end = loop {
            match stop {
                Stop::Eof => break eof,
                Stop::Boundary {
                    owner: o,
                    line,
                    is_end,
                    ..
                } if o == owner => {
                    // forget the boundaries of multiparts left open inside
                    self.close_inside(owner);
                    let next = self.next_line(line);
                    if is_end {
                        self.close(owner);
                        // the epilogue
                        stop = self.scan_body(next);
                        break stop.part_end(eof);
                    }
                    if self.parts >= MAX_PARTS {
                        // no more parts: the rest of the message is ours
                        self.boundaries.clear();
                        stop = Stop::Eof;
                        break eof;
                    }
                    let (child, _, child_stop) =
                        self.part(next, depth + 1, Parent::Multipart { digest });
                    children.push(child);
                    stop = child_stop;
                    met_by_us = false;
                }
                Stop::Boundary {
                    part_end,
                    ancestor_end,
                    ..
                } => {
                    // an enclosing multipart's boundary ends us too
                    self.close(owner);
                    break if met_by_us { part_end } else { ancestor_end };
                }
            }
        };
        (PartKind::Multipart(children), end, stop)
    }

    /// Drops the boundaries opened after `owner`'s.
    fn close_inside(&mut self, owner: usize) {
        if let Some(i) = self.boundaries.iter().rposition(|b| b.owner == owner) {
            self.boundaries.truncate(i + 1);
        }
    }

    /// Drops `owner`'s boundary and those opened after it.
    fn close(&mut self, owner: usize) {
        if let Some(i) = self.boundaries.iter().rposition(|b| b.owner == owner) {
            self.boundaries.truncate(i);
        }
    }

    /// The offset just after the line starting at `pos`.
    fn next_line(&self, pos: usize) -> usize {
        match self.data[pos.min(self.data.len())..]
            .iter()
            .position(|&b| b == b'\n')
        {
            Some(i) => pos + i + 1,
            None => self.data.len(),
        }
    }

    /// Where the line break that ends just before `line` starts; `line` is
    /// a line start after `floor`.
    fn break_before(&self, line: usize, floor: usize) -> usize {
        if line >= floor + 2 && self.data[line - 2] == b'\r' {
            line - 2
        } else {
            line - 1
        }
    }

    /// The open multipart whose boundary the line at `pos` is, and whether
    /// it is the closing `--boundary--`. A boundary must be a prefix of the
    /// line after its `--` (RFC 2046 lets anything follow it); the longest
    /// such boundary wins, the innermost on a tie.
    fn boundary_at(&self, pos: usize) -> Option<(usize, bool)> {
        let rest = self.data.get(pos..)?.strip_prefix(b"--")?;
        let line_len = match rest.iter().position(|&b| b == b'\n') {
            Some(n) if n > 0 && rest[n - 1] == b'\r' => n - 1,
            Some(n) => n,
            None => rest.len(),
        };
        let mut best: Option<&Active> = None;
        for b in self.boundaries.iter().rev() {
            if b.text.len() <= line_len
                && rest.starts_with(&b.text)
                && best.is_none_or(|best| best.text.len() < b.text.len())
            {
                best = Some(b);
            }
        }
        let best = best?;
        let is_end = rest[best.text.len()..].starts_with(b"--");
        Some((best.owner, is_end))
    }

    /// Scans a header block starting at `start`. Returns where its fields
    /// end, where the body starts, and the boundary that cut it short, if
    /// one did.
    fn scan_header(&self, start: usize) -> (usize, usize, Option<Stop>) {
        let data = self.data;
        let mut pos = start;
        loop {
            if pos >= data.len() {
                return (data.len(), data.len(), None);
            }
            if !self.boundaries.is_empty()
                && let Some((owner, is_end)) = self.boundary_at(pos)
            {
                // the line break before the boundary line is not the header's
                let end = if pos == start {
                    pos
                } else {
                    self.break_before(pos, start)
                };
                let stop = Stop::Boundary {
                    owner,
                    line: pos,
                    is_end,
                    part_end: end,
                    ancestor_end: pos,
                };
                return (end, end, Some(stop));
            }
            match data[pos] {
                b'\n' => return (pos, pos + 1, None),
                b'\r' if data.get(pos + 1) == Some(&b'\n') => return (pos, pos + 2, None),
                _ => pos = self.next_line(pos),
            }
        }
    }

    /// Scans a body from `start` to the next boundary line of any open
    /// multipart, or to the end of the message.
    fn scan_body(&self, start: usize) -> Stop {
        if self.boundaries.is_empty() {
            return Stop::Eof;
        }
        let data = self.data;
        let mut pos = start;
        while pos < data.len() {
            if data[pos] == b'-'
                && let Some((owner, is_end)) = self.boundary_at(pos)
            {
                let end = if pos == start {
                    pos
                } else {
                    self.break_before(pos, start)
                };
                return Stop::Boundary {
                    owner,
                    line: pos,
                    is_end,
                    part_end: end,
                    ancestor_end: end,
                };
            }
            pos = self.next_line(pos);
        }
        Stop::Eof
    }
}

/// Whether `b` may appear in a MIME token (RFC 2045 §5.1), 8-bit bytes
/// included.
fn is_token_char(b: u8) -> bool {
    (is_atext(b) && !matches!(b, b'/' | b'?' | b'=')) || b == b'.'
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Text of a header value: UTF-8 when it is valid UTF-8, else each byte as
/// the ISO-8859-1 character of that value (the most common legacy charset
/// of raw 8-bit headers, and reversible, unlike U+FFFD replacement).
fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// A Content-Type or Content-Disposition value.
struct ParamsField {
    kind: String,
    subtype: Option<String>,
    params: Vec<(String, String)>,
}

/// Content-Type or Content-Disposition parsed by `mail-parser`: type,
/// subtype and parameters (names lower case). The parameters that
/// `mail-parser` invents for RFC 2231 languages (`name-language`) are
/// dropped unless the header really has such a parameter.
fn parse_params_field(value: &[u8]) -> Option<ParamsField> {
    let mut raw = text(value.to_vec()).into_bytes();
    // mail-parser reads up to the line end
    raw.extend_from_slice(b"\n");
    let HeaderValue::ContentType(ct) = MessageStream::new(&raw).parse_content_type() else {
        return None;
    };
    let lower_raw = raw.to_ascii_lowercase();
    let params = ct
        .attributes
        .unwrap_or_default()
        .into_iter()
        .filter(|a| {
            !a.name.ends_with("-language")
                || contains(&lower_raw, a.name.to_ascii_lowercase().as_bytes())
        })
        .map(|a| (a.name.into_owned(), a.value.into_owned()))
        .collect();
    Some(ParamsField {
        kind: ct.c_type.into_owned(),
        subtype: ct.c_subtype.map(|s| s.into_owned()),
        params,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl Content {
    /// Reads the MIME fields of a part. `Content-*` fields count only in a
    /// MIME part; the first occurrence of each wins.
    fn from_fields(fields: &[Field<'_>], parent: Parent) -> Content {
        let first = |name: &str| fields.iter().find(|f| f.is(name));
        let content_type = first("Content-Type");
        let is_mime = matches!(parent, Parent::Multipart { .. })
            || content_type.is_some()
            || first("MIME-Version").is_some();
        let digest_child = parent == Parent::Multipart { digest: true };
        let mut content = Content {
            media_type: if digest_child { "message" } else { "text" }.into(),
            media_subtype: if digest_child { "rfc822" } else { "plain" }.into(),
            params: Vec::new(),
            boundary: None,
            id: None,
            description: None,
            encoding: None,
            md5: None,
            disposition: None,
            language: Vec::new(),
            location: None,
        };
        if !is_mime {
            content.add_default_charset();
            return content;
        }
        if let Some(field) = content_type {
            match parse_params_field(field.value) {
                Some(ParamsField {
                    kind: t,
                    subtype: Some(s),
                    params,
                }) if is_token(&t) && is_token(&s) => {
                    content.media_type = t.to_ascii_lowercase();
                    content.media_subtype = s.to_ascii_lowercase();
                    content.boundary =
                        params
                            .iter()
                            .find(|(name, _)| name == "boundary")
                            .map(|(_, value)| {
                                let b = value.as_bytes();
                                b[..b.len().min(MAX_BOUNDARY_LEN)].to_vec()
                            });
                    content.params = params;
                }
                // RFC 2045 §5.2: an invalid Content-Type means text/plain
                _ => {
                    content.media_type = "text".into();
                    content.media_subtype = "plain".into();
                }
            }
        }
        content.add_default_charset();
        let string = |name: &str| first(name).map(|f| text(f.unfolded()));
        content.id = string("Content-ID");
        content.description = string("Content-Description");
        content.md5 = string("Content-MD5");
        content.location = string("Content-Location");
        content.encoding = first("Content-Transfer-Encoding").and_then(|f| encoding(f.value));
        content.language = first("Content-Language")
            .map(|f| languages(f.value))
            .unwrap_or_default();
        content.disposition = first("Content-Disposition").and_then(|f| {
            let field = parse_params_field(f.value)?;
            (is_token(&field.kind) && field.subtype.is_none()).then(|| Disposition {
                kind: field.kind.to_ascii_lowercase(),
                params: field.params,
            })
        });
        content
    }

    fn add_default_charset(&mut self) {
        if self.media_type == "text" && !self.params.iter().any(|(n, _)| n == "charset") {
            self.params.push(("charset".into(), "us-ascii".into()));
        }
    }

    /// A leaf with these fields (sizes and children are filled in later).
    fn into_part(self, header_offset: usize, body_offset: usize) -> BodyPart {
        BodyPart {
            header_offset: header_offset as u64,
            body_offset: body_offset as u64,
            body_len: 0,
            lines: 0,
            media_type: self.media_type,
            media_subtype: self.media_subtype,
            params: self.params,
            id: self.id,
            description: self.description,
            encoding: self.encoding.unwrap_or_else(|| "7bit".into()),
            md5: self.md5,
            disposition: self.disposition,
            language: self.language,
            location: self.location,
            kind: PartKind::Single,
        }
    }
}

/// A Content-Transfer-Encoding value: one token and nothing else.
fn encoding(value: &[u8]) -> Option<String> {
    let mut lex = Lexer::new(value);
    if lex.skip_cfws() != Step::More {
        return None;
    }
    let mut token = Vec::new();
    while let Some(b) = lex.peek() {
        if !is_token_char(b) {
            break;
        }
        token.push(b);
        lex.bump();
    }
    (!token.is_empty() && lex.skip_cfws() == Step::End).then(|| text(token))
}

/// Content-Language: a comma-separated list of language tags.
fn languages(value: &[u8]) -> Vec<String> {
    let mut lex = Lexer::new(value);
    let mut out = Vec::new();
    let _ = lex.skip_cfws();
    loop {
        let mut tag = Vec::new();
        let step = lex.atom(&mut tag);
        if step == Step::Bad {
            break;
        }
        out.push(text(tag));
        if step != Step::More || lex.peek() != Some(b',') || out.len() >= 100 {
            break;
        }
        lex.bump();
        let _ = lex.skip_cfws();
    }
    out
}

/// The envelope of a header block. For the string fields the last
/// occurrence wins; repeated address fields add up (to at most
/// `MAX_ADDRESSES` entries each). Sender and Reply-To fall back to From.
fn envelope(fields: &[Field<'_>]) -> Envelope {
    let mut env = Envelope::default();
    for field in fields {
        let name = field.name.to_ascii_lowercase();
        let list = match name.as_slice() {
            b"date" => {
                env.date = Some(field.unfolded());
                continue;
            }
            b"subject" => {
                env.subject = Some(field.unfolded());
                continue;
            }
            b"in-reply-to" => {
                env.in_reply_to = Some(field.unfolded());
                continue;
            }
            b"message-id" => {
                env.message_id = Some(field.unfolded());
                continue;
            }
            b"from" => &mut env.from,
            b"sender" => &mut env.sender,
            b"reply-to" => &mut env.reply_to,
            b"to" => &mut env.to,
            b"cc" => &mut env.cc,
            b"bcc" => &mut env.bcc,
            _ => continue,
        };
        if list.len() < MAX_ADDRESSES {
            let room = MAX_ADDRESSES - list.len();
            list.extend(parse_list(&field.unfolded()).into_iter().take(room));
        }
    }
    if env.sender.is_empty() {
        env.sender = env.from.clone();
    }
    if env.reply_to.is_empty() {
        env.reply_to = env.from.clone();
    }
    env
}
