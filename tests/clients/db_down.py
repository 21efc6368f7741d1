"""The database behind mailroomd stops and comes back, driven by the test
through files in MR_WORKDIR (this script writes `ready` and `checked`, and
waits for `down` and `up`, whose content is the number of messages
acknowledged by then).

While the database is down: a session logged in before keeps its
connection, and SELECT INBOX and APPEND answer NO [UNAVAILABLE]; a new LOGIN
(which opens the account in the store) answers NO [UNAVAILABLE] too and its
connection stays usable. Once it is back, the same first session selects
INBOX, holding exactly the acknowledged messages, and APPENDs. Over IMAPS
with imaplib. Prints ALL OK.

Environment: MR_IMAPS_PORT, MR_CERT, MR_USER, MR_PASSWORD, MR_WORKDIR.
"""
import imaplib
import os
import sys
import time

from common import HOST, IMAPS_PORT, PASSWORD, USER, WORKDIR, tls_context


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def signal(name):
    with open(os.path.join(WORKDIR, name + ".tmp"), "w") as f:
        f.write("1")
    os.rename(os.path.join(WORKDIR, name + ".tmp"), os.path.join(WORKDIR, name))


def wait_for(name):
    path = os.path.join(WORKDIR, name)
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        check(time.monotonic() < deadline, f"the test never wrote {name}")
        time.sleep(0.05)
    with open(path) as f:
        return f.read()


def unavailable(typ, data):
    return typ == "NO" and b"[UNAVAILABLE]" in data[0]


c = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
c.login(USER, PASSWORD)
typ, _ = c.select("INBOX")
check(typ == "OK", "SELECT before the stop")
signal("ready")

wait_for("down")
typ, data = c.select("INBOX")
check(unavailable(typ, data), f"SELECT while down: {typ} {data}")
typ, data = c.append("INBOX", None, None, b"Subject: x\r\n\r\ny\r\n")
check(unavailable(typ, data), f"APPEND while down: {typ} {data}")
other = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
try:
    other.login(USER, PASSWORD)
    check(False, "LOGIN while the database is down succeeded")
except imaplib.IMAP4.error as e:
    check("UNAVAILABLE" in str(e), f"LOGIN while down: {e}")
typ, _ = other.noop()
check(typ == "OK", "the connection survives a refused LOGIN")
other.logout()
signal("checked")

expected = int(wait_for("up"))
typ, data = c.select("INBOX")
check(typ == "OK", f"SELECT after the restart on the same connection: {typ} {data}")
check(int(data[0]) == expected, f"{data[0]} messages, {expected} acknowledged")
typ, data = c.append("INBOX", None, None, b"Subject: after\r\n\r\ny\r\n")
check(typ == "OK", f"APPEND after the restart: {typ} {data}")
c.logout()
print("ALL OK")
