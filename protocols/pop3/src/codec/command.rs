//! POP3 commands (RFC 1939, 2449, 2595, 5034) and their grammar.

/// A message number as the client wrote it (1-based; 0 never names a message).
pub type MessageNumber = u32;

/// One client request, as the session state machine receives it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `CAPA` (RFC 2449).
    Capa,
    /// `USER name`.
    User(String),
    /// `PASS password` (the rest of the line, spaces included).
    Pass(String),
    /// `AUTH [mechanism [initial-response]]` (RFC 5034; bare `AUTH` lists mechanisms).
    Auth {
        /// The mechanism, upper-cased; `None` for a bare `AUTH`.
        mechanism: Option<String>,
        /// The base64 initial response (`=` stands for an empty one).
        initial_response: Option<String>,
    },
    /// `APOP name digest` (RFC 1939 §7): the MD5 digest of the greeting's
    /// timestamp followed by the user's secret, so the secret itself never
    /// crosses the wire.
    Apop {
        /// The user name (at most 255 octets).
        user: String,
        /// The digest, from its 32 hex digits (either case accepted).
        digest: [u8; 16],
    },
    /// A line sent in answer to a `+ ` challenge during AUTH (`*` cancels).
    SaslResponse(String),
    /// `STLS` (RFC 2595).
    Stls,
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<MessageNumber>),
    /// `RETR msg`.
    Retr(MessageNumber),
    /// `DELE msg`.
    Dele(MessageNumber),
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `TOP msg n`.
    Top {
        /// The message.
        msg: MessageNumber,
        /// How many body lines to send after the header.
        lines: u32,
    },
    /// `UIDL [msg]`.
    Uidl(Option<MessageNumber>),
    /// A command the server does not know (`XTND`, `LAST`, anything else).
    Unknown(String),
    /// A line that could not be parsed; answered `-ERR reason`.
    Malformed {
        /// Why, safe to show to the client.
        reason: &'static str,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never print a password or SASL data.
            Command::Pass(_) => f.write_str("Pass(<redacted>)"),
            Command::SaslResponse(_) => f.write_str("SaslResponse(<redacted>)"),
            Command::Apop { user, .. } => f
                .debug_struct("Apop")
                .field("user", user)
                .field("digest", &"<redacted>")
                .finish(),
            Command::Auth { mechanism, .. } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field("initial_response", &"<redacted>")
                .finish(),
            Command::Capa => f.write_str("Capa"),
            Command::User(u) => f.debug_tuple("User").field(u).finish(),
            Command::Stls => f.write_str("Stls"),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Quit => f.write_str("Quit"),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            Command::Unknown(k) => f.debug_tuple("Unknown").field(k).finish(),
            Command::Malformed { reason } => {
                f.debug_struct("Malformed").field("reason", reason).finish()
            }
        }
    }
}

impl Command {
    /// The command's keyword, for logs.
    pub fn name(&self) -> &str {
        match self {
            Command::Capa => "CAPA",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Apop { .. } => "APOP",
            Command::SaslResponse(_) => "(sasl)",
            Command::Stls => "STLS",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::Top { .. } => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Unknown(k) => k,
            Command::Malformed { .. } => "(malformed)",
        }
    }

    /// Parses one command line, without its line ending.
    ///
    /// ```
    /// use mailroom_pop3::codec::Command;
    /// assert_eq!(Command::parse(b"top 3 10"), Command::Top { msg: 3, lines: 10 });
    /// assert_eq!(Command::parse(b"UIDL"), Command::Uidl(None));
    /// assert!(matches!(Command::parse(b"RETR x"), Command::Malformed { .. }));
    /// ```
    pub fn parse(line: &[u8]) -> Command {
        let Ok(line) = std::str::from_utf8(line) else {
            return Command::Malformed {
                reason: "command line is not valid UTF-8",
            };
        };
        if line.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Command::Malformed {
                reason: "control character in command line",
            };
        }
        let (keyword, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, Some(r)),
            None => (line, None),
        };
        if keyword.is_empty() {
            return Command::Malformed {
                reason: "empty command",
            };
        }
        if keyword.len() > 4 || !keyword.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Command::Unknown(truncate_keyword(keyword));
        }
        let keyword = keyword.to_ascii_uppercase();
        let args: Vec<&str> = rest
            .map(|r| r.split_ascii_whitespace().collect())
            .unwrap_or_default();
        match keyword.as_str() {
            "CAPA" => no_args(&args, Command::Capa),
            "STLS" => no_args(&args, Command::Stls),
            "STAT" => no_args(&args, Command::Stat),
            "NOOP" => no_args(&args, Command::Noop),
            "RSET" => no_args(&args, Command::Rset),
            "QUIT" => no_args(&args, Command::Quit),
            "USER" => match rest.map(str::trim) {
                Some(name) if !name.is_empty() && name.len() <= 255 => {
                    Command::User(name.to_owned())
                }
                _ => Command::Malformed {
                    reason: "USER needs a user name",
                },
            },
            "PASS" => match rest {
                Some(pass) if !pass.is_empty() => Command::Pass(pass.to_owned()),
                _ => Command::Malformed {
                    reason: "PASS needs a password",
                },
            },
            "AUTH" => match args.as_slice() {
                [] => Command::Auth {
                    mechanism: None,
                    initial_response: None,
                },
                [m] => Command::Auth {
                    mechanism: Some(m.to_ascii_uppercase()),
                    initial_response: None,
                },
                [m, ir] => Command::Auth {
                    mechanism: Some(m.to_ascii_uppercase()),
                    initial_response: Some((*ir).to_owned()),
                },
                _ => Command::Malformed {
                    reason: "AUTH takes a mechanism and an optional initial response",
                },
            },
            "APOP" => apop(&args),
            "LIST" => optional_number(&args).map_or_else(|r| r, Command::List),
            "UIDL" => optional_number(&args).map_or_else(|r| r, Command::Uidl),
            "RETR" => one_number(&args).map_or_else(|r| r, Command::Retr),
            "DELE" => one_number(&args).map_or_else(|r| r, Command::Dele),
            "TOP" => match args.as_slice() {
                [m, n] => match (number(m), lines(n)) {
                    (Some(msg), Some(lines)) => Command::Top { msg, lines },
                    _ => Command::Malformed {
                        reason: "TOP needs a message number and a line count",
                    },
                },
                _ => Command::Malformed {
                    reason: "TOP needs a message number and a line count",
                },
            },
            _ => Command::Unknown(keyword),
        }
    }
}

/// The longest APOP user name accepted, as for `USER`.
const MAX_APOP_USER: usize = 255;

fn apop(args: &[&str]) -> Command {
    let [user, digest] = args else {
        return Command::Malformed {
            reason: "APOP needs a user name and a digest",
        };
    };
    if user.len() > MAX_APOP_USER {
        return Command::Malformed {
            reason: "APOP user name too long (at most 255 octets)",
        };
    }
    match hex_digest(digest) {
        Some(digest) => Command::Apop {
            user: (*user).to_owned(),
            digest,
        },
        None => Command::Malformed {
            reason: "APOP digest must be exactly 32 hex digits",
        },
    }
}

/// 32 hex digits to 16 bytes.
fn hex_digest(s: &str) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

fn truncate_keyword(k: &str) -> String {
    k.chars().take(16).collect()
}

fn no_args(args: &[&str], cmd: Command) -> Command {
    if args.is_empty() {
        cmd
    } else {
        Command::Malformed {
            reason: "this command takes no arguments",
        }
    }
}

fn number(s: &str) -> Option<MessageNumber> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn lines(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A huge line count means "the whole body".
    Some(s.parse().unwrap_or(u32::MAX))
}

fn optional_number(args: &[&str]) -> Result<Option<MessageNumber>, Command> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some).ok_or(Command::Malformed {
            reason: "invalid message number",
        }),
        _ => Err(Command::Malformed {
            reason: "too many arguments",
        }),
    }
}

fn one_number(args: &[&str]) -> Result<MessageNumber, Command> {
    match args {
        [n] => number(n).ok_or(Command::Malformed {
            reason: "invalid message number",
        }),
        _ => Err(Command::Malformed {
            reason: "a message number is required",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1939_examples() {
        assert_eq!(Command::parse(b"USER mrose"), Command::User("mrose".into()));
        assert_eq!(
            Command::parse(b"PASS secret"),
            Command::Pass("secret".into())
        );
        assert_eq!(Command::parse(b"STAT"), Command::Stat);
        assert_eq!(Command::parse(b"LIST"), Command::List(None));
        assert_eq!(Command::parse(b"LIST 2"), Command::List(Some(2)));
        assert_eq!(Command::parse(b"RETR 1"), Command::Retr(1));
        assert_eq!(Command::parse(b"DELE 1"), Command::Dele(1));
        assert_eq!(Command::parse(b"NOOP"), Command::Noop);
        assert_eq!(Command::parse(b"RSET"), Command::Rset);
        assert_eq!(Command::parse(b"QUIT"), Command::Quit);
        assert_eq!(
            Command::parse(b"TOP 1 10"),
            Command::Top { msg: 1, lines: 10 }
        );
        assert_eq!(Command::parse(b"UIDL 2"), Command::Uidl(Some(2)));
        assert_eq!(
            Command::parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Command::Apop {
                user: "mrose".into(),
                digest: [
                    0xc4, 0xc9, 0x33, 0x4b, 0xac, 0x56, 0x0e, 0xcc, 0x97, 0x9e, 0x58, 0x00, 0x1b,
                    0x3e, 0x22, 0xfb
                ],
            }
        );
    }

    #[test]
    fn apop_arguments_are_bounded_and_checked() {
        let upper = Command::parse(b"apop mrose C4C9334BAC560ECC979E58001B3E22FB");
        assert_eq!(
            upper,
            Command::parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb")
        );
        assert!(!format!("{upper:?}").contains("c4") && !format!("{upper:?}").contains("C4"));
        let long_user = format!("APOP {} c4c9334bac560ecc979e58001b3e22fb", "u".repeat(256));
        let just_fits = format!("APOP {} c4c9334bac560ecc979e58001b3e22fb", "u".repeat(255));
        assert!(matches!(
            Command::parse(just_fits.as_bytes()),
            Command::Apop { .. }
        ));
        for (line, reason) in [
            (&b"APOP"[..], "APOP needs a user name and a digest"),
            (b"APOP mrose", "APOP needs a user name and a digest"),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb extra",
                "APOP needs a user name and a digest",
            ),
            (
                long_user.as_bytes(),
                "APOP user name too long (at most 255 octets)",
            ),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22f",
                "APOP digest must be exactly 32 hex digits",
            ),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fbb",
                "APOP digest must be exactly 32 hex digits",
            ),
            (
                b"APOP mrose g4c9334bac560ecc979e58001b3e22fb",
                "APOP digest must be exactly 32 hex digits",
            ),
            (
                b"APOP mrose +4c9334bac560ecc979e58001b3e22fb",
                "APOP digest must be exactly 32 hex digits",
            ),
        ] {
            assert_eq!(
                Command::parse(line),
                Command::Malformed { reason },
                "{line:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn apop_round_trips_and_anything_after_apop_is_answered(
            user in "[!-~]{1,255}",
            digest in proptest::array::uniform16(proptest::prelude::any::<u8>()),
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            let line = format!("APOP {user} {hex}");
            proptest::prop_assert_eq!(Command::parse(line.as_bytes()), Command::Apop { user, digest });
            let mut line = b"APOP ".to_vec();
            line.extend_from_slice(&junk);
            let parsed = Command::parse(&line);
            proptest::prop_assert!(
                matches!(parsed, Command::Apop { .. } | Command::Malformed { .. }),
                "{:?}",
                parsed
            );
        }
    }

    #[test]
    fn keywords_are_case_insensitive_and_passwords_keep_spaces() {
        assert_eq!(Command::parse(b"capa"), Command::Capa);
        assert_eq!(Command::parse(b"Stls"), Command::Stls);
        assert_eq!(
            Command::parse(b"PASS two words "),
            Command::Pass("two words ".into())
        );
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            Command::parse(b"AUTH"),
            Command::Auth {
                mechanism: None,
                initial_response: None
            }
        );
        assert_eq!(
            Command::parse(b"AUTH plain AGFsaWNlAHNlY3JldA=="),
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("AGFsaWNlAHNlY3JldA==".into())
            }
        );
        assert!(
            !format!("{:?}", Command::parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==")).contains("AGF")
        );
        assert!(!format!("{:?}", Command::parse(b"PASS hunter2")).contains("hunter2"));
    }

    #[test]
    fn bad_syntax_is_malformed() {
        for line in [
            &b"RETR"[..],
            b"RETR 1 2",
            b"RETR -1",
            b"RETR 99999999999",
            b"LIST x",
            b"TOP 1",
            b"TOP 1 -1",
            b"STAT 1",
            b"USER",
            b"PASS",
            b"",
            b"\xff\xfe",
            b"NOOP\x00",
        ] {
            assert!(
                matches!(Command::parse(line), Command::Malformed { .. }),
                "{line:?}"
            );
        }
        assert_eq!(Command::parse(b"XYZZY"), Command::Unknown("XYZZY".into()));
    }

    #[test]
    fn huge_top_count_means_everything() {
        assert_eq!(
            Command::parse(b"TOP 1 99999999999999"),
            Command::Top {
                msg: 1,
                lines: u32::MAX
            }
        );
    }
}
