//! CATENATE (RFC 4469): an APPEND whose message is joined from parts,
//! each either text sent in the command (`TEXT {n}`) or bytes of a message
//! already on this server named by an IMAP URL (`URL "..."`, RFC 5092),
//! so a client can forward an attachment without downloading it.
//!
//! # The URLs taken
//!
//! The subset of RFC 5092 that names a message or part on this server,
//! read with the session's own rights (URLAUTH is not offered):
//!
//! ```text
//! imap://[user[;AUTH=*]@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]
//! /mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]      (absolute path)
//! ;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]                               (in the selected mailbox)
//! ```
//!
//! The mailbox is UTF-8, percent-encoded; the section is a FETCH `BODY[]`
//! section (`1.2`, `HEADER`, `1.MIME`, `HEADER.FIELDS (To)`), percent-encoded.
//! Any host is taken to mean this server (a client has no other way to
//! say it); a user name other than the session's is refused. The bytes are
//! exactly those of `BODY.PEEK[section]<partial>`.
//!
//! A URL that does not parse, names a mailbox the user may not read (`r`),
//! a UIDVALIDITY that is not the mailbox's, a message that is not there or
//! a section that does not exist makes the APPEND fail with
//! `NO [BADURL url]` (RFC 4469 §5), storing nothing. The joined message is
//! bounded like a literal ([`crate::parser::Limits::max_literal`], the
//! APPENDLIMIT): a larger one is `NO [TOOBIG]`.

use bytes::{Bytes, BytesMut};
use mailroom_core::access::MailAccess;
use mailroom_core::{Error, Uid};

use crate::command::{CatPart, Section};
use crate::session::body::{partial, section_bytes};

/// The capability.
pub(crate) const CAPABILITY: &str = "CATENATE";

/// The longest URL taken.
pub const MAX_URL_LEN: usize = 4096;

/// An IMAP URL naming a message or a part of one (RFC 5092).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The user named in the authority, percent-decoded.
    pub user: Option<String>,
    /// The host, as written (`None` for a relative URL).
    pub host: Option<String>,
    /// The mailbox, percent-decoded (`None`: the selected mailbox).
    pub mailbox: Option<String>,
    /// `;UIDVALIDITY=`.
    pub uid_validity: Option<u32>,
    /// `;UID=`.
    pub uid: u32,
    /// `;SECTION=`, parsed as a FETCH body section.
    pub section: Section,
    /// The section as written, percent-decoded (empty without one).
    pub section_text: String,
    /// `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL too long")]
    TooLong,
    /// Not an IMAP URL this server takes.
    #[error("not an IMAP URL naming a message: {0}")]
    Syntax(&'static str),
}

/// Parses an IMAP URL (the subset above).
pub fn parse_url(url: &str) -> Result<ImapUrl, UrlError> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let mut user = None;
    let mut host = None;
    let path: &str;
    let mut mailbox = None;
    if starts_with_ignore_case(url, "imap://") {
        let rest = &url["imap://".len()..];
        let slash = rest.find('/').ok_or(UrlError::Syntax("no path"))?;
        let authority = &rest[..slash];
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        if let Some(ui) = userinfo {
            // enc-user [";AUTH=" ( "*" / enc-auth-type )]
            let name = match ui.find(';') {
                Some(semi) => {
                    if !starts_with_ignore_case(&ui[semi..], ";AUTH=") {
                        return Err(UrlError::Syntax("bad user information"));
                    }
                    &ui[..semi]
                }
                None => ui,
            };
            if !name.is_empty() {
                user = Some(percent_decode(name)?);
            }
        }
        let host_only = match hostport.rfind(':') {
            Some(colon) if !hostport.ends_with(']') => {
                let port = &hostport[colon + 1..];
                if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(UrlError::Syntax("bad port"));
                }
                &hostport[..colon]
            }
            _ => hostport,
        };
        if host_only.is_empty() {
            return Err(UrlError::Syntax("no host"));
        }
        host = Some(host_only.to_owned());
        path = &rest[slash + 1..];
        mailbox = Some(());
    } else if let Some(rest) = url.strip_prefix('/') {
        path = rest;
        mailbox = Some(());
    } else {
        path = url;
    }
    // enc-mailbox runs to the first ';' (a bchar is never ';')
    let (mailbox, mut params) = match mailbox {
        Some(()) => {
            let semi = path.find(';').ok_or(UrlError::Syntax("no ;UID"))?;
            let enc = &path[..semi];
            let enc = enc.strip_suffix('/').unwrap_or(enc);
            if enc.is_empty() {
                return Err(UrlError::Syntax("no mailbox"));
            }
            (Some(percent_decode(enc)?), &path[semi..])
        }
        None => (None, path),
    };
    let mut uid_validity = None;
    if let Some(rest) = strip_prefix_ignore_case(params, ";UIDVALIDITY=") {
        let (n, rest) = number(rest)?;
        uid_validity = Some(n);
        params = rest;
    }
    let mut uid = None;
    let mut section = Section::default();
    let mut section_text = String::new();
    let mut partial_range = None;
    let mut first = true;
    while !params.is_empty() {
        // each iparam is "/;NAME=value", the first may come without '/'
        let p = match params.strip_prefix('/') {
            Some(p) => p,
            None if first && uid_validity.is_none() => params,
            None => return Err(UrlError::Syntax("expected /;")),
        };
        first = false;
        if let Some(rest) = strip_prefix_ignore_case(p, ";UID=") {
            if uid.is_some() {
                return Err(UrlError::Syntax("UID twice"));
            }
            let (n, rest) = number(rest)?;
            if n == 0 {
                return Err(UrlError::Syntax("UID 0"));
            }
            uid = Some(n);
            params = rest;
        } else if let Some(rest) = strip_prefix_ignore_case(p, ";SECTION=") {
            if uid.is_none() {
                return Err(UrlError::Syntax("SECTION before UID"));
            }
            if !section_text.is_empty() || partial_range.is_some() {
                return Err(UrlError::Syntax("SECTION twice or after PARTIAL"));
            }
            let end = rest.find("/;").unwrap_or(rest.len());
            section_text = percent_decode(&rest[..end])?;
            if section_text.is_empty() {
                return Err(UrlError::Syntax("empty SECTION"));
            }
            section = parse_section(&section_text)?;
            params = &rest[end..];
        } else if let Some(rest) = strip_prefix_ignore_case(p, ";PARTIAL=") {
            if uid.is_none() || partial_range.is_some() {
                return Err(UrlError::Syntax("PARTIAL before UID or twice"));
            }
            let (offset, rest) = number(rest)?;
            let (len, rest) = match rest.strip_prefix('.') {
                Some(r) => {
                    let (l, r) = number(r)?;
                    if l == 0 {
                        return Err(UrlError::Syntax("PARTIAL length 0"));
                    }
                    (Some(l), r)
                }
                None => (None, rest),
            };
            partial_range = Some((offset, len));
            params = rest;
        } else {
            // ;EXPIRE=, ;URLAUTH= (URLAUTH is not offered) and the rest
            return Err(UrlError::Syntax("unsupported URL parameter"));
        }
    }
    Ok(ImapUrl {
        user,
        host,
        mailbox,
        uid_validity,
        uid: uid.ok_or(UrlError::Syntax("no ;UID"))?,
        section,
        section_text,
        partial: partial_range,
    })
}

impl std::fmt::Display for ImapUrl {
    /// The URL in a canonical form [`parse_url`] reads back to the same
    /// value: `imap://` when there is a host, an absolute path when there
    /// is a mailbox, else relative; names percent-encoded.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(host) = &self.host {
            f.write_str("imap://")?;
            if let Some(user) = &self.user {
                write!(f, "{}@", percent_encode(user))?;
            }
            write!(f, "{host}/")?;
        } else if self.mailbox.is_some() {
            f.write_str("/")?;
        }
        if let Some(m) = &self.mailbox {
            f.write_str(&percent_encode(m))?;
        }
        if let Some(v) = self.uid_validity {
            write!(f, ";UIDVALIDITY={v}")?;
        }
        if self.mailbox.is_some() || self.uid_validity.is_some() {
            f.write_str("/")?;
        }
        write!(f, ";UID={}", self.uid)?;
        if !self.section_text.is_empty() {
            write!(f, "/;SECTION={}", percent_encode(&self.section_text))?;
        }
        match self.partial {
            Some((o, Some(l))) => write!(f, "/;PARTIAL={o}.{l}"),
            Some((o, None)) => write!(f, "/;PARTIAL={o}"),
            None => Ok(()),
        }
    }
}

/// `%XX` for every byte but ALPHA, DIGIT and `-._~`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // prefixes are ASCII, so the cut is on a char boundary
    starts_with_ignore_case(s, prefix).then(|| &s[prefix.len()..])
}

/// A decimal number that fits in 32 bits, and what follows it.
fn number(s: &str) -> Result<(u32, &str), UrlError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 10 {
        return Err(UrlError::Syntax("expected a number"));
    }
    let n = s[..digits]
        .parse::<u32>()
        .map_err(|_| UrlError::Syntax("number too large"))?;
    Ok((n, &s[digits..]))
}

/// Undoes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(UrlError::Syntax("bad %-escape"));
            };
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Syntax("not UTF-8"))
}

/// A FETCH body section (without the brackets), with FETCH's parser.
fn parse_section(s: &str) -> Result<Section, UrlError> {
    let text = format!("[{s}]");
    crate::parser::parse_section(text.as_bytes()).ok_or(UrlError::Syntax("bad section"))
}

/// Why a CATENATE could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatError {
    /// `NO [BADURL url]`.
    #[error("cannot use URL {0}")]
    BadUrl(String),
    /// The joined message is over the limit: `NO [TOOBIG]`.
    #[error("the message would be too large")]
    TooBig,
    /// The store failed.
    #[error(transparent)]
    Store(Error),
}

/// The message a CATENATE's `parts` make, read with `access`'s rights;
/// `selected` is the selected mailbox's name (for relative URLs), `limit`
/// the largest message taken.
pub(crate) async fn build(
    access: &MailAccess,
    selected: Option<&str>,
    parts: &[CatPart],
    limit: u64,
) -> Result<Bytes, CatError> {
    let mut out = BytesMut::new();
    for part in parts {
        let bytes = match part {
            CatPart::Text(t) => t.clone(),
            CatPart::Url(url) => resolve(access, selected, url).await?,
        };
        if (out.len() + bytes.len()) as u64 > limit {
            return Err(CatError::TooBig);
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out.freeze())
}

/// The bytes a URL names.
async fn resolve(
    access: &MailAccess,
    selected: Option<&str>,
    url: &str,
) -> Result<Bytes, CatError> {
    let bad = || CatError::BadUrl(url.to_owned());
    let parsed = parse_url(url).map_err(|_| bad())?;
    if parsed
        .user
        .as_deref()
        .is_some_and(|u| u != access.principal().user)
    {
        return Err(bad());
    }
    let name = match (&parsed.mailbox, selected) {
        (Some(m), _) => m.as_str(),
        (None, Some(s)) => s,
        (None, None) => return Err(bad()),
    };
    let store_err = |e: Error| match e {
        Error::NoSuchMailbox(_)
        | Error::PermissionDenied(_)
        | Error::NoSuchMessage(_)
        | Error::InvalidMailboxName(_) => bad(),
        other => CatError::Store(other),
    };
    let sel = access.select(name, true).await.map_err(store_err)?;
    if let Some(v) = parsed.uid_validity {
        let status = sel.status().await.map_err(store_err)?;
        if status.uid_validity.0 != v {
            return Err(bad());
        }
    }
    let mailbox = sel.mailbox();
    let uid = Uid(parsed.uid);
    let summary = mailbox
        .summaries(&[uid])
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|(u, _)| *u == uid)
        .map(|(_, s)| s)
        .ok_or_else(bad)?;
    let content = mailbox.content(uid).await.map_err(store_err)?;
    let data = section_bytes(&summary, Some(&content), &parsed.section).ok_or_else(bad)?;
    Ok(match parsed.partial {
        Some((offset, len)) => partial(data, u64::from(offset), len.map_or(u64::MAX, u64::from)),
        None => data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::SectionText;

    #[test]
    fn full_url_with_everything() {
        let u = parse_url(
            "imap://alice%40example.com;AUTH=*@mail.example.com:143/Sent%20Items;UIDVALIDITY=785799047/;UID=113330/;SECTION=1.5.9/;PARTIAL=10.20",
        )
        .unwrap();
        assert_eq!(u.user.as_deref(), Some("alice@example.com"));
        assert_eq!(u.host.as_deref(), Some("mail.example.com"));
        assert_eq!(u.mailbox.as_deref(), Some("Sent Items"));
        assert_eq!(u.uid_validity, Some(785_799_047));
        assert_eq!(u.uid, 113_330);
        assert_eq!(u.section.part, vec![1, 5, 9]);
        assert_eq!(u.partial, Some((10, Some(20))));
    }

    #[test]
    fn relative_forms() {
        let u = parse_url("/INBOX/;uid=20/;section=HEADER").unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(u.section.text, Some(SectionText::Header));
        let u = parse_url(";UID=7").unwrap();
        assert_eq!(u.mailbox, None);
        assert_eq!(u.uid, 7);
        let u = parse_url("/a/b%C3%A9;UIDVALIDITY=3/;UID=1/;SECTION=1.MIME").unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("a/bé"));
        assert_eq!(u.section.text, Some(SectionText::Mime));
        let u = parse_url("/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(TO%20FROM)").unwrap();
        assert_eq!(
            u.section.text,
            Some(SectionText::HeaderFields(vec!["TO".into(), "FROM".into()]))
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = parse_url(&s);
        }

        #[test]
        fn canonical_form_round_trips(
            host in proptest::option::of("[a-z0-9.-]{1,20}"),
            user in proptest::option::of("\\PC{1,12}"),
            mailbox in proptest::option::of("\\PC{1,20}"),
            uid_validity in proptest::option::of(proptest::prelude::any::<u32>()),
            uid in 1u32..,
            section in proptest::sample::select(vec![
                "", "1", "1.2.3", "HEADER", "TEXT", "2.MIME", "1.HEADER.FIELDS (To Cc)",
                "HEADER.FIELDS.NOT (X-Spam)",
            ]),
            partial in proptest::option::of((proptest::prelude::any::<u32>(), proptest::option::of(1u32..))),
        ) {
            let mailbox = if host.is_some() { mailbox.or(Some("INBOX".into())) } else { mailbox };
            let url = ImapUrl {
                user: host.as_ref().and(user),
                host,
                mailbox,
                uid_validity,
                uid,
                section: parse_section(section).unwrap_or_default(),
                section_text: section.to_owned(),
                partial,
            };
            let text = url.to_string();
            proptest::prop_assert_eq!(parse_url(&text), Ok(url), "{}", text);
        }
    }

    #[test]
    fn refused_urls() {
        for url in [
            "",
            "imap://host",
            "imap:///INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=1/;URLAUTH=anonymous:internal:0123",
            "/INBOX/;UID=1/;SECTION=1..2",
            "/INBOX/;UID=x",
            "/INBOX/;UID=99999999999",
            "/%ZZ/;UID=1",
            "/%FF/;UID=1",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "http://example.com/",
        ] {
            assert!(parse_url(url).is_err(), "{url}");
        }
        assert_eq!(
            parse_url(&"/".repeat(MAX_URL_LEN + 1)),
            Err(UrlError::TooLong)
        );
    }
}
