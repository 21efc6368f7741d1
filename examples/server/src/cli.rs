//! The command line (clap derive).
//!
//! Extension points: a new top-level command is a variant of [`Command`]
//! (with its own `#[command(subcommand)]` enum if it has verbs, like
//! [`UserCommand`]) and an arm in `main::run`. Commands that need the
//! store become a [`mailroomd::control::Request`] (see `admin::store_command`),
//! so they work both through a running server's admin socket and offline.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mailroomd::users::Role;

/// mailroomd: the example Mailroom mail server (IMAP, IMAPS) and its admin commands.
///
/// With no config file, mailroomd runs in demo mode: data in ./data, IMAP on
/// 127.0.0.1:1143, IMAPS on 127.0.0.1:1993, and a demo user whose password is
/// printed once on first start.
#[derive(Debug, Parser)]
#[command(name = "mailroomd", version)]
pub(crate) struct Cli {
    /// The TOML config file (see examples/server/README.md). Without it the
    /// embedded defaults are used.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// What to do; `serve` when left out.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server until SIGTERM or SIGINT (the default command).
    Serve,
    /// Bring the PostgreSQL store's schema to this build's version
    /// (`[store] backend = "postgres"`); `serve` also does it at start.
    Migrate,
    /// Manage the users: the users file, or the PostgreSQL users table with
    /// `[auth] backend = "postgres"` (works while servers run).
    #[command(subcommand)]
    User(UserCommand),
    /// Rebuild a user's mailboxes (or one) from the message files.
    ///
    /// Rebuilds index and cache from the message files, keeping UIDs and
    /// flags from every sound record; prints a report per mailbox and the
    /// recomputed quota. Goes through the running server's admin socket, or
    /// opens the store directly when no server runs.
    Reconstruct {
        /// USER@DOMAIN, or USER@DOMAIN/MAILBOX for one mailbox.
        #[arg(value_name = "USER[/MAILBOX]")]
        target: String,
    },
    /// Check a user's mailboxes (or one) for corruption.
    ///
    /// Checks header and record CRCs, every message file's size and SHA-1,
    /// and every cache record. Exits 1 if any mailbox fails. Goes through
    /// the running server's admin socket, or opens the store directly.
    Verify {
        /// USER@DOMAIN, or USER@DOMAIN/MAILBOX for one mailbox.
        #[arg(value_name = "USER[/MAILBOX]")]
        target: String,
    },
    /// Show or set quota limits (works while the server runs).
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Domains (businesses).
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Archive journaling of users (works while the server runs).
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Archive billing of domains (needs a billing plugin).
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Replication ([replication]): status, promotion, verification.
    #[command(subcommand)]
    Replication(ReplicationCommand),
}

/// `mailroomd replication ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ReplicationCommand {
    /// Where replication stands, one `key value` per line (role, peer,
    /// connected, mode, pending_changes, lag, last_verify, repaired,
    /// split_brain_merges, ...).
    Status,
    /// Make this replica the primary: it serves clients from now on, and
    /// after a restart (recorded in the data directory; with the postgres
    /// store in the database, so every frontend of it serves).
    Promote,
    /// Compare a user's mailboxes with the replica now and repair what
    /// differs; one `MAILBOX ok|repaired` line per mailbox (on the primary).
    Verify {
        /// USER@DOMAIN.
        user: String,
    },
}

/// `mailroomd domain ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
    /// One line per domain of the users file: `domain D users N archived M billing on|off`.
    List,
}

/// `mailroomd archive ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ArchiveCommand {
    /// Switch archiving on for a user.
    Enable {
        /// USER@DOMAIN.
        user: String,
        /// Act as this user (a domain admin may switch its own domain's users only);
        /// without it, as the operator (a server admin).
        #[arg(long = "as", value_name = "ADMIN")]
        actor: Option<String>,
    },
    /// Switch archiving off for a user.
    Disable {
        /// USER@DOMAIN.
        user: String,
        /// As for `enable`.
        #[arg(long = "as", value_name = "ADMIN")]
        actor: Option<String>,
    },
    /// Whether archiving is on for a user.
    Status {
        /// USER@DOMAIN.
        user: String,
    },
    /// Retention overrides on archive mailboxes (server admins only).
    #[command(subcommand)]
    Override(OverrideCommand),
}

/// `mailroomd archive override ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OverrideCommand {
    /// Allow expunge, delete and rename on one archive mailbox.
    Grant {
        /// archive@DOMAIN/MAILBOX (e.g. archive@x.org/alice/2026-12/in).
        mailbox: String,
        /// Why (logged with who granted it).
        #[arg(long)]
        reason: String,
        /// Act as this user (must be a server admin); default: the operator.
        #[arg(long = "as", value_name = "ADMIN")]
        actor: Option<String>,
    },
    /// Withdraw an override.
    Revoke {
        /// archive@DOMAIN/MAILBOX.
        mailbox: String,
        /// Logged with the revocation.
        #[arg(long)]
        reason: Option<String>,
        /// As for `grant`.
        #[arg(long = "as", value_name = "ADMIN")]
        actor: Option<String>,
    },
}

/// `mailroomd billing ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BillingCommand {
    /// Switch billing on for a domain: each archived user gets a notice once.
    Enable {
        /// DOMAIN.
        domain: String,
    },
    /// Switch billing off for a domain.
    Disable {
        /// DOMAIN.
        domain: String,
    },
    /// The billing plugin's report of a month.
    Report {
        /// YYYY-MM (default: the current month, UTC).
        #[arg(long)]
        month: Option<String>,
    },
}

/// `mailroomd quota ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum QuotaCommand {
    /// Set a user's limits. Both are set: a limit left out is unlimited.
    Set {
        /// USER@DOMAIN.
        user: String,
        /// The STORAGE limit in KiB, or `unlimited`.
        #[arg(long, value_name = "KIB", value_parser = parse_limit)]
        storage: Limit,
        /// The MESSAGE limit (number of messages), or `unlimited`.
        #[arg(long, value_name = "N", value_parser = parse_limit)]
        messages: Option<Limit>,
        /// Act as this user: a domain admin may set its own domain's users only.
        #[arg(long = "as", value_name = "ADMIN")]
        actor: Option<String>,
    },
    /// Show a user's usage and limits, one `key value` per line.
    Show {
        /// USER@DOMAIN.
        user: String,
        /// Act as this user: a domain admin may see its own domain's users only.
        #[arg(long = "as", value_name = "ADMIN")]
        actor: Option<String>,
    },
}

/// A quota limit on the command line: a number, or `None` for `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit(pub(crate) Option<u64>);

fn parse_limit(text: &str) -> Result<Limit, String> {
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(Limit(None));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number or `unlimited`".into());
    }
    text.parse()
        .map(|n| Limit(Some(n)))
        .map_err(|_| "number too large".into())
}

/// `mailroomd user ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user; the password is read from the first line of stdin.
    Add {
        /// USER@DOMAIN (the domain is case-insensitive).
        user: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Give the user an administrative role (repeatable).
        #[arg(long = "role", value_enum, value_name = "ROLE")]
        roles: Vec<Role>,
    },
    /// List users, one per line: name, then a tab and roles if any.
    List,
    /// Delete a user (their mailboxes are left in the store).
    Del {
        /// USER@DOMAIN.
        user: String,
    },
    /// Change a user's password, read from the first line of stdin.
    Passwd {
        /// USER@DOMAIN.
        user: String,
        /// Read the password from stdin (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_documented_forms() {
        let c = Cli::try_parse_from(["mailroomd"]).unwrap();
        assert!(c.command.is_none() && c.config.is_none());
        let c = Cli::try_parse_from(["mailroomd", "--config", "m.toml", "serve"]).unwrap();
        assert!(matches!(c.command, Some(Command::Serve)));
        let c = Cli::try_parse_from([
            "mailroomd",
            "-c",
            "m.toml",
            "user",
            "add",
            "a@b.c",
            "--password-stdin",
            "--role",
            "domain-admin",
            "--role",
            "server-admin",
        ])
        .unwrap();
        match c.command {
            Some(Command::User(UserCommand::Add { user, roles, .. })) => {
                assert_eq!(user, "a@b.c");
                assert_eq!(roles, vec![Role::DomainAdmin, Role::ServerAdmin]);
            }
            other => panic!("{other:?}"),
        }
        // --config after the subcommand works too (global flag)
        let c = Cli::try_parse_from(["mailroomd", "user", "list", "--config", "x.toml"]).unwrap();
        assert_eq!(c.config.unwrap(), PathBuf::from("x.toml"));
        let c = Cli::try_parse_from(["mailroomd", "reconstruct", "a@b.c/INBOX"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Reconstruct { target }) if target == "a@b.c/INBOX")
        );
        let c = Cli::try_parse_from(["mailroomd", "replication", "verify", "a@b.c"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Replication(ReplicationCommand::Verify { user })) if user == "a@b.c"
        ));
        let c = Cli::try_parse_from(["mailroomd", "replication", "promote"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Replication(ReplicationCommand::Promote))
        ));
        let c = Cli::try_parse_from(["mailroomd", "verify", "a@b.c"]).unwrap();
        assert!(matches!(c.command, Some(Command::Verify { .. })));
        let c = Cli::try_parse_from([
            "mailroomd",
            "quota",
            "set",
            "a@b.c",
            "--storage",
            "1024",
            "--messages",
            "10",
        ])
        .unwrap();
        match c.command {
            Some(Command::Quota(QuotaCommand::Set {
                user,
                storage,
                messages,
                actor: None,
            })) => {
                assert_eq!(user, "a@b.c");
                assert_eq!(storage, Limit(Some(1024)));
                assert_eq!(messages, Some(Limit(Some(10))));
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from([
            "mailroomd",
            "quota",
            "set",
            "a@b.c",
            "--storage",
            "unlimited",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Quota(QuotaCommand::Set {
                storage: Limit(None),
                messages: None,
                ..
            }))
        ));
        assert!(Cli::try_parse_from(["mailroomd", "quota", "set", "a@b.c"]).is_err());
        assert!(
            Cli::try_parse_from(["mailroomd", "quota", "set", "a@b.c", "--storage", "-5"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["mailroomd", "quota", "set", "a@b.c", "--storage", "1k"]).is_err()
        );
        let c = Cli::try_parse_from(["mailroomd", "quota", "show", "a@b.c"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Quota(QuotaCommand::Show { .. }))
        ));
        // the password never comes from argv
        assert!(Cli::try_parse_from(["mailroomd", "user", "add", "a@b.c"]).is_err());
        assert!(Cli::try_parse_from(["mailroomd", "user", "passwd", "a@b.c"]).is_err());
        assert!(
            Cli::try_parse_from([
                "mailroomd",
                "user",
                "add",
                "a@b.c",
                "--password-stdin",
                "--role",
                "god"
            ])
            .is_err()
        );
    }
}
