"""End-to-end IMAP test with Python's imaplib and the imapclient package.

Run by tests/tests/imap_clients.rs against a fresh mailroomd. Every check
compares the server's answer with what this script computes independently.
"""
import imaplib
import random
import re
import sys
import time

import imapclient

from common import (HOST, IMAP_PORT, IMAPS_PORT, PASSWORD, USER, crlf, mixed_message, tls_context)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what.split("\n")[0][:100])


def login_starttls():
    m = imaplib.IMAP4(HOST, IMAP_PORT)
    caps = m.capabilities
    check("STARTTLS" in caps, "STARTTLS advertised before TLS")
    check("LOGINDISABLED" in caps, "LOGINDISABLED advertised before TLS")
    try:
        m.login(USER, PASSWORD)
        raise AssertionError("plaintext LOGIN before STARTTLS was accepted")
    except imaplib.IMAP4.error:
        check(True, "plaintext LOGIN refused before TLS")
    m.starttls(ssl_context=tls_context())
    typ, _ = m.login(USER, PASSWORD)
    check(typ == "OK", "LOGIN after STARTTLS")
    return m


def login_imaps():
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
    typ, _ = m.login(USER, PASSWORD)
    check(typ == "OK", "LOGIN over implicit TLS")
    return m


def client():
    c = imapclient.IMAPClient(HOST, port=IMAPS_PORT, ssl=True, ssl_context=tls_context())
    c.login(USER, PASSWORD)
    return c


def test_wrong_password():
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
    try:
        m.login(USER, PASSWORD + "x")
        raise AssertionError("wrong password accepted")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e) or "fail" in str(e).lower(), "wrong password refused")
    m.logout()


def test_mailboxes():
    c = client()
    names = ["Entwürfe", "Entwürfe/Größe", "日本語", "Ελληνικά & Co", "Reports/2026/Q1"]
    for n in names:
        c.create_folder(n)
    listed = {f[2] for f in c.list_folders()}
    for n in names:
        check(n in listed, f"created and listed non-ASCII mailbox {n!r}")
    check("Reports/2026" in listed and "Reports" in listed, "missing parents created")
    # the raw wire form is modified UTF-7
    raw = c._imap.list('""', '"*"')[1]
    check(any(b"Entw&APw-rfe" in r for r in raw), "names are modified UTF-7 on the wire")
    c.rename_folder("Entwürfe", "Brouillons-é")
    listed = {f[2] for f in c.list_folders()}
    check("Brouillons-é" in listed and "Brouillons-é/Größe" in listed and "Entwürfe" not in listed,
          "RENAME moves the subtree")
    c.delete_folder("Brouillons-é/Größe")
    c.delete_folder("Brouillons-é")
    c.delete_folder("日本語")
    listed = {f[2] for f in c.list_folders()}
    check("日本語" not in listed and "Brouillons-é" not in listed, "DELETE removes mailboxes")
    # RENAME INBOX moves its messages and leaves INBOX empty
    c.append("INBOX", crlf(b"Subject: rename me\n\nbody\n"))
    c.rename_folder("INBOX", "Old-Inbox")
    check(c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0, "INBOX empty after RENAME INBOX")
    check(c.folder_status("Old-Inbox", ["MESSAGES"])[b"MESSAGES"] == 1, "messages moved by RENAME INBOX")
    c.delete_folder("Old-Inbox")
    # subscriptions
    c.create_folder("Sub-Test")
    c.subscribe_folder("Sub-Test")
    check("Sub-Test" in {f[2] for f in c.list_sub_folders()}, "SUBSCRIBE/LSUB")
    c.unsubscribe_folder("Sub-Test")
    check("Sub-Test" not in {f[2] for f in c.list_sub_folders()}, "UNSUBSCRIBE")
    c.delete_folder("Sub-Test")
    c.logout()


def test_append_fetch_200():
    c = client()
    c.create_folder("Mixed")
    rng = random.Random(42)
    msgs = [mixed_message(i, rng) for i in range(200)]
    uids = []
    for i, m in enumerate(msgs):
        flags = [imapclient.SEEN] if i % 3 == 0 else []
        resp = c.append("Mixed", m, flags=flags)
        mo = re.search(rb"APPENDUID (\d+) (\d+)", resp)
        check(mo is not None, "APPEND returns APPENDUID") if i == 0 else None
        uids.append(int(mo.group(2)))
    check(uids == sorted(uids) and len(set(uids)) == 200, "200 APPENDs got ascending distinct UIDs")
    c.select_folder("Mixed")
    got = c.fetch(c.search("ALL"), ["BODY.PEEK[]", "RFC822.SIZE", "UID", "FLAGS"])
    check(len(got) == 200, "FETCH returns 200 messages")
    bad = [u for u, i in zip(uids, range(200)) if got[u][b"BODY[]"] != msgs[i]]
    check(not bad, f"FETCH BODY[] is byte-identical to APPEND for all 200 (mismatch: {bad[:5]})")
    check(all(got[u][b"RFC822.SIZE"] == len(msgs[i]) for i, u in enumerate(uids)), "RFC822.SIZE exact")
    check(all((b"\\Seen" in got[u][b"FLAGS"]) == (i % 3 == 0) for i, u in enumerate(uids)),
          "APPEND flags kept, FETCH with PEEK sets no \\Seen")
    # header fields and structure
    env = c.fetch(uids[0], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[uids[0]]
    check(env[b"ENVELOPE"].subject == b"plain 0", "ENVELOPE subject")
    check(env[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: plain 0\r\n\r\n", "HEADER.FIELDS")
    multi = c.fetch(uids[3], ["BODYSTRUCTURE"])[uids[3]][b"BODYSTRUCTURE"]
    check(multi.is_multipart, "multipart BODYSTRUCTURE")
    # non-PEEK fetch sets \Seen
    u = uids[1]
    f = c.fetch(u, ["BODY[TEXT]", "FLAGS"])[u]
    flags = c.get_flags(u)[u]
    check(b"\\Seen" in flags, "BODY[] without PEEK sets \\Seen")
    c.logout()
    return uids


def test_search():
    c = client()
    c.create_folder("Search")
    base = [
        ("alpha report", "bob@example.org", "01-Mar-2021", b"the quick brown fox", []),
        ("beta Report", "carol@example.org", "15-Mar-2021", b"jumps over the lazy dog" * 50, [imapclient.FLAGGED]),
        ("gamma", "bob@example.org", "30-Mar-2021", b"nothing to see", [imapclient.SEEN]),
        ("Grüße", "dave@example.org", "02-Apr-2021", "Schöne Grüße".encode(), [imapclient.SEEN, imapclient.ANSWERED]),
    ]
    import datetime
    for subj, frm, date, body, flags in base:
        d = datetime.datetime.strptime(date, "%d-%b-%Y").replace(hour=12, tzinfo=datetime.timezone.utc)
        raw = crlf(f"From: {frm}\nTo: alice@example.com\nSubject: {subj}\nDate: {date.replace('-', ' ')} 12:00:00 +0000\n"
                   "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n".encode() + body + b"\n")
        c.append("Search", raw, flags=flags, msg_time=d)
    c.select_folder("Search")
    uids = c.search("ALL")
    check(len(uids) == 4, "SEARCH ALL")
    u1, u2, u3, u4 = uids
    check(c.search(["FROM", "bob@example.org"]) == [u1, u3], "SEARCH FROM")
    check(c.search(["SUBJECT", "report"]) == [u1, u2], "SEARCH SUBJECT is case-insensitive")
    check(c.search(["HEADER", "To", "alice"]) == uids, "SEARCH HEADER")
    check(c.search(["BODY", "lazy dog"]) == [u2], "SEARCH BODY")
    check(c.search(["TEXT", "gamma"]) == [u3], "SEARCH TEXT matches headers")
    check(c.search(["SINCE", "15-Mar-2021"]) == [u2, u3, u4], "SEARCH SINCE (internal date)")
    check(c.search(["BEFORE", "15-Mar-2021"]) == [u1], "SEARCH BEFORE")
    check(c.search(["ON", "30-Mar-2021"]) == [u3], "SEARCH ON")
    check(c.search(["SENTSINCE", "30-Mar-2021"]) == [u3, u4], "SEARCH SENTSINCE")
    check(c.search(["LARGER", "500"]) == [u2], "SEARCH LARGER")
    check(c.search(["SMALLER", "500"]) == [u1, u3, u4], "SEARCH SMALLER")
    check(c.search(["FLAGGED"]) == [u2], "SEARCH FLAGGED")
    check(c.search(["UNSEEN"]) == [u1, u2], "SEARCH UNSEEN")
    check(c.search(["SEEN", "NOT", "ANSWERED"]) == [u3], "SEARCH NOT")
    check(c.search(["OR", "FLAGGED", "ANSWERED"]) == [u2, u4], "SEARCH OR")
    check(c.search(["UID", f"{u2}:{u3}"]) == [u2, u3], "SEARCH UID")
    check(c.search(["2:3"]) == [u2, u3], "SEARCH sequence set")
    check(c.search(["SUBJECT", "Grüße"], charset="UTF-8") == [u4], "SEARCH CHARSET UTF-8 on 8-bit header")
    check(c.search(["BODY", "Schöne"], charset="UTF-8") == [u4], "SEARCH CHARSET UTF-8 body")
    c.logout()
    m = login_imaps()
    m.select("Search")
    typ, data = m.search(None, "(OR (FROM carol) (SUBJECT gamma))")
    check(typ == "OK" and data[0].split() == [b"2", b"3"], "imaplib SEARCH with nesting returns sequence numbers")
    try:
        typ, data = m.search("X-UNKNOWN-CHARSET", "ALL")
    except imaplib.IMAP4.error as e:
        typ, data = "NO", [str(e).encode()]
    check(typ == "NO" and b"BADCHARSET" in data[0], f"unknown CHARSET gets NO [BADCHARSET]: {data!r}")
    typ, data = m.uid("SEARCH", None, "FLAGGED")
    check(typ == "OK" and data[0].split() == [str(u2).encode()], "imaplib UID SEARCH")
    m.logout()


def test_store_expunge_copy():
    m = login_imaps()
    m.create("Work")
    m.create("Dest")
    for i in range(6):
        m.append("Work", None, None, crlf(f"Subject: w{i}\n\nbody {i}\n".encode()))
    typ, data = m.select("Work")
    check(data[0] == b"6", "SELECT reports 6 EXISTS")
    # regression: +FLAGS (\Seen \Deleted) on a \Seen message keeps \Seen
    m.store("1", "+FLAGS", "(\\Seen)")
    typ, data = m.store("1", "+FLAGS", "(\\Seen \\Deleted)")
    check(b"\\Seen" in data[0] and b"\\Deleted" in data[0], "STORE +FLAGS (\\Seen \\Deleted) keeps \\Seen")
    typ, data = m.fetch("1", "(FLAGS)")
    check(b"\\Seen" in data[0] and b"\\Deleted" in data[0], "flags persisted after STORE")
    m.store("2", "FLAGS", "(\\Flagged $Label1)")
    typ, data = m.fetch("2", "(FLAGS)")
    check(b"$Label1" in data[0] and b"\\Flagged" in data[0], "STORE FLAGS with keyword")
    m.store("2", "-FLAGS", "($Label1)")
    typ, data = m.fetch("2", "(FLAGS)")
    check(b"$Label1" not in data[0], "STORE -FLAGS")
    typ, data = m.store("3", "+FLAGS.SILENT", "(\\Answered)")
    check(typ == "OK" and not [d for d in data if d and b"FETCH" in d], "STORE .SILENT sends no FETCH")
    # regression: STATUS UNSEEN counts unread messages, not read ones
    m.store("4", "+FLAGS", "(\\Seen)")
    m.create("Probe")
    m.select("Probe")
    typ, data = m.status("Work", "(MESSAGES UNSEEN)")
    check(b"MESSAGES 6" in data[0] and b"UNSEEN 4" in data[0], f"STATUS UNSEEN counts unread: {data[0]!r}")
    m.select("Work")
    typ, data = m.copy("2:3", "Dest")
    check(typ == "OK" and b"COPYUID" in data[0], f"COPY returns COPYUID: {data[0]!r}")
    typ, data = m.status("Dest", "(MESSAGES)")
    check(b"MESSAGES 2" in data[0], "COPY copied 2 messages")
    typ, data = m.copy("1", "Nowhere")
    check(typ == "NO" and b"TRYCREATE" in data[0], "COPY to a missing mailbox says TRYCREATE")
    typ, data = m.expunge()
    check(typ == "OK" and data == [b"1"], f"EXPUNGE expunges the \\Deleted message: {data!r}")
    typ, data = m.select("Work")
    check(data[0] == b"5", "5 messages remain")
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
    check(subjects == [f"Subject: w{i}".encode() for i in range(1, 6)], "the right message was expunged")
    typ, data = m.select("Dest")
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    check(b"\\Flagged" in data[0][0], "COPY keeps flags")
    m.logout()


def test_uidplus_move_idle():
    c = client()
    c.create_folder("MoveSrc")
    c.create_folder("MoveDst")
    for i in range(3):
        c.append("MoveSrc", crlf(f"Subject: mv{i}\n\nx\n".encode()))
    c.select_folder("MoveSrc")
    uids = c.search("ALL")
    c.move(uids[:2], "MoveDst")
    check(len(c.search("ALL")) == 1, "MOVE removes from source")
    check(c.folder_status("MoveDst", ["MESSAGES"])[b"MESSAGES"] == 2, "MOVE adds to destination")
    # IDLE sees a message appended by another connection
    c.idle()
    other = client()
    other.append("MoveSrc", crlf(b"Subject: during idle\n\nx\n"))
    other.logout()
    responses = c.idle_check(timeout=10)
    c.idle_done()
    check(any(r[1] == b"EXISTS" for r in responses if len(r) > 1), f"IDLE reports EXISTS: {responses!r}")
    c.logout()


def main():
    m = login_starttls()
    m.logout()
    login_imaps().logout()
    test_wrong_password()
    test_mailboxes()
    test_append_fetch_200()
    test_search()
    test_store_expunge_copy()
    test_uidplus_move_idle()
    print("ALL OK")


if __name__ == "__main__":
    main()
