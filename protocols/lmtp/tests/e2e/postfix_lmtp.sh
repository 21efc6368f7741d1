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
wait_queue_empty 30
grep -q "status=sent (250 2.0.0" "$PF_DIR/maillog" || { cat "$PF_DIR/maillog" >&2; die "no LMTP 250 in the Postfix log"; }
after="$(pop3 count)"
[ "$after" -eq $((before + 2)) ] || die "expected $((before + 2)) messages, POP3 shows $after"
for id in "$id1" "$id2"; do
    [ "$(pop3 msgid-count "$id")" = 1 ] || die "message $id not delivered exactly once"
done
pop3 header "$id1" Return-Path | grep -q "<sender@example.org>" || die "Return-Path missing"
pop3 header "$id1" Received | grep -q "with LMTP" || die "LMTP Received: header missing"

# An unknown user is bounced by the LMTP server (550 5.1.1), not deferred.
send_smtp "nobody-here@example.com" "to nobody" >/dev/null
wait_queue_empty 30
grep -q "550 5.1.1" "$PF_DIR/maillog" || { cat "$PF_DIR/maillog" >&2; die "no 550 5.1.1 for an unknown user"; }
echo "postfix_lmtp: ok ($MR_LMTP)"
