//! The binary encoding of a [`MessageSummary`], as stores keep it (the CRC
//! store in its cache records, the PostgreSQL store in a `bytea` column).
//!
//! Strings and byte strings are a `u32` length and the bytes; options a `u8`
//! tag (0 absent, 1 present) and the value; lists a `u32` count and the
//! elements. Decoding is bounded: every length is checked against the bytes
//! left, and body parts nest at most [`MAX_DEPTH`] deep.

use super::{Address, BodyPart, Disposition, Envelope, MessageSummary, PartKind};

/// The deepest MIME nesting decoded.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.buf.extend_from_slice(b);
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }
    fn opt_str(&mut self, s: Option<&str>) {
        self.opt_bytes(s.map(str::as_bytes));
    }
    fn params(&mut self, p: &[(String, String)]) {
        self.len(p.len());
        for (k, v) in p {
            self.bytes(k.as_bytes());
            self.bytes(v.as_bytes());
        }
    }
    fn addrs(&mut self, list: &[Address]) {
        self.len(list.len());
        for a in list {
            self.opt_bytes(a.name.as_deref());
            self.opt_bytes(a.adl.as_deref());
            self.opt_bytes(a.mailbox.as_deref());
            self.opt_bytes(a.host.as_deref());
        }
    }
    fn envelope(&mut self, e: &Envelope) {
        self.opt_bytes(e.date.as_deref());
        self.opt_bytes(e.subject.as_deref());
        for l in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
            self.addrs(l);
        }
        self.opt_bytes(e.in_reply_to.as_deref());
        self.opt_bytes(e.message_id.as_deref());
    }
    fn part(&mut self, p: &BodyPart) {
        self.u64(p.header_offset);
        self.u64(p.body_offset);
        self.u64(p.body_len);
        self.u32(p.lines);
        self.bytes(p.media_type.as_bytes());
        self.bytes(p.media_subtype.as_bytes());
        self.params(&p.params);
        self.opt_str(p.id.as_deref());
        self.opt_str(p.description.as_deref());
        self.bytes(p.encoding.as_bytes());
        self.opt_str(p.md5.as_deref());
        match &p.disposition {
            None => self.u8(0),
            Some(d) => {
                self.u8(1);
                self.bytes(d.kind.as_bytes());
                self.params(&d.params);
            }
        }
        self.len(p.language.len());
        for l in &p.language {
            self.bytes(l.as_bytes());
        }
        self.opt_str(p.location.as_deref());
        match &p.kind {
            PartKind::Single => self.u8(0),
            PartKind::Multipart(parts) => {
                self.u8(1);
                self.len(parts.len());
                for c in parts {
                    self.part(c);
                }
            }
            PartKind::Message { envelope, body } => {
                self.u8(2);
                self.envelope(envelope);
                self.part(body);
            }
        }
    }
}

/// Encodes a summary.
pub fn encode(s: &MessageSummary) -> Vec<u8> {
    let mut e = Enc::default();
    e.envelope(&s.envelope);
    e.part(&s.structure);
    e.bytes(&s.header);
    match s.sent_date {
        None => e.u8(0),
        Some((t, o)) => {
            e.u8(1);
            e.u64(t as u64);
            e.buf.extend_from_slice(&o.to_le_bytes());
        }
    }
    e.buf
}

struct Dec<'a> {
    b: &'a [u8],
    at: usize,
}

type R<T> = Result<T, &'static str>;

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or("length overflow")?;
        if end > self.b.len() {
            return Err("truncated");
        }
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> R<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> R<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn count(&mut self, min_elem: usize) -> R<usize> {
        let n = self.u32()? as usize;
        // each element takes at least `min_elem` bytes: bounds allocations
        if n.saturating_mul(min_elem) > self.b.len() - self.at {
            return Err("count exceeds record");
        }
        Ok(n)
    }
    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> R<String> {
        String::from_utf8(self.bytes()?).map_err(|_| "invalid UTF-8")
    }
    fn opt_bytes(&mut self) -> R<Option<Vec<u8>>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err("bad option tag"),
        }
    }
    fn opt_str(&mut self) -> R<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err("bad option tag"),
        }
    }
    fn params(&mut self) -> R<Vec<(String, String)>> {
        let n = self.count(8)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push((self.string()?, self.string()?));
        }
        Ok(v)
    }
    fn addrs(&mut self) -> R<Vec<Address>> {
        let n = self.count(4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Address {
                name: self.opt_bytes()?,
                adl: self.opt_bytes()?,
                mailbox: self.opt_bytes()?,
                host: self.opt_bytes()?,
            });
        }
        Ok(v)
    }
    fn envelope(&mut self) -> R<Envelope> {
        Ok(Envelope {
            date: self.opt_bytes()?,
            subject: self.opt_bytes()?,
            from: self.addrs()?,
            sender: self.addrs()?,
            reply_to: self.addrs()?,
            to: self.addrs()?,
            cc: self.addrs()?,
            bcc: self.addrs()?,
            in_reply_to: self.opt_bytes()?,
            message_id: self.opt_bytes()?,
        })
    }
    fn part(&mut self, depth: usize) -> R<BodyPart> {
        if depth > MAX_DEPTH {
            return Err("MIME nesting too deep");
        }
        let header_offset = self.u64()?;
        let body_offset = self.u64()?;
        let body_len = self.u64()?;
        let lines = self.u32()?;
        let media_type = self.string()?;
        let media_subtype = self.string()?;
        let params = self.params()?;
        let id = self.opt_str()?;
        let description = self.opt_str()?;
        let encoding = self.string()?;
        let md5 = self.opt_str()?;
        let disposition = match self.u8()? {
            0 => None,
            1 => Some(Disposition {
                kind: self.string()?,
                params: self.params()?,
            }),
            _ => return Err("bad disposition tag"),
        };
        let n = self.count(4)?;
        let mut language = Vec::with_capacity(n);
        for _ in 0..n {
            language.push(self.string()?);
        }
        let location = self.opt_str()?;
        let kind = match self.u8()? {
            0 => PartKind::Single,
            1 => {
                let n = self.count(40)?;
                let mut parts = Vec::with_capacity(n);
                for _ in 0..n {
                    parts.push(self.part(depth + 1)?);
                }
                PartKind::Multipart(parts)
            }
            2 => PartKind::Message {
                envelope: Box::new(self.envelope()?),
                body: Box::new(self.part(depth + 1)?),
            },
            _ => return Err("bad part kind"),
        };
        Ok(BodyPart {
            header_offset,
            body_offset,
            body_len,
            lines,
            media_type,
            media_subtype,
            params,
            id,
            description,
            encoding,
            md5,
            disposition,
            language,
            location,
            kind,
        })
    }
}

/// Decodes a summary; the error says what was wrong.
pub fn decode(b: &[u8]) -> Result<MessageSummary, &'static str> {
    let mut d = Dec { b, at: 0 };
    let envelope = d.envelope()?;
    let structure = d.part(0)?;
    let header = d.bytes()?;
    let sent_date = match d.u8()? {
        0 => None,
        1 => {
            let t = d.u64()? as i64;
            let mut o = [0u8; 2];
            o.copy_from_slice(d.take(2)?);
            Some((t, i16::from_le_bytes(o)))
        }
        _ => return Err("bad sent-date tag"),
    };
    if d.at != b.len() {
        return Err("trailing bytes");
    }
    Ok(MessageSummary {
        envelope,
        structure,
        header,
        sent_date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> MessageSummary {
        let mut s = MessageSummary::parse(b"Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n");
        s.envelope.subject = Some(b"hi".to_vec());
        s.envelope.from = vec![Address {
            name: Some(b"A".to_vec()),
            adl: None,
            mailbox: Some(b"a".to_vec()),
            host: Some(b"b".to_vec()),
        }];
        s.sent_date = Some((1_700_000_000, -300));
        let child = s.structure.clone();
        s.structure.disposition = Some(Disposition {
            kind: "inline".into(),
            params: vec![("filename".into(), "x.txt".into())],
        });
        s.structure.language = vec!["en".into()];
        s.structure.kind = PartKind::Multipart(vec![
            child.clone(),
            BodyPart {
                kind: PartKind::Message {
                    envelope: Box::new(s.envelope.clone()),
                    body: Box::new(child),
                },
                ..s.structure.clone()
            },
        ]);
        s
    }

    #[test]
    fn roundtrip() {
        let s = sample();
        assert_eq!(decode(&encode(&s)).unwrap(), s);
    }

    #[test]
    fn truncations_fail_cleanly() {
        let b = encode(&sample());
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err());
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&data);
        }

        #[test]
        fn roundtrip_parsed(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = MessageSummary::parse(&msg);
            prop_assert_eq!(decode(&encode(&s)).unwrap(), s);
        }
    }
}
