//! `mailroomd`: the example Mailroom server and its admin commands.
//! See `examples/server/README.md` for the reference.

mod admin;
mod cli;
mod serve;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use mailroomd::config::Config;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

// The global allocator: jemalloc by default (see the crate docs of the
// library for the measurements); mimalloc or glibc's malloc on request.
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailroomd: error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_defaults()?,
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            init_logging(&config.log_level);
            match mailroomd::rlimit::raise_open_files() {
                Ok((before, after)) => {
                    tracing::info!(before, after, "open-file limit raised to the hard limit");
                }
                Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("mailroomd")
                .build()
                .context("starting the tokio runtime")?;
            runtime.block_on(serve::run(config))
        }
        Command::Migrate => {
            init_logging("info");
            let url = match (config.store.kind, &config.store.url) {
                (mailroomd::config::StoreKind::Postgres, Some(url)) => url.clone(),
                (kind, _) => anyhow::bail!(
                    "mailroomd migrate is for [store] backend = \"postgres\"; this config uses the {kind} store"
                ),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            let from = runtime.block_on(mailroom_store_postgres::PgStore::migrate(&url))?;
            let to = mailroom_store_postgres::schema::SCHEMA_VERSION;
            if from == to {
                println!("mailroomd: the database schema is at version {to}; nothing to do");
            } else {
                println!("mailroomd: migrated the database schema from version {from} to {to}");
            }
            Ok(())
        }
        Command::User(command) => {
            // Admin commands log only problems (e.g. a permissions warning).
            init_logging("warn");
            admin::user(
                &config,
                command,
                std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
            )
        }
        command @ (Command::Reconstruct { .. }
        | Command::Verify { .. }
        | Command::Quota(_)
        | Command::Domain(_)
        | Command::Archive(_)
        | Command::Billing(_)
        | Command::Replication(_)) => {
            init_logging("warn");
            let request = admin::request(command)?;
            admin::store_command(&config, &request, &mut std::io::stdout().lock())
        }
    }
}

/// Logs to stderr (stdout carries the lines scripts read). `RUST_LOG`, when
/// set, overrides `level`.
fn init_logging(level: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => EnvFilter::try_new(&env).unwrap_or_else(|e| {
            eprintln!("mailroomd: ignoring invalid RUST_LOG ({e}); using {level:?}");
            EnvFilter::new(level)
        }),
        _ => EnvFilter::new(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The error and its causes on one line, leaving out causes whose text the
/// message already contains (our errors print their source inline).
fn report(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
