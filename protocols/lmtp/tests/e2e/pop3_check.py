"""POP3 probes for the e2e scripts (poplib): count messages, find Message-IDs.

  pop3_check.py --host H --port P --user U --password PW count
  pop3_check.py ... msgid-count '<id@x>'     # how many messages carry this Message-ID
  pop3_check.py ... header '<id@x>' NAME     # prints header NAME of that message
  pop3_check.py ... delete-all
"""
import argparse
import poplib
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("action")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    p = poplib.POP3(a.host, a.port, timeout=30)
    p.user(a.user)
    p.pass_(a.password)
    count = p.stat()[0]
    if a.action == "count":
        print(count)
    elif a.action in ("msgid-count", "header"):
        want = a.args[0].encode()
        found = []
        for n in range(1, count + 1):
            _, lines, _ = p.top(n, 0)
            if any(l.lower().startswith(b"message-id:") and want in l for l in lines):
                found.append(lines)
        if a.action == "msgid-count":
            print(len(found))
        else:
            name = a.args[1].lower().encode() + b":"
            for lines in found:
                # Unfold continuation lines, then print every matching field.
                fields = []
                for l in lines:
                    if l[:1] in (b" ", b"\t") and fields:
                        fields[-1] += b" " + l.strip()
                    else:
                        fields.append(l)
                for f in fields:
                    if f.lower().startswith(name):
                        print(f.decode(errors="replace"))
    elif a.action == "delete-all":
        for n in range(1, count + 1):
            p.dele(n)
    else:
        sys.exit("unknown action " + a.action)
    p.quit()


if __name__ == "__main__":
    main()
