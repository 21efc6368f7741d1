"""LMTP delivery benchmark: messages per second over C connections.

  bench_lmtp.py --host 127.0.0.1 --port 2424 --rcpt alice@example.com \
      --connections 8 --messages 2000 --size 4096 [--label mailroomd]

Each connection runs MAIL/RCPT/DATA back to back (smtplib.LMTP); every
message must be accepted (250) or the run fails. Prints one result line:
  RESULT label connections messages seconds msgs_per_sec
"""
import argparse
import smtplib
import sys
import threading
import time


def worker(args, count, errors, barrier):
    try:
        if args.socket:
            c = smtplib.LMTP(args.socket)
        else:
            c = smtplib.LMTP(args.host, args.port)
        body = ("x" * 75 + "\r\n") * max(1, args.size // 77)
        barrier.wait()
        for i in range(count):
            msg = (f"From: bench@example.org\r\nTo: {args.rcpt}\r\nSubject: bench {i}\r\n"
                   f"Message-ID: <{time.time_ns()}.{threading.get_ident()}.{i}@bench>\r\n\r\n{body}")
            refused = c.sendmail("bench@example.org", [args.rcpt], msg)
            if refused:
                raise RuntimeError(f"refused: {refused}")
        c.quit()
    except Exception as e:  # reported by the main thread
        errors.append(repr(e))
        barrier.abort()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=24)
    ap.add_argument("--socket", default="")
    ap.add_argument("--rcpt", required=True)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--label", default="server")
    args = ap.parse_args()
    per = [args.messages // args.connections] * args.connections
    per[0] += args.messages - sum(per)
    errors = []
    barrier = threading.Barrier(args.connections + 1)
    threads = [threading.Thread(target=worker, args=(args, n, errors, barrier)) for n in per]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=30)
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - start
    if errors:
        print("FAIL:", errors[0], file=sys.stderr)
        sys.exit(1)
    print(f"RESULT {args.label} {args.connections} {args.messages} {secs:.3f} {args.messages / secs:.1f}")


if __name__ == "__main__":
    main()
