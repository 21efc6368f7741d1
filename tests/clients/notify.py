"""NOTIFY (RFC 5465) end to end with imaplib, LMTP deliveries and a second
IMAP session, against mailroomd.

- NOTIFY SET (STATUS) answers with a STATUS for each watched mailbox.
- An LMTP delivery to INBOX while another mailbox is selected gives
  `* STATUS "INBOX" (...)`: pushed during IDLE, and after a NOOP.
- CREATE, RENAME and DELETE by another session give `* LIST` (OLDNAME for
  the rename, \\NonExistent for the deletion); SUBSCRIBE gives \\Subscribed.
  Each is pushed during IDLE, woken by the store's namespace watch; an IDLE
  read waits at most NAMESPACE_WAIT (10 s, only to turn a missing wake-up
  into a failure instead of a hang: a periodic re-listing came every 60 s)
  and the time from the other session's OK to the LIST is printed.
- NOTIFY NONE: a delivery is no longer told.

With MR_OTHER_IMAPS_PORT / MR_OTHER_LMTP_PORT / MR_OTHER_CERT set, the
deliveries and the other session go through another frontend on the same
database (the namespace watch is woken by the database's NOTIFY).
Prints ALL OK.
"""
import imaplib
import os
import smtplib
import ssl
import sys
import time

from common import CERT, HOST, IMAPS_PORT, PASSWORD, USER, crlf, tls_context

LMTP_PORT = int(os.environ.get("MR_OTHER_LMTP_PORT") or os.environ["MR_LMTP_PORT"])
OTHER_PORT = int(os.environ.get("MR_OTHER_IMAPS_PORT") or IMAPS_PORT)
OTHER_CERT = os.environ.get("MR_OTHER_CERT") or CERT
ACROSS = "MR_OTHER_IMAPS_PORT" in os.environ
NAMESPACE_WAIT = 10
imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def connect(port=IMAPS_PORT, cert=CERT):
    ctx = ssl.create_default_context(cafile=cert) if cert else tls_context()
    ctx.check_hostname = False
    m = imaplib.IMAP4_SSL(HOST, port, ssl_context=ctx, timeout=60)
    m.login(USER, PASSWORD)
    return m


def deliver(subject):
    msg = crlf(f"From: a@example.net\nTo: {USER}\nSubject: {subject}\n\nhello\n".encode())
    with smtplib.LMTP(HOST, LMTP_PORT) as lmtp:
        refused = lmtp.sendmail("a@example.net", [USER], msg)
    check(not refused, f"LMTP refused {refused}")


def ok(m, *args):
    typ, data = m._simple_command(*args)
    check(typ == "OK", f"{args} answered {typ} {data}")


def idle_until(m, prefix, action, wait=None):
    """IDLE, run `action`, read lines until one starts with `prefix`, DONE;
    returns the lines read and the one that matched (the socket's timeout,
    or `wait` seconds, guards against a hang)."""
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    cont = m.readline()
    check(cont.startswith(b"+"), f"IDLE answered {cont!r}")
    action()
    lines = []
    if wait is not None:
        m.sock.settimeout(wait)
    while True:
        try:
            line = m.readline()
        except (TimeoutError, OSError) as e:
            check(False, f"nothing starting with {prefix!r} within {wait} s in IDLE ({e}); got {lines}")
        check(line, f"connection closed in IDLE after {lines}")
        lines.append(line)
        if line.startswith(prefix):
            hit = line
            break
    m.sock.settimeout(60)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        check(line, "connection closed after DONE")
        if line.startswith(tag):
            check(b" OK " in line, f"IDLE ended with {line!r}")
            return lines, hit
        lines.append(line)


def noop_untagged(m, key):
    m.untagged_responses.pop(key, None)
    ok(m, "NOOP")
    return m.untagged_responses.pop(key, [])


def status_messages(line):
    words = line.decode().replace("(", " ").replace(")", " ").split()
    return int(words[words.index("MESSAGES") + 1])


m = connect()
other = connect(OTHER_PORT, OTHER_CERT)
ok(m, "CREATE", "Work")
ok(m, "SELECT", "Work")
m.untagged_responses.pop("STATUS", None)
ok(m, "NOTIFY", "SET (STATUS) (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
statuses = m.untagged_responses.pop("STATUS", [])
check(any(s.startswith(b'"INBOX" (MESSAGES 0 ') for s in statuses), f"(STATUS) gave {statuses}")
check(not any(s.startswith(b'"Work"') for s in statuses), f"STATUS for the selected mailbox: {statuses}")

# An LMTP delivery to INBOX (not selected) wakes the IDLE with a STATUS.
lines, hit = idle_until(m, b'* STATUS "INBOX"', lambda: deliver("first"))
check(status_messages(hit) == 1, f"after one delivery: {lines}")
check(not any(b"EXISTS" in line for line in lines), f"EXISTS for a mailbox not selected: {lines}")

# And after a NOOP.
deliver("second")
got = noop_untagged(m, "STATUS")
check(len(got) == 1 and got[0].startswith(b'"INBOX" (MESSAGES 2 '), f"after NOOP: {got}")

# An expunge through the other session.
check(other.select("INBOX")[0] == "OK", "SELECT INBOX")
check(other.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK", "STORE")
check(other.expunge()[0] == "OK", "EXPUNGE")
got = noop_untagged(m, "STATUS")
check(len(got) == 1 and got[0].startswith(b'"INBOX" (MESSAGES 1 '), f"after EXPUNGE: {got}")


def namespace_event(what, action):
    done = []

    def timed():
        action()
        done.append(time.monotonic())

    hit = idle_until(m, b"* LIST", timed, wait=NAMESPACE_WAIT)[1]
    where = "across frontends" if ACROSS else "one frontend"
    print(f"{what} ({where}): LIST after {(time.monotonic() - done[0]) * 1000:.0f} ms")
    return hit


line = namespace_event("CREATE", lambda: ok(other, "CREATE", "Projects"))
check(line.rstrip() == b'* LIST (\\HasNoChildren) "/" "Projects"', f"CREATE: {line!r}")
line = namespace_event("RENAME", lambda: ok(other, "RENAME", "Projects", "Done"))
check(line.rstrip() == b'* LIST (\\HasNoChildren) "/" "Done" ("OLDNAME" ("Projects"))',
      f"RENAME: {line!r}")
line = namespace_event("SUBSCRIBE", lambda: ok(other, "SUBSCRIBE", "Done"))
check(line.rstrip() == b'* LIST (\\HasNoChildren \\Subscribed) "/" "Done"', f"SUBSCRIBE: {line!r}")
line = namespace_event("DELETE", lambda: ok(other, "DELETE", "Done"))
check(line.rstrip() == b'* LIST (\\NonExistent) "/" "Done"', f"DELETE: {line!r}")

# NOTIFY NONE: nothing more.
ok(m, "NOTIFY", "NONE")
deliver("third")
got = noop_untagged(m, "STATUS")
check(not got, f"STATUS after NOTIFY NONE: {got}")

m.logout()
other.logout()
print("ALL OK")
