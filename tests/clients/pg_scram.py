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
import sys

import scramp

from pg_frontends import IMAPS, check, imap_login, pop3_login

user, password, expect = sys.argv[1], sys.argv[2], sys.argv[3]


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


def imap_scram(i):
    def login(m):
        caps = [c for c in m.capabilities if c.startswith("AUTH=SCRAM")]
        check("AUTH=SCRAM-SHA-256" in caps, f"frontend {i + 1} capabilities: {caps}")
        return m.authenticate("SCRAM-SHA-256", scram_answers())

    return login


def pop3_scram(p):
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(client.get_client_first().encode()))
    client.set_server_first(base64.b64decode(r[2:]).decode())
    r = p._shortcmd(b64(client.get_client_final().encode()))
    client.set_server_final(base64.b64decode(r[2:]).decode())
    p._shortcmd("")


for i in range(len(IMAPS)):
    got = imap_login(i, "IMAP SCRAM", expect, imap_scram(i))
    print(f"frontend {i + 1} imap scram {got}")
    if expect == "no":
        continue
    got = pop3_login(i, "POP3 SCRAM", expect, pop3_scram)
    print(f"frontend {i + 1} pop3 scram {got}")

print("ALL OK")
