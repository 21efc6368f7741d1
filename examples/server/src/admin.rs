//! The admin commands (`mailroomd user ...`). They work on the files
//! directly, under the users file's lock, so they are safe while the server
//! runs (it re-reads the users file when it changes).

use std::io::{Read, Write};

use anyhow::Context as _;
use mailroomd::config::Config;
use mailroomd::users::{self, UserDb};

use crate::cli::UserCommand;

/// Runs one `user` subcommand; `input` is stdin, `out` is stdout.
pub(crate) fn user(
    config: &Config,
    command: UserCommand,
    input: impl Read,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let path = &config.auth.users_file;
    match command {
        UserCommand::Add {
            user,
            password_stdin: _,
            roles,
        } => {
            // Check the name before asking for the password.
            users::canonical_name(&user)?;
            let password =
                users::read_password(input).context("reading the password from stdin")?;
            let hash = users::hash_password(&password)?;
            let name = UserDb::modify(path, |db| db.add(&user, hash, roles))?;
            writeln!(out, "user {name} added")?;
        }
        UserCommand::List => {
            let db = UserDb::load(path)?;
            for record in db.users() {
                if record.roles.is_empty() {
                    writeln!(out, "{}", record.name)?;
                } else {
                    let roles: Vec<&str> = record.roles.iter().map(|r| r.name()).collect();
                    writeln!(out, "{}\t{}", record.name, roles.join(","))?;
                }
            }
        }
        UserCommand::Del { user } => {
            let name = UserDb::modify(path, |db| db.remove(&user))?;
            writeln!(out, "user {name} deleted")?;
        }
        UserCommand::Passwd {
            user,
            password_stdin: _,
        } => {
            let name = users::canonical_name(&user)?;
            if UserDb::load(path)?.get(&name).is_none() {
                anyhow::bail!(users::UsersError::NoSuchUser(name));
            }
            let password =
                users::read_password(input).context("reading the password from stdin")?;
            let hash = users::hash_password(&password)?;
            let name = UserDb::modify(path, |db| db.set_password(&name, hash))?;
            writeln!(out, "password of {name} changed")?;
        }
    }
    out.flush()?;
    Ok(())
}
