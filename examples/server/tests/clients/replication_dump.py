#!/usr/bin/env python3
"""Dumps what an IMAP client sees of accounts, for comparing two servers.

Usage: replication_dump.py HOST PORT PASSWORD USER...

For every user: LOGIN, LIST, then for every mailbox EXAMINE (read-only: no
\\Recent claim, no \\Seen set) and UID FETCH 1:* (UID FLAGS MODSEQ
BODY.PEEK[]). One line per message on stdout:

    USER<TAB>MAILBOX<TAB>UID<TAB>FLAGS<TAB>MODSEQ<TAB>SHA1(BODY[])<TAB>MESSAGE-ID<TAB>MAILBOXID<TAB>UIDVALIDITY

(the Message-ID without its angle brackets, `-` if none; the mailbox's
OBJECTID MAILBOXID from STATUS and its UIDVALIDITY from SELECT, which a
failover must not change).

FLAGS sorted and space-separated (\\Recent left out: it is per session).
Uses Python's imaplib, a real client.
"""

import hashlib
import imaplib
import re
import sys

HEAD = re.compile(rb"^\d+ \((.*)$", re.S)


def items(header):
    """UID, FLAGS and MODSEQ from a FETCH response head."""
    uid = re.search(rb"UID (\d+)", header)
    flags = re.search(rb"FLAGS \(([^)]*)\)", header)
    modseq = re.search(rb"MODSEQ \((\d+)\)", header)
    if not (uid and flags and modseq):
        raise SystemExit("unexpected FETCH response: %r" % header[:200])
    names = sorted(f for f in flags.group(1).decode().split() if f != "\\Recent")
    return int(uid.group(1)), " ".join(names), int(modseq.group(1))


def message_id(body):
    m = re.search(rb"^Message-ID:\s*<([^>\s]+)>", body, re.M | re.I)
    return m.group(1).decode(errors="replace") if m else "-"


def mailboxes(conn):
    typ, data = conn.list()
    assert typ == "OK", data
    out = []
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):
            line = line[0] + line[1]
        m = re.match(rb'^\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        if not m:
            raise SystemExit("unexpected LIST line: %r" % line)
        if b"\\Noselect" in m.group(1) or b"\\NonExistent" in m.group(1):
            continue
        name = m.group(2)
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        out.append(name.decode())
    return sorted(out)


def dump(host, port, password, user):
    conn = imaplib.IMAP4(host, port)
    conn.login(user, password)
    for mailbox in mailboxes(conn):
        typ, data = conn.status('"%s"' % mailbox, "(MAILBOXID)")
        assert typ == "OK", (mailbox, data)
        found = re.search(rb"MAILBOXID \(([^)]+)\)", data[0])
        if not found:
            raise SystemExit("no MAILBOXID in STATUS: %r" % data)
        mailbox_id = found.group(1).decode()
        typ, data = conn.select('"%s"' % mailbox, readonly=True)
        assert typ == "OK", (mailbox, data)
        _, validity = conn.response("UIDVALIDITY")
        if not validity or validity[0] is None:
            raise SystemExit("no UIDVALIDITY in SELECT of %r" % mailbox)
        uid_validity = validity[-1].decode()
        if int(data[0]) == 0:
            continue
        typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS MODSEQ BODY.PEEK[])")
        assert typ == "OK", data
        rows = []
        for part in data:
            if not isinstance(part, tuple):
                continue
            header, body = part
            uid, flags, modseq = items(header)
            rows.append((uid, flags, modseq, hashlib.sha1(body).hexdigest(), message_id(body)))
        for uid, flags, modseq, digest, mid in sorted(rows):
            print("\t".join([user, mailbox, str(uid), flags, str(modseq), digest, mid, mailbox_id, uid_validity]))
    conn.logout()


def main():
    host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for user in sys.argv[4:]:
        dump(host, port, password, user)


if __name__ == "__main__":
    main()
