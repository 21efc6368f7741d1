"""Three mailroomd frontends on one PostgreSQL database.

- An imapclient IDLE session on frontend 1 sees a message delivered by LMTP
  through frontend 2 within 1 s.
- APPENDs through all three frontends at once get distinct UIDs, increasing
  within each session, and together exactly the UIDs after the delivered one
  (no gap, no duplicate).
- CONDSTORE/QRESYNC answers agree whichever frontend is asked: STATUS
  (MESSAGES UIDNEXT HIGHESTMODSEQ), FETCH (UID MODSEQ FLAGS), a STORE made
  through frontend 3 seen with CHANGEDSINCE on frontends 1 and 2, and an
  expunge seen as VANISHED (EARLIER) by a QRESYNC SELECT on every frontend.

Environment: MR_FRONTEND_IMAPS (three comma-separated IMAPS ports),
MR_FRONTEND_LMTP (the three LMTP ports), MR_FRONTEND_CERTS (their
certificates), MR_USER, MR_PASSWORD.
Prints ALL OK.
"""
import os
import re
import smtplib
import ssl
import sys
import threading
import time

import imapclient

from common import HOST, PASSWORD, USER, crlf

IMAPS = [int(p) for p in os.environ["MR_FRONTEND_IMAPS"].split(",")]
CERTS = os.environ["MR_FRONTEND_CERTS"].split(",")
LMTP = [int(p) for p in os.environ["MR_FRONTEND_LMTP"].split(",")]
PER_FRONTEND = 20


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def client(i):
    # each frontend generated its own self-signed certificate
    ctx = ssl.create_default_context(cafile=CERTS[i])
    ctx.check_hostname = False
    c = imapclient.IMAPClient(HOST, port=IMAPS[i], ssl=True, ssl_context=ctx, timeout=60)
    c.login(USER, PASSWORD)
    return c


# 1. IDLE on frontend 1, delivery through frontend 2.
idler = client(0)
idler.select_folder("INBOX")
idler.idle()
time.sleep(0.3)  # IDLE is in place
msg = crlf(b"From: a@example.net\nTo: alice@example.com\nSubject: across frontends\n\nhello\n")
lmtp = smtplib.LMTP(HOST, LMTP[1])
start = time.monotonic()
refused = lmtp.sendmail("a@example.net", [USER], msg)
delivered = time.monotonic()
lmtp.quit()
check(not refused, f"LMTP refused {refused}")
seen = None
while time.monotonic() - delivered < 5:
    for resp in idler.idle_check(timeout=0.1):
        if len(resp) >= 2 and resp[1] == b"EXISTS":
            seen = time.monotonic()
            break
    if seen:
        break
idler.idle_done()
check(seen is not None, "IDLE on frontend 1 never saw the delivery through frontend 2")
took = seen - delivered
print(f"IDLE wake-up across frontends: {took * 1000:.0f} ms after LMTP's 250 "
      f"({(seen - start) * 1000:.0f} ms after the delivery began)")
check(took < 1.0, f"the IDLE session was woken {took:.3f} s after the delivery, not within 1 s")
idler.logout()

# 2. APPENDs through all three at once.
results = {}
errors = []
barrier = threading.Barrier(len(IMAPS))


def appender(i):
    try:
        c = client(i)
        barrier.wait(timeout=60)
        uids = []
        for n in range(PER_FRONTEND):
            body = crlf(f"From: f{i}@example.net\nSubject: frontend {i} message {n}\n\nx\n".encode())
            resp = c.append("INBOX", body)
            uids.append(int(re.search(rb"APPENDUID \d+ (\d+)", resp).group(1)))
        results[i] = uids
        c.logout()
    except Exception as e:  # noqa: BLE001 - reported as a failure
        barrier.abort()
        errors.append(f"frontend {i}: {e!r}")


threads = [threading.Thread(target=appender, args=(i,)) for i in range(len(IMAPS))]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(not errors, errors)
every = []
for i, uids in results.items():
    check(uids == sorted(uids) and len(set(uids)) == len(uids), f"frontend {i}: UIDs not increasing: {uids}")
    every += uids
check(len(set(every)) == len(every), f"a UID was given twice: {sorted(every)}")
check(sorted(every) == list(range(2, 2 + len(IMAPS) * PER_FRONTEND)),
      f"the APPENDs did not take exactly the UIDs after the delivered one: {sorted(every)}")
print(f"{len(every)} concurrent APPENDs through {len(IMAPS)} frontends: UIDs 2..{max(every)}, distinct")


# 3. CONDSTORE/QRESYNC answers agree.
def view(i, since=None):
    c = client(i)
    st = c.folder_status("INBOX", [b"MESSAGES", b"UIDNEXT", b"HIGHESTMODSEQ"])
    c.select_folder("INBOX")
    mods = ["CHANGEDSINCE %d" % since] if since is not None else None
    data = c.fetch(c.search(["ALL"]), ["MODSEQ", "FLAGS"], modifiers=mods)
    c.logout()
    # imapclient runs UID FETCH: the keys are the UIDs
    # (\Recent is for the first session to select, whichever frontend)
    rows = sorted((uid, d[b"MODSEQ"][0], tuple(sorted(f for f in d[b"FLAGS"] if f != b"\\Recent")))
                  for uid, d in data.items())
    return ({k: st[k] for k in (b"MESSAGES", b"UIDNEXT", b"HIGHESTMODSEQ")}, rows)


views = [view(i) for i in range(len(IMAPS))]
check(all(v == views[0] for v in views), f"the frontends disagree: {views}")
before = views[0][0][b"HIGHESTMODSEQ"]
c = client(2)
c.select_folder("INBOX")
c.add_flags([3, 5], [b"\\Flagged"])
c.add_flags([7], [b"\\Deleted"])
c.uid_expunge([7])
c.logout()
changed = [view(i, before) for i in range(2)]
check(changed[0] == changed[1], f"CHANGEDSINCE answers differ: {changed}")
check([r[0] for r in changed[0][1]] == [3, 5], f"CHANGEDSINCE {before} shows {changed[0][1]}")
for i in range(len(IMAPS)):
    c = client(i)
    c.enable("QRESYNC")
    uidvalidity = c.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    typ, data = c._imap._simple_command("SELECT", "INBOX (QRESYNC (%d %d))" % (uidvalidity, before))
    check(typ == "OK", f"QRESYNC SELECT on frontend {i + 1}: {typ} {data}")
    untagged = c._imap.untagged_responses.get("VANISHED", [])
    check(any(b"7" in v for v in untagged), f"frontend {i + 1}: no VANISHED (EARLIER) 7 in {untagged}")
    c._imap.untagged_responses.clear()
    c.logout()
print("ALL OK")
