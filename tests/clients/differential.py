"""Differential test: the same mailbox and the same commands against
mailroomd and Dovecot; the answers must agree.

Compares SEARCH results (every RFC 3501 key family), FETCH FLAGS after
STOREs, CONDSTORE states (UNCHANGEDSINCE -> MODIFIED sets, SEARCH MODSEQ
relative to each server's own HIGHESTMODSEQ) and QRESYNC resync answers
(VANISHED (EARLIER) and changed UIDs). Modseq values themselves differ
between servers by design; what they select must not.
"""
import datetime
import glob
import os
import random
import re
import subprocess
import sys

import imapclient

from common import HOST, IMAPS_PORT, PASSWORD, USER, crlf, mixed_message, tls_context

DOVECOT_PORT = int(os.environ["MR_DOVECOT_PORT"])


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what[:150])


def corpus():
    d = subprocess.run([sys.executable, "-c",
                        "import test.test_email,os;print(os.path.dirname(test.test_email.__file__))"],
                       capture_output=True, text=True, check=True).stdout.strip()
    files = sorted(glob.glob(os.path.join(d, "data", "msg_*.txt")))
    if not files:
        raise AssertionError("CPython's email test corpus is missing (Debian: libpython3.11-testsuite)")
    return [crlf(open(f, "rb").read()) for f in files]


def connect_mailroomd():
    c = imapclient.IMAPClient(HOST, port=IMAPS_PORT, ssl=True, ssl_context=tls_context())
    c.login(USER, PASSWORD)
    return c


def connect_dovecot():
    c = imapclient.IMAPClient(HOST, port=DOVECOT_PORT, ssl=False)
    c.login(USER, PASSWORD)
    return c


def raw(c, tag_cmd):
    """Sends one raw command, returns (untagged lines, tagged line) as bytes."""
    imap = c._imap
    tag = imap._new_tag()
    imap.send(tag + b" " + tag_cmd.encode() + b"\r\n")
    lines = []
    while True:
        line = imap._get_line()
        if line.startswith(tag + b" "):
            return lines, line
        lines.append(line)


def load(c, msgs):
    if "Diff" in [f[2] for f in c.list_folders()]:
        c.delete_folder("Diff")
    c.create_folder("Diff")
    base = datetime.datetime(2021, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)
    for i, m in enumerate(msgs):
        flags = []
        if i % 3 == 0:
            flags.append(imapclient.SEEN)
        if i % 7 == 0:
            flags.append(imapclient.FLAGGED)
        if i % 11 == 0:
            flags.append(b"$Work")
        c.append("Diff", m, flags=flags, msg_time=base + datetime.timedelta(hours=13 * i))
    c.select_folder("Diff")


SEARCHES = [
    "ALL", "SEEN", "UNSEEN", "FLAGGED", "UNFLAGGED", "ANSWERED", "UNANSWERED", "DELETED", "UNDELETED",
    "DRAFT", "UNDRAFT", "KEYWORD $Work", "UNKEYWORD $Work", "NEW", "OLD", "RECENT",
    "FROM example", "FROM barry", "FROM \"Barry Warsaw\"", "TO python", "CC example", "BCC example",
    "SUBJECT test", "SUBJECT \"multipart\"", "SUBJECT Grüße", "HEADER Message-ID example", "HEADER X-Foo \"\"",
    "HEADER Content-Type multipart", "HEADER MIME-Version 1.0",
    "BODY hello", "BODY \"quick brown\"", "BODY Schöne", "BODY line", "TEXT example", "TEXT plain",
    "BEFORE 10-Mar-2021", "ON 05-Mar-2021", "SINCE 20-Mar-2021", "SINCE 1-Jan-2030",
    "SENTBEFORE 1-Jan-2002", "SENTON 01-Jan-2020", "SENTSINCE 1-Jan-2019",
    "LARGER 1000", "SMALLER 800", "LARGER 5000", "1:10", "5,7,9:*", "*", "UID 3:8", "UID 1,*",
    "OR SEEN FLAGGED", "NOT SEEN", "NOT (FLAGGED OR SEEN KEYWORD $Work)", "(SEEN FLAGGED) (FROM a)",
    "OR (SUBJECT a) (NOT BODY a)", "NOT NOT SEEN", "1:5 UNSEEN", "SEEN 2:20 LARGER 300",
]


def search(c, criteria):
    """UID SEARCH; 8-bit criteria go through imapclient, which sends them as
    literals with CHARSET UTF-8. Errors are returned, not raised, so they
    compare too."""
    if any(ord(ch) > 127 for ch in criteria):
        try:
            key, _, value = criteria.partition(" ")
            return sorted(c.search([key, value], charset="UTF-8"))
        except imapclient.exceptions.IMAPClientError as e:
            return ("error", str(e)[:40])
    lines, tagged = raw(c, "UID SEARCH " + criteria)
    status = tagged.split(b" ")[1]
    if status != b"OK":
        return ("error", status)
    nums = []
    for l in lines:
        if l.startswith(b"* SEARCH"):
            nums += [int(x) for x in l[8:].split()]
    return sorted(nums)


def has_date(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return re.search(rb"^Date:", head, re.M | re.I) is not None


def main():
    rng = random.Random(3)
    msgs = corpus() + [mixed_message(i, rng) for i in range(20)]
    # RFC 5256 defines a message's sent date as its INTERNALDATE when the
    # Date: header is missing; mailroomd follows that in SENT* searches,
    # Dovecot takes such a message as sent at the epoch. Both are defensible:
    # SENT* results are compared over messages that have a Date: header.
    undated = {i + 1 for i, m in enumerate(msgs) if not has_date(m)}
    # msg_33.txt declares its boundary as an RFC 2231 `boundary*=` parameter:
    # mailroomd (through mail-parser) honours it, Dovecot ignores it and sees
    # one text/plain part, so whether its MIME headers are "text" differs.
    rfc2231_boundary = {i + 1 for i, m in enumerate(msgs) if b"boundary*" in m.split(b"\r\n\r\n", 1)[0]}
    m, d = connect_mailroomd(), connect_dovecot()
    load(m, msgs)
    load(d, msgs)
    check(m.folder_status("Diff", ["MESSAGES"]) [b"MESSAGES"] == len(msgs), f"loaded {len(msgs)} messages")

    mismatches = []
    for s in SEARCHES:
        a, b = search(m, s), search(d, s)
        skip = undated if s.startswith("SENT") else rfc2231_boundary if s.startswith("TEXT") else set()
        if isinstance(a, list) and isinstance(b, list):
            a = [u for u in a if u not in skip]
            b = [u for u in b if u not in skip]
        if a != b:
            mismatches.append((s, a, b))
        else:
            print(f"ok - SEARCH {s} agrees ({len(a) if isinstance(a, list) else a} hits)")
    for s, a, b in mismatches:
        print(f"MISMATCH SEARCH {s}\n  mailroomd: {a}\n  dovecot:   {b}")
    check(not mismatches, f"{len(SEARCHES) - len(mismatches)}/{len(SEARCHES)} SEARCH results agree with Dovecot")

    # FLAGS after the same STOREs
    for c in (m, d):
        c.add_flags([1, 2, 3], [imapclient.ANSWERED])
        c.remove_flags([3, 6, 9], [imapclient.SEEN])
        c.set_flags([10], [imapclient.DRAFT, b"$Later"])
    fm = {u: sorted(v[b"FLAGS"]) for u, v in m.fetch(m.search("ALL"), ["FLAGS"]).items()}
    fd = {u: sorted(v[b"FLAGS"]) for u, v in d.fetch(d.search("ALL"), ["FLAGS"]).items()}
    fm = {u: [f for f in v if f != b"\\Recent"] for u, v in fm.items()}
    fd = {u: [f for f in v if f != b"\\Recent"] for u, v in fd.items()}
    check(fm == fd, "FLAGS agree after identical STOREs")

    # CONDSTORE
    states = {}
    for name, c in (("mailroomd", m), ("dovecot", d)):
        c.close_folder()
        c.enable("CONDSTORE")
        c.select_folder("Diff")
        h0 = c.folder_status("Diff", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        c.add_flags([4, 5], [imapclient.FLAGGED])
        # modseq of message 4 now; a STORE UNCHANGEDSINCE an older value must fail for 4 and 5 only
        lines, tagged = raw(c, f"UID STORE 1:6 (UNCHANGEDSINCE {h0}) +FLAGS.SILENT (\\Deleted)")
        mod = re.search(rb"\[MODIFIED ([0-9:,]+)\]", tagged)
        h1 = c.folder_status("Diff", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        # messages changed after h0 (Dovecot gives every message modseq h0 when
        # CONDSTORE is first enabled, so MODSEQ h0 itself would select all)
        changed_since_h0 = sorted(c.search(["MODSEQ", str(h0 + 1)]))
        lines2, _ = raw(c, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0})")
        fetched = sorted(int(re.search(rb"UID (\d+)", l).group(1)) for l in lines2 if b"FETCH" in l)
        c.expunge()
        states[name] = {
            "modified": mod.group(1) if mod else None,
            "search_modseq": changed_since_h0,
            "changedsince": fetched,
            "grew": h1 > h0,
            "uidvalidity": c.folder_status("Diff", ["UIDVALIDITY"])[b"UIDVALIDITY"],
            "h1": h1,
        }
    a, b = states["mailroomd"], states["dovecot"]
    print("mailroomd:", a, "\ndovecot:  ", b)
    check(a["modified"] == b["modified"], "UNCHANGEDSINCE: the same [MODIFIED] set")
    check(a["search_modseq"] == b["search_modseq"], "SEARCH MODSEQ selects the same messages")
    check(a["changedsince"] == b["changedsince"], "FETCH CHANGEDSINCE returns the same messages")
    check(a["grew"] and b["grew"], "HIGHESTMODSEQ grows on both")

    # QRESYNC: resync from h1 after more changes
    results = {}
    for name, c in (("mailroomd", m), ("dovecot", d)):
        st = states[name]
        c.add_flags([7], [imapclient.ANSWERED])
        c.set_flags([8], [imapclient.DELETED])
        c.expunge()
        c.unselect_folder() if hasattr(c, "unselect_folder") else c.close_folder()
        c.enable("QRESYNC")
        lines, tagged = raw(c, f"SELECT Diff (QRESYNC ({st['uidvalidity']} {st['h1']} 1:100))")
        vanished = [l for l in lines if b"VANISHED" in l]
        fetched = sorted(int(re.search(rb"UID (\d+)", l).group(1)) for l in lines if b"FETCH" in l)
        results[name] = (vanished, fetched, tagged.split(b" ")[1])
    print(results)
    check(results["mailroomd"][2] == b"OK", "SELECT QRESYNC succeeds")
    check(results["mailroomd"][0] == results["dovecot"][0], "QRESYNC: the same VANISHED (EARLIER) answer")
    check(results["mailroomd"][1] == results["dovecot"][1], "QRESYNC: the same changed messages")
    print("ALL OK")


if __name__ == "__main__":
    main()
