//! BINARY (RFC 3516): `FETCH BINARY[part]`, `BINARY.PEEK[part]` and
//! `BINARY.SIZE[part]` give a part with its Content-Transfer-Encoding
//! undone, so a client need not decode base64 or quoted-printable itself;
//! APPEND takes the message as a `literal8` (`~{n}`), which may hold NUL.
//!
//! What each part gives:
//!
//! - a leaf part encoded `base64` or `quoted-printable`: the decoded bytes
//!   (decoded with `mail-parser`'s decoders, the ones SEARCH uses; line
//!   breaks inside base64 are skipped, a soft line break of
//!   quoted-printable joins lines);
//! - `7bit`, `8bit`, `binary` (or no header): the bytes as stored;
//! - a multipart or message/rfc822 part, or the whole message (`BINARY[]`):
//!   the bytes as stored (MIME allows only the identity encodings there);
//! - any other encoding (`x-uuencode`, a typo): the command fails with
//!   `NO [UNKNOWN-CTE]`, as §4.3 requires; data that is not valid for its
//!   encoding fails with `NO [PARSE]`.
//!
//! Data holding NUL goes out as a `literal8`, other data as a literal
//! (RFC 3516 §4.3 allows either). `BINARY.SIZE` is the length of exactly
//! what `BINARY` would send. A part that does not exist is an empty string
//! for `BINARY` and 0 for `BINARY.SIZE`, as Dovecot answers (the RFC says
//! nothing). `tests/clients/binary.py` compares all of this with Dovecot.

use bytes::Bytes;
use mailroom_core::MessageSummary;
use mailroom_core::mime::PartKind;

use crate::response::Code;
use crate::session::body::find_part;

/// Why a part could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undecodable {
    /// The Content-Transfer-Encoding is not one this server knows.
    #[error("unknown Content-Transfer-Encoding")]
    UnknownCte,
    /// The part's data is not valid for its encoding.
    #[error("invalid data in MIME part")]
    Invalid,
}

impl Undecodable {
    /// The response code of the tagged `NO`.
    pub(crate) fn code(self) -> Code {
        match self {
            Undecodable::UnknownCte => Code::UnknownCte,
            Undecodable::Invalid => Code::Parse,
        }
    }
}

/// The capability.
pub(crate) const CAPABILITY: &str = "BINARY";

/// The decoded bytes of `part` of a message (empty: no such part).
pub(crate) fn decoded_part(
    summary: &MessageSummary,
    content: &Bytes,
    part: &[u32],
) -> Result<Bytes, Undecodable> {
    if part.is_empty() {
        return Ok(content.clone());
    }
    let Some(p) = find_part(&summary.structure, part) else {
        return Ok(Bytes::new());
    };
    let total = content.len();
    let start = usize::try_from(p.body_offset)
        .unwrap_or(usize::MAX)
        .min(total);
    let end = start
        .saturating_add(usize::try_from(p.body_len).unwrap_or(usize::MAX))
        .min(total);
    let body = content.slice(start..end);
    if !matches!(p.kind, PartKind::Single) {
        return Ok(body);
    }
    decode(&p.encoding, body)
}

/// Undoes a Content-Transfer-Encoding (`encoding` as written, any case).
pub(crate) fn decode(encoding: &str, body: Bytes) -> Result<Bytes, Undecodable> {
    let encoding = encoding.trim();
    if ["7bit", "8bit", "binary", ""]
        .iter()
        .any(|e| encoding.eq_ignore_ascii_case(e))
    {
        Ok(body)
    } else if encoding.eq_ignore_ascii_case("base64") {
        mail_parser::decoders::base64::base64_decode(&body)
            .map(Bytes::from)
            .ok_or(Undecodable::Invalid)
    } else if encoding.eq_ignore_ascii_case("quoted-printable") {
        mail_parser::decoders::quoted_printable::quoted_printable_decode(&body)
            .map(Bytes::from)
            .ok_or(Undecodable::Invalid)
    } else {
        Err(Undecodable::UnknownCte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(m: &[u8]) -> MessageSummary {
        MessageSummary::parse(m)
    }

    const MULTI: &[u8] = b"From: a@b\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=C3=A9 =\r\nsoft\r\n--XX\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAEC\r\nAwQ=\r\n--XX\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--XX--\r\n";

    #[test]
    fn parts_are_decoded_by_their_encoding() {
        let content = Bytes::from_static(MULTI);
        let s = summary(MULTI);
        let qp = decoded_part(&s, &content, &[1]).unwrap();
        assert_eq!(&qp[..], "café soft".as_bytes());
        let b64 = decoded_part(&s, &content, &[2]).unwrap();
        assert_eq!(&b64[..], &[0, 1, 2, 3, 4]);
        assert_eq!(
            decoded_part(&s, &content, &[3]),
            Err(Undecodable::UnknownCte)
        );
        assert_eq!(decoded_part(&s, &content, &[4]), Ok(Bytes::new()));
        assert_eq!(decoded_part(&s, &content, &[]).unwrap(), content);
    }

    #[test]
    fn invalid_base64_is_a_parse_error() {
        assert_eq!(
            decode("BASE64", Bytes::from_static(b"AA*=")),
            Err(Undecodable::Invalid)
        );
        assert_eq!(
            decode(" 8bit ", Bytes::from_static(b"\0x")).unwrap(),
            Bytes::from_static(b"\0x")
        );
    }
}
