"""Logs in to a Mailroom POP3 server with Python's poplib APOP (RFC 1939 §7).

Usage: poplib_apop.py HOST PORT USER PASSWORD
poplib computes the digest itself from the greeting's timestamp, so this
checks the greeting's syntax and the server's digest check against an
independent client. Expects exactly one message in the maildrop.
Exits non-zero with a message on the first mismatch.
"""

import poplib
import re
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    # A wrong password: poplib raises error_proto with the server's -ERR.
    p = poplib.POP3(host, port, timeout=10)
    welcome = p.getwelcome()
    check(re.search(rb"<\d+\.\d+\.\d+@[A-Za-z0-9.-]+>$", welcome), "timestamp in %r" % welcome)
    try:
        p.apop(user, password + "x")
        check(False, "APOP with a wrong password was accepted")
    except poplib.error_proto as e:
        check(str(e).startswith("b'-ERR [AUTH]"), "wrong password answer: %s" % e)
    p.quit()

    # The right password, on a new connection (a new timestamp).
    p = poplib.POP3(host, port, timeout=10)
    check(p.getwelcome() != welcome, "each connection gets its own timestamp")
    resp = p.apop(user, password)
    check(resp.startswith(b"+OK"), "APOP answer: %r" % resp)
    count, _ = p.stat()
    check(count == 1, "one message, got %d" % count)
    resp, lines, _ = p.retr(1)
    check(b"Subject: apop" in lines, "RETR after APOP: %r" % lines)
    p.quit()
    print("poplib apop: ok")


if __name__ == "__main__":
    main()
