"""POP3 against a real mailroomd with Python's poplib; mail arrives by LMTP
(smtplib.LMTP) and IMAP (imaplib) looks at the same mailbox.

  pop3_e2e.py poplib    TOP, UIDL, DELE/RSET, LIST/RETR octets, byte-stuffing,
                        [IN-USE], the plaintext rule, a delivery into an
                        empty maildrop seen by the very next login
  pop3_e2e.py coexist   POP3 and IMAP on one mailbox: IMAP sees POP3's
                        deletions only after QUIT, POP3 sees IMAP's expunges

Environment (set by the Rust harness): MR_HOST, MR_POP3_PORT (STLS),
MR_POP3S_PORT, MR_LMTP_PORT, MR_IMAP_PORT, MR_CERT, MR_USER, MR_PASSWORD.
Prints "ALL OK" at the end; any mismatch raises.
"""
import imaplib
import os
import poplib
import re
import smtplib
import sys
import time

from common import HOST, IMAP_PORT, PASSWORD, USER, tls_context

POP3_PORT = int(os.environ["MR_POP3_PORT"])
POP3S_PORT = int(os.environ["MR_POP3S_PORT"])
LMTP_PORT = int(os.environ["MR_LMTP_PORT"])


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def deliver(messages):
    """One LMTP connection, one transaction per message; all must be accepted."""
    c = smtplib.LMTP(HOST, LMTP_PORT)
    for m in messages:
        refused = c.sendmail("sender@example.org", [USER], m)
        check(not refused, "LMTP refused %r" % refused)
    c.quit()


def pop3_stls():
    p = poplib.POP3(HOST, POP3_PORT, timeout=30)
    p.stls(tls_context())
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def pop3s():
    p = poplib.POP3_SSL(HOST, POP3S_PORT, timeout=30, context=tls_context())
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def expect_err(fn, code, what):
    try:
        fn()
    except poplib.error_proto as e:
        text = e.args[0]
        check(text.startswith(b"-ERR " + code), "%s: %r" % (what, text))
        return
    raise AssertionError(what + ": no -ERR")


def uidls(p):
    return [line.split()[1] for line in p.uidl()[1]]


def delete_all():
    p = pop3s()
    for n in range(1, p.stat()[0] + 1):
        p.dele(n)
    p.quit()


FIRST = b"From: a@example.org\r\nSubject: first\r\nMessage-ID: <first@e2e>\r\n\r\nbody line 1\r\nbody line 2\r\n"
# smtplib dot-stuffs on the way in; POP3 must stuff again on the way out.
DOTTED = (b"Subject: dotted\r\nMessage-ID: <dotted@e2e>\r\n\r\n.dotted line\r\n..two dots\r\n.\r\n"
          b"after a lone dot\r\n")
BIG = b"Subject: big\r\nMessage-ID: <big@e2e>\r\n\r\n" + b"".join(
    b"line %06d of a large message, long enough to need several reads\r\n" % i for i in range(4000))


def poplib_flow():
    delete_all()
    deliver([FIRST, DOTTED, BIG])

    # Before STLS: STLS offered, USER neither offered nor accepted (loopback too).
    p = poplib.POP3(HOST, POP3_PORT, timeout=30)
    caps = p.capa()
    check("STLS" in caps and "USER" not in caps, "CAPA before STLS: %r" % caps)
    expect_err(lambda: p.user(USER), b"[AUTH]", "USER before STLS")
    p.stls(tls_context())
    caps = p.capa()
    for cap in ("TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"):
        check(cap in caps, "CAPA after STLS lists %s: %r" % (cap, caps))
    check("STLS" not in caps, "no STLS twice: %r" % caps)
    p.user(USER)
    p.pass_(PASSWORD)

    # A second session on the same maildrop, on the other port: [IN-USE].
    q = poplib.POP3_SSL(HOST, POP3S_PORT, timeout=30, context=tls_context())
    q.user(USER)
    expect_err(lambda: q.pass_(PASSWORD), b"[IN-USE]", "second session")
    q.close()

    count, size = p.stat()
    check(count == 3, "three messages, got %d" % count)
    listing = p.list()[1]
    sizes = [int(line.split()[1]) for line in listing]
    check(sum(sizes) == size, "LIST sizes add up to STAT")
    check(p.list(2) == b"+OK 2 %d" % sizes[1], "LIST 2: %r" % p.list(2))

    # UIDL: whole list and "+OK n uid" for one message, exactly.
    uids = uidls(p)
    check(len(set(uids)) == 3, "distinct UIDLs: %r" % uids)
    for uid in uids:
        check(re.fullmatch(rb"[\x21-\x7e]{1,70}", uid), "UIDL syntax (RFC 1939): %r" % uid)
    check(p.uidl(2) == b"+OK 2 " + uids[1], "UIDL 2: %r" % p.uidl(2))

    # TOP n 0: the header with the lines LMTP added, no body; TOP n 1: one line.
    lines = p.top(1, 0)[1]
    check(lines[-1] == b"" and lines.count(b"") == 1, "TOP 1 0 ends with the blank line: %r" % lines)
    check(lines[0] == b"Return-Path: <sender@example.org>", "Return-Path first: %r" % lines[0])
    check(any(l.startswith(b"Received: ") for l in lines), "Received: added")
    check(b"Subject: first" in lines, "TOP has the header")
    lines = p.top(1, 1)[1]
    check(lines[lines.index(b"") + 1:] == [b"body line 1"], "TOP 1 1: %r" % lines)
    lines = p.top(2, 100)[1]
    check(lines[lines.index(b"") + 1:] == [b".dotted line", b"..two dots", b".", b"after a lone dot"],
          "TOP undoes the stuffing: %r" % lines)

    # RETR: octets as LIST said, content exactly what was delivered (after the added header lines).
    for n, original in ((1, FIRST), (2, DOTTED), (3, BIG)):
        resp, lines, octets = p.retr(n)
        raw = b"".join(l + b"\r\n" for l in lines)
        check(len(raw) == sizes[n - 1], "RETR %d: %d octets, LIST said %d" % (n, len(raw), sizes[n - 1]))
        check(raw.endswith(original), "RETR %d ends with the delivered message" % n)

    # DELE then RSET: nothing deleted; DELE'd messages are gone from every command meanwhile.
    p.dele(1)
    check(p.stat()[0] == 2, "DELE hides the message from STAT")
    expect_err(lambda: p.retr(1), b"", "RETR of a deleted message")
    expect_err(lambda: p.dele(1), b"", "DELE twice")
    p.rset()
    check(p.stat() == (count, size), "RSET restores it")
    p.quit()

    # A session that ends without QUIT commits nothing.
    p = pop3s()
    p.dele(1)
    p.close()
    # The server releases the maildrop lock once it sees the connection
    # gone; until then a new session gets [IN-USE] (RFC 2449 section 8.1.1).
    for _ in range(100):
        try:
            p = pop3_stls()
            break
        except poplib.error_proto as e:
            check(b"[IN-USE]" in e.args[0], "only IN-USE may delay the login: %r" % e.args[0])
            time.sleep(0.05)
    else:
        raise AssertionError("maildrop still locked 5 s after the connection closed")
    check(p.stat()[0] == 3, "no QUIT, no deletion")
    # DELE and QUIT: gone for good; the others keep their UIDLs (and numbers shift).
    p.dele(1)
    p.quit()
    p = pop3s()
    check(p.stat()[0] == 2, "one message deleted at QUIT")
    check(uidls(p) == uids[1:], "surviving UIDLs stable: %r vs %r" % (uidls(p), uids))
    for n in (1, 2):
        p.dele(n)
    p.quit()

    # The empty-maildrop regression: after a login that saw 0 messages, a
    # delivery must be visible to the very next POP3 login (no IMAP in between).
    p = pop3_stls()
    check(p.stat()[0] == 0, "empty now")
    p.quit()
    deliver([b"Subject: into an empty maildrop\r\nMessage-ID: <late@e2e>\r\n\r\nhello\r\n"])
    p = pop3s()
    check(p.stat()[0] == 1, "the new message is seen at once")
    new_uid = uidls(p)[0]
    check(new_uid not in uids, "a UIDL is never reused: %r" % new_uid)
    p.quit()


def imap_login():
    m = imaplib.IMAP4(HOST, IMAP_PORT)
    m.starttls(tls_context())
    m.login(USER, PASSWORD)
    return m


def imap_uids(m):
    typ, data = m.uid("SEARCH", None, "ALL")
    check(typ == "OK", "UID SEARCH")
    return [int(x) for x in data[0].split()]


def coexist_flow():
    delete_all()
    deliver([b"Subject: c%d\r\nMessage-ID: <c%d@e2e>\r\n\r\nbody %d\r\n" % (i, i, i) for i in range(1, 5)])
    m = imap_login()
    typ, data = m.select("INBOX")
    check(typ == "OK" and int(data[0]) == 4, "IMAP sees 4: %r" % data)
    before = imap_uids(m)

    # POP3 marks 2 for deletion: IMAP sees nothing until QUIT.
    p = pop3s()
    p.dele(2)
    p.dele(4)
    m.noop()
    check(imap_uids(m) == before, "no change before QUIT")
    p.quit()

    # After QUIT: the IMAP session is told (EXPUNGE) and the messages are gone.
    typ, data = m.noop()
    expunged = m.untagged_responses.pop("EXPUNGE", [])
    check(len(expunged) == 2, "IMAP got two EXPUNGE responses: %r" % expunged)
    check(imap_uids(m) == [before[0], before[2]], "IMAP: %r" % imap_uids(m))
    m2 = imap_login()
    typ, data = m2.select("INBOX", readonly=True)
    check(int(data[0]) == 2, "a new IMAP session sees 2: %r" % data)
    m2.logout()

    # IMAP flags do not disturb POP3; an IMAP expunge is seen by the next POP3 login.
    m.uid("STORE", str(before[0]), "+FLAGS", "(\\Seen)")
    p = pop3_stls()
    check(p.stat()[0] == 2, "POP3 sees the two survivors")
    pop_uids = uidls(p)
    # ...and while that POP3 session is open, IMAP expunges one of them.
    m.uid("STORE", str(before[0]), "+FLAGS", "(\\Deleted)")
    m.expunge()
    p.dele(2)
    p.quit()
    check(imap_uids(m) == [], "both gone: IMAP expunged one, POP3 deleted the other: %r" % imap_uids(m))
    p = pop3s()
    check(p.stat()[0] == 0, "POP3 sees the IMAP expunge")
    p.quit()
    m.logout()
    check(len(pop_uids) == 2, "UIDLs %r" % pop_uids)


def main():
    flows = {"poplib": poplib_flow, "coexist": coexist_flow}
    flows[sys.argv[1]]()
    print("ALL OK")


if __name__ == "__main__":
    main()
