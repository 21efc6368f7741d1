"""UTF8=ACCEPT (RFC 6855) with Python's imaplib: ENABLE, UTF-8 mailbox names
both ways, APPEND of a message with UTF-8 headers the way Thunderbird sends
it (`UTF8 (~{n+}...)`), FETCH back byte for byte, SEARCH on a UTF-8 subject.
Prints ALL OK, or raises on the first mismatch.

imaplib's own append() is not used after ENABLE: it puts the `UTF8 (`
marker inside the literal (CPython gh-78319), so any server stores
"UTF8 (" + message + ")"."""
import imaplib

from common import HOST, IMAPS_PORT, PASSWORD, USER, tls_context


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what[:150])


def main():
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
    m.login(USER, PASSWORD)
    typ, data = m.capability()
    check(typ == "OK" and b"UTF8=ACCEPT" in data[0].split(), "UTF8=ACCEPT advertised: %r" % (data,))
    typ, data = m.enable("UTF8=ACCEPT")
    check(typ == "OK" and m.utf8_enabled, "ENABLE UTF8=ACCEPT: %r" % (data,))

    name = "Entwürfe/日本語"
    typ, data = m.create('"%s"' % name)
    check(typ == "OK", "CREATE %s: %r" % (name, data))
    typ, data = m.list('""', '"Entw*"')
    listed = b"\n".join(d for d in data if d)
    check(typ == "OK" and "Entwürfe/日本語".encode() in listed and b"&" not in listed,
          "LIST answers in UTF-8, not modified UTF-7: %r" % (data,))

    message = ("From: Jürgen Müller <jürgen@example.org>\r\nTo: alice@example.com\r\n"
               "Subject: Grüße aus Köln\r\n\r\nHallo, schöne Grüße.\r\n").encode()
    tag = m._new_tag()
    m.send(tag + b' APPEND "' + name.encode() + b'" (\\Seen) UTF8 (~{%d+}\r\n' % len(message)
           + message + b")\r\n")
    while True:
        line = m._get_line()
        if line.startswith(tag + b" "):
            break
    check(line.split()[1] == b"OK", "APPEND UTF8 (literal8) with UTF-8 headers: %r" % (line,))

    typ, data = m.select('"%s"' % name)
    check(typ == "OK" and data[0] == b"1", "SELECT: %r" % (data,))
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    check(typ == "OK" and data[0][1] == message, "FETCH BODY[] byte for byte")
    typ, data = m.search(None, "SUBJECT", '"Grüße"')
    check(typ == "OK" and data[0].split() == [b"1"], "SEARCH SUBJECT in UTF-8: %r" % (data,))
    m.logout()
    print("ALL OK")


if __name__ == "__main__":
    main()
