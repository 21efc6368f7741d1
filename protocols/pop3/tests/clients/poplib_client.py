"""Drives a Mailroom POP3 server with Python's poplib: TOP, UIDL, DELE/RSET.

Usage: poplib_client.py HOST PORT USER PASSWORD
Expects exactly three messages in the maildrop (the Rust test delivers them).
Exits non-zero with a message on the first mismatch.
"""

import poplib
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    p = poplib.POP3(host, port, timeout=10)
    caps = p.capa()
    for cap in ("TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES"):
        check(cap in caps, "CAPA lists %s: %r" % (cap, caps))
    p.user(user)
    p.pass_(password)

    count, size = p.stat()
    check(count == 3, "three messages, got %d" % count)
    resp, listing, _ = p.list()
    sizes = [int(line.split()[1]) for line in listing]
    check(sum(sizes) == size, "LIST sizes add up to STAT")

    # UIDL, whole and single: "+OK n uid" exactly.
    resp, uidls, _ = p.uidl()
    uids = [line.split()[1] for line in uidls]
    check(len(set(uids)) == 3, "UIDLs are distinct: %r" % uids)
    single = p.uidl(2)
    check(single == b"+OK 2 " + uids[1], "UIDL 2 answers '+OK 2 uid': %r" % single)

    # TOP: headers and n body lines; RETR sizes match LIST.
    resp, lines, _ = p.top(1, 1)
    check(b"Subject: first" in lines, "TOP 1 1 has the header: %r" % lines)
    blank = lines.index(b"")
    check(len(lines) - blank - 1 == 1, "TOP 1 1 has one body line: %r" % lines)
    for n in (1, 2, 3):
        resp, lines, octets = p.retr(n)
        # poplib counts each line plus CRLF, stuffing removed.
        body = b"".join(l + b"\r\n" for l in lines)
        check(len(body) == sizes[n - 1], "RETR %d gives %d octets, LIST said %d" % (n, len(body), sizes[n - 1]))
    resp, lines, _ = p.retr(3)
    check(b".dotted line" in lines, "byte-stuffing undone by the client: %r" % lines)

    # DELE then RSET: nothing deleted.
    p.dele(1)
    check(p.stat()[0] == 2, "DELE hides the message")
    p.rset()
    check(p.stat()[0] == 3, "RSET restores it")
    p.quit()

    # DELE and QUIT: gone for good; UIDLs of the others unchanged.
    p = poplib.POP3(host, port, timeout=10)
    p.user(user)
    p.pass_(password)
    p.dele(1)
    p.quit()

    p = poplib.POP3(host, port, timeout=10)
    p.user(user)
    p.pass_(password)
    check(p.stat()[0] == 2, "one message deleted at QUIT")
    resp, uidls, _ = p.uidl()
    check([line.split()[1] for line in uidls] == uids[1:], "surviving UIDLs stable: %r" % uidls)
    p.quit()
    print("poplib: ok")


if __name__ == "__main__":
    main()
