//! The command line: one `clap` derive for every subcommand.
//!
//! Each benchmark module owns its `Options` (a `#[derive(clap::Args)]`
//! struct) and a `main(Options)`; this module only lists the subcommands
//! and holds what several of them share: [`Only`] (`--only
//! mailroomd|dovecot`), [`Rounds`] (`--rounds`) and the value parsers [`at_least_one`] and
//! [`seconds`]. `clap` is the workspace's (mailroomd's admin commands use
//! it), so each subcommand gets its own `--help` and a usage line on a bad
//! argument without a hand-written loop per module.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// `mailroom-bench [imap] [OPTIONS]` or `mailroom-bench SUBCOMMAND [OPTIONS]`.
#[derive(Parser)]
#[command(
    name = "mailroom-bench",
    about = "mailroomd next to Dovecot on the same work, printed as a table",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Bench>,
    /// With no subcommand: the IMAP benchmark's options.
    #[command(flatten)]
    pub(crate) imap: crate::Options,
}

/// The benchmarks.
#[derive(Subcommand)]
pub(crate) enum Bench {
    /// IMAP work (the default): SELECT + FETCH FLAGS, ENVELOPE, APPEND, reconstruct, SORT/THREAD.
    Imap(crate::Options),
    /// LMTP delivery, messages per second, fsync on.
    Lmtp(crate::lmtp::Options),
    /// mailroomd's memory against the accounts it has seen and the connections it holds.
    Accounts(crate::accounts::Options),
    /// IDLE connections: push latency of a delivery and CPU while idle.
    Connections(crate::connections::Options),
    /// Many clients on shared mailboxes, every response checked against a model.
    Stress(crate::stress::Options),
    /// FETCH BODY.PEEK[] with and without COMPRESS=DEFLATE.
    Compress(crate::compress::Options),
    /// Only the SORT and THREAD rows of the IMAP benchmark.
    Sort(crate::sort::Options),
    /// Initial sync, catch-up and lag of replication, next to doveadm backup.
    Replication(crate::replication::Options),
}

/// `--only mailroomd|dovecot`: run one side alone (both by default).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Only {
    /// Run only this server.
    #[arg(long = "only", value_name = "SERVER", value_parser = ["mailroomd", "dovecot"])]
    only: Option<String>,
}

impl Only {
    /// Whether mailroomd is measured.
    pub(crate) fn mailroomd(&self) -> bool {
        self.only.as_deref() != Some("dovecot")
    }

    /// Whether Dovecot is measured.
    pub(crate) fn dovecot(&self) -> bool {
        self.only.as_deref() != Some("mailroomd")
    }
}

/// `--rounds N`: timed rounds, the median reported (5 by default).
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct Rounds {
    /// Timed rounds (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    pub(crate) rounds: usize,
}

/// A count where 0 means 1.
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map(|n| n.max(1))
        .map_err(|e| format!("{s}: {e}"))
}

/// Seconds, fractions allowed.
pub(crate) fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|f| Duration::try_from_secs_f64(f).ok())
        .ok_or_else(|| format!("{s}: not a number of seconds"))
}

/// One subcommand's options alone, for [`parse`] and [`defaults`].
#[derive(Parser)]
#[command(no_binary_name = true)]
struct Alone<T: Args> {
    #[command(flatten)]
    options: T,
}

/// Parses one subcommand's arguments (without its name).
#[cfg(test)]
pub(crate) fn parse<T: Args>(args: &[&str]) -> Result<T, clap::Error> {
    Alone::<T>::try_parse_from(args).map(|a| a.options)
}

/// One subcommand's options with every default, as its `--help` shows them.
pub(crate) fn defaults<T: Args>() -> T {
    Alone::<T>::parse_from(std::iter::empty::<String>()).options
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

    use clap::{CommandFactory, Parser};

    use super::{Bench, Cli, Only, parse, seconds};

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_imap_with_its_flags() {
        let c = Cli::try_parse_from(["mailroom-bench", "--large", "20", "--rounds", "0"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!((c.imap.large, c.imap.rounds), (20, 1), "rounds 0 means 1");
        let c = Cli::try_parse_from(["mailroom-bench", "imap", "--small", "7"]).unwrap();
        assert!(matches!(c.command, Some(Bench::Imap(o)) if o.small == 7));
        let c = Cli::try_parse_from(["mailroom-bench", "lmtp", "--messages", "9"]).unwrap();
        assert!(matches!(c.command, Some(Bench::Lmtp(_))));
        assert!(Cli::try_parse_from(["mailroom-bench", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["mailroom-bench", "lmtp", "--large", "5"]).is_err());
    }

    #[test]
    fn every_subcommand_has_help() {
        for sub in [
            "imap",
            "lmtp",
            "accounts",
            "connections",
            "stress",
            "compress",
            "replication",
        ] {
            let e = Cli::try_parse_from(["mailroom-bench", sub, "--help"])
                .err()
                .unwrap();
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{sub}");
            assert!(
                e.to_string().contains("Usage: mailroom-bench "),
                "{sub}: {e}"
            );
        }
    }

    #[test]
    fn only_and_seconds() {
        let o: Only = parse(&["--only", "dovecot"]).unwrap();
        assert!(o.dovecot() && !o.mailroomd());
        let o: Only = parse(&[]).unwrap();
        assert!(o.dovecot() && o.mailroomd());
        assert!(parse::<Only>(&["--only", "postfix"]).is_err());
        assert_eq!(seconds("1.5").unwrap().as_millis(), 1500);
        assert!(seconds("-1").is_err() && seconds("x").is_err());
    }
}
