"""Concurrency over IMAP: 8 sessions append, store flags and expunge on one
mailbox while 8 others FETCH (4) and IDLE (4).

Every FETCH a reader sees must be a real state: UIDs ascending and unique,
every UID one a writer appended (checked against the APPENDUIDs afterwards),
the bytes behind a UID always the bytes appended under it, flags only ones a
writer sets. At the end every reader, after a NOOP, holds exactly the
mailbox's final state, which a fresh session confirms; the caller then runs
`mailroomd verify` on the index.
"""
import hashlib
import random
import re
import sys
import threading
import time

import imapclient

from common import HOST, IMAPS_PORT, PASSWORD, USER, crlf, tls_context

MAILBOX = "Busy"
WRITERS, FETCHERS, IDLERS = 8, 4, 4
ROUNDS = 25
ALLOWED_FLAGS = {b"\\Seen", b"\\Flagged", b"\\Deleted", b"$W", b"\\Recent"}

appended = {}          # uid -> sha1 of the bytes appended
lock = threading.Lock()
errors = []
stop = threading.Event()


def client():
    c = imapclient.IMAPClient(HOST, port=IMAPS_PORT, ssl=True, ssl_context=tls_context(), timeout=60)
    c.login(USER, PASSWORD)
    return c


def fail(msg):
    with lock:
        errors.append(msg)


def writer(n):
    try:
        c = client()
        c.select_folder(MAILBOX)
        rng = random.Random(n)
        mine = []
        for r in range(ROUNDS):
            body = crlf(f"From: w{n}@example.com\nSubject: writer {n} round {r}\n\n{'x' * rng.randint(10, 2000)}\n".encode())
            resp = c.append(MAILBOX, body)
            uid = int(re.search(rb"APPENDUID \d+ (\d+)", resp).group(1))
            with lock:
                appended[uid] = hashlib.sha1(body).hexdigest()
            mine.append(uid)
            c.add_flags(rng.sample(mine, min(3, len(mine))), [rng.choice([b"\\Seen", b"\\Flagged", b"$W"])])
            if r % 5 == 4:
                doomed = rng.sample(mine, 2)
                c.add_flags(doomed, [b"\\Deleted"])
                c.uid_expunge(doomed)
                mine = [u for u in mine if u not in doomed]
        c.logout()
    except Exception as e:  # noqa: BLE001 - reported as a test failure
        fail(f"writer {n}: {e!r}")


def check_view(name, view, c, sample):
    uids = list(view.keys())
    if uids != sorted(set(uids)):
        fail(f"{name}: UIDs not ascending/unique: {uids[:20]}")
    for uid, data in view.items():
        flags = set(data[b"FLAGS"])
        if not flags <= ALLOWED_FLAGS:
            fail(f"{name}: unexpected flags {flags} on {uid}")
    if sample and view:
        uid = random.choice(uids)
        got = c.fetch([uid], ["BODY.PEEK[]"])
        if uid in got:
            if b"BODY[]" not in got[uid]:
                # allowed only for a message expunged meanwhile (RFC 2180
                # §4.1.3: a server may leave it out); checked at the end
                with lock:
                    bodiless[uid] = f"{name}: {got!r}"
                return
            with lock:
                seen_hashes.setdefault(uid, set()).add(hashlib.sha1(got[uid][b"BODY[]"]).hexdigest())


seen_hashes = {}
bodiless = {}          # uid -> what came back for a body FETCH without the body
seen_uids = set()
final_views = {}


def fetcher(n):
    try:
        c = client()
        c.select_folder(MAILBOX)
        while not stop.is_set():
            uids = c.search("ALL")
            view = c.fetch(uids, ["FLAGS"]) if uids else {}
            with lock:
                seen_uids.update(view.keys())
            check_view(f"fetcher {n}", view, c, sample=True)
            c.noop()
        c.noop()
        final_views[f"fetcher {n}"] = {u: sorted(v[b"FLAGS"]) for u, v in c.fetch(c.search("ALL"), ["FLAGS"]).items()}
        c.logout()
    except Exception as e:  # noqa: BLE001
        fail(f"fetcher {n}: {e!r}")


def idler(n):
    try:
        c = client()
        c.select_folder(MAILBOX)
        exists_seen = 0
        while not stop.is_set():
            c.idle()
            for resp in c.idle_check(timeout=0.5):
                if len(resp) > 1 and resp[1] == b"EXISTS":
                    exists_seen += 1
            c.idle_done()
        c.noop()
        final_views[f"idler {n}"] = {u: sorted(v[b"FLAGS"]) for u, v in c.fetch(c.search("ALL"), ["FLAGS"]).items()}
        if exists_seen == 0:
            fail(f"idler {n}: IDLE never reported EXISTS while writers appended")
        c.logout()
    except Exception as e:  # noqa: BLE001
        fail(f"idler {n}: {e!r}")


def main():
    c = client()
    c.create_folder(MAILBOX)
    c.logout()
    readers = [threading.Thread(target=fetcher, args=(i,)) for i in range(FETCHERS)]
    readers += [threading.Thread(target=idler, args=(i,)) for i in range(IDLERS)]
    for t in readers:
        t.start()
    time.sleep(1)
    t0 = time.time()
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    print(f"writers done in {time.time() - t0:.1f}s: {len(appended)} appends")
    stop.set()
    for t in readers:
        t.join()
    if errors:
        raise AssertionError("\n".join(errors[:20]))
    unknown = seen_uids - set(appended)
    assert not unknown, f"readers saw UIDs nobody appended: {sorted(unknown)[:10]}"
    for uid, hashes in seen_hashes.items():
        assert hashes == {appended[uid]}, f"UID {uid} served other bytes than appended"
    print(f"ok - {len(seen_hashes)} sampled message bodies matched their APPEND")
    c = client()
    c.select_folder(MAILBOX, readonly=True)
    truth = {u: sorted(v[b"FLAGS"]) for u, v in c.fetch(c.search("ALL"), ["FLAGS"]).items()}
    expected = WRITERS * (ROUNDS - 2 * (ROUNDS // 5))
    assert len(truth) == expected, f"{len(truth)} messages remain, expected {expected}"
    still_there = sorted(set(bodiless) & set(truth))
    assert not still_there, f"body FETCH answered without the body for messages never expunged: {[bodiless[u] for u in still_there[:5]]}"
    strip = lambda view: {u: [f for f in fl if f != b"\\Recent"] for u, fl in view.items()}
    for name, view in final_views.items():
        assert strip(view) == strip(truth), f"{name}'s final view differs from the mailbox"
    print(f"ok - all {len(final_views)} readers end with the mailbox's real state ({len(truth)} messages)")
    print("ALL OK")


if __name__ == "__main__":
    main()
