//! The admin protocol's requests and reply lines, as text (see the
//! [module docs](super) for the grammar).

use std::fmt;

use mailroom_core::MailboxName;

use crate::users;

/// What an admin command is about: a user, and optionally one of their
/// mailboxes (`USER[/MAILBOX]` on the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The user, in canonical form (domain in lower case).
    pub user: String,
    /// One mailbox, or all of the user's mailboxes.
    pub mailbox: Option<MailboxName>,
}

impl Target {
    /// Parses `USER[/MAILBOX]`: the user name stops at the first `/` (user
    /// names contain none); the rest, which may contain `/` itself (the
    /// hierarchy delimiter), is the mailbox.
    pub fn parse(text: &str) -> Result<Target, WireError> {
        let (user, mailbox) = match text.split_once('/') {
            Some((u, m)) => (u, Some(m)),
            None => (text, None),
        };
        let user = users::canonical_name(user).map_err(|e| WireError(e.to_string()))?;
        let mailbox = match mailbox {
            None => None,
            Some(m) => {
                Some(MailboxName::new(m).map_err(|e| WireError(format!("mailbox {m:?}: {e}")))?)
            }
        };
        Ok(Target { user, mailbox })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mailbox {
            Some(m) => write!(f, "{}/{}", self.user, m.as_str()),
            None => f.write_str(&self.user),
        }
    }
}

/// One admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Rebuild the index and cache of a user's mailboxes (or one) from the
    /// message files, and report the recomputed quota.
    Reconstruct(Target),
    /// Check a user's mailboxes (or one) thoroughly.
    Verify(Target),
    /// Show a user's quota usage and limits.
    QuotaShow {
        /// The user (canonical).
        user: String,
    },
    /// Set a user's quota limits (each `None` is unlimited).
    QuotaSet {
        /// The user (canonical).
        user: String,
        /// The STORAGE limit in KiB.
        storage_kib: Option<u64>,
        /// The MESSAGE limit.
        messages: Option<u64>,
    },
    /// Every domain of the users file: user count, archived users, billing.
    DomainList,
    /// Switch archiving on or off for a user.
    ArchiveSet {
        /// Who does it (a user of the users file, whose roles count), or
        /// `None` for the operator on the admin socket (a server admin).
        actor: Option<String>,
        /// The user (canonical).
        user: String,
        /// On or off.
        enabled: bool,
    },
    /// Whether archiving is on for a user.
    ArchiveStatus {
        /// The user (canonical).
        user: String,
    },
    /// Grant (with a reason) or revoke a retention override on an archive
    /// mailbox (`archive@DOMAIN/MAILBOX`).
    ArchiveOverride {
        /// As in [`Request::ArchiveSet`].
        actor: Option<String>,
        /// The archive mailbox.
        mailbox: Target,
        /// `Some(reason)` grants, `None` revokes.
        reason: Option<String>,
    },
    /// Switch billing on or off for a domain (on: notices to its archived users).
    BillingSet {
        /// The domain, lower case.
        domain: String,
        /// On or off.
        enabled: bool,
    },
    /// `request` done with the roles of `actor` (a user of the users
    /// file): a domain admin may act on its own domain's users only. For
    /// the user-targeted requests (quota, reconstruct, verify).
    As {
        /// The acting user (canonical).
        actor: String,
        /// What it does.
        request: Box<Request>,
    },
    /// The billing plugin's report of a month (`None`: the current month).
    BillingReport {
        /// `YYYY-MM`.
        month: Option<String>,
    },
    /// Where replication stands (`key value` lines).
    ReplicationStatus,
    /// Promote this replica to the primary role (persisted).
    ReplicationPromote,
    /// Compare a user's account with the replica now and repair it.
    ReplicationVerify {
        /// The user (canonical).
        user: String,
    },
}

/// A request or reply line that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

fn bad(why: impl Into<String>) -> WireError {
    WireError(why.into())
}

impl Request {
    /// The request line (without LF), version first.
    pub fn encode(&self) -> String {
        let mut words: Vec<String> = vec![super::PROTOCOL_VERSION.to_string()];
        let mut target = |verb: &str, t: &Target| {
            words.push(verb.to_owned());
            words.push(encode_arg(&t.user));
            if let Some(m) = &t.mailbox {
                words.push(encode_arg(m.as_str()));
            }
        };
        match self {
            Request::Reconstruct(t) => target("reconstruct", t),
            Request::Verify(t) => target("verify", t),
            Request::QuotaShow { user } => {
                words.push("quota-show".into());
                words.push(encode_arg(user));
            }
            Request::QuotaSet {
                user,
                storage_kib,
                messages,
            } => {
                words.push("quota-set".into());
                words.push(encode_arg(user));
                words.push(encode_limit(*storage_kib));
                words.push(encode_limit(*messages));
            }
            Request::DomainList => words.push("domain-list".into()),
            Request::As { actor, request } => {
                words.push("as".into());
                words.push(encode_arg(actor));
                let inner = request.encode();
                // the inner line without its version
                words.push(
                    inner
                        .split_once(' ')
                        .map_or(String::new(), |(_, rest)| rest.to_owned()),
                );
            }
            Request::ArchiveSet {
                actor,
                user,
                enabled,
            } => {
                words.push("archive-set".into());
                words.push(encode_actor(actor.as_deref()));
                words.push(encode_arg(user));
                words.push(if *enabled { "on" } else { "off" }.into());
            }
            Request::ArchiveStatus { user } => {
                words.push("archive-status".into());
                words.push(encode_arg(user));
            }
            Request::ArchiveOverride {
                actor,
                mailbox,
                reason,
            } => {
                words.push(
                    if reason.is_some() {
                        "archive-override-grant"
                    } else {
                        "archive-override-revoke"
                    }
                    .into(),
                );
                words.push(encode_actor(actor.as_deref()));
                words.push(encode_arg(&mailbox.to_string()));
                if let Some(r) = reason {
                    words.push(encode_arg(r));
                }
            }
            Request::BillingSet { domain, enabled } => {
                words.push("billing-set".into());
                words.push(encode_arg(domain));
                words.push(if *enabled { "on" } else { "off" }.into());
            }
            Request::ReplicationStatus => words.push("replication-status".into()),
            Request::ReplicationPromote => words.push("replication-promote".into()),
            Request::ReplicationVerify { user } => {
                words.push("replication-verify".into());
                words.push(encode_arg(user));
            }
            Request::BillingReport { month } => {
                words.push("billing-report".into());
                if let Some(m) = month {
                    words.push(encode_arg(m));
                }
            }
        }
        words.join(" ")
    }

    /// Parses a request line (without its LF).
    pub fn decode(line: &str) -> Result<Request, WireError> {
        let mut words = line.split(' ');
        let version = words.next().unwrap_or_default();
        if version != super::PROTOCOL_VERSION.to_string() {
            return Err(bad(format!(
                "unsupported protocol version {:?} (this server speaks {})",
                truncate(version, 16),
                super::PROTOCOL_VERSION
            )));
        }
        let verb = words.next().ok_or_else(|| bad("missing verb"))?;
        if verb == "as" {
            let actor = decode_arg(words.next().ok_or_else(|| bad("as takes ACTOR REQUEST"))?)?;
            let actor = users::canonical_name(&actor).map_err(|e| bad(e.to_string()))?;
            let rest: Vec<&str> = words.collect();
            if rest.first() == Some(&"as") {
                return Err(bad("as cannot be nested"));
            }
            let inner =
                Request::decode(&format!("{} {}", super::PROTOCOL_VERSION, rest.join(" ")))?;
            return Ok(Request::As {
                actor,
                request: Box::new(inner),
            });
        }
        let args: Vec<String> = words.map(decode_arg).collect::<Result<_, _>>()?;
        let user = |args: &[String]| -> Result<String, WireError> {
            users::canonical_name(&args[0]).map_err(|e| bad(e.to_string()))
        };
        let target = |args: &[String]| -> Result<Target, WireError> {
            let mailbox = match args {
                [_] => None,
                [_, mailbox] => Some(
                    MailboxName::new(mailbox)
                        .map_err(|e| bad(format!("mailbox {mailbox:?}: {e}")))?,
                ),
                _ => return Err(bad(format!("{verb} takes USER [MAILBOX]"))),
            };
            Ok(Target {
                user: user(args)?,
                mailbox,
            })
        };
        match verb {
            "reconstruct" => Ok(Request::Reconstruct(target(&args)?)),
            "verify" => Ok(Request::Verify(target(&args)?)),
            "quota-show" if args.len() == 1 => Ok(Request::QuotaShow { user: user(&args)? }),
            "quota-show" => Err(bad("quota-show takes USER")),
            "quota-set" if args.len() == 3 => Ok(Request::QuotaSet {
                user: user(&args)?,
                storage_kib: decode_limit(&args[1])?,
                messages: decode_limit(&args[2])?,
            }),
            "quota-set" => Err(bad("quota-set takes USER STORAGE_KIB MESSAGES")),
            "domain-list" if args.is_empty() => Ok(Request::DomainList),
            "archive-set" if args.len() == 3 => Ok(Request::ArchiveSet {
                actor: decode_actor(&args[0])?,
                user: user(&args[1..])?,
                enabled: decode_switch(&args[2])?,
            }),
            "archive-status" if args.len() == 1 => {
                Ok(Request::ArchiveStatus { user: user(&args)? })
            }
            "archive-override-grant" if args.len() == 3 => Ok(Request::ArchiveOverride {
                actor: decode_actor(&args[0])?,
                mailbox: Target::parse(&args[1])?,
                reason: Some(args[2].clone()),
            }),
            "archive-override-revoke" if args.len() == 2 => Ok(Request::ArchiveOverride {
                actor: decode_actor(&args[0])?,
                mailbox: Target::parse(&args[1])?,
                reason: None,
            }),
            "billing-set" if args.len() == 2 => Ok(Request::BillingSet {
                domain: args[0].to_ascii_lowercase(),
                enabled: decode_switch(&args[1])?,
            }),
            "billing-report" if args.len() <= 1 => Ok(Request::BillingReport {
                month: args.first().cloned(),
            }),
            "replication-status" if args.is_empty() => Ok(Request::ReplicationStatus),
            "replication-promote" if args.is_empty() => Ok(Request::ReplicationPromote),
            "replication-verify" if args.len() == 1 => {
                Ok(Request::ReplicationVerify { user: user(&args)? })
            }
            "replication-status" | "replication-promote" | "replication-verify" => {
                Err(bad(format!("wrong arguments for {verb}")))
            }
            "domain-list"
            | "archive-set"
            | "archive-status"
            | "archive-override-grant"
            | "archive-override-revoke"
            | "billing-set"
            | "billing-report" => Err(bad(format!("wrong arguments for {verb}"))),
            other => Err(bad(format!("unknown verb {:?}", truncate(other, 32)))),
        }
    }
}

fn encode_actor(actor: Option<&str>) -> String {
    actor.map_or_else(|| "-".to_owned(), encode_arg)
}

fn decode_actor(word: &str) -> Result<Option<String>, WireError> {
    if word == "-" {
        return Ok(None);
    }
    users::canonical_name(word)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

fn decode_switch(word: &str) -> Result<bool, WireError> {
    match word {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(bad(format!(
            "expected on or off, not {:?}",
            truncate(other, 16)
        ))),
    }
}

fn encode_limit(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn decode_limit(word: &str) -> Result<Option<u64>, WireError> {
    if word == "-" {
        return Ok(None);
    }
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("bad limit {:?}", truncate(word, 32))));
    }
    word.parse()
        .map(Some)
        .map_err(|_| bad(format!("limit {:?} out of range", truncate(word, 32))))
}

/// Percent-encodes an argument: bytes outside `!`..=`~`, and `%`, become `%XX`.
pub fn encode_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    for &b in arg.as_bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_arg`]; the result must be UTF-8 and not empty.
pub fn decode_arg(word: &str) -> Result<String, WireError> {
    if word.is_empty() {
        return Err(bad("empty argument (two spaces in a row?)"));
    }
    let bytes = word.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("bad %-escape in an argument"))?;
                out.push(hex);
                i += 3;
            }
            b if b.is_ascii_graphic() => {
                out.push(b);
                i += 1;
            }
            _ => return Err(bad("unencoded byte in an argument")),
        }
    }
    String::from_utf8(out).map_err(|_| bad("an argument is not UTF-8"))
}

/// One line of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyLine {
    /// `* TEXT`: a line of the command's output.
    Data(String),
    /// `OK`: the request succeeded; the reply is complete.
    Ok,
    /// `NO REASON`: the request failed; the reply is complete.
    No(String),
}

impl ReplyLine {
    /// The line as sent (without LF): control characters replaced by `?`,
    /// cut to fit [`MAX_REPLY_LINE`](super::MAX_REPLY_LINE).
    pub fn encode(&self) -> String {
        let (prefix, text) = match self {
            ReplyLine::Data(t) => ("* ", t.as_str()),
            ReplyLine::Ok => return "OK".into(),
            ReplyLine::No(t) => ("NO ", t.as_str()),
        };
        let mut out = String::from(prefix);
        for c in text.chars() {
            if out.len() + c.len_utf8() >= super::MAX_REPLY_LINE - 1 {
                break;
            }
            out.push(if c.is_control() { '?' } else { c });
        }
        out
    }

    /// Parses a reply line (without LF).
    pub fn decode(line: &str) -> Result<ReplyLine, WireError> {
        if let Some(text) = line.strip_prefix("* ") {
            Ok(ReplyLine::Data(text.to_owned()))
        } else if line == "OK" {
            Ok(ReplyLine::Ok)
        } else if let Some(text) = line.strip_prefix("NO ") {
            Ok(ReplyLine::No(text.to_owned()))
        } else {
            Err(bad(format!(
                "unexpected reply line {:?}",
                truncate(line, 64)
            )))
        }
    }
}

/// At most `max` characters of `s`, for quoting peer input in errors.
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn target(user: &str, mailbox: Option<&str>) -> Target {
        Target {
            user: user.into(),
            mailbox: mailbox.map(|m| MailboxName::new(m).unwrap()),
        }
    }

    #[test]
    fn documented_lines() {
        let r = Request::Reconstruct(target("alice@example.com", Some("INBOX")));
        assert_eq!(r.encode(), "1 reconstruct alice@example.com INBOX");
        let r = Request::Verify(target("alice@example.com", Some("Old mail/2024")));
        assert_eq!(r.encode(), "1 verify alice@example.com Old%20mail/2024");
        let r = Request::QuotaSet {
            user: "bob@example.com".into(),
            storage_kib: Some(1024),
            messages: None,
        };
        assert_eq!(r.encode(), "1 quota-set bob@example.com 1024 -");
        assert_eq!(
            Request::decode("1 quota-show Bob@EXAMPLE.com").unwrap(),
            Request::QuotaShow {
                user: "Bob@example.com".into()
            }
        );
        assert_eq!(encode_arg("Ünïcode %"), "%C3%9Cn%C3%AFcode%20%25");
    }

    #[test]
    fn as_wraps_a_request() {
        let r = Request::As {
            actor: "boss@x.org".into(),
            request: Box::new(Request::QuotaSet {
                user: "alice@x.org".into(),
                storage_kib: Some(10),
                messages: None,
            }),
        };
        assert_eq!(r.encode(), "1 as boss@x.org quota-set alice@x.org 10 -");
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        assert!(Request::decode("1 as boss@x.org as root@x.org quota-show a@x.org").is_err());
        assert!(Request::decode("1 as boss@x.org").is_err());
        let r = Request::ArchiveSet {
            actor: None,
            user: "alice@x.org".into(),
            enabled: true,
        };
        assert_eq!(r.encode(), "1 archive-set - alice@x.org on");
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        let r = Request::ArchiveOverride {
            actor: Some("root@ops.example".into()),
            mailbox: Target::parse("archive@x.org/alice/2026-12/in").unwrap(),
            reason: Some("retention 7y".into()),
        };
        assert_eq!(
            r.encode(),
            "1 archive-override-grant root@ops.example archive@x.org/alice/2026-12/in retention%207y"
        );
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        assert!(Request::decode("1 billing-set x.org maybe").is_err());
        for r in [
            Request::ReplicationStatus,
            Request::ReplicationPromote,
            Request::ReplicationVerify {
                user: "alice@x.org".into(),
            },
        ] {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        assert_eq!(
            Request::ReplicationVerify {
                user: "alice@x.org".into()
            }
            .encode(),
            "1 replication-verify alice@x.org"
        );
        assert!(Request::decode("1 replication-verify").is_err());
        assert!(Request::decode("1 replication-status now").is_err());
        assert_eq!(
            Request::decode("1 billing-report 2026-12").unwrap(),
            Request::BillingReport {
                month: Some("2026-12".into())
            }
        );
    }

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("a@B.c/Archive/2024").unwrap(),
            target("a@b.c", Some("Archive/2024"))
        );
        assert_eq!(Target::parse("a@b.c").unwrap(), target("a@b.c", None));
        assert!(Target::parse("nobody").is_err());
        assert!(Target::parse("a@b.c/").is_err(), "empty mailbox name");
        assert!(Target::parse("a@b.c/x*").is_err(), "wildcard");
        assert_eq!(target("a@b.c", Some("X/Y")).to_string(), "a@b.c/X/Y");
    }

    #[test]
    fn bad_requests() {
        for line in [
            "",
            "2 verify a@b.c",
            "1",
            "1 launch a@b.c",
            "1 verify",
            "1 verify a@b.c INBOX extra",
            "1 verify a@b.c  INBOX",
            "1 verify a@b.c IN%2",
            "1 verify a@b.c IN%ZZ",
            "1 verify a@b.c %FF",
            "1 verify a@b.c IN\tBOX",
            "1 quota-set a@b.c 10",
            "1 quota-set a@b.c ten -",
            "1 quota-set a@b.c +1 -",
            "1 quota-set a@b.c 99999999999999999999999 -",
            "1 quota-show a@b.c x",
            "1 quota-show nobody",
            "1 verify a@b.c/INBOX",
        ] {
            assert!(Request::decode(line).is_err(), "{line:?}");
        }
        let e = Request::decode("7 verify a@b.c").unwrap_err();
        assert!(e.0.contains("unsupported protocol version"), "{e}");
    }

    #[test]
    fn reply_lines() {
        assert_eq!(ReplyLine::Data("a\nb\u{1b}".into()).encode(), "* a?b?");
        assert_eq!(ReplyLine::No("x".into()).encode(), "NO x");
        assert_eq!(ReplyLine::decode("OK").unwrap(), ReplyLine::Ok);
        assert_eq!(
            ReplyLine::decode("* x y").unwrap(),
            ReplyLine::Data("x y".into())
        );
        assert!(ReplyLine::decode("MAYBE").is_err());
        let long = ReplyLine::Data("é".repeat(super::super::MAX_REPLY_LINE)).encode();
        assert!(long.len() < super::super::MAX_REPLY_LINE);
    }

    fn mailbox_name() -> impl Strategy<Value = String> {
        "[^*%\\p{Cc}/]{1,20}(/[^*%\\p{Cc}/]{1,20}){0,2}"
            .prop_filter("valid name", |s| MailboxName::new(s).is_ok())
    }

    proptest! {
        #[test]
        fn args_round_trip(s in "\\PC{1,64}|[ -~]{1,64}") {
            let e = encode_arg(&s);
            prop_assert!(e.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(decode_arg(&e).unwrap(), s);
        }

        #[test]
        fn requests_round_trip(
            local in "[a-z0-9._-]{1,12}",
            domain in "[a-z0-9-]{1,12}\\.[a-z]{2,5}",
            mailbox in proptest::option::of(mailbox_name()),
            storage in proptest::option::of(any::<u64>()),
            messages in proptest::option::of(any::<u64>()),
            verb in 0..4u8,
        ) {
            let user = format!("{local}@{domain}");
            prop_assume!(users::canonical_name(&user).is_ok());
            let t = Target { user: user.clone(), mailbox: mailbox.map(|m| MailboxName::new(&m).unwrap()) };
            let r = match verb {
                0 => Request::Reconstruct(t),
                1 => Request::Verify(t),
                2 => Request::QuotaShow { user },
                _ => Request::QuotaSet { user, storage_kib: storage, messages },
            };
            let line = r.encode();
            prop_assert!(line.len() < super::super::MAX_REQUEST_LINE);
            prop_assert!(!line.contains('\n'));
            prop_assert_eq!(Request::decode(&line).unwrap(), r);
        }

        #[test]
        fn decode_never_panics(line in "\\PC{0,80}") {
            let _ = Request::decode(&line);
            let _ = ReplyLine::decode(&line);
        }
    }
}
