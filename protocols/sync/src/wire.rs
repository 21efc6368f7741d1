//! The frame format: length-prefixed, CRC-checked frames of typed fields
//! (`PROTOCOL.md`, "Frames" and "Fields", byte by byte).
//!
//! [`FrameCodec`] is a `tokio_util` codec: [`Decoder::decode`] returns
//! `Ok(None)` while a frame is incomplete ("need more"), refuses a frame
//! whose announced length exceeds [`Limits::max_frame`] as soon as the
//! 4-byte length has arrived, and checks the CRC, the field structure and
//! every bound before a [`Frame`] is handed out. Nothing in here panics on
//! any input.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{Result, SyncError};

/// Bytes before a frame's body: the 4-byte length.
pub const LENGTH_SIZE: usize = 4;
/// Bytes of a body before its fields: kind (2) and frame flags (1).
pub const BODY_HEADER_SIZE: usize = 3;
/// Bytes after a frame's body: the CRC-32.
pub const CRC_SIZE: usize = 4;
/// Bytes of a field before its value: tag (2), type (1), length (4).
pub const FIELD_HEADER_SIZE: usize = 7;

/// Frame flag bit 0: a receiver that does not know the frame's kind skips
/// it silently, and the sender expects no answer. Without it, an unknown
/// kind is answered with UNSUPPORTED.
pub const FLAG_IGNORABLE: u8 = 0x01;

/// The bounds every decoder enforces. Each is checked before the memory it
/// guards is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body (kind, flags and fields) in bytes.
    pub max_frame: u32,
    /// Most fields in one frame, nested ones included.
    pub max_fields: usize,
    /// Longest string field in bytes.
    pub max_string: usize,
    /// Deepest nesting of groups (a frame's own fields are level 1).
    pub max_depth: usize,
}

impl Default for Limits {
    /// 64 MiB frames (a message plus its record), 262,144 fields, 4 KiB
    /// strings (mailbox names are at most 512 bytes), groups 4 deep.
    fn default() -> Self {
        Limits {
            max_frame: 64 << 20,
            max_fields: 262_144,
            max_string: 4096,
            max_depth: 4,
        }
    }
}

/// A field's value, by its wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Type 0: an unsigned integer, 8 bytes big-endian.
    Uint(u64),
    /// Type 1: a signed integer, 8 bytes big-endian two's complement.
    Int(i64),
    /// Type 2: opaque bytes.
    Bytes(Bytes),
    /// Type 3: a UTF-8 string.
    Str(String),
    /// Type 4: a group of nested fields.
    Group(Vec<Field>),
    /// A type this node does not know: kept as bytes so it can be skipped.
    Unknown {
        /// The wire type.
        wire_type: u8,
        /// The value's bytes.
        bytes: Bytes,
    },
}

impl Value {
    fn wire_type(&self) -> u8 {
        match self {
            Value::Uint(_) => 0,
            Value::Int(_) => 1,
            Value::Bytes(_) => 2,
            Value::Str(_) => 3,
            Value::Group(_) => 4,
            Value::Unknown { wire_type, .. } => *wire_type,
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Value::Uint(_) | Value::Int(_) => 8,
            Value::Bytes(b) => b.len(),
            Value::Str(s) => s.len(),
            Value::Group(fields) => fields.iter().map(Field::encoded_len).sum(),
            Value::Unknown { bytes, .. } => bytes.len(),
        }
    }
}

/// One tagged field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The tag, meaningful within the frame kind (or group) it is in.
    pub tag: u16,
    /// The value.
    pub value: Value,
}

impl Field {
    /// An unsigned field.
    pub fn uint(tag: u16, v: u64) -> Field {
        Field {
            tag,
            value: Value::Uint(v),
        }
    }

    /// A signed field.
    pub fn int(tag: u16, v: i64) -> Field {
        Field {
            tag,
            value: Value::Int(v),
        }
    }

    /// A bytes field.
    pub fn bytes(tag: u16, v: impl Into<Bytes>) -> Field {
        Field {
            tag,
            value: Value::Bytes(v.into()),
        }
    }

    /// A string field.
    pub fn str(tag: u16, v: impl Into<String>) -> Field {
        Field {
            tag,
            value: Value::Str(v.into()),
        }
    }

    /// A group field.
    pub fn group(tag: u16, fields: Vec<Field>) -> Field {
        Field {
            tag,
            value: Value::Group(fields),
        }
    }

    fn encoded_len(&self) -> usize {
        FIELD_HEADER_SIZE + self.value.encoded_len()
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_u16(self.tag);
        out.put_u8(self.value.wire_type());
        out.put_u32(u32::try_from(self.value.encoded_len()).unwrap_or(u32::MAX));
        match &self.value {
            Value::Uint(v) => out.put_u64(*v),
            Value::Int(v) => out.put_i64(*v),
            Value::Bytes(b) => out.put_slice(b),
            Value::Str(s) => out.put_slice(s.as_bytes()),
            Value::Group(fields) => fields.iter().for_each(|f| f.encode(out)),
            Value::Unknown { bytes, .. } => out.put_slice(bytes),
        }
    }
}

/// One frame: a kind, its flags and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is (`PROTOCOL.md`, "Frame kinds").
    pub kind: u16,
    /// Frame flags ([`FLAG_IGNORABLE`]); unknown bits are ignored.
    pub flags: u8,
    /// The fields, in the order sent.
    pub fields: Vec<Field>,
}

impl Frame {
    /// A frame of `kind` with no flags.
    pub fn new(kind: u16, fields: Vec<Field>) -> Frame {
        Frame {
            kind,
            flags: 0,
            fields,
        }
    }

    /// Whether a receiver that does not know the kind may skip it.
    pub fn is_ignorable(&self) -> bool {
        self.flags & FLAG_IGNORABLE != 0
    }

    /// Bytes of the body (kind, flags, fields).
    pub fn body_len(&self) -> usize {
        BODY_HEADER_SIZE + self.fields.iter().map(Field::encoded_len).sum::<usize>()
    }

    /// Bytes on the wire: length, body and CRC.
    pub fn wire_len(&self) -> usize {
        LENGTH_SIZE + self.body_len() + CRC_SIZE
    }

    /// Appends the frame's bytes to `out`. Fails only if the body is longer
    /// than `max_frame` (the peer would refuse it).
    pub fn encode(&self, out: &mut BytesMut, max_frame: u32) -> Result<()> {
        let body = self.body_len();
        if body > max_frame as usize {
            return Err(SyncError::FrameTooLarge {
                len: body as u64,
                max: u64::from(max_frame),
            });
        }
        let start = out.len();
        out.reserve(LENGTH_SIZE + body + CRC_SIZE);
        out.put_u32(u32::try_from(body).unwrap_or(u32::MAX));
        out.put_u16(self.kind);
        out.put_u8(self.flags);
        for f in &self.fields {
            f.encode(out);
        }
        let crc = crc32fast::hash(&out[start..]);
        out.put_u32(crc);
        Ok(())
    }

    /// The frame's bytes.
    pub fn to_bytes(&self, max_frame: u32) -> Result<Bytes> {
        let mut out = BytesMut::new();
        self.encode(&mut out, max_frame)?;
        Ok(out.freeze())
    }
}

/// Decodes fields from a body, checking every bound.
fn decode_fields(
    mut body: Bytes,
    limits: &Limits,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Field>> {
    if depth > limits.max_depth {
        return Err(SyncError::NestingTooDeep {
            max: limits.max_depth,
        });
    }
    let mut fields = Vec::new();
    while body.has_remaining() {
        if body.len() < FIELD_HEADER_SIZE {
            return Err(SyncError::Malformed("field header runs past its frame"));
        }
        *count += 1;
        if *count > limits.max_fields {
            return Err(SyncError::TooManyFields {
                max: limits.max_fields,
            });
        }
        let tag = body.get_u16();
        let wire_type = body.get_u8();
        let len = body.get_u32() as usize;
        if len > body.len() {
            return Err(SyncError::Malformed("field value runs past its frame"));
        }
        let raw = body.split_to(len);
        let value = match wire_type {
            0 | 1 => {
                if len != 8 {
                    return Err(SyncError::Malformed("integer field is not 8 bytes"));
                }
                let mut b = raw;
                if wire_type == 0 {
                    Value::Uint(b.get_u64())
                } else {
                    Value::Int(b.get_i64())
                }
            }
            2 => Value::Bytes(raw),
            3 => {
                if len > limits.max_string {
                    return Err(SyncError::StringTooLong {
                        len,
                        max: limits.max_string,
                    });
                }
                let s = std::str::from_utf8(&raw)
                    .map_err(|_| SyncError::Malformed("string field is not UTF-8"))?;
                Value::Str(s.to_owned())
            }
            4 => Value::Group(decode_fields(raw, limits, depth + 1, count)?),
            other => Value::Unknown {
                wire_type: other,
                bytes: raw,
            },
        };
        fields.push(Field { tag, value });
    }
    Ok(fields)
}

/// The frame codec: [`Frame`]s to bytes and back, incrementally.
#[derive(Debug, Clone, Default)]
pub struct FrameCodec {
    limits: Limits,
}

impl FrameCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> FrameCodec {
        FrameCodec { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = SyncError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>> {
        if src.len() < LENGTH_SIZE {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len > self.limits.max_frame {
            return Err(SyncError::FrameTooLarge {
                len: u64::from(len),
                max: u64::from(self.limits.max_frame),
            });
        }
        let len = len as usize;
        if len < BODY_HEADER_SIZE {
            return Err(SyncError::Malformed("frame body shorter than its header"));
        }
        let total = LENGTH_SIZE + len + CRC_SIZE;
        if src.len() < total {
            // Grow towards the frame, never beyond it in one go: an attacker
            // announcing a large frame gets no allocation ahead of its bytes.
            return Ok(None);
        }
        let frame = src.split_to(total).freeze();
        let computed = crc32fast::hash(&frame[..LENGTH_SIZE + len]);
        let received = u32::from_be_bytes([
            frame[total - 4],
            frame[total - 3],
            frame[total - 2],
            frame[total - 1],
        ]);
        if computed != received {
            return Err(SyncError::CrcMismatch { computed, received });
        }
        let mut body = frame.slice(LENGTH_SIZE..LENGTH_SIZE + len);
        let kind = body.get_u16();
        let flags = body.get_u8();
        let mut count = 0;
        let fields = decode_fields(body, &self.limits, 1, &mut count)?;
        Ok(Some(Frame {
            kind,
            flags,
            fields,
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(SyncError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = SyncError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<()> {
        frame.encode(dst, self.limits.max_frame)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = SyncError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<()> {
        frame.encode(dst, self.limits.max_frame)
    }
}

/// Reads typed values out of a frame's (or group's) fields. The first field
/// with a tag wins; unknown tags are never looked at, which is what lets an
/// older node skip fields a newer one added.
#[derive(Debug, Clone, Copy)]
pub struct FieldReader<'a> {
    fields: &'a [Field],
}

impl<'a> FieldReader<'a> {
    /// A reader over `fields`.
    pub fn new(fields: &'a [Field]) -> FieldReader<'a> {
        FieldReader { fields }
    }

    fn first(&self, tag: u16) -> Option<&'a Value> {
        self.fields.iter().find(|f| f.tag == tag).map(|f| &f.value)
    }

    /// Every value with `tag`, in order.
    pub fn all(&self, tag: u16) -> impl Iterator<Item = &'a Value> + 'a {
        let fields = self.fields;
        fields
            .iter()
            .filter(move |f| f.tag == tag)
            .map(|f| &f.value)
    }

    /// An optional unsigned field.
    pub fn opt_uint(&self, tag: u16) -> Result<Option<u64>> {
        match self.first(tag) {
            None => Ok(None),
            Some(Value::Uint(v)) => Ok(Some(*v)),
            Some(_) => Err(SyncError::Malformed("field has the wrong type (want uint)")),
        }
    }

    /// A required unsigned field.
    pub fn uint(&self, tag: u16, what: &'static str) -> Result<u64> {
        self.opt_uint(tag)?.ok_or(SyncError::Malformed(what))
    }

    /// A required unsigned field that must fit in 32 bits.
    pub fn u32(&self, tag: u16, what: &'static str) -> Result<u32> {
        u32::try_from(self.uint(tag, what)?).map_err(|_| SyncError::Malformed(what))
    }

    /// An optional signed field.
    pub fn opt_int(&self, tag: u16) -> Result<Option<i64>> {
        match self.first(tag) {
            None => Ok(None),
            Some(Value::Int(v)) => Ok(Some(*v)),
            Some(_) => Err(SyncError::Malformed("field has the wrong type (want int)")),
        }
    }

    /// An optional bytes field.
    pub fn opt_bytes(&self, tag: u16) -> Result<Option<&'a Bytes>> {
        match self.first(tag) {
            None => Ok(None),
            Some(Value::Bytes(v)) => Ok(Some(v)),
            Some(_) => Err(SyncError::Malformed(
                "field has the wrong type (want bytes)",
            )),
        }
    }

    /// A required bytes field.
    pub fn bytes(&self, tag: u16, what: &'static str) -> Result<&'a Bytes> {
        self.opt_bytes(tag)?.ok_or(SyncError::Malformed(what))
    }

    /// An optional string field.
    pub fn opt_str(&self, tag: u16) -> Result<Option<&'a str>> {
        match self.first(tag) {
            None => Ok(None),
            Some(Value::Str(v)) => Ok(Some(v)),
            Some(_) => Err(SyncError::Malformed(
                "field has the wrong type (want string)",
            )),
        }
    }

    /// A required string field.
    pub fn str(&self, tag: u16, what: &'static str) -> Result<&'a str> {
        self.opt_str(tag)?.ok_or(SyncError::Malformed(what))
    }

    /// Every string with `tag`.
    pub fn strs(&self, tag: u16) -> Result<Vec<&'a str>> {
        self.all(tag)
            .map(|v| match v {
                Value::Str(s) => Ok(s.as_str()),
                _ => Err(SyncError::Malformed(
                    "field has the wrong type (want string)",
                )),
            })
            .collect()
    }

    /// Every group with `tag`.
    pub fn groups(&self, tag: u16) -> Result<Vec<FieldReader<'a>>> {
        self.all(tag)
            .map(|v| match v {
                Value::Group(g) => Ok(FieldReader::new(g)),
                _ => Err(SyncError::Malformed(
                    "field has the wrong type (want group)",
                )),
            })
            .collect()
    }

    /// An optional group.
    pub fn opt_group(&self, tag: u16) -> Result<Option<FieldReader<'a>>> {
        match self.first(tag) {
            None => Ok(None),
            Some(Value::Group(g)) => Ok(Some(FieldReader::new(g))),
            Some(_) => Err(SyncError::Malformed(
                "field has the wrong type (want group)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Frame {
        Frame::new(
            7,
            vec![
                Field::uint(1, 42),
                Field::int(2, -5),
                Field::str(3, "INBOX"),
                Field::bytes(4, &b"\x00\x01"[..]),
                Field::group(5, vec![Field::uint(1, 1), Field::str(2, "x")]),
            ],
        )
    }

    #[test]
    fn exact_bytes_of_a_small_frame() {
        // PROTOCOL.md's worked example: an OK frame (kind 6) with one uint
        // field, tag 1, value 3.
        let f = Frame::new(6, vec![Field::uint(1, 3)]);
        let b = f.to_bytes(1024).unwrap();
        let mut want = vec![
            0, 0, 0, 18, 0, 6, 0, 0, 1, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3,
        ];
        let crc = crc32fast::hash(&want);
        want.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(&b[..], &want[..]);
    }

    #[test]
    fn round_trip_and_partial_input() {
        let f = sample();
        let bytes = f.to_bytes(1 << 20).unwrap();
        let mut codec = FrameCodec::default();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}");
        }
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(f));
        assert!(buf.is_empty());
    }

    #[test]
    fn huge_length_is_refused_from_four_bytes() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(SyncError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn crc_mismatch_is_refused() {
        let bytes = sample().to_bytes(1 << 20).unwrap();
        let mut damaged = BytesMut::from(&bytes[..]);
        damaged[10] ^= 0x40;
        assert!(matches!(
            FrameCodec::default().decode(&mut damaged),
            Err(SyncError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn truncated_at_eof() {
        let bytes = sample().to_bytes(1 << 20).unwrap();
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
        assert!(matches!(
            FrameCodec::default().decode_eof(&mut buf),
            Err(SyncError::Truncated { .. })
        ));
    }

    #[test]
    fn bounds() {
        let limits = Limits {
            max_fields: 3,
            max_string: 4,
            max_depth: 2,
            ..Limits::default()
        };
        let too_many = Frame::new(1, (0..4).map(|i| Field::uint(i, 0)).collect());
        let long = Frame::new(1, vec![Field::str(1, "abcde")]);
        let deep = Frame::new(
            1,
            vec![Field::group(
                1,
                vec![Field::group(1, vec![Field::uint(1, 1)])],
            )],
        );
        let mut c = FrameCodec::new(limits);
        for (f, check) in [(too_many, "fields"), (long, "string"), (deep, "depth")] {
            let mut b = BytesMut::from(&f.to_bytes(1 << 20).unwrap()[..]);
            let e = c.decode(&mut b).unwrap_err();
            let ok = match check {
                "fields" => matches!(e, SyncError::TooManyFields { .. }),
                "string" => matches!(e, SyncError::StringTooLong { .. }),
                _ => matches!(e, SyncError::NestingTooDeep { .. }),
            };
            assert!(ok, "{check}: {e}");
        }
    }

    #[test]
    fn unknown_wire_type_is_kept_and_skipped() {
        let f = Frame::new(
            9,
            vec![
                Field {
                    tag: 99,
                    value: Value::Unknown {
                        wire_type: 200,
                        bytes: Bytes::from_static(b"future"),
                    },
                },
                Field::uint(1, 5),
            ],
        );
        let mut b = BytesMut::from(&f.to_bytes(1024).unwrap()[..]);
        let got = FrameCodec::default().decode(&mut b).unwrap().unwrap();
        assert_eq!(got, f);
        assert_eq!(FieldReader::new(&got.fields).uint(1, "x").unwrap(), 5);
    }
}
