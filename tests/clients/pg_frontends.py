"""What pg_users.py and pg_scram.py share: the mailroomd frontends (on one
PostgreSQL database) named by the environment, and one login on one of them
with its outcome checked.

Environment: MR_FRONTEND_IMAPS, MR_FRONTEND_POP3S (comma-separated ports, one
per frontend), MR_FRONTEND_CERTS (their certificates).
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


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def ctx(i):
    """A TLS context trusting frontend i's own self-signed certificate."""
    c = ssl.create_default_context(cafile=CERTS[i])
    c.check_hostname = False
    return c


def imap(i):
    """An IMAPS connection to frontend i."""
    return imaplib.IMAP4_SSL(HOST, IMAPS[i], ssl_context=ctx(i), timeout=60)


def outcome(i, what, expect, login, refused):
    """Runs `login()` and checks that it ends as `expect`: "ok" (it returns)
    or "no" (it raises `refused`). Returns ("ok", what it returned) or
    ("no", the refusal)."""
    try:
        got = ("ok", login())
    except refused as e:
        got = ("no", str(e))
    check(got[0] == expect, f"frontend {i + 1} {what}: expected {expect}, got {got}")
    return got


def imap_login(i, what, expect, login):
    """One IMAP connection to frontend i, logged in by `login(m)` (which
    returns imaplib's (type, data)): with "ok" a SELECT INBOX must succeed,
    with "no" the refusal must be AUTHENTICATIONFAILED; either way LOGOUT
    must be answered. Returns "ok" or "no"."""
    m = imap(i)
    got = outcome(i, what, expect, lambda: login(m)[0], imaplib.IMAP4.error)
    if expect == "ok":
        typ, _ = m.select("INBOX")
        check(typ == "OK", f"frontend {i + 1} SELECT: {typ}")
    else:
        check("AUTHENTICATIONFAILED" in got[1], f"frontend {i + 1}: {got[1]}")
    check(m.logout()[0] == "BYE", f"frontend {i + 1}: LOGOUT answered")
    return got[0]


def pop3_login(i, what, expect, login):
    """One POP3 connection to frontend i, logged in by `login(p)`: STAT must
    then answer ("ok") or the login be refused ("no"); QUIT must be
    answered. Returns "ok" or "no"."""
    p = poplib.POP3_SSL(HOST, POP3S[i], context=ctx(i), timeout=60)
    got = outcome(i, what, expect, lambda: (login(p), p.stat())[1], poplib.error_proto)
    check(p.quit().startswith(b"+OK"), f"frontend {i + 1}: QUIT answered")
    return got[0]
