//! The binary encoding of a [`MessageSummary`], as stores keep it (the CRC
//! store in its cache records, the PostgreSQL store in a `bytea` column).
//!
//! Strings and byte strings are a `u32` length and the bytes; options a `u8`
//! tag (0 absent, 1 present) and the value; lists a `u32` count and the
//! elements. Decoding is bounded: every length is checked against the bytes
//! left, and body parts nest at most [`MAX_DEPTH`] deep.

use super::{Address, BodyPart, Disposition, Envelope, MessageSummary, PartKind, SortFields};

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
    fn sent_date(&mut self) -> R<Option<(i64, i16)>> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let t = self.u64()? as i64;
                let mut o = [0u8; 2];
                o.copy_from_slice(self.take(2)?);
                Ok(Some((t, i16::from_le_bytes(o))))
            }
            _ => Err("bad sent-date tag"),
        }
    }
    // The skipping readers below check lengths, tags and nesting as the
    // decoding ones do, but not that strings are UTF-8 (nothing skipped is
    // looked at).
    fn skip_bytes(&mut self) -> R<()> {
        let n = self.u32()? as usize;
        self.take(n).map(|_| ())
    }
    fn skip_opt(&mut self) -> R<()> {
        match self.u8()? {
            0 => Ok(()),
            1 => self.skip_bytes(),
            _ => Err("bad option tag"),
        }
    }
    fn skip_params(&mut self) -> R<()> {
        let n = self.count(8)?;
        for _ in 0..n {
            self.skip_bytes()?;
            self.skip_bytes()?;
        }
        Ok(())
    }
    fn skip_addrs(&mut self) -> R<()> {
        let n = self.count(4)?;
        for _ in 0..n {
            for _ in 0..4 {
                self.skip_opt()?;
            }
        }
        Ok(())
    }
    /// The first address of a list, the others skipped.
    fn first_addr(&mut self) -> R<Option<Address>> {
        let n = self.count(4)?;
        let mut first = None;
        for i in 0..n {
            if i == 0 {
                first = Some(Address {
                    name: self.opt_bytes()?,
                    adl: self.opt_bytes()?,
                    mailbox: self.opt_bytes()?,
                    host: self.opt_bytes()?,
                });
            } else {
                for _ in 0..4 {
                    self.skip_opt()?;
                }
            }
        }
        Ok(first)
    }
    fn skip_envelope(&mut self) -> R<()> {
        self.skip_opt()?;
        self.skip_opt()?;
        for _ in 0..6 {
            self.skip_addrs()?;
        }
        self.skip_opt()?;
        self.skip_opt()
    }
    fn skip_part(&mut self, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err("MIME nesting too deep");
        }
        // offsets, length and lines
        self.take(8 + 8 + 8 + 4)?;
        self.skip_bytes()?;
        self.skip_bytes()?;
        self.skip_params()?;
        self.skip_opt()?;
        self.skip_opt()?;
        self.skip_bytes()?;
        self.skip_opt()?;
        match self.u8()? {
            0 => {}
            1 => {
                self.skip_bytes()?;
                self.skip_params()?;
            }
            _ => return Err("bad disposition tag"),
        }
        let n = self.count(4)?;
        for _ in 0..n {
            self.skip_bytes()?;
        }
        self.skip_opt()?;
        match self.u8()? {
            0 => Ok(()),
            1 => {
                let n = self.count(40)?;
                for _ in 0..n {
                    self.skip_part(depth + 1)?;
                }
                Ok(())
            }
            2 => {
                self.skip_envelope()?;
                self.skip_part(depth + 1)
            }
            _ => Err("bad part kind"),
        }
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
    let sent_date = d.sent_date()?;
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

/// Decodes only what SORT and THREAD read of an encoded summary
/// ([`SortFields`], equal to `SortFields::of(&decode(b)?)`): the body
/// structure and the other envelope fields are skipped, and of the header
/// only the `References:` field and the [`super::SEARCH_FIELDS`] are
/// copied. The checks are those of
/// [`decode`] (every length against the bytes left, tags, nesting, no
/// trailing bytes) except that skipped strings are not checked for UTF-8.
pub fn decode_sort_fields(b: &[u8]) -> Result<SortFields, &'static str> {
    let mut d = Dec { b, at: 0 };
    d.skip_opt()?; // date
    let subject = d.opt_bytes()?;
    let from = d.first_addr()?;
    d.skip_addrs()?; // sender
    d.skip_addrs()?; // reply-to
    let to = d.first_addr()?;
    let cc = d.first_addr()?;
    d.skip_addrs()?; // bcc
    let in_reply_to = d.opt_bytes()?;
    let message_id = d.opt_bytes()?;
    d.skip_part(0)?;
    let n = d.u32()? as usize;
    let header = d.take(n)?;
    let sent_date = d.sent_date()?;
    if d.at != b.len() {
        return Err("trailing bytes");
    }
    Ok(SortFields {
        subject,
        from,
        to,
        cc,
        sent_date,
        message_id,
        in_reply_to,
        references: super::header_field(header, "References"),
        search_header: super::header_fields(header, &super::SEARCH_FIELDS),
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
            assert!(decode_sort_fields(&b[..n]).is_err());
        }
    }

    #[test]
    fn sort_fields_are_those_of_the_summary() {
        let mut s = sample();
        s.header = b"References: <a@x>\r\n\t<b@x>\r\n\r\n".to_vec();
        s.envelope.to = vec![Address::default(), s.envelope.from[0].clone()];
        let f = decode_sort_fields(&encode(&s)).unwrap();
        assert_eq!(f, SortFields::of(&s));
        assert_eq!(f.references.as_deref(), Some(&b" <a@x> \t<b@x>"[..]));
        assert_eq!(f.sent_date, Some((1_700_000_000, -300)));
        let mut trailing = encode(&s);
        trailing.push(0);
        assert!(decode_sort_fields(&trailing).is_err());
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

        #[test]
        fn garbage_never_panics_sort_fields(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_sort_fields(&data);
        }

        /// The skipping decoder reads what the full one reads, for parsed
        /// messages with headers of the kinds SORT and THREAD look at.
        #[test]
        fn sort_fields_of_parsed(
            fields in proptest::collection::vec(proptest::sample::select(vec![
                "From: A <a@x>, b@y\r\n", "To: g: c@z;\r\n", "Cc: d@w\r\n", "Subject: Re: s\r\n",
                "Date: Tue, 14 Nov 2023 22:13:20 +0100\r\n", "Message-ID: <m@x>\r\n",
                "In-Reply-To: <p@x>\r\n", "References: <r@x>\r\n <q@x>\r\n",
                "Content-Type: multipart/mixed; boundary=b\r\n",
            ]), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut msg = fields.concat().into_bytes();
            msg.extend_from_slice(b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n");
            msg.extend_from_slice(&body);
            let s = MessageSummary::parse(&msg);
            prop_assert_eq!(decode_sort_fields(&encode(&s)).unwrap(), SortFields::of(&s));
        }
    }
}
