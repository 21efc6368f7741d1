//! The SORT, THREAD and header SEARCH rows of the IMAP benchmark: `UID
//! SORT` by ARRIVAL, DATE, SUBJECT and FROM, and `UID THREAD REFERENCES`,
//! over all the messages of a mailbox of `--large` messages made for it
//! (threads of up to eight messages linked by `References:`, `Re:`
//! subjects, senders and sent dates in scrambled order, so that no order
//! comes for free), and `UID SEARCH FROM` and `UID SEARCH SUBJECT` with a
//! needle about one message in nine matches (senders `p1...`, topics
//! `1...`).
//!
//! Each figure is the wall-clock median over `--rounds` runs, each on a
//! fresh connection after EXAMINE (login and EXAMINE not timed), after one
//! untimed run of every command (Dovecot builds its sort and thread index
//! data in it, mailroomd fills its summary cache).
//!
//! The rows are part of the IMAP benchmark; `mailroom-bench sort` runs
//! them alone:
//!
//! ```sh
//! target/release/mailroom-bench sort --messages 100000 --rounds 5
//! ```

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::imap::Client;
use super::{Dovecot, Mailroomd, PASSWORD, Row, Target, USER, fmt, median};

/// `mailroom-bench sort` options.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Messages in the mailbox sorted and threaded.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    #[command(flatten)]
    rounds: crate::cli::Rounds,
}

/// `mailroom-bench sort`: only these rows, against mailroomd and then
/// Dovecot in the same run.
pub(crate) fn main(o: Options) -> Result<()> {
    let Options {
        messages,
        rounds: crate::cli::Rounds { rounds },
    } = o;
    let tmp = super::scratch_dir("mailroom-bench")?;
    let mut table: Vec<Row> = rows(messages)
        .into_iter()
        .map(|work| Row {
            work,
            figures: vec![None, None],
        })
        .collect();
    let dir = tmp.path().join("mailroomd");
    std::fs::create_dir_all(&dir)?;
    let m = Mailroomd::start(&dir)?;
    measure(&m, messages, rounds, &mut table, 0, 0)?;
    drop(m);
    let d = Dovecot(mailroom_e2e::Dovecot::start(USER, PASSWORD));
    measure(&d, messages, rounds, &mut table, 0, 1)?;
    drop(d);
    println!("| work | mailroomd | dovecot |");
    println!("|---|---|---|");
    for row in &table {
        println!(
            "| {} | {} | {} |",
            row.work,
            fmt(row.figures[0]),
            fmt(row.figures[1])
        );
    }
    println!(
        "\nwall-clock times on this machine ({} cores), same run",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    Ok(())
}

/// The commands timed, in row order, each with the least share of the
/// messages its answer must name (one in `n`).
const COMMANDS: &[(&str, usize)] = &[
    ("UID SORT (ARRIVAL) UTF-8 ALL", 1),
    ("UID SORT (DATE) UTF-8 ALL", 1),
    ("UID SORT (SUBJECT) UTF-8 ALL", 1),
    ("UID SORT (FROM) UTF-8 ALL", 1),
    ("UID THREAD REFERENCES UTF-8 ALL", 1),
    ("UID SEARCH FROM \"p1\"", 20),
    ("UID SEARCH SUBJECT \"topic 1\"", 20),
];

/// The row titles, for `--large` messages.
pub(crate) fn rows(large: usize) -> Vec<String> {
    COMMANDS
        .iter()
        .map(|(c, _)| format!("{c}, {large} msgs, warm median"))
        .collect()
}

/// Message `i` of the mailbox: thread `i / 8`, replying to an earlier
/// message of its thread.
fn thread_message(i: usize) -> Vec<u8> {
    let thread = i / 8;
    let pos = i % 8;
    let topic = thread.wrapping_mul(2_654_435_761) % 1_000_003;
    let (subject, references) = if pos == 0 {
        (format!("topic {topic}"), String::new())
    } else {
        let parent = i - 1 - (i.wrapping_mul(31) % pos);
        (
            format!("Re: topic {topic}"),
            format!("References: <t{}@bench.example>\r\n", parent),
        )
    };
    let who = i.wrapping_mul(37) % 997;
    let sent = 1_700_000_000 + (i.wrapping_mul(104_729) % 10_000_000);
    let date = format_date(sent);
    format!(
        "From: Person {who} <p{who}@example.org>\r\nTo: {USER}\r\nSubject: {subject}\r\n\
         Date: {date}\r\nMessage-ID: <t{i}@bench.example>\r\n{references}\r\n{}",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(4)
    )
    .into_bytes()
}

/// An RFC 5322 date in UTC for Unix seconds.
fn format_date(secs: usize) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{d} {} {y} {:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Fills the `Threads` mailbox and times the commands; fills
/// `rows[first..]`, column `col`.
pub(crate) fn measure(
    target: &dyn Target,
    large: usize,
    rounds: usize,
    rows: &mut [Row],
    first: usize,
    col: usize,
) -> Result<()> {
    let port = target.port();
    eprintln!(
        "[{}] populating Threads ({large} messages) ...",
        target.name()
    );
    let p = target.populate("Threads", large, thread_message)?;
    eprintln!("[{}]   {:.1}s", target.name(), p.as_secs_f64());
    for (k, &(command, share)) in COMMANDS.iter().enumerate() {
        let mut runs: Vec<Duration> = Vec::new();
        for r in 0..=rounds {
            let mut c = Client::login(port, USER, PASSWORD)?;
            c.run("EXAMINE Threads")?;
            let t = Instant::now();
            let bytes = c.run(command)?;
            let d = t.elapsed();
            // Its share of the UIDs is in the answer: at least "N " each.
            if (bytes as usize) < large / share * 2 {
                bail!("{}: {command} answered only {bytes} bytes", target.name());
            }
            if r > 0 {
                runs.push(d);
            }
            c.run("LOGOUT").ok();
        }
        rows[first + k].figures[col] = Some(median(runs));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc_5322() {
        assert_eq!(format_date(0), "1 Jan 1970 00:00:00 +0000");
        assert_eq!(format_date(1_700_000_000), "14 Nov 2023 22:13:20 +0000");
        assert_eq!(format_date(951_782_400), "29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn replies_refer_to_an_earlier_message_of_their_thread() {
        let m = String::from_utf8(thread_message(13)).unwrap_or_default();
        assert!(m.contains("Subject: Re: topic "), "{m}");
        let r = m
            .split("References: <t")
            .nth(1)
            .and_then(|s| s.split('@').next())
            .and_then(|s| s.parse::<usize>().ok());
        assert!(r.is_some_and(|p| (8..13).contains(&p)), "{m}");
        assert!(!String::from_utf8_lossy(&thread_message(16)).contains("References"));
    }
}
