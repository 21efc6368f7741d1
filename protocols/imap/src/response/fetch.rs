//! FETCH response items (`* n FETCH (...)`).

use mailroom_core::Flag;

use super::body_structure::{write_body_structure, write_envelope};
use super::wire::Out;
use super::{FetchItem, SectionLabel};
use crate::command::{Section, SectionText};

/// `BODY[section]` label text, e.g. `1.2.HEADER.FIELDS (FROM TO)`.
pub(crate) fn write_section(o: &mut Out<'_>, s: &Section) {
    o.raw(b"[");
    for (i, p) in s.part.iter().enumerate() {
        if i > 0 {
            o.raw(b".");
        }
        o.uint(*p);
    }
    if let Some(text) = &s.text {
        if !s.part.is_empty() {
            o.raw(b".");
        }
        let (name, fields): (&[u8], Option<&Vec<String>>) = match text {
            SectionText::Header => (b"HEADER", None),
            SectionText::Text => (b"TEXT", None),
            SectionText::Mime => (b"MIME", None),
            SectionText::HeaderFields(f) => (b"HEADER.FIELDS", Some(f)),
            SectionText::HeaderFieldsNot(f) => (b"HEADER.FIELDS.NOT", Some(f)),
        };
        o.raw(name);
        if let Some(fields) = fields {
            o.raw(b" (");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    o.sp();
                }
                o.astring(f.as_bytes());
            }
            o.raw(b")");
        }
    }
    o.raw(b"]");
}

/// `[1.2]`: the part numbers of a `section-binary`.
fn write_part(o: &mut Out<'_>, part: &[u32]) {
    o.raw(b"[");
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            o.raw(b".");
        }
        o.uint(*p);
    }
    o.raw(b"]");
}

/// One `msg-att` item.
pub(super) fn fetch_item(o: &mut Out<'_>, item: &FetchItem) {
    match item {
        FetchItem::Uid(u) => {
            o.raw(b"UID ");
            o.uint(u.0);
        }
        FetchItem::Flags { flags, recent } => {
            o.raw(b"FLAGS (");
            let mut first = true;
            for f in flags.iter() {
                if !first {
                    o.sp();
                }
                first = false;
                match &f {
                    Flag::Keyword(k) => o.atom(k),
                    other => o.str(&other.to_string()),
                }
            }
            if *recent {
                if !first {
                    o.sp();
                }
                o.raw(b"\\Recent");
            }
            o.raw(b")");
        }
        FetchItem::InternalDate(d) => {
            o.raw(b"INTERNALDATE ");
            o.date_time(d);
        }
        FetchItem::Rfc822Size(n) => {
            o.raw(b"RFC822.SIZE ");
            o.uint(*n);
        }
        FetchItem::Envelope(summary) => {
            o.raw(b"ENVELOPE ");
            write_envelope(&mut o.buf, &summary.envelope);
        }
        FetchItem::BodyStructure(summary) => {
            o.raw(b"BODYSTRUCTURE ");
            write_body_structure(&mut o.buf, &summary.structure, true);
        }
        FetchItem::Body(summary) => {
            o.raw(b"BODY ");
            write_body_structure(&mut o.buf, &summary.structure, false);
        }
        FetchItem::ModSeq(m) => {
            o.raw(b"MODSEQ (");
            o.uint(m.0);
            o.raw(b")");
        }
        FetchItem::EmailId(guid) => {
            o.raw(b"EMAILID (");
            o.str(&guid.to_string());
            o.raw(b")");
        }
        FetchItem::ThreadId => o.raw(b"THREADID NIL"),
        FetchItem::Preview(text) => {
            o.raw(b"PREVIEW ");
            o.string(text.as_bytes());
        }
        FetchItem::SaveDate(None) => o.raw(b"SAVEDATE NIL"),
        FetchItem::SaveDate(Some(t)) => {
            o.raw(b"SAVEDATE ");
            o.date_time(&mailroom_core::InternalDate {
                timestamp: *t,
                offset_minutes: 0,
            });
        }
        FetchItem::BodySection {
            label,
            origin,
            data,
        } => {
            match label {
                SectionLabel::Body(section) => {
                    o.raw(b"BODY");
                    write_section(o, section);
                }
                SectionLabel::Rfc822 => o.raw(b"RFC822"),
                SectionLabel::Rfc822Header => o.raw(b"RFC822.HEADER"),
                SectionLabel::Rfc822Text => o.raw(b"RFC822.TEXT"),
            }
            if let Some(origin) = origin {
                o.raw(b"<");
                o.num(origin);
                o.raw(b">");
            }
            o.sp();
            match data {
                Some(d) => o.literal_bytes(d),
                None => o.raw(b"NIL"),
            }
        }
        FetchItem::Binary { part, origin, data } => {
            o.raw(b"BINARY");
            write_part(o, part);
            if let Some(origin) = origin {
                o.raw(b"<");
                o.num(origin);
                o.raw(b">");
            }
            o.sp();
            match data {
                Some(d) => o.literal8_bytes(d),
                None => o.raw(b"NIL"),
            }
        }
        FetchItem::BinarySize { part, size } => {
            o.raw(b"BINARY.SIZE");
            write_part(o, part);
            o.sp();
            o.uint(*size);
        }
    }
}
