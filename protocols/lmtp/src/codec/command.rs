//! LMTP commands, parsed by `smtp-proto` and mapped to what an LMTP server
//! needs. What `smtp-proto` lacks (the LMTP-specific checks: which SMTP
//! commands LMTP forbids, which parameters we support) is here.

use std::borrow::Cow;

use bytes::Bytes;
use smtp_proto::{MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, Request};

/// The body type declared with `MAIL FROM ... BODY=` (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    /// `7BIT` or nothing.
    #[default]
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
}

/// A message received after `DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageData {
    /// The whole message, dot-unstuffed, without the terminating `.` line.
    Complete(Bytes),
    /// The message exceeded the size limit and was discarded as it arrived.
    TooBig,
}

/// One client request, as the session state machine receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `LHLO host` (RFC 2033 §4.1).
    Lhlo {
        /// The client's name.
        host: String,
    },
    /// `HELO` or `EHLO`, which LMTP does not allow.
    SmtpGreeting,
    /// `MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME]`.
    Mail {
        /// The reverse path; `None` for the null sender `<>`.
        from: Option<String>,
        /// The declared size (RFC 1870), if any.
        size: Option<u64>,
        /// The declared body type.
        body: BodyType,
    },
    /// `RCPT TO:<path>`.
    Rcpt {
        /// The forward path.
        to: String,
    },
    /// `DATA`.
    Data,
    /// The message sent after `354`.
    Message(MessageData),
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// An SMTP command this server does not implement (VRFY, EXPN, HELP,
    /// ETRN, ATRN, BURL, BDAT, AUTH, STARTTLS).
    NotImplemented {
        /// Its name.
        name: &'static str,
    },
    /// A line that is not a command at all.
    Unknown,
    /// A known command with bad syntax or unsupported parameters.
    Malformed {
        /// Reply code (500, 501, 555).
        code: u16,
        /// Enhanced status code.
        status: [u8; 3],
        /// Why, safe to show to the client.
        reason: String,
    },
}

fn malformed(code: u16, status: [u8; 3], reason: impl Into<String>) -> Command {
    Command::Malformed {
        code,
        status,
        reason: reason.into(),
    }
}

fn clean(s: &str) -> bool {
    !s.bytes().any(|b| b.is_ascii_control())
}

impl Command {
    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Lhlo { .. } => "LHLO",
            Command::SmtpGreeting => "HELO/EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Message(_) => "(message)",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::NotImplemented { name } => name,
            Command::Unknown => "(unknown)",
            Command::Malformed { .. } => "(malformed)",
        }
    }

    /// Parses one command line, line ending included.
    ///
    /// ```
    /// use mailroom_lmtp::codec::{BodyType, Command};
    /// assert_eq!(
    ///     Command::parse(b"MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME\r\n"),
    ///     Command::Mail { from: Some("a@example.org".into()), size: Some(100), body: BodyType::EightBitMime },
    /// );
    /// assert_eq!(Command::parse(b"RCPT TO:<bob@example.com>\r\n"), Command::Rcpt { to: "bob@example.com".into() });
    /// ```
    pub fn parse(line: &[u8]) -> Command {
        match Request::parse(&mut line.iter()) {
            Ok(request) => Command::from_request(request),
            Err(smtp_proto::Error::UnknownCommand) => Command::Unknown,
            Err(smtp_proto::Error::InvalidSenderAddress) => {
                malformed(501, [5, 1, 7], "bad sender address syntax")
            }
            Err(smtp_proto::Error::InvalidRecipientAddress) => {
                malformed(501, [5, 1, 3], "bad recipient address syntax")
            }
            Err(smtp_proto::Error::SyntaxError { syntax }) => {
                malformed(501, [5, 5, 4], format!("syntax: {syntax}"))
            }
            Err(smtp_proto::Error::InvalidParameter { param }) => {
                malformed(501, [5, 5, 4], format!("invalid parameter {param}"))
            }
            Err(smtp_proto::Error::UnsupportedParameter { param }) => malformed(
                555,
                [5, 5, 4],
                format!(
                    "unsupported parameter {}",
                    param
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(32)
                        .collect::<String>()
                ),
            ),
            Err(_) => malformed(501, [5, 5, 2], "syntax error"),
        }
    }

    fn from_request(request: Request<Cow<'_, str>>) -> Command {
        match request {
            Request::Lhlo { host } => {
                if clean(&host) {
                    Command::Lhlo {
                        host: host.into_owned(),
                    }
                } else {
                    malformed(501, [5, 5, 4], "syntax: LHLO domain")
                }
            }
            Request::Helo { .. } | Request::Ehlo { .. } => Command::SmtpGreeting,
            Request::Mail { from } => {
                if !clean(&from.address) {
                    return malformed(501, [5, 1, 7], "bad sender address syntax");
                }
                let known = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME;
                if from.flags & !known != 0
                    || from.env_id.is_some()
                    || from.trans_id.is_some()
                    || from.auth.is_some()
                    || from.solicit.is_some()
                    || from.mtrk.is_some()
                    || from.by != 0
                    || from.hold_for != 0
                    || from.hold_until != 0
                    || from.mt_priority != 0
                {
                    return malformed(555, [5, 5, 4], "unsupported MAIL parameter");
                }
                let body = if from.flags & MAIL_BODY_8BITMIME != 0 {
                    BodyType::EightBitMime
                } else {
                    BodyType::SevenBit
                };
                Command::Mail {
                    from: (!from.address.is_empty()).then(|| from.address.into_owned()),
                    size: (from.size > 0).then_some(from.size as u64),
                    body,
                }
            }
            Request::Rcpt { to } => {
                if !clean(&to.address) || to.address.is_empty() {
                    return malformed(501, [5, 1, 3], "bad recipient address syntax");
                }
                if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
                    return malformed(555, [5, 5, 4], "unsupported RCPT parameter");
                }
                Command::Rcpt {
                    to: to.address.into_owned(),
                }
            }
            Request::Data => Command::Data,
            Request::Rset => Command::Rset,
            Request::Noop { .. } => Command::Noop,
            Request::Quit => Command::Quit,
            other => Command::NotImplemented { name: other.name() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2033_example_commands() {
        assert_eq!(
            Command::parse(b"LHLO foo.edu\r\n"),
            Command::Lhlo {
                host: "foo.edu".into()
            }
        );
        assert_eq!(
            Command::parse(b"MAIL FROM:<chris@bar.com>\r\n"),
            Command::Mail {
                from: Some("chris@bar.com".into()),
                size: None,
                body: BodyType::SevenBit
            }
        );
        assert_eq!(
            Command::parse(b"RCPT TO:<pat@foo.edu>\r\n"),
            Command::Rcpt {
                to: "pat@foo.edu".into()
            }
        );
        assert_eq!(Command::parse(b"DATA\r\n"), Command::Data);
        assert_eq!(Command::parse(b"QUIT\r\n"), Command::Quit);
        assert_eq!(Command::parse(b"rset\r\n"), Command::Rset);
        assert_eq!(Command::parse(b"NOOP\r\n"), Command::Noop);
    }

    #[test]
    fn null_sender_and_lmtp_specifics() {
        assert_eq!(
            Command::parse(b"MAIL FROM:<>\r\n"),
            Command::Mail {
                from: None,
                size: None,
                body: BodyType::SevenBit
            }
        );
        assert_eq!(Command::parse(b"EHLO x\r\n"), Command::SmtpGreeting);
        assert_eq!(Command::parse(b"HELO x\r\n"), Command::SmtpGreeting);
        assert_eq!(
            Command::parse(b"VRFY bob\r\n"),
            Command::NotImplemented { name: "VRFY" }
        );
        assert_eq!(
            Command::parse(b"STARTTLS\r\n"),
            Command::NotImplemented { name: "STARTTLS" }
        );
        assert_eq!(Command::parse(b"XYZZY\r\n"), Command::Unknown);
    }

    #[test]
    fn unsupported_parameters_are_555() {
        for line in [
            &b"MAIL FROM:<a@b.c> BODY=BINARYMIME\r\n"[..],
            b"MAIL FROM:<a@b.c> SMTPUTF8\r\n",
            b"MAIL FROM:<a@b.c> RET=FULL\r\n",
            b"RCPT TO:<a@b.c> NOTIFY=NEVER\r\n",
            b"RCPT TO:<a@b.c> ORCPT=rfc822;a@b.c\r\n",
        ] {
            assert!(
                matches!(Command::parse(line), Command::Malformed { code: 555, .. }),
                "{:?} -> {:?}",
                String::from_utf8_lossy(line),
                Command::parse(line)
            );
        }
    }

    #[test]
    fn syntax_errors_are_501() {
        for line in [
            &b"MAIL FROM:a@b.c\r\n"[..],
            b"MAIL\r\n",
            b"RCPT TO:\r\n",
            b"RCPT TO:<>\r\n",
            b"LHLO\r\n",
            b"MAIL FROM:<a@b.c> SIZE=x\r\n",
        ] {
            assert!(
                matches!(Command::parse(line), Command::Malformed { code: 501, .. }),
                "{:?} -> {:?}",
                String::from_utf8_lossy(line),
                Command::parse(line)
            );
        }
    }
}
