"""Shared helpers for the client scripts: server address, TLS context, message generator."""
import os
import random
import re
import socket
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
import datetime

HOST = os.environ.get("MR_HOST", "127.0.0.1")
IMAP_PORT = int(os.environ.get("MR_IMAP_PORT", "1143"))
IMAPS_PORT = int(os.environ.get("MR_IMAPS_PORT", "1993"))
CERT = os.environ.get("MR_CERT", "")
USER = os.environ.get("MR_USER", "alice@example.com")
PASSWORD = os.environ.get("MR_PASSWORD", "secret")
WORKDIR = os.environ.get("MR_WORKDIR", "/tmp")


def tls_context():
    """A context that trusts exactly the server's self-signed certificate."""
    ctx = ssl.create_default_context(cafile=CERT) if CERT else ssl.create_default_context()
    ctx.check_hostname = False
    if not CERT:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def crlf(b: bytes) -> bytes:
    """Normalises line ends to CRLF, as IMAP messages are stored."""
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mixed_message(i: int, rng: random.Random) -> bytes:
    """One of a deterministic variety of messages: plain, 8-bit headers,
    multipart/alternative, attachments, nested message/rfc822."""
    kind = i % 5
    date = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(hours=7 * i)
    if kind == 0:
        body = f"Plain message {i}\n" + "line\n" * rng.randint(0, 40)
        raw = (f"From: Sender {i} <sender{i}@example.org>\nTo: alice@example.com\n"
               f"Subject: plain {i}\nDate: {format_datetime(date)}\nMessage-ID: <m{i}@example.org>\n\n{body}").encode()
        return crlf(raw)
    if kind == 1:
        # raw 8-bit UTF-8 in headers and body (not RFC 2047 encoded)
        raw = (f"From: Jürgen Groß <juergen{i}@example.de>\nTo: Zoë <alice@example.com>\n"
               f"Subject: Grüße aus Köln {i} ☃\nDate: {format_datetime(date)}\n"
               "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
               f"Schöne Grüße, Nummer {i}.\n日本語のテキスト\n").encode("utf-8")
        return crlf(raw)
    m = EmailMessage()
    m["From"] = f"Multi {i} <multi{i}@example.net>"
    m["To"] = "alice@example.com"
    m["Cc"] = f"cc{i}@example.net"
    m["Subject"] = f"multipart {i} =?utf-8?q?encoded?="
    m["Date"] = format_datetime(date)
    m.set_content(f"Text part of message {i}.\n" * rng.randint(1, 5))
    if kind >= 2:
        m.add_alternative(f"<html><body><p>HTML part {i}</p></body></html>", subtype="html")
    if kind >= 3:
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(100, 6000)))
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=f"file{i}.bin")
    if kind == 4:
        inner = EmailMessage()
        inner["From"] = "inner@example.com"
        inner["Subject"] = f"forwarded {i}"
        inner.set_content("the forwarded text\n")
        m.add_attachment(inner)
    return crlf(m.as_bytes())


# What the differential scripts' checks found wrong, for their exit status.
failures = []


def check(cond, what):
    """Prints one comparison's outcome; a failure is kept in `failures`."""
    if cond:
        print("ok -", what[:200])
    else:
        print("FAIL -", what)
        failures.append(what)


def small_message(i, prefix="m"):
    """A short plain message, subject and Message-ID numbered `prefix` `i`."""
    return (f"From: a@example.com\r\nTo: b@example.com\r\nSubject: {prefix}{i}\r\n"
            f"Message-ID: <{prefix}{i}@example.com>\r\n\r\nbody {i}\r\n").encode()

class RawClient:
    """A raw IMAP client for the differential tests (no library between
    the test and the wire): IMAPS to mailroomd, plain IMAP to the private
    Dovecot on MR_DOVECOT_PORT; logs in as USER. Literals in responses are
    read whole into the line that announced them."""

    def __init__(self, server):
        port = IMAPS_PORT if server == "mailroomd" else int(os.environ["MR_DOVECOT_PORT"])
        raw = socket.create_connection((HOST, port), timeout=20)
        self.sock = tls_context().wrap_socket(raw) if server == "mailroomd" else raw
        self.buf = b""
        self.n = 0
        self.line()
        self.ok(f"LOGIN {USER} {PASSWORD}")

    def _read(self, timeout):
        """More bytes into the buffer; False if none came within `timeout`
        seconds (None: the connection's 20 s, then an error)."""
        self.sock.settimeout(20 if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            if timeout is None:
                raise
            return False
        if not data:
            raise EOFError("connection closed")
        self.buf += data
        return True

    def line(self, timeout=None):
        """The next response line (with its literals), or None if nothing
        complete came within `timeout` seconds."""
        end = 0
        while True:
            nl = self.buf.find(b"\r\n", end)
            if nl >= 0:
                m = re.search(rb"\{(\d+)\+?\}$", self.buf[:nl])
                if not m:
                    out, self.buf = self.buf[:nl + 2], self.buf[nl + 2:]
                    return out.decode("utf-8", "replace")
                literal_end = nl + 2 + int(m.group(1))
                if len(self.buf) >= literal_end:
                    end = literal_end
                    continue
            if not self._read(timeout):
                return None

    def cmd(self, text):
        """Sends a command; returns its untagged lines and the tagged line."""
        self.n += 1
        tag = f"c{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line.rstrip("\r\n")
            lines.append(line.rstrip("\r\n"))

    def ok(self, text):
        lines, tagged = self.cmd(text)
        if tagged.split()[1] != "OK":
            raise AssertionError(f"{text}: {tagged}\n" + "\n".join(lines))
        return lines

    def append(self, mailbox, flags, body, date=None):
        self.n += 1
        tag = f"c{self.n}"
        when = f' "{date}"' if date else ""
        self.sock.sendall(f"{tag} APPEND {mailbox} ({flags}){when} {{{len(body)}}}\r\n".encode())
        cont = self.line()
        if not cont.startswith("+"):
            raise AssertionError(f"APPEND: {cont}")
        self.sock.sendall(body + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return line.rstrip("\r\n")

    def idle(self, first, quiet):
        """IDLE until something was pushed and the server has then been
        silent for `quiet` seconds, or nothing was for `first` seconds;
        returns the untagged lines pushed meanwhile (and before DONE's OK)."""
        self.n += 1
        tag = f"c{self.n}"
        self.sock.sendall(f"{tag} IDLE\r\n".encode())
        lines = []
        while True:
            line = self.line(quiet if lines else first)
            if line is None:
                break
            if not line.startswith("+"):
                lines.append(line.rstrip("\r\n"))
        self.sock.sendall(b"DONE\r\n")
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                if line.split()[1] != "OK":
                    raise AssertionError(f"IDLE: {line}")
                return [l for l in lines if not l.startswith("* OK Still here")]
            lines.append(line.rstrip("\r\n"))
