#!/usr/bin/env bash
# Postfix accepts mail by SMTP and hands it to the server under test over
# LMTP (mailbox_transport = lmtp:...); the message is then read back by POP3.
#
#   MR_LMTP=inet:127.0.0.1:2424 (or unix:/path/to/lmtp.sock)
#   MR_HOST, MR_POP3_PORT, MR_USER, MR_PASSWORD: POP3 of the same server
source "$(dirname "$0")/lib.sh"
need python3
: "${MR_LMTP:?set MR_LMTP to inet:HOST:PORT or unix:/path}"

start_postfix "$MR_LMTP"
before="$(pop3 count)"
id1="$(send_smtp "$MR_USER" "postfix e2e one")"
id2="$(send_smtp "$MR_USER" "postfix e2e two" 20000)"
# A body that SMTP and LMTP must both dot-stuff, with tabs, trailing blanks
# and an empty line: it must come back byte for byte.
printf 'first line\n.leading dot\n..two dots\n.\n\ttab indented\ntrailing blanks   \n\nlast line\n' > "$PF_DIR/body.txt"
id3="$(send_smtp_exact "$MR_USER" "exact body" "$PF_DIR/body.txt")"
wait_queue_empty 30
grep -q "status=sent (250 2.0.0" "$PF_DIR/maillog" || { cat "$PF_DIR/maillog" >&2; die "no LMTP 250 in the Postfix log"; }
after="$(pop3 count)"
[ "$after" -eq $((before + 3)) ] || die "expected $((before + 3)) messages, POP3 shows $after"
for id in "$id1" "$id2" "$id3"; do
    [ "$(pop3 msgid-count "$id")" = 1 ] || die "message $id not delivered exactly once"
done
pop3 body "$id3" > "$PF_DIR/got.txt"
python3 - "$PF_DIR/body.txt" "$PF_DIR/got.txt" <<'PY' || die "the body did not arrive byte for byte"
import sys
want = open(sys.argv[1], "rb").read().replace(b"\n", b"\r\n")
got = open(sys.argv[2], "rb").read()
if want != got:
    sys.exit("body differs:\n got  %r\n want %r" % (got, want))
PY
# (Captured first: `pop3 ... | grep -q` would fail under pipefail when grep
# stops reading early.)
return_path="$(pop3 header "$id1" Return-Path)"
grep -q "<sender@example.org>" <<<"$return_path" || die "Return-Path missing: $return_path"
received="$(pop3 header "$id1" Received)"
grep -q "with LMTP" <<<"$received" || die "LMTP Received: header missing: $received"

# An unknown user is bounced by the LMTP server (550 5.1.1), not deferred.
send_smtp "nobody-here@example.com" "to nobody" >/dev/null
wait_queue_empty 30
grep -q "550 5.1.1" "$PF_DIR/maillog" || { cat "$PF_DIR/maillog" >&2; die "no 550 5.1.1 for an unknown user"; }
echo "postfix_lmtp: ok ($MR_LMTP)"
