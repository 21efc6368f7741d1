"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) end to end with Python's
imaplib and LMTP deliveries (smtplib.LMTP): a UID SEARCH and a UID SORT
with RETURN (UPDATE) are kept up to date as Postfix-style deliveries
arrive, after a NOOP and pushed during IDLE; a STORE from another
connection removes from the search's result; PARTIAL pages through the
result; CANCELUPDATE stops the updates. Prints ALL OK, or raises on the
first mismatch."""
import imaplib
import re
import smtplib

from common import HOST, IMAPS_PORT, PASSWORD, USER, tls_context
import os

LMTP_PORT = int(os.environ["MR_LMTP_PORT"])


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what[:200])


def raw(m, tag, cmd):
    """Sends `tag cmd`, returns the lines up to and including the tagged one."""
    m.send(tag + b" " + cmd + b"\r\n")
    lines = []
    while True:
        line = m._get_line()
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def deliver(subject):
    msg = (f"From: sender@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nbody\r\n")
    with smtplib.LMTP(HOST, LMTP_PORT) as lmtp:
        lmtp.sendmail("sender@example.org", [USER], msg.encode())


def main():
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
    m.login(USER, PASSWORD)
    caps = m.capability()[1][0].split()
    check(b"CONTEXT=SEARCH" in caps and b"CONTEXT=SORT" in caps, "CONTEXT=SEARCH and CONTEXT=SORT advertised")
    for s in ("urgent b", "plain", "urgent a"):
        deliver(s)
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "SUBJECT", "urgent")
    before = [int(x) for x in data[0].split()]
    check(len(before) == 2, f"two urgent messages: {before}")

    lines = raw(m, b"C1", b"UID SEARCH RETURN (UPDATE ALL) SUBJECT urgent")
    check(lines[-1].startswith(b"C1 OK") and any(b'(TAG "C1") UID ALL' in l for l in lines),
          f"UID SEARCH RETURN (UPDATE ALL): {lines}")
    lines = raw(m, b"C2", b"UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 SUBJECT urgent")
    check(lines[-1].startswith(b"C2 OK"), f"UID SORT RETURN (UPDATE ALL): {lines}")

    # A delivery joins both results: ADDTO (0 uid) for the search, its
    # sorted position for the sort ("urgent 0" sorts first).
    deliver("urgent 0")
    lines = raw(m, b"N1", b"NOOP")
    text = b"\n".join(lines)
    added = re.search(rb'\(TAG "C1"\) UID ADDTO \(0 (\d+)\)', text)
    check(added is not None, f"LMTP delivery sent ADDTO for the search: {lines}")
    new_uid = int(added.group(1))
    check(b'(TAG "C2") UID ADDTO (1 %d)' % new_uid in text, f"ADDTO at position 1 for the sort: {lines}")
    check(text.find(b"EXISTS") < text.find(b"ADDTO"), "ADDTO after EXISTS")

    # During IDLE the update is pushed as the delivery arrives.
    m.send(b"I1 IDLE\r\n")
    check(m._get_line().startswith(b"+"), "IDLE continuation")
    deliver("urgent c")
    pushed = []
    while not any(b'(TAG "C2")' in l for l in pushed):
        pushed.append(m._get_line())
    check(any(re.search(rb'\(TAG "C1"\) UID ADDTO \(0 \d+\)', l) for l in pushed),
          f"ADDTO pushed during IDLE: {pushed}")
    check(any(re.search(rb'\(TAG "C2"\) UID ADDTO \(4 \d+\)', l) for l in pushed),
          f"sorted ADDTO at the end (position 4) during IDLE: {pushed}")
    m.send(b"DONE\r\n")
    while not m._get_line().startswith(b"I1 "):
        pass

    # Another connection marks one deleted and expunges it: REMOVEFROM.
    other = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
    other.login(USER, PASSWORD)
    other.select("INBOX")
    other.uid("STORE", str(before[0]), "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    lines = raw(m, b"N2", b"NOOP")
    text = b"\n".join(lines)
    check(b'(TAG "C1") UID REMOVEFROM (0 %d)' % before[0] in text, f"REMOVEFROM after an expunge elsewhere: {lines}")
    check(re.search(rb'\(TAG "C2"\) UID REMOVEFROM \(\d+ %d\)' % before[0], text) is not None,
          f"REMOVEFROM for the sort: {lines}")

    # PARTIAL pages through the sorted result.
    lines = raw(m, b"P1", b"UID SORT RETURN (PARTIAL 1:2 COUNT) (SUBJECT) UTF-8 SUBJECT urgent")
    check(any(re.search(rb"PARTIAL \(1:2 %d,\d+\)" % new_uid, l) for l in lines) and
          any(b"COUNT 3" in l for l in lines), f"PARTIAL 1:2 of three: {lines}")

    # CANCELUPDATE: no more updates for either.
    lines = raw(m, b"X1", b'CANCELUPDATE "C1" "C2"')
    check(lines[-1].startswith(b"X1 OK"), f"CANCELUPDATE: {lines}")
    deliver("urgent d")
    lines = raw(m, b"N3", b"NOOP")
    check(any(b"EXISTS" in l for l in lines) and not any(b"ESEARCH" in l for l in lines),
          f"no updates after CANCELUPDATE: {lines}")
    m.logout()
    print("ALL OK")


if __name__ == "__main__":
    main()
