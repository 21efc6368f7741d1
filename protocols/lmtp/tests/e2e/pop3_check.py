"""POP3 probes for the e2e scripts (poplib): count messages, find Message-IDs.

  pop3_check.py --host H --port P --user U --password PW count
  pop3_check.py ... msgid-count '<id@x>'     # how many messages carry this Message-ID
  pop3_check.py ... header '<id@x>' NAME     # prints header NAME of that message
  pop3_check.py ... body '<id@x>'            # writes that message's body, exactly as RETR gives it
  pop3_check.py ... delete-all

TLS: --tls plain (default; USER/PASS in the clear), --tls stls (STLS first)
or --tls implicit (POP3S on --port); --cafile PEM is the certificate to
trust (the server's self-signed one), hostname not checked.
"""
import argparse
import poplib
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--tls", choices=("plain", "stls", "implicit"), default="plain")
    ap.add_argument("--cafile", default="")
    ap.add_argument("action")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    ctx = None
    if a.tls != "plain":
        ctx = ssl.create_default_context(cafile=a.cafile or None)
        ctx.check_hostname = False
    if a.tls == "implicit":
        p = poplib.POP3_SSL(a.host, a.port, timeout=30, context=ctx)
    else:
        p = poplib.POP3(a.host, a.port, timeout=30)
        if a.tls == "stls":
            p.stls(ctx)
    p.user(a.user)
    p.pass_(a.password)
    count = p.stat()[0]
    if a.action == "count":
        print(count)
    elif a.action == "body":
        want = a.args[0].encode()
        bodies = []
        for n in range(1, count + 1):
            _, lines, _ = p.top(n, 0)
            if any(l.lower().startswith(b"message-id:") and want in l for l in lines):
                # poplib strips the line ends and undoes the dot-stuffing
                _, lines, _ = p.retr(n)
                bodies.append(b"".join(l + b"\r\n" for l in lines[lines.index(b"") + 1:]))
        if len(bodies) != 1:
            sys.exit("%d messages carry %s" % (len(bodies), a.args[0]))
        sys.stdout.buffer.write(bodies[0])
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
