//! The admin commands.
//!
//! - `user ...` work on the users directly: the users file under its lock
//!   (a running server re-reads it when it changes), or the PostgreSQL
//!   users table (`[auth] backend = "postgres"`), which every frontend reads
//!   at each login; so they are safe, and take effect at once, whether a
//!   server runs or not.
//! - `reconstruct`, `verify` and `quota ...` need the store. They send their
//!   request to the running server's admin socket when one answers, and
//!   otherwise open the store themselves (the CRC store admits one process
//!   at a time; the PostgreSQL store any number, so its commands also work
//!   with no frontend running). Either way the same [`mailroomd::control::execute`] runs,
//!   and the first output line says which path was taken.

use std::io::{Read, Write};

use anyhow::Context as _;
use mailroomd::config::{Config, StoreKind};
use mailroomd::control::{Client, Reply, Request, Target};
use mailroomd::store;
use mailroomd::users::{self, Directory};

use crate::cli::{
    ArchiveCommand, BillingCommand, Command, DomainCommand, OverrideCommand, QuotaCommand,
    ReplicationCommand, UserCommand,
};

/// Turns a store command of the command line into a request.
pub(crate) fn request(command: Command) -> anyhow::Result<Request> {
    Ok(match command {
        Command::Reconstruct { target } => Request::Reconstruct(Target::parse(&target)?),
        Command::Verify { target } => Request::Verify(Target::parse(&target)?),
        Command::Quota(QuotaCommand::Show { user, actor }) => as_actor(
            actor,
            Request::QuotaShow {
                user: users::canonical_name(&user)?,
            },
        )?,
        Command::Quota(QuotaCommand::Set {
            user,
            storage,
            messages,
            actor,
        }) => as_actor(
            actor,
            Request::QuotaSet {
                user: users::canonical_name(&user)?,
                storage_kib: storage.0,
                messages: messages.and_then(|m| m.0),
            },
        )?,
        Command::Domain(DomainCommand::List) => Request::DomainList,
        Command::Archive(ArchiveCommand::Enable { user, actor }) => Request::ArchiveSet {
            actor: actor.map(|a| users::canonical_name(&a)).transpose()?,
            user: users::canonical_name(&user)?,
            enabled: true,
        },
        Command::Archive(ArchiveCommand::Disable { user, actor }) => Request::ArchiveSet {
            actor: actor.map(|a| users::canonical_name(&a)).transpose()?,
            user: users::canonical_name(&user)?,
            enabled: false,
        },
        Command::Archive(ArchiveCommand::Status { user }) => Request::ArchiveStatus {
            user: users::canonical_name(&user)?,
        },
        Command::Archive(ArchiveCommand::Override(OverrideCommand::Grant {
            mailbox,
            reason,
            actor,
        })) => Request::ArchiveOverride {
            actor: actor.map(|a| users::canonical_name(&a)).transpose()?,
            mailbox: Target::parse(&mailbox)?,
            reason: Some(reason),
        },
        Command::Archive(ArchiveCommand::Override(OverrideCommand::Revoke {
            mailbox,
            reason: _,
            actor,
        })) => Request::ArchiveOverride {
            actor: actor.map(|a| users::canonical_name(&a)).transpose()?,
            mailbox: Target::parse(&mailbox)?,
            reason: None,
        },
        Command::Billing(BillingCommand::Enable { domain }) => Request::BillingSet {
            domain: domain.to_ascii_lowercase(),
            enabled: true,
        },
        Command::Billing(BillingCommand::Disable { domain }) => Request::BillingSet {
            domain: domain.to_ascii_lowercase(),
            enabled: false,
        },
        Command::Billing(BillingCommand::Report { month }) => Request::BillingReport { month },
        Command::Replication(ReplicationCommand::Status) => Request::ReplicationStatus,
        Command::Replication(ReplicationCommand::Promote) => Request::ReplicationPromote,
        Command::Replication(ReplicationCommand::Verify { user }) => Request::ReplicationVerify {
            user: users::canonical_name(&user)?,
        },
        Command::Serve | Command::Migrate | Command::User(_) => {
            anyhow::bail!("not a store command")
        }
    })
}

/// `request`, done as `actor` when one is named (`--as`).
fn as_actor(actor: Option<String>, request: Request) -> anyhow::Result<Request> {
    Ok(match actor {
        Some(a) => Request::As {
            actor: users::canonical_name(&a)?,
            request: Box::new(request),
        },
        None => request,
    })
}

/// Runs a store command through the running server, or on the store
/// directly when no server runs. Prints the output lines to `out`; a
/// failed request is an error (after its lines are printed).
pub(crate) fn store_command(
    config: &Config,
    request: &Request,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let socket = &config.admin_socket;
    let reply = match Client::connect(socket)? {
        Some(mut client) => {
            writeln!(
                out,
                "mailroomd: through the running server (admin socket {})",
                socket.display()
            )?;
            out.flush()?;
            client.call(request)?
        }
        None => offline(config, request, out)?,
    };
    for line in &reply.lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    reply.outcome.map_err(anyhow::Error::msg)
}

/// Opens the store in this process and runs the request on it (a
/// replication request needs no store: see
/// [`mailroomd::replication::execute_offline`]).
fn offline(config: &Config, request: &Request, out: &mut impl Write) -> anyhow::Result<Reply> {
    let socket = config.admin_socket.display();
    if matches!(
        request,
        Request::ReplicationStatus
            | Request::ReplicationPromote
            | Request::ReplicationVerify { .. }
    ) {
        let Some(settings) = &config.replication else {
            anyhow::bail!("replication is not configured (no [replication] table in the config)");
        };
        writeln!(
            out,
            "mailroomd: no server running (nothing answers on {socket})"
        )?;
        out.flush()?;
        // On PostgreSQL the promotion is the database's (shared by its
        // frontends), elsewhere the data directory's.
        let database = match config.store.kind {
            StoreKind::Postgres => config.store.url.as_deref(),
            StoreKind::Crc | StoreKind::Memory => None,
        };
        let record = mailroomd::replication::Promotion::new(settings, database)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        return runtime
            .block_on(mailroomd::replication::execute_offline(
                settings, &record, request,
            ))
            .ok_or_else(|| anyhow::anyhow!("not a replication request"));
    }
    match config.store.kind {
        StoreKind::Memory => anyhow::bail!(
            "no server is running (nothing answers on {socket}), and the memory store exists \
             only inside a running server: start `mailroomd serve` first"
        ),
        StoreKind::Postgres => return offline_postgres(config, request, out),
        StoreKind::Crc => {}
    }
    let path = &config.store.path;
    if !path.is_dir() {
        anyhow::bail!(
            "no server is running (nothing answers on {socket}) and there is no store in {} \
             (has the server ever run with this config?)",
            path.display()
        );
    }
    let store = store::open_store(config)?;
    writeln!(
        out,
        "mailroomd: no server running; opened the {} store in {} directly",
        store.kind(),
        path.display()
    )?;
    out.flush()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        // the billing plugin, for the archive and billing commands
        let mut plugins = mailroomd::plugins::load(&config.plugins).await?;
        // a report sends what a server left queued; a refused event is queued
        plugins.with_billing_outbox(&config.data_dir);
        let archive = mailroomd::control::ArchiveSettings {
            billing: plugins.billing.clone(),
            price_note: mailroomd::archive::price_note(&config.plugins),
        };
        let users = Directory::open(&config.auth, Some(&store)).await?;
        Ok(mailroomd::control::execute_with(&store, &users, &archive, request).await)
    })
}

/// [`offline`] for the PostgreSQL store: any number of processes may work
/// on the database, so the command connects and runs here.
fn offline_postgres(
    config: &Config,
    request: &Request,
    out: &mut impl Write,
) -> anyhow::Result<Reply> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let store = store::open_store_async(config).await?;
        writeln!(
            out,
            "mailroomd: no server running here (nothing answers on {}); working on the postgres database directly",
            config.admin_socket.display()
        )?;
        out.flush()?;
        let mut plugins = mailroomd::plugins::load(&config.plugins).await?;
        plugins.with_billing_outbox(&config.data_dir);
        let archive = mailroomd::control::ArchiveSettings {
            billing: plugins.billing.clone(),
            price_note: mailroomd::archive::price_note(&config.plugins),
        };
        let users = Directory::open(&config.auth, Some(&store)).await?;
        Ok(mailroomd::control::execute_with(&store, &users, &archive, request).await)
    })
}

/// Runs one `user` subcommand; `input` is stdin, `out` is stdout.
pub(crate) fn user(
    config: &Config,
    command: UserCommand,
    input: impl Read,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let path = &config.auth.users_file;
    if config
        .plugins
        .iter()
        .any(|p| p.kind == mailroom_plugin::PluginKind::Auth)
    {
        eprintln!(
            "mailroomd: note: an auth plugin is configured ([[plugin]] kind = \"auth\"): \
             logins and deliveries do not use the users file {}",
            path.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(user_on(config, command, input, out))
}

async fn user_on(
    config: &Config,
    command: UserCommand,
    input: impl Read,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // Check the name before asking for the password or connecting.
    match &command {
        UserCommand::Add { user, .. }
        | UserCommand::Del { user }
        | UserCommand::Passwd { user, .. } => {
            users::canonical_name(user)?;
        }
        UserCommand::List => {}
    }
    let directory = Directory::open(&config.auth, None).await?;
    match command {
        UserCommand::Add {
            user,
            password_stdin: _,
            roles,
        } => {
            let password =
                users::read_password(input).context("reading the password from stdin")?;
            let hash = users::hash_password(&password)?;
            let name = directory.add(&user, hash, roles).await?;
            writeln!(out, "user {name} added")?;
        }
        UserCommand::List => {
            for record in directory.list().await? {
                if record.roles.is_empty() {
                    writeln!(out, "{}", record.name)?;
                } else {
                    let roles: Vec<&str> = record.roles.iter().map(|r| r.name()).collect();
                    writeln!(out, "{}\t{}", record.name, roles.join(","))?;
                }
            }
        }
        UserCommand::Del { user } => {
            let name = directory.remove(&user).await?;
            writeln!(out, "user {name} deleted")?;
        }
        UserCommand::Passwd {
            user,
            password_stdin: _,
        } => {
            let name = users::canonical_name(&user)?;
            if directory.get(&name).await?.is_none() {
                anyhow::bail!(users::UsersError::NoSuchUser(name));
            }
            let password =
                users::read_password(input).context("reading the password from stdin")?;
            let hash = users::hash_password(&password)?;
            let name = directory.set_password(&name, hash).await?;
            writeln!(out, "password of {name} changed")?;
        }
    }
    out.flush()?;
    Ok(())
}
