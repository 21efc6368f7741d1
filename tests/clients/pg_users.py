"""Logins on several mailroomd frontends whose users live in PostgreSQL.

Usage: pg_users.py USER PASSWORD ok|no

With `ok`, logs in as USER with PASSWORD on every frontend with imaplib over
IMAPS (LOGIN, then SELECT INBOX; AUTHENTICATE PLAIN) and poplib over POP3S
(USER/PASS, STAT): every one must succeed. With `no`, one IMAP LOGIN per
frontend must be refused with NO [AUTHENTICATIONFAILED] and the connection
stay usable (LOGOUT answered): one failure each, since every failure slows
that frontend's later logins from this address down (the throttle).

Environment: MR_FRONTEND_IMAPS, MR_FRONTEND_POP3S (comma-separated ports, one
per frontend), MR_FRONTEND_CERTS (their certificates).
Prints one line per login and ALL OK.
"""
import imaplib
import os
import poplib
import ssl
import sys

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


for i in range(len(IMAPS)):
    # IMAP LOGIN
    m = imaplib.IMAP4_SSL(HOST, IMAPS[i], ssl_context=ctx(i), timeout=60)
    try:
        typ, data = m.login(user, password)
        outcome = ("ok", typ)
    except imaplib.IMAP4.error as e:
        outcome = ("no", str(e))
    check(outcome[0] == expect, f"frontend {i + 1} IMAP LOGIN: expected {expect}, got {outcome}")
    if expect == "ok":
        typ, _ = m.select("INBOX")
        check(typ == "OK", f"frontend {i + 1} SELECT: {typ}")
    else:
        check("AUTHENTICATIONFAILED" in outcome[1], f"frontend {i + 1}: {outcome[1]}")
    check(m.logout()[0] == "BYE", f"frontend {i + 1}: LOGOUT answered")
    print(f"frontend {i + 1} imap login {outcome[0]}")
    if expect == "no":
        continue

    # IMAP AUTHENTICATE PLAIN
    m = imaplib.IMAP4_SSL(HOST, IMAPS[i], ssl_context=ctx(i), timeout=60)
    try:
        typ, _ = m.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode())
        outcome = ("ok", typ)
    except imaplib.IMAP4.error as e:
        outcome = ("no", str(e))
    check(outcome[0] == expect, f"frontend {i + 1} AUTHENTICATE PLAIN: expected {expect}, got {outcome}")
    m.logout()
    print(f"frontend {i + 1} imap plain {outcome[0]}")

    # POP3 USER/PASS
    p = poplib.POP3_SSL(HOST, POP3S[i], context=ctx(i), timeout=60)
    p.user(user)
    try:
        p.pass_(password)
        outcome = ("ok", p.stat())
    except poplib.error_proto as e:
        outcome = ("no", str(e))
    check(outcome[0] == expect, f"frontend {i + 1} POP3 PASS: expected {expect}, got {outcome}")
    check(p.quit().startswith(b"+OK"), f"frontend {i + 1}: QUIT answered")
    print(f"frontend {i + 1} pop3 {outcome[0]}")

print("ALL OK")
