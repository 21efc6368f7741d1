"""Logins by SCRAM-SHA-256 (the scramp package, which SASLprepares user
names and passwords as RFC 5802 asks) and by PLAIN, over plain IMAP with
imaplib and over plain POP3 with poplib.

usage: scram_logins.py IMAP_PORT POP3_PORT ATTEMPTS_JSON

ATTEMPTS_JSON is a list of [label, mechanism, user, password]; mechanism is
SCRAM-SHA-256 or PLAIN. For each attempt prints one line per protocol:
`<label> imap <OK|NO>` and `<label> pop3 <+OK|-ERR>` (a POP3 port of 0
skips POP3). The Rust tests check the lines.
"""

import base64
import imaplib
import json
import poplib
import sys

import scramp

imap_port, pop3_port = int(sys.argv[1]), int(sys.argv[2])
attempts = json.loads(sys.argv[3])


def b64(data):
    return base64.b64encode(data).decode() or "="


def imap_scram(user, password):
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    step = [0]

    def answer(challenge):
        step[0] += 1
        if step[0] == 1:
            return client.get_client_first().encode()
        if step[0] == 2:
            client.set_server_first(challenge.decode())
            return client.get_client_final().encode()
        client.set_server_final(challenge.decode())
        return b""

    return answer


for label, mech, user, password in attempts:
    m = imaplib.IMAP4("127.0.0.1", imap_port)
    try:
        if mech == "PLAIN":
            cb = lambda _: f"\0{user}\0{password}".encode()
        else:
            cb = imap_scram(user, password)
        typ, _ = m.authenticate(mech, cb)
        typ2, _ = m.select("INBOX")
        print(label, "imap", typ if typ2 == "OK" else "SELECT " + typ2)
    except imaplib.IMAP4.error as e:
        print(label, "imap", "NO" if "AUTHENTICATIONFAILED" in str(e) else str(e))
    m.logout()

    if pop3_port == 0:
        continue
    p = poplib.POP3("127.0.0.1", pop3_port)
    try:
        if mech == "PLAIN":
            r = p._shortcmd("AUTH PLAIN " + b64(f"\0{user}\0{password}".encode()))
        else:
            client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
            r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(client.get_client_first().encode()))
            client.set_server_first(base64.b64decode(r[2:]).decode())
            r = p._shortcmd(b64(client.get_client_final().encode()))
            client.set_server_final(base64.b64decode(r[2:]).decode())
            r = p._shortcmd("")
        p.stat()
        print(label, "pop3", r.split()[0].decode())
    except poplib.error_proto as e:
        print(label, "pop3", e.args[0].split()[0].decode())
    p.quit()
