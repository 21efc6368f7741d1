"""Every SASL mechanism mailroomd offers, over TLS, with Python's imaplib,
imapclient and poplib (SCRAM through the scramp package).

usage: sasl_clients.py IMAPS_PORT POP3S_PORT CAFILE USER PASSWORD TOKEN BAD_TOKEN

Prints one line per login, `<client> <mechanism> <result>`; the Rust test
(tests/sasl.rs) checks them. Successes first, then failures (the failed-login
throttle slows every later attempt from 127.0.0.1).
"""

import base64
import imaplib
import poplib
import ssl
import sys

import imapclient
import scramp

imaps, pop3s, cafile, user, password, token, bad_token = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


def imap():
    return imaplib.IMAP4_SSL("127.0.0.1", int(imaps), ssl_context=ctx)


def scram_callback(pw):
    """An imaplib authobject running a SCRAM-SHA-256 client."""
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, pw)
    step = [0]

    def answer(challenge):
        step[0] += 1
        if step[0] == 1:
            return client.get_client_first().encode()
        if step[0] == 2:
            client.set_server_first(challenge.decode())
            return client.get_client_final().encode()
        client.set_server_final(challenge.decode())
        return b""

    return answer


def login_callback(challenge):
    return user.encode() if challenge.startswith(b"User") else password.encode()


oauthbearer = f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode()
xoauth2 = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()

# imaplib: the capability list, then each mechanism.
m = imap()
caps = [c for c in m.capabilities if c.startswith("AUTH=")]
print("imaplib caps", " ".join(caps))
m.logout()
for mech, cb in [
    ("PLAIN", lambda _: f"\0{user}\0{password}".encode()),
    ("LOGIN", login_callback),
    ("SCRAM-SHA-256", scram_callback(password)),
    ("OAUTHBEARER", lambda _: oauthbearer),
    ("XOAUTH2", lambda _: xoauth2),
]:
    m = imap()
    typ, _ = m.authenticate(mech, cb)
    typ2, data = m.select("INBOX")
    print("imaplib", mech, typ, typ2)
    m.logout()

# imapclient.
for mech in ["PLAIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2"]:
    c = imapclient.IMAPClient("127.0.0.1", port=int(imaps), ssl=True, ssl_context=ctx)
    if mech == "PLAIN":
        c.plain_login(user, password)
    elif mech == "SCRAM-SHA-256":
        c.sasl_login("SCRAM-SHA-256", scram_callback(password))
    elif mech == "OAUTHBEARER":
        c.oauthbearer_login(user, token)
    else:
        c.oauth2_login(user, token)
    print("imapclient", mech, "OK", c.select_folder("INBOX")[b"EXISTS"] >= 0)
    c.logout()


# poplib: AUTH through its command helpers (it has no SASL method).
def b64(data):
    return base64.b64encode(data).decode() or "="


def pop():
    return poplib.POP3_SSL("127.0.0.1", int(pop3s), context=ctx)


p = pop()
sasl = [c for c in p.capa().get("SASL", [])]
print("poplib caps", " ".join(sasl))
p.quit()
for mech in ["PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2"]:
    p = pop()
    if mech == "PLAIN":
        r = p._shortcmd("AUTH PLAIN " + b64(f"\0{user}\0{password}".encode()))
    elif mech == "LOGIN":
        p._shortcmd("AUTH LOGIN")
        p._shortcmd(b64(user.encode()))
        r = p._shortcmd(b64(password.encode()))
    elif mech == "SCRAM-SHA-256":
        client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
        r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(client.get_client_first().encode()))
        client.set_server_first(base64.b64decode(r[2:]).decode())
        r = p._shortcmd(b64(client.get_client_final().encode()))
        client.set_server_final(base64.b64decode(r[2:]).decode())
        r = p._shortcmd("")
    elif mech == "OAUTHBEARER":
        r = p._shortcmd("AUTH OAUTHBEARER " + b64(oauthbearer))
    else:
        r = p._shortcmd("AUTH XOAUTH2 " + b64(xoauth2))
    print("poplib", mech, r.split()[0].decode(), p.stat()[0] >= 0)
    p.quit()

# Failures: a wrong SCRAM proof and a bad token, each refused.
m = imap()
try:
    m.authenticate("SCRAM-SHA-256", scram_callback("not the password"))
    print("imaplib SCRAM-SHA-256 wrong-password accepted")
except imaplib.IMAP4.error as e:
    print("imaplib SCRAM-SHA-256 wrong-password refused", "AUTHENTICATIONFAILED" in str(e))
m.logout()

m = imap()
bad = f"n,a={user},\x01auth=Bearer {bad_token}\x01\x01".encode()
answers = iter([bad, b"\x01"])
try:
    m.authenticate("OAUTHBEARER", lambda _: next(answers))
    print("imaplib OAUTHBEARER bad-token accepted")
except imaplib.IMAP4.error as e:
    print("imaplib OAUTHBEARER bad-token refused", "AUTHENTICATIONFAILED" in str(e))
m.logout()
