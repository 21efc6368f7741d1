"""Differential test for I18NLEVEL=1 (RFC 5255): SEARCH and SORT under the
`i;unicode-casemap` collation (RFC 5051: simple titlecase of each
character, then NFKD) on the same mailbox in mailroomd and Dovecot.

The mailbox holds messages whose subjects, senders and bodies are in
several scripts and spellings: raw UTF-8 and RFC 2047 words (UTF-8 and
ISO-8859-1, Q and B), precomposed and decomposed accents, German sharp s,
Greek final sigma, Turkish dotted and dotless i, Cyrillic, full-width
Latin, and plain ASCII beside them; plus the mixed messages of the other
client tests. The same UID SEARCH (keys sent as UTF-8 literals) and
UID SORT commands must give the same UIDs (in the same order for SORT).
"""
import datetime
import os
import random
import unicodedata

import imapclient

from common import HOST, IMAPS_PORT, PASSWORD, USER, crlf, mixed_message, tls_context
from differential import raw

DOVECOT_PORT = int(os.environ["MR_DOVECOT_PORT"])

# (from, subject, body, body charset): header values are raw UTF-8 unless
# they hold =? words.
MESSAGES = [
    ("Zed <zed@example.com>", "Zebra", "nothing", "utf-8"),
    ("=?utf-8?q?J=C3=BCrgen_Gro=C3=9F?= <j@example.de>", "=?utf-8?q?=C3=A9cole?=", "Grüße aus der STRASSE", "utf-8"),
    ("anna@example.com", "apple", "plain words", "utf-8"),
    ("\"JÜRGEN\" <jj@example.de>", unicodedata.normalize("NFD", "Éclair au café"), "straße", "utf-8"),
    ("ben@example.com", "ecrit", "ΣΟΦΙΑ σοφία", "utf-8"),
    ("Иван <ivan@example.ru>", "Привет мир", "ПРИВЕТ", "utf-8"),
    ("=?iso-8859-1?q?Ren=E9e?= <renee@example.fr>", "=?iso-8859-1?b?x2EgdmEgYmllbg==?=", "Ça va, très bien", "iso-8859-1"),
    ("Öztürk <oz@example.tr>", "İstanbul ılık", "KIŞ ISTANBUL", "utf-8"),
    ("full <fw@example.jp>", "ＦＵＬＬ width", "ｗｉｄｅ text", "utf-8"),
    ("Ωmega <o@example.gr>", "ὈΔΥΣΣΕΎΣ", "ὀδυσσεύς", "utf-8"),
    ("Émile <emile@example.fr>", "Re: école", unicodedata.normalize("NFD", "Noël à l'école"), "utf-8"),
    ("zoë <zoe@example.com>", "Zoë's APPLE", "ÆØÅ æøå", "utf-8"),
    ("\"de la Cruz\" <cruz@example.es>", "Mañana", "MAÑANA mañana", "utf-8"),
    ("ascii <a@example.com>", "ZEBRA crossing", "straße STRASSE", "utf-8"),
]

SEARCHES = [
    ("SUBJECT", "école"), ("SUBJECT", "ÉCOLE"), ("SUBJECT", unicodedata.normalize("NFD", "école")),
    ("SUBJECT", "éclair"), ("SUBJECT", "CAFÉ"), ("SUBJECT", "ecole"), ("SUBJECT", "zebra"),
    ("SUBJECT", "привет"), ("SUBJECT", "ÇA VA"), ("SUBJECT", "istanbul"), ("SUBJECT", "İSTANBUL"),
    ("SUBJECT", "ILIK"), ("SUBJECT", "full"), ("SUBJECT", "ＦＵＬＬ"), ("SUBJECT", "ὀδυσσεύς"),
    ("SUBJECT", "zoë"), ("SUBJECT", "mañana"), ("SUBJECT", "MANANA"),
    ("FROM", "jürgen"), ("FROM", "JÜRGEN"), ("FROM", "groß"), ("FROM", "GROSS"), ("FROM", "иван"),
    ("FROM", "renée"), ("FROM", "öztürk"), ("FROM", "ωMEGA"), ("FROM", "ÉMILE"), ("FROM", "ZOË"),
    ("BODY", "straße"), ("BODY", "STRASSE"), ("BODY", "σοφια"), ("BODY", "ΣΟΦΊΑ"), ("BODY", "привет"),
    ("BODY", "ça va"), ("BODY", "TRÈS"), ("BODY", "kış"), ("BODY", "wide"), ("BODY", "ＷＩＤＥ"),
    ("BODY", "noël"), ("BODY", "ÆØÅ"), ("BODY", "mañana"), ("TEXT", "école"), ("TEXT", "grüße"),
    ("TEXT", "ΟΔΥΣΣΕΥΣ"),
]

SORTS = ["SUBJECT", "REVERSE SUBJECT", "FROM", "DISPLAYFROM", "REVERSE DISPLAYFROM", "SUBJECT DISPLAYFROM"]


def make(frm, subject, body, charset):
    head = (f"From: {frm}\nTo: alice@example.com\nSubject: {subject}\n"
            f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n"
            "Content-Transfer-Encoding: 8bit\n\n")
    return crlf(head.encode("utf-8") + body.encode(charset) + b"\n")


def load(c, msgs):
    if "I18n" in [f[2] for f in c.list_folders()]:
        c.delete_folder("I18n")
    c.create_folder("I18n")
    base = datetime.datetime(2021, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)
    for i, m in enumerate(msgs):
        c.append("I18n", m, msg_time=base + datetime.timedelta(minutes=i))
    c.select_folder("I18n")


def uid_search(c, key, value):
    """UID SEARCH CHARSET UTF-8 key {literal}; errors compare too."""
    imap = c._imap
    tag = imap._new_tag()
    data = value.encode("utf-8")
    imap.send(tag + f" UID SEARCH CHARSET UTF-8 {key} {{{len(data)}}}\r\n".encode())
    cont = imap._get_line()
    if not cont.startswith(b"+"):
        return ("error", cont)
    imap.send(data + b"\r\n")
    nums = []
    while True:
        line = imap._get_line()
        if line.startswith(tag + b" "):
            if line.split(b" ")[1] != b"OK":
                return ("error", line.split(b" ")[1])
            return sorted(nums)
        if line.startswith(b"* SEARCH"):
            nums += [int(x) for x in line[8:].split()]


def uid_sort(c, criteria):
    lines, tagged = raw(c, f"UID SORT ({criteria}) UTF-8 ALL")
    if tagged.split(b" ")[1] != b"OK":
        return ("error", tagged)
    out = []
    for line in lines:
        if line.startswith(b"* SORT"):
            out += [int(x) for x in line[6:].split()]
    return out


def main():
    rng = random.Random(7)
    msgs = [make(*m) for m in MESSAGES] + [mixed_message(i, rng) for i in range(10)]
    m = imapclient.IMAPClient(HOST, port=IMAPS_PORT, ssl=True, ssl_context=tls_context())
    m.login(USER, PASSWORD)
    d = imapclient.IMAPClient(HOST, port=DOVECOT_PORT, ssl=False)
    d.login(USER, PASSWORD)
    assert b"I18NLEVEL=1" in m.capabilities(), "mailroomd lacks I18NLEVEL=1"
    assert b"I18NLEVEL=1" in d.capabilities(), "dovecot lacks I18NLEVEL=1"
    load(m, msgs)
    load(d, msgs)
    mismatches = []
    for key, value in SEARCHES:
        a, b = uid_search(m, key, value), uid_search(d, key, value)
        if a != b:
            mismatches.append((f"UID SEARCH CHARSET UTF-8 {key} {value!r}", a, b))
        else:
            print(f"ok - UID SEARCH {key} {value!r} agrees: {a}")
    for s in SORTS:
        a, b = uid_sort(m, s), uid_sort(d, s)
        if a != b:
            mismatches.append((f"UID SORT ({s}) UTF-8 ALL", a, b))
        else:
            print(f"ok - UID SORT ({s}) agrees: {a}")
    for what, a, b in mismatches:
        print(f"MISMATCH {what}\n  mailroomd: {a}\n  dovecot:   {b}")
    n = len(SEARCHES) + len(SORTS)
    assert not mismatches, f"{n - len(mismatches)}/{n} answers agree with Dovecot"
    # The collation is not a no-op: the case and spelling variants above
    # found what they were meant to find.
    assert uid_search(m, "SUBJECT", "ÉCOLE") == uid_search(m, "SUBJECT", unicodedata.normalize("NFD", "école")) != []
    print(f"ok - {n}/{n} I18NLEVEL=1 answers agree with Dovecot")
    print("ALL OK")


if __name__ == "__main__":
    main()
