r"""NOTIFY (RFC 5465) against mailroomd and Dovecot in the same run: the
same NOTIFY SET commands, and the same changes made by a second session
(CONDSTORE enabled), must bring the watching session the same untagged
responses, once normalised: UIDVALIDITY, modseqs and human-readable texts
differ by design; the hierarchy delimiter is written `/`, names unquoted
(Dovecot sends an atom where mailroomd quotes), STATUS and FETCH items
sorted (their order is free); `\HasChildren`/`\HasNoChildren` dropped
(mailroomd adds CHILDREN attributes to NOTIFY's LIST, Dovecot sends
none; both allowed).

A STATUS for another mailbox may name more items in mailroomd's answer
than in Dovecot's: mailroomd always sends MESSAGES, UIDNEXT, UIDVALIDITY
and UNSEEN (and HIGHESTMODSEQ with CONDSTORE), Dovecot only what changed
(just HIGHESTMODSEQ for a \Flagged set). Both tell the client what
changed, the rest is current values it can take as they are; the check is
that both name the same mailbox and agree on every item Dovecot names. (Without ENABLE CONDSTORE Dovecot
still sends HIGHESTMODSEQ, and then MODSEQ in FETCH; mailroomd waits for
the client to enable CONDSTORE, RFC 7162 3.1.)

Changes: a new message in another mailbox, a flag change there, an
expunge there; CREATE, RENAME (told with OLDNAME by both), DELETE;
SUBSCRIBE and UNSUBSCRIBE; in the selected mailbox a new message (with
MessageNew's fetch attributes), a flag change and an expunge; after NOTIFY NONE, nothing. The watching
session collects what a NOOP answers and then what an IDLE pushes until
the server has been quiet for QUIET seconds after the first push, or
for FIRST seconds if nothing comes (Dovecot tells other mailboxes'
changes when its index watch fires, a while after the NOOP).

Where the two differ and RFC 5465 leaves room for both, the difference is
listed in DIFFERENCES with the reason, and checked to be still exactly
that. A raw client (common.RawClient): IMAPS to mailroomd, plain IMAP to
the private Dovecot. Prints ALL OK.

Run with one argument (mailroomd or dovecot) it prints that server's
normalised responses and checks nothing.
"""
import re
import sys

from common import RawClient, check, failures, small_message

FIRST = 5
QUIET = 1.5

# step -> (mailroomd's lines, Dovecot's lines, why).
DIFFERENCES = {
    "an expunge in the selected INBOX": (
        ["* 1 EXPUNGE"],
        ["* 1 EXPUNGE", "* 1 RECENT"],
        "the expunged message was recent; RFC 3501 7.3.2 has RECENT sent when the mailbox size "
        "changes, and the EXPUNGE already tells the client its count went down: both are allowed"),
    "after NOTIFY NONE": (
        ["* 2 EXISTS", "* 1 RECENT"],
        [],
        "NOTIFY NONE stops notifications, but a NOOP is the client's own poll (RFC 3501 6.1.2), so "
        "mailroomd answers it with the selected mailbox's EXISTS; Dovecot stays silent and then "
        "answers a UID FETCH 1:* with a sequence number it never announced by EXISTS (seen by hand "
        "with Dovecot 2.3.19), which RFC 3501 5.2 rules out (a server MUST send mailbox size "
        "updates when it sees the size change while processing a command)"),
}


def status_sorted(line):
    """`* STATUS name (A 1 B 2)` with its items in name order."""
    m = re.match(r"^(\* STATUS .*) \((.*)\)$", line)
    if not m:
        return line
    words = m.group(2).split()
    pairs = sorted(zip(words[0::2], words[1::2]))
    return f"{m.group(1)} ({' '.join(f'{k} {v}' for k, v in pairs)})"


def normalise(lines, sep):
    out = []
    for l in lines:
        if re.match(r"^\* OK (Still here|NOOP|Idling)", l) or l == "+ idling":
            continue
        l = re.sub(r"\b(UIDVALIDITY|HIGHESTMODSEQ) \d+", r"\1 N", l)
        l = re.sub(r"MODSEQ \(\d+\)", "MODSEQ (N)", l)
        l = re.sub(r"^(\* (OK|NO|BAD) \[[^\]]*\]).*$", r"\1", l)
        if sep != "/":
            l = l.replace(f'"{sep}"', '"/"').replace(f"W{sep}", "W/")
        # A name quoted or not, child attributes or not: the same answer.
        l = re.sub(r'"([A-Za-z/]+)"', r"\1", l)
        l = re.sub(r" ?\\Has(No)?Children", "", l).replace("( ", "(")
        out.append(fetch_sorted(status_sorted(l)))
    return out


def items(text):
    """The top-level words and parenthesised lists of a FETCH item list."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == " " and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    return out + [cur]


def fetch_sorted(line):
    """`* n FETCH (...)` with its items in name order (RFC 3501 7.4.2 lets
    a server send them in any order)."""
    m = re.match(r"^(\* \d+ FETCH) \((.*)\)$", line)
    if not m:
        return line
    words = items(m.group(2))
    pairs = sorted(zip(words[0::2], words[1::2]))
    return f"{m.group(1)} ({' '.join(f'{k} {v}' for k, v in pairs)})"


def status(line):
    """(mailbox, {item: value}) of a `* STATUS` line, else None."""
    m = re.match(r"^\* STATUS (\S+) \((.*)\)$", line)
    if not m:
        return None
    words = m.group(2).split()
    return m.group(1), dict(zip(words[0::2], words[1::2]))


def same(ours, theirs):
    """Whether the two servers' lines for a step agree: equal lines, but a
    STATUS may name more items here than Dovecot's (see the module docs),
    as long as it names the same mailbox and every item both name has the
    same value."""
    if len(ours) != len(theirs):
        return False
    for o, t in zip(ours, theirs):
        so, st = status(o), status(t)
        if so and st:
            if so[0] != st[0] or any(so[1].get(k) != v for k, v in st[1].items()):
                return False
        elif o != t:
            return False
    return True


def run(server):
    """The normalised untagged responses of each step, in order."""
    a, b = RawClient(server), RawClient(server)
    a.ok("ENABLE CONDSTORE")
    sep = re.search(r'\(.*?\) "(.)"', a.ok('LIST "" ""')[0]).group(1)
    steps = []

    def told(name, lines=()):
        got = list(lines) + a.ok("NOOP") + a.idle(FIRST, QUIET)
        steps.append((name, normalise(got, sep)))

    for name in ["Other", "W", f"W{sep}Kid"]:
        b.ok(f"CREATE {name}")
    b.append("Other", "", small_message(1))

    # Other mailboxes: STATUS for MessageNew, MessageExpunge, FlagChange.
    steps.append(("NOTIFY SET STATUS (mailboxes Other)",
                  normalise(a.ok("NOTIFY SET STATUS (mailboxes (Other) (MessageNew MessageExpunge FlagChange))"),
                            sep)))
    b.append("Other", "", small_message(2))
    told("a new message in Other")
    b.ok("SELECT Other")
    b.ok("UID STORE 1 +FLAGS (\\Seen)")
    told("\\Seen set in Other")
    b.ok("UID STORE 2 +FLAGS (\\Flagged)")
    told("\\Flagged set in Other")
    b.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    told("an expunge in Other")
    b.ok("UNSELECT")

    # The mailbox list: LIST for MailboxName and SubscriptionChange.
    a.ok("NOTIFY SET (subtree (W) (MailboxName SubscriptionChange))")
    b.ok(f"CREATE W{sep}New")
    told("CREATE W/New")
    # Dovecot tells a rename (with OLDNAME) only with the next change to
    # the mailbox list (not within FIRST seconds of IDLE), hence one step
    # for the RENAME and a CREATE.
    b.ok(f"RENAME W{sep}New W{sep}Newer")
    b.ok(f"CREATE W{sep}Two")
    told("RENAME W/New W/Newer, CREATE W/Two")
    b.ok(f"SUBSCRIBE W{sep}Newer")
    told("SUBSCRIBE W/Newer")
    b.ok(f"UNSUBSCRIBE W{sep}Newer")
    told("UNSUBSCRIBE W/Newer")
    b.ok(f"DELETE W{sep}Newer")
    told("DELETE W/Newer")

    # The selected mailbox: EXISTS and FETCH, FETCH, EXPUNGE.
    b.append("INBOX", "", small_message(3))
    a.ok("SELECT INBOX")
    steps.append(("NOTIFY SET (selected ...)",
                  normalise(a.ok("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))"), sep)))
    b.append("INBOX", "\\Answered", small_message(4))
    told("a new message in the selected INBOX")
    b.ok("SELECT INBOX")
    b.ok("UID STORE 2 +FLAGS (\\Flagged)")
    told("\\Flagged set in the selected INBOX")
    b.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    told("an expunge in the selected INBOX")

    a.ok("NOTIFY NONE")
    b.append("INBOX", "", small_message(5))
    b.append("Other", "", small_message(6))
    b.ok(f"CREATE W{sep}Late")
    told("after NOTIFY NONE")
    return steps


if len(sys.argv) > 1:
    for name, lines in run(sys.argv[1]):
        print(f"== {name}")
        for l in lines:
            print("  ", l)
    sys.exit(0)

ours, theirs = run("mailroomd"), run("dovecot")
for (name, o), (_, t) in zip(ours, theirs):
    if name in DIFFERENCES:
        exp_o, exp_t, why = DIFFERENCES[name]
        check(o == exp_o and t == exp_t,
              f"{name}: mailroomd {o} Dovecot {t}, a known difference ({why})")
        continue
    check(same(o, t), f"{name}: mailroomd {o} Dovecot {t}")

if failures:
    print(f"{len(failures)} FAILED")
    sys.exit(1)
print("ALL OK")
