"""Shared mailboxes (RFC 4314 ACL, RFC 2342 NAMESPACE) with imapclient, as
a real client finds them: alice shares a folder with bob; bob sees it in
NAMESPACE's other-users prefix and in LIST, reads it, cannot write to it
without the rights, and loses it when alice takes the rights back.
"""
import imapclient

from common import HOST, IMAPS_PORT, crlf, tls_context

ALICE, ALICE_PW = "alice@example.com", "secret"
BOB, BOB_PW = "bob@example.com", "bobsecret"
TEAM = "Team \u00e9quipe"          # non-ASCII: modified UTF-7 on the wire


def client(user, password):
    c = imapclient.IMAPClient(HOST, port=IMAPS_PORT, ssl=True, ssl_context=tls_context(), timeout=30)
    c.login(user, password)
    return c


def names(c):
    return [name for _flags, _delim, name in c.list_folders()]


def main():
    alice = client(ALICE, ALICE_PW)
    alice.create_folder(TEAM)
    bodies = [crlf(f"From: alice@example.com\nSubject: team note {i}\n\nnote {i}\n".encode()) for i in range(3)]
    for b in bodies:
        alice.append(TEAM, b)

    bob = client(BOB, BOB_PW)
    ns = bob.namespace()
    assert ns.other, f"no other-users namespace: {ns}"
    prefix, delim = ns.other[0]
    shared = f"{prefix}{ALICE}{delim}{TEAM}"
    assert shared not in names(bob), "visible before it was shared"

    alice.setacl(TEAM, BOB, "lrs")
    listed = names(bob)
    assert shared in listed, f"{shared!r} not in bob's LIST: {listed}"
    folders = {name: flags for flags, _d, name in bob.list_folders()}
    parent = f"{prefix}{ALICE}"
    assert any(f.lower() == b"\\noselect" for f in folders.get(parent, ())), \
        f"parent {parent!r} should be \\Noselect: {folders.get(parent)}"

    bob.select_folder(shared, readonly=True)
    got = bob.fetch(bob.search("ALL"), ["BODY.PEEK[]"])
    assert sorted(v[b"BODY[]"] for v in got.values()) == sorted(bodies), "bob read other bytes"
    # no 'i' right: APPEND is refused, and nothing is added
    try:
        bob.append(shared, crlf(b"Subject: intruder\n\nx\n"))
        raise AssertionError("APPEND without the i right succeeded")
    except imapclient.exceptions.IMAPClientError:
        pass
    assert alice.folder_status(TEAM, ["MESSAGES"])[b"MESSAGES"] == 3
    bob.unselect_folder()

    # the rights go away: so does the folder
    alice.setacl(TEAM, BOB, "")        # SETACL with no rights removes the entry
    assert shared not in names(bob), "still listed after DELETEACL"
    try:
        bob.select_folder(shared, readonly=True)
        raise AssertionError("SELECT of an unshared folder succeeded")
    except imapclient.exceptions.IMAPClientError:
        pass
    bob.logout()
    alice.logout()
    print("ALL OK")


if __name__ == "__main__":
    main()
