"""SCRAM-SHA-256 logins on several mailroomd frontends whose users live in
PostgreSQL.

Usage: pg_scram.py USER PASSWORD ok|no

The SCRAM client is the scramp package (it SASLprepares the user name and
the password, as RFC 5802 asks). With `ok`, logs in as USER with PASSWORD on
every frontend with imaplib over IMAPS (AUTHENTICATE SCRAM-SHA-256, then
SELECT INBOX) and with poplib over POP3S (AUTH SCRAM-SHA-256, STAT), checking
the server's signature each time: every one must succeed. With `no`, one IMAP
AUTHENTICATE per frontend must be refused with NO [AUTHENTICATIONFAILED] and
the connection stay usable (LOGOUT answered); one failure each, since every
failure slows that frontend's later logins from this address down.

Environment: MR_FRONTEND_IMAPS, MR_FRONTEND_POP3S (comma-separated ports, one
per frontend), MR_FRONTEND_CERTS (their certificates).
Prints one line per login and ALL OK.
"""
import base64
import imaplib
import os
import poplib
import ssl
import sys

import scramp

from common import HOST

IMAPS = [int(p) for p in os.environ["MR_FRONTEND_IMAPS"].split(",")]
POP3S = [int(p) for p in os.environ["MR_FRONTEND_POP3S"].split(",")]
CERTS = os.environ["MR_FRONTEND_CERTS"].split(",")
user, password, expect = sys.argv[1], sys.argv[2], sys.argv[3]


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def ctx(i):
    c = ssl.create_default_context(cafile=CERTS[i])
    c.check_hostname = False
    return c


def scram_answers():
    """An imaplib authobject running a SCRAM-SHA-256 client."""
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    step = [0]

    def answer(challenge):
        step[0] += 1
        if step[0] == 1:
            return client.get_client_first().encode()
        if step[0] == 2:
            client.set_server_first(challenge.decode())
            return client.get_client_final().encode()
        client.set_server_final(challenge.decode())  # checks the server's signature
        return b""

    return answer


def b64(data):
    return base64.b64encode(data).decode() or "="


for i in range(len(IMAPS)):
    m = imaplib.IMAP4_SSL(HOST, IMAPS[i], ssl_context=ctx(i), timeout=60)
    caps = [c for c in m.capabilities if c.startswith("AUTH=SCRAM")]
    check("AUTH=SCRAM-SHA-256" in caps, f"frontend {i + 1} capabilities: {caps}")
    try:
        typ, _ = m.authenticate("SCRAM-SHA-256", scram_answers())
        outcome = ("ok", typ)
    except imaplib.IMAP4.error as e:
        outcome = ("no", str(e))
    check(outcome[0] == expect, f"frontend {i + 1} IMAP SCRAM: expected {expect}, got {outcome}")
    if expect == "ok":
        typ, _ = m.select("INBOX")
        check(typ == "OK", f"frontend {i + 1} SELECT: {typ}")
    else:
        check("AUTHENTICATIONFAILED" in outcome[1], f"frontend {i + 1}: {outcome[1]}")
    check(m.logout()[0] == "BYE", f"frontend {i + 1}: LOGOUT answered")
    print(f"frontend {i + 1} imap scram {outcome[0]}")
    if expect == "no":
        continue

    p = poplib.POP3_SSL(HOST, POP3S[i], context=ctx(i), timeout=60)
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    try:
        r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(client.get_client_first().encode()))
        client.set_server_first(base64.b64decode(r[2:]).decode())
        r = p._shortcmd(b64(client.get_client_final().encode()))
        client.set_server_final(base64.b64decode(r[2:]).decode())
        p._shortcmd("")
        outcome = ("ok", p.stat())
    except poplib.error_proto as e:
        outcome = ("no", str(e))
    check(outcome[0] == expect, f"frontend {i + 1} POP3 SCRAM: expected {expect}, got {outcome}")
    check(p.quit().startswith(b"+OK"), f"frontend {i + 1}: QUIT answered")
    print(f"frontend {i + 1} pop3 scram {outcome[0]}")

print("ALL OK")
