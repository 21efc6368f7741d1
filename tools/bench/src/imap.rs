//! A minimal blocking IMAP client for benchmarking: sends commands, reads
//! responses (skipping literals), counts bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One connection.
pub(crate) struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_tag: u64,
}

impl Client {
    pub(crate) fn connect(port: u16) -> Result<Client> {
        Client::connect_with(port, true)
    }

    /// A connection with or without `TCP_NODELAY` (most IMAP client
    /// libraries leave Nagle's algorithm on, Python's imaplib among them).
    pub(crate) fn connect_with(port: u16, nodelay: bool) -> Result<Client> {
        let s = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connect to {port}"))?;
        s.set_nodelay(nodelay)?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        let mut c = Client {
            reader: BufReader::with_capacity(1 << 16, s.try_clone()?),
            writer: s,
            next_tag: 1,
        };
        let mut greeting = String::new();
        c.reader.read_line(&mut greeting)?;
        if !greeting.starts_with("* OK") {
            bail!("bad greeting: {greeting:?}");
        }
        Ok(c)
    }

    pub(crate) fn login(port: u16, user: &str, password: &str) -> Result<Client> {
        let mut c = Client::connect(port)?;
        c.run(&format!("LOGIN \"{user}\" \"{password}\""))?;
        Ok(c)
    }

    fn tag(&mut self) -> String {
        let t = format!("b{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Sends a command and reads to its tagged completion; returns the
    /// number of response bytes. Fails unless the completion is OK.
    pub(crate) fn run(&mut self, command: &str) -> Result<u64> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        self.read_until(&tag)
    }

    /// Appends one message with a LITERAL+ (no round trip for the literal).
    pub(crate) fn append(&mut self, mailbox: &str, message: &[u8]) -> Result<()> {
        let tag = self.send_append(mailbox, message)?;
        self.read_until(&tag)?;
        Ok(())
    }

    /// Appends one message the way Python's imaplib does: a synchronizing
    /// literal (wait for `+`), then the literal and the final CRLF in two
    /// separate writes.
    pub(crate) fn append_like_imaplib(&mut self, mailbox: &str, message: &[u8]) -> Result<()> {
        let tag = self.tag();
        self.writer.write_all(
            format!("{tag} APPEND \"{mailbox}\" {{{}}}\r\n", message.len()).as_bytes(),
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with('+') {
            bail!("{tag}: no continuation: {line:?}");
        }
        self.writer.write_all(message)?;
        self.writer.write_all(b"\r\n")?;
        self.read_until(&tag)?;
        Ok(())
    }

    /// Sends an APPEND without waiting; returns its tag.
    pub(crate) fn send_append(&mut self, mailbox: &str, message: &[u8]) -> Result<String> {
        let tag = self.tag();
        let mut buf = format!("{tag} APPEND \"{mailbox}\" {{{}+}}\r\n", message.len()).into_bytes();
        buf.extend_from_slice(message);
        buf.extend_from_slice(b"\r\n");
        self.writer.write_all(&buf)?;
        Ok(tag)
    }

    /// Reads responses until the tagged completion of `tag`.
    pub(crate) fn read_until(&mut self, tag: &str) -> Result<u64> {
        let mut total = 0u64;
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let n = self.reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                bail!("connection closed while waiting for {tag}");
            }
            total += n as u64;
            // a literal at the end of the line: skip its bytes, then continue the line
            if let Some(len) = literal_len(&line) {
                let mut left = len;
                let mut sink = [0u8; 65536];
                while left > 0 {
                    let want = left.min(sink.len() as u64) as usize;
                    let got = self.reader.read(&mut sink[..want])?;
                    if got == 0 {
                        bail!("connection closed inside a literal");
                    }
                    left -= got as u64;
                }
                total += len;
                continue;
            }
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let rest = &line[tag.len() + 1..];
                if rest.starts_with(b"OK") {
                    return Ok(total);
                }
                bail!("{tag} failed: {}", String::from_utf8_lossy(&line));
            }
        }
    }
}

fn literal_len(line: &[u8]) -> Option<u64> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}
