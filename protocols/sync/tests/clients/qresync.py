"""An imapclient session that caches INBOX with QRESYNC (RFC 7162), then
resyncs the cache after a split-brain merge of the server's store.

    qresync.py sync PORT STATE     # first session: cache UIDVALIDITY,
                                   # HIGHESTMODSEQ and every UID's flags
    qresync.py resync PORT STATE   # later session: only what changed since
                                   # (UID FETCH <every UID below UIDNEXT> (FLAGS)
                                   # (CHANGEDSINCE m VANISHED)), applied to the cache

`resync` checks its resynced cache against a full FETCH of the mailbox and
prints it as JSON ({"uidvalidity", "highestmodseq", "messages": {uid:
flags}}) after the line "RESYNCED", then "ALL OK".
"""

import json
import os
import sys

from imapclient import IMAPClient

# the account: QRESYNC_USER / QRESYNC_PASSWORD in the environment override it
USER = os.environ.get("QRESYNC_USER", "grace@example.com")
PASSWORD = os.environ.get("QRESYNC_PASSWORD", "secret")


def flags(data):
    # \Recent is per session, not part of the mailbox state compared
    names = (f.decode() if isinstance(f, bytes) else f for f in data[b"FLAGS"])
    return sorted(n for n in names if n != "\\Recent")


def uid_set(text):
    """The UIDs of a sequence set such as '2:4,6'."""
    out = set()
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":")
            lo, hi = sorted((int(a), int(b)))
            out.update(range(lo, hi + 1))
        else:
            out.add(int(part))
    return out


def main():
    phase, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    c = IMAPClient("127.0.0.1", port=port, ssl=False, use_uid=True, timeout=30)
    c.login(USER, PASSWORD)
    assert b"QRESYNC" in c.capabilities(), c.capabilities()
    enabled = c.enable("QRESYNC")
    assert b"QRESYNC" in enabled, enabled
    info = c.select_folder("INBOX")
    uv = info[b"UIDVALIDITY"]
    hms = info[b"HIGHESTMODSEQ"]
    # imapclient keeps only the answers for the message ids it was given,
    # so every UID below UIDNEXT is named (rather than 1:*)
    every_uid = list(range(1, info[b"UIDNEXT"]))
    if phase == "sync":
        messages = {
            str(uid): flags(d) for uid, d in c.fetch(every_uid, ["FLAGS", "MODSEQ"]).items()
        }
        state = {"uidvalidity": uv, "highestmodseq": hms, "messages": messages}
        with open(path, "w") as f:
            json.dump(state, f)
        print(f"SYNCED {len(messages)} messages at HIGHESTMODSEQ {hms}")
    else:
        with open(path) as f:
            state = json.load(f)
        assert uv == state["uidvalidity"], f"UIDVALIDITY changed: {uv} != {state['uidvalidity']}"
        assert hms > state["highestmodseq"], f"HIGHESTMODSEQ not raised: {hms}"
        c._imap.untagged_responses.pop("VANISHED", None)
        changed = c.fetch(
            every_uid,
            ["FLAGS"],
            modifiers=[f"CHANGEDSINCE {state['highestmodseq']}", "VANISHED"],
        )
        vanished = set()
        for line in c._imap.untagged_responses.pop("VANISHED", []):
            text = line.decode() if isinstance(line, bytes) else line
            words = text.split()
            assert words[0].upper() == "(EARLIER)", text
            vanished |= uid_set(words[1])
        cache = state["messages"]
        for uid in vanished:
            cache.pop(str(uid), None)
        for uid, d in changed.items():
            cache[str(uid)] = flags(d)
        truth = {str(uid): flags(d) for uid, d in c.fetch(every_uid, ["FLAGS"]).items()}
        assert cache == truth, f"resynced cache {cache} != mailbox {truth}"
        print(f"vanished {sorted(vanished)} changed {sorted(changed)}")
        print("RESYNCED")
        print(json.dumps({"uidvalidity": uv, "highestmodseq": hms, "messages": cache}))
    c.logout()
    print("ALL OK")


if __name__ == "__main__":
    main()
