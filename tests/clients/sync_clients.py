"""Two-way sync of a 1,000-message mailbox tree with mbsync or offlineimap.

usage: sync_clients.py mbsync|offlineimap

1. builds a local Maildir tree of 1,000 messages in four folders;
2. first sync uploads everything: the server must hold exactly those bytes;
3. both sides change (new messages and flag changes on each side), second
   sync: both sides must agree again;
4. third sync must transfer nothing: no new local file, no file rewritten,
   no UIDNEXT or HIGHESTMODSEQ change on the server.
"""
import hashlib
import os
import random
import shutil
import ssl
import subprocess
import sys
import time

import imapclient

from common import HOST, IMAPS_PORT, PASSWORD, USER, CERT, WORKDIR, crlf, mixed_message, tls_context

FOLDERS = {"INBOX": 400, "Archive": 300, "Archive/2025": 200, "Lists": 100}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what)


def client():
    c = imapclient.IMAPClient(HOST, port=IMAPS_PORT, ssl=True, ssl_context=tls_context())
    c.login(USER, PASSWORD)
    return c


def maildir_path(root, folder, tool):
    if folder == "INBOX":
        return os.path.join(root, "INBOX")
    return os.path.join(root, *folder.split("/")) if tool == "mbsync" else os.path.join(root, folder)


def write_maildir_message(path, data, flags=""):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    name = f"{time.time_ns()}.{random.getrandbits(40):x}.local"
    if flags:
        p = os.path.join(path, "cur", f"{name}:2,{flags}")
    else:
        p = os.path.join(path, "new", name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def local_state(root):
    """{relative path: sha1} of every message file in the tree."""
    out = {}
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) not in ("cur", "new"):
            continue
        for fn in files:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


def local_messages(root, folder, tool):
    """(sha1 of bytes, maildir flags) of each message in one local folder."""
    path = maildir_path(root, folder, tool)
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        if not os.path.isdir(d):
            continue
        for fn in os.listdir(d):
            with open(os.path.join(d, fn), "rb") as f:
                data = f.read()
            flags = fn.split(":2,", 1)[1] if ":2," in fn else ""
            # mbsync writes Maildir files with LF line ends: compare in CRLF form
            out.append((hashlib.sha1(without_tuid(crlf(data))).hexdigest(), "".join(sorted(c for c in flags if c in "DFRST"))))
    return sorted(out)


def without_tuid(data):
    """mbsync inserts an `X-TUID:` header into messages it propagates (to
    find them again on the other side); that line is the client's change."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = [l for l in head.split(b"\r\n") if not l.startswith(b"X-TUID: ")]
    return b"\r\n".join(lines) + sep + body


FLAG_LETTERS = {b"\\Seen": "S", b"\\Flagged": "F", b"\\Answered": "R", b"\\Draft": "D", b"\\Deleted": "T"}


def server_messages(c, folder):
    c.select_folder(folder, readonly=True)
    got = c.fetch(c.search("ALL"), ["BODY.PEEK[]", "FLAGS"]) if c.folder_status(folder, ["MESSAGES"])[b"MESSAGES"] else {}
    out = []
    for v in got.values():
        letters = "".join(sorted(FLAG_LETTERS[f] for f in v[b"FLAGS"] if f in FLAG_LETTERS))
        out.append((hashlib.sha1(without_tuid(v[b"BODY[]"])).hexdigest(), letters))
    return sorted(out)


def same_messages(c, root, folder, tool):
    """Compares one folder on both sides; prints what differs."""
    srv, loc = server_messages(c, folder), local_messages(root, folder, tool)
    if srv != loc:
        s_only = sorted(set(srv) - set(loc))
        l_only = sorted(set(loc) - set(srv))
        print(f"  {folder}: server {len(srv)} local {len(loc)}; server-only {s_only[:5]} local-only {l_only[:5]}")
    return srv == loc


def server_state(c):
    return {f: c.folder_status(f, ["MESSAGES", "UIDNEXT", "HIGHESTMODSEQ"]) for f in FOLDERS}


def run(cmd):
    print("$", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    print(p.stdout[-3000:], p.stderr[-3000:])
    if p.returncode != 0:
        raise AssertionError(f"{cmd[0]} exited with {p.returncode}")
    return p.stdout + p.stderr


def mbsync_conf(work, root):
    conf = os.path.join(work, "mbsyncrc")
    with open(conf, "w") as f:
        f.write(f"""IMAPAccount mr
Host {HOST}
Port {IMAPS_PORT}
User {USER}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {CERT}
AuthMechs PLAIN

IMAPStore remote
Account mr

MaildirStore local
Path {root}/
Inbox {root}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
""")
    return ["mbsync", "-c", conf, "-a"]


def offlineimap_conf(work, root):
    der = ssl.PEM_cert_to_DER_cert(open(CERT).read())
    fp = hashlib.sha512(der).hexdigest()
    conf = os.path.join(work, "offlineimaprc")
    with open(conf, "w") as f:
        f.write(f"""[general]
accounts = mr
metadata = {work}/offlineimap-meta
maxsyncaccounts = 1

[Account mr]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {root}
sep = /

[Repository remote]
type = IMAP
remotehost = {HOST}
remoteport = {IMAPS_PORT}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {fp}
maxconnections = 1
createfolders = True
""")
    return ["offlineimap", "-c", conf, "-u", "basic", "-o"]


def main():
    tool = sys.argv[1]
    if shutil.which(tool) is None:
        raise AssertionError(f"{tool} is not installed")
    work = os.path.join(WORKDIR, tool)
    root = os.path.join(work, "Mail")
    os.makedirs(root, exist_ok=True)
    rng = random.Random(7)
    i = 0
    for folder, n in FOLDERS.items():
        for _ in range(n):
            flags = "S" if i % 4 == 0 else ("FS" if i % 11 == 0 else "")
            write_maildir_message(maildir_path(root, folder, tool), mixed_message(i, rng), flags)
            i += 1
    if tool == "offlineimap":
        # offlineimap expects INBOX to exist on the server side already and the rest to be created
        pass
    cmd = mbsync_conf(work, root) if tool == "mbsync" else offlineimap_conf(work, root)

    # 1. upload
    t = time.time()
    run(cmd)
    print(f"first sync: {time.time() - t:.1f}s")
    c = client()
    for folder in FOLDERS:
        check(same_messages(c, root, folder, tool),
              f"{tool}: server {folder} holds exactly the local messages and flags after the first sync")
    total = sum(c.folder_status(f, ["MESSAGES"])[b"MESSAGES"] for f in FOLDERS)
    check(total == 1000, f"{tool}: 1000 messages on the server")

    # 2. changes on both sides
    for k in range(5):
        c.append("INBOX", mixed_message(5000 + k, rng), flags=[imapclient.FLAGGED])
    c.select_folder("Lists")
    uids = c.search("ALL")[:3]
    c.add_flags(uids, [imapclient.ANSWERED])
    for k in range(5):
        write_maildir_message(maildir_path(root, "Archive", tool), mixed_message(6000 + k, rng), "S")
    arch = os.path.join(maildir_path(root, "Archive/2025", tool), "new")
    for fn in sorted(os.listdir(arch))[:3]:
        os.rename(os.path.join(arch, fn), os.path.join(os.path.dirname(arch), "cur", fn.split(":")[0] + ":2,F"))
    c.logout()
    run(cmd)
    c = client()
    for folder in FOLDERS:
        check(same_messages(c, root, folder, tool),
              f"{tool}: {folder} agrees on both sides after the two-way sync")
    check(c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 405, f"{tool}: server-side appends reached local")
    check(c.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 305, f"{tool}: local additions reached the server")

    # 3. nothing left to do
    before_local = local_state(root)
    before_server = server_state(c)
    c.logout()
    run(cmd)
    c = client()
    after_server = server_state(c)
    c.logout()
    after_local = local_state(root)
    check(after_local == before_local, f"{tool}: third sync wrote no local file")
    check(after_server == before_server, f"{tool}: third sync changed nothing on the server (UIDNEXT, HIGHESTMODSEQ)")
    print("ALL OK")


if __name__ == "__main__":
    main()
