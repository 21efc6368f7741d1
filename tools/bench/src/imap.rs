//! A minimal blocking IMAP client for benchmarking: sends commands, reads
//! responses (skipping literals), counts bytes; optionally over COMPRESS=DEFLATE
//! (RFC 4978, `flate2`), counting the compressed bytes the socket carried.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// One connection.
pub(crate) struct Client {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
    next_tag: u64,
    /// The raw socket, kept to wrap it when COMPRESS starts.
    socket: TcpStream,
    /// Bytes read from the socket (compressed ones under COMPRESS).
    wire_in: Arc<AtomicU64>,
}

/// Counts what a reader gives.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The inflating side of COMPRESS=DEFLATE.
struct Inflate<R> {
    inner: R,
    state: Decompress,
    input: Vec<u8>,
    pos: usize,
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let (before_in, before_out) = (self.state.total_in(), self.state.total_out());
            self.state
                .decompress(&self.input[self.pos..], buf, FlushDecompress::None)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.pos += (self.state.total_in() - before_in) as usize;
            let produced = (self.state.total_out() - before_out) as usize;
            if produced > 0 || buf.is_empty() {
                return Ok(produced);
            }
            if self.pos >= self.input.len() {
                self.input.resize(64 * 1024, 0);
                let n = self.inner.read(&mut self.input)?;
                self.input.truncate(n);
                self.pos = 0;
                if n == 0 {
                    return Ok(0);
                }
            }
        }
    }
}

/// The deflating side: every write is compressed and sync-flushed.
struct Deflate<W> {
    inner: W,
    state: Compress,
}

impl<W: Write> Write for Deflate<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut rest = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(4096);
            }
            let before = self.state.total_in();
            self.state
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            rest = &rest[(self.state.total_in() - before) as usize..];
            if rest.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        self.inner.write_all(&out)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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
        let wire_in = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: s.try_clone()?,
            count: wire_in.clone(),
        };
        let mut c = Client {
            reader: BufReader::with_capacity(1 << 16, Box::new(counted)),
            writer: Box::new(s.try_clone()?),
            next_tag: 1,
            socket: s,
            wire_in,
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

    /// `COMPRESS DEFLATE`: from its OK on, both directions are compressed.
    pub(crate) fn compress(&mut self) -> Result<()> {
        self.run("COMPRESS DEFLATE")?;
        if !self.reader.buffer().is_empty() {
            bail!("data after the COMPRESS OK");
        }
        let counted = Counting {
            inner: self.socket.try_clone()?,
            count: self.wire_in.clone(),
        };
        let inflate = Inflate {
            inner: counted,
            state: Decompress::new(false),
            input: Vec::new(),
            pos: 0,
        };
        self.reader = BufReader::with_capacity(1 << 16, Box::new(inflate));
        self.writer = Box::new(Deflate {
            inner: self.socket.try_clone()?,
            state: Compress::new(Compression::default(), false),
        });
        Ok(())
    }

    /// Bytes read from the socket so far (compressed under COMPRESS).
    pub(crate) fn wire_bytes(&self) -> u64 {
        self.wire_in.load(Ordering::Relaxed)
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
