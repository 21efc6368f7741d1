//! Status responses (`tag OK [code] text`) and response codes.

use super::wire::Out;
use super::{Code, StatusKind, StatusResponse};

/// `tag SP resp-cond-state` or `"*" SP resp-cond-*`.
pub(super) fn status(o: &mut Out<'_>, s: &StatusResponse) {
    match (&s.tag, s.kind) {
        (Some(tag), k) if k != StatusKind::Bye && k != StatusKind::PreAuth => o.atom(tag),
        _ => o.raw(b"*"),
    }
    o.raw(match s.kind {
        StatusKind::Ok => b" OK",
        StatusKind::No => b" NO",
        StatusKind::Bad => b" BAD",
        StatusKind::Bye => b" BYE",
        StatusKind::PreAuth => b" PREAUTH",
    });
    o.sp();
    if let Some(code) = &s.code {
        o.raw(b"[");
        write_code(o, code);
        o.raw(b"] ");
    }
    let text = s.text.trim();
    if text.is_empty() {
        o.raw(match s.kind {
            StatusKind::Ok => b"completed",
            StatusKind::No => b"failed",
            StatusKind::Bad => b"invalid command",
            StatusKind::Bye => b"closing connection",
            StatusKind::PreAuth => b"logged in",
        });
    } else {
        o.text(text);
    }
}

/// `resp-text-code`.
pub(crate) fn write_code(o: &mut Out<'_>, code: &Code) {
    let simple: &str = match code {
        Code::Alert => "ALERT",
        Code::BadCharset(list) => {
            o.raw(b"BADCHARSET");
            if !list.is_empty() {
                o.raw(b" (");
                for (i, c) in list.iter().enumerate() {
                    if i > 0 {
                        o.sp();
                    }
                    o.astring(c.as_bytes());
                }
                o.raw(b")");
            }
            return;
        }
        Code::BadEvent(events) => {
            o.raw(b"BADEVENT (");
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    o.sp();
                }
                o.str(e);
            }
            o.raw(b")");
            return;
        }
        Code::Capability(caps) => {
            o.raw(b"CAPABILITY");
            for c in caps {
                o.sp();
                o.atom(c);
            }
            return;
        }
        Code::Parse => "PARSE",
        Code::PermanentFlags(flags) => {
            o.raw(b"PERMANENTFLAGS (");
            for (i, f) in flags.iter().enumerate() {
                if i > 0 {
                    o.sp();
                }
                if f == "\\*" {
                    o.raw(b"\\*");
                } else {
                    o.atom(f);
                }
            }
            o.raw(b")");
            return;
        }
        Code::ReadOnly => "READ-ONLY",
        Code::ReadWrite => "READ-WRITE",
        Code::TryCreate => "TRYCREATE",
        Code::UidNext(u) => {
            o.raw(b"UIDNEXT ");
            o.num(u.0);
            return;
        }
        Code::UidValidity(v) => {
            o.raw(b"UIDVALIDITY ");
            o.num(v.0);
            return;
        }
        Code::Unseen(n) => {
            o.raw(b"UNSEEN ");
            o.num(n);
            return;
        }
        Code::AppendUid(v, u) => {
            o.raw(b"APPENDUID ");
            o.num(v.0);
            o.sp();
            o.num(u.0);
            return;
        }
        Code::CopyUid(v, from, to) => {
            o.raw(b"COPYUID ");
            o.num(v.0);
            o.sp();
            o.num(from);
            o.sp();
            o.num(to);
            return;
        }
        Code::UidNotSticky => "UIDNOTSTICKY",
        Code::HighestModSeq(m) => {
            o.raw(b"HIGHESTMODSEQ ");
            o.num(m.0);
            return;
        }
        Code::MailboxId(id) => {
            o.raw(b"MAILBOXID (");
            o.str(&crate::extension::objectid::mailbox_id(id));
            o.raw(b")");
            return;
        }
        Code::NoModSeq => "NOMODSEQ",
        Code::Modified(set) => {
            o.raw(b"MODIFIED ");
            o.num(set);
            return;
        }
        Code::Closed => "CLOSED",
        Code::NonExistent => "NONEXISTENT",
        Code::AlreadyExists => "ALREADYEXISTS",
        Code::NoPerm => "NOPERM",
        Code::OverQuota => "OVERQUOTA",
        Code::Cannot => "CANNOT",
        Code::InUse => "INUSE",
        Code::Limit => "LIMIT",
        Code::ServerBug => "SERVERBUG",
        Code::Unavailable => "UNAVAILABLE",
        Code::Corruption => "CORRUPTION",
        Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
        Code::PrivacyRequired => "PRIVACYREQUIRED",
        Code::ContactAdmin => "CONTACTADMIN",
        Code::ExpungeIssued => "EXPUNGEISSUED",
        Code::HasChildren => "HASCHILDREN",
        Code::ClientBug => "CLIENTBUG",
        Code::TooBig => "TOOBIG",
        Code::UnknownCte => "UNKNOWN-CTE",
        Code::CompressionActive => "COMPRESSIONACTIVE",
        Code::NotificationOverflow => "NOTIFICATIONOVERFLOW",
        Code::UidRequired => "UIDREQUIRED",
        Code::AppendUids(v, set) => {
            o.raw(b"APPENDUID ");
            o.num(v.0);
            o.sp();
            o.str(&set.to_string());
            return;
        }
        Code::BadUrl(url) => {
            // url-resp-text (RFC 4469): text without ']'
            o.raw(b"BADURL ");
            let clean: String = url
                .chars()
                .filter(|&ch| ch != ']' && !ch.is_control())
                .collect();
            o.str(&clean);
            return;
        }
        Code::NoUpdate(tag) => {
            o.raw(b"NOUPDATE ");
            super::wire::quote_into(&mut o.buf, tag.as_bytes());
            return;
        }
    };
    o.str(simple);
}
