//! The command line (clap derive).
//!
//! Extension points: a new top-level command is a variant of [`Command`]
//! (with its own `#[command(subcommand)]` enum if it has verbs, like
//! [`UserCommand`]) and an arm in `main::run`. Planned: `quota set/show`,
//! `reconstruct USER[/MAILBOX]`.

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
    /// Manage the users file (works while the server runs).
    #[command(subcommand)]
    User(UserCommand),
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
