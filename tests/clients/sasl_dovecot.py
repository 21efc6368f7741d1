"""AUTHENTICATE SCRAM-SHA-256 against mailroomd and Dovecot on plain IMAP
(SCRAM sends no password, so both offer it before TLS): the same
exchanges, the same outcome class (OK / NO / BAD) from both.

Scenarios: the right password (with the server signature checked), a wrong
password, an unknown user, `*` after the first server message, and a
client-first message with a bad channel-binding flag. Prints one line per
scenario and server, then ALL OK when every scenario agrees.
"""

import base64
import imaplib
import os
import socket

import scramp

from common import HOST, IMAP_PORT, PASSWORD, USER

DOVECOT_PORT = int(os.environ["MR_DOVECOT_PORT"])


class Raw:
    """A line-level IMAP client: the exchange byte for byte, no library
    interpretation."""

    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=30)
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.line()

    def tagged(self, tag, first):
        line = first
        while not line.startswith(tag + " "):
            line = self.line()
        return line.split()[1]


def b64(data):
    return base64.b64encode(data).decode()


def scram(port, user, password):
    c = Raw(port)
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    r = c.send("a AUTHENTICATE SCRAM-SHA-256")
    assert r.startswith("+"), r
    r = c.send(b64(client.get_client_first().encode()))
    if not r.startswith("+ "):
        return c.tagged("a", r)
    client.set_server_first(base64.b64decode(r[2:]).decode())
    r = c.send(b64(client.get_client_final().encode()))
    if not r.startswith("+ "):
        return c.tagged("a", r)
    client.set_server_final(base64.b64decode(r[2:]).decode())
    return c.tagged("a", c.send(""))


def cancel(port):
    c = Raw(port)
    client = scramp.ScramClient(["SCRAM-SHA-256"], USER, PASSWORD)
    r = c.send("a AUTHENTICATE SCRAM-SHA-256")
    r = c.send(b64(client.get_client_first().encode()))
    assert r.startswith("+ "), r
    return c.tagged("a", c.send("*"))


def bad_flag(port):
    c = Raw(port)
    c.send("a AUTHENTICATE SCRAM-SHA-256")
    return c.tagged("a", c.send(b64(b"x,,n=" + USER.encode() + b",r=abcdef")))


def caps(port):
    m = imaplib.IMAP4(HOST, port)
    return "AUTH=SCRAM-SHA-256" in m.capabilities


scenarios = [
    ("offers SCRAM-SHA-256", lambda p: caps(p)),
    ("right password", lambda p: scram(p, USER, PASSWORD)),
    ("wrong password", lambda p: scram(p, USER, "not " + PASSWORD)),
    ("unknown user", lambda p: scram(p, "nobody@example.com", PASSWORD)),
    ("* cancels", cancel),
    ("bad channel-binding flag", bad_flag),
]
same = True
for name, run in scenarios:
    ours, theirs = run(IMAP_PORT), run(DOVECOT_PORT)
    print(f"{name}: mailroomd {ours}, dovecot {theirs}")
    if ours != theirs:
        same = False
        print(f"DIFFERS: {name}")
if same:
    print("ALL OK")
