"""Shared helpers for the client scripts: server address, TLS context, message generator."""
import os
import random
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
