"""UIDONLY (RFC 9586) end to end against mailroomd, with Python's imaplib
sending raw commands (imaplib knows nothing of UIDFETCH, so this reads
the lines itself), an LMTP delivery and a second IMAP session.

- UIDONLY is advertised after login; ENABLE UIDONLY answers ENABLED.
- FETCH, STORE, SEARCH, COPY, MOVE with sequence numbers, and a sequence
  set as a UID SEARCH key, are answered `BAD [UIDREQUIRED]`; the
  connection goes on and nothing changed.
- UID FETCH and UID STORE answer `* uid UIDFETCH (...)`, with a UID item
  only when the client asked for one.
- A delivery shows as EXISTS, another session's flag change as UIDFETCH,
  expunges (own and the other session's, also during IDLE) as VANISHED;
  never a `* n FETCH` or `* n EXPUNGE`.
Prints ALL OK.
"""
import imaplib
import os
import re
import smtplib
import ssl
import sys

from common import CERT, HOST, IMAPS_PORT, PASSWORD, USER, crlf, tls_context

LMTP_PORT = int(os.environ["MR_LMTP_PORT"])
SEQ_NUMBERED = re.compile(rb"^\* \d+ (FETCH|EXPUNGE)\b")
LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def connect():
    ctx = ssl.create_default_context(cafile=CERT) if CERT else tls_context()
    ctx.check_hostname = False
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=ctx, timeout=60)
    m.login(USER, PASSWORD)
    return m


def read_response(m):
    """One response with its literals inlined."""
    out = b""
    while True:
        line = m.readline()
        check(line, f"connection closed after {out!r}")
        out += line
        lit = LITERAL.search(line)
        if not lit:
            return out
        out += m.read(int(lit.group(1)))


def raw(m, command):
    """Sends `command` with a fresh tag; returns (untagged responses, the
    tagged line)."""
    tag = m._new_tag()
    m.send(tag + b" " + command.encode() + b"\r\n")
    untagged = []
    while True:
        r = read_response(m)
        if r.startswith(tag + b" "):
            return untagged, r
        untagged.append(r)


def ok(m, command):
    untagged, done = raw(m, command)
    check(done.split()[1] == b"OK", f"{command} answered {done!r} after {untagged}")
    check(not [u for u in untagged if SEQ_NUMBERED.match(u)],
          f"{command}: sequence numbers in {untagged}")
    return untagged


def deliver(subject):
    msg = crlf(f"From: a@example.net\nTo: {USER}\nSubject: {subject}\n\nhello\n".encode())
    with smtplib.LMTP(HOST, LMTP_PORT) as lmtp:
        refused = lmtp.sendmail("a@example.net", [USER], msg)
    check(not refused, f"LMTP refused {refused}")


m = connect()
other = connect()
typ, caps = m.capability()
check(b"UIDONLY" in caps[0].split(), f"CAPABILITY {caps}")
got = ok(m, "ENABLE UIDONLY")
check(got == [b"* ENABLED UIDONLY\r\n"], f"ENABLE gave {got}")

# Four messages, the first expunged: UIDs 2, 3, 4 at sequence numbers 1, 2, 3.
for i in range(4):
    typ, _ = m.append("INBOX", None, None, crlf(f"Subject: m{i}\n\nbody {i}\n".encode()))
    check(typ == "OK", "APPEND")
ok(m, "CREATE Other")
# The other session takes \Recent, so FLAGS below are the stored ones.
check(other.select("INBOX")[0] == "OK", "SELECT in the other session")
got = ok(m, "SELECT INBOX")
check(b"* 4 EXISTS\r\n" in got, f"SELECT gave {got}")
check(not any(b"[UNSEEN" in r for r in got), f"UNSEEN (a sequence number) in {got}")
ok(m, "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
got = ok(m, "EXPUNGE")
check(got == [b"* VANISHED 1\r\n"], f"EXPUNGE gave {got}")

for command in ["FETCH 1 (FLAGS)", "FETCH 1:* (UID)", "STORE 1 +FLAGS (\\Flagged)",
                "SEARCH ALL", "COPY 1 Other", "MOVE 1:* Other", "UID SEARCH 1:2",
                "UID SEARCH NOT 3"]:
    untagged, done = raw(m, command)
    check(done.split()[1] == b"BAD" and b"[UIDREQUIRED]" in done,
          f"{command} answered {done!r}")
    check(not [u for u in untagged if SEQ_NUMBERED.match(u)], f"{command}: {untagged}")

# Nothing changed, and the UID forms answer UIDFETCH.
got = ok(m, "UID FETCH 1:* (FLAGS)")
check(got == [b"* 2 UIDFETCH (FLAGS ())\r\n", b"* 3 UIDFETCH (FLAGS ())\r\n",
              b"* 4 UIDFETCH (FLAGS ())\r\n"], f"UID FETCH gave {got}")
typ, data = other.status("Other", "(MESSAGES)")
check(b"(MESSAGES 0)" in data[0], f"STATUS Other {data}")
got = ok(m, "UID FETCH 3 (BODY.PEEK[TEXT])")
check(got == [b"* 3 UIDFETCH (BODY[TEXT] {8}\r\nbody 2\r\n)\r\n"], f"BODY gave {got}")
# The UID item only when asked for (see extension/uidonly.rs).
got = ok(m, "UID FETCH 3 (UID FLAGS)")
check(got == [b"* 3 UIDFETCH (UID 3 FLAGS ())\r\n"], f"UID FETCH (UID FLAGS) gave {got}")
got = ok(m, "UID STORE 4 +FLAGS (\\Flagged)")
check(got == [b"* 4 UIDFETCH (FLAGS (\\Flagged))\r\n"], f"UID STORE gave {got}")
got = ok(m, "UID SEARCH FLAGGED")
check(got == [b"* SEARCH 4\r\n"], f"UID SEARCH gave {got}")

# A delivery, another session's flag change and expunge.
deliver("new")
check(other.select("INBOX")[0] == "OK", "SELECT in the other session")
check(other.uid("STORE", "2", "+FLAGS", "(\\Answered)")[0] == "OK", "other STORE")
got = ok(m, "NOOP")
check(b"* 4 EXISTS\r\n" in got, f"NOOP gave {got}")
check(b"* 2 UIDFETCH (FLAGS (\\Answered))\r\n" in got, f"NOOP gave {got}")
check(other.uid("STORE", "3", "+FLAGS", "(\\Deleted)")[0] == "OK", "other STORE")
check(other.expunge()[0] == "OK", "other EXPUNGE")
got = ok(m, "UID FETCH 5 (UID)")
check(got[0] == b"* 5 UIDFETCH (UID 5)\r\n" and b"* VANISHED 3\r\n" in got, f"after expunge: {got}")

# During IDLE.
tag = m._new_tag()
m.send(tag + b" IDLE\r\n")
check(read_response(m).startswith(b"+"), "IDLE continuation")
check(other.uid("STORE", "4", "+FLAGS", "(\\Seen \\Deleted)")[0] == "OK", "other STORE")
check(other.expunge()[0] == "OK", "other EXPUNGE")
seen = []
while b"* VANISHED 4\r\n" not in seen:
    seen.append(read_response(m))
    check(not SEQ_NUMBERED.match(seen[-1]), f"in IDLE: {seen}")
m.send(b"DONE\r\n")
while True:
    r = read_response(m)
    check(not SEQ_NUMBERED.match(r), f"after DONE: {r!r}")
    if r.startswith(tag):
        check(b" OK " in r, f"IDLE ended with {r!r}")
        break

ok(m, "LOGOUT")
other.logout()
print("ALL OK")
