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
import sys

from pg_frontends import IMAPS, imap, imap_login, outcome, pop3_login

user, password, expect = sys.argv[1], sys.argv[2], sys.argv[3]

for i in range(len(IMAPS)):
    got = imap_login(i, "IMAP LOGIN", expect, lambda m: m.login(user, password))
    print(f"frontend {i + 1} imap login {got}")
    if expect == "no":
        continue

    m = imap(i)
    got = outcome(
        i,
        "AUTHENTICATE PLAIN",
        expect,
        lambda: m.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode()),
        imaplib.IMAP4.error,
    )
    m.logout()
    print(f"frontend {i + 1} imap plain {got[0]}")

    def pass_(p):
        p.user(user)
        p.pass_(password)

    got = pop3_login(i, "POP3 PASS", expect, pass_)
    print(f"frontend {i + 1} pop3 {got}")

print("ALL OK")
