#!/usr/bin/env bash
# Archive journaling behind Postfix: sender_bcc_maps sends a copy of every
# message a local user submits to the journal address journal+USER@DOMAIN
# (see mailroom_core::archive); the message lands in the recipient's INBOX
# and in the sender's archive (read by the domain admin over IMAP).
#
#   MR_LMTP=inet:127.0.0.1:2424, MR_HOST, MR_POP3_PORT, MR_IMAP_PORT, MR_CERT
#   MR_USER/MR_PASSWORD: the recipient; MR_SENDER: the archived sender;
#   MR_ADMIN/MR_ADMIN_PASSWORD: the sender's domain admin; MR_MONTH: YYYY-MM
source "$(dirname "$0")/lib.sh"
need python3
: "${MR_LMTP:?}" "${MR_SENDER:?}" "${MR_ADMIN:?}" "${MR_ADMIN_PASSWORD:?}" "${MR_MONTH:?}" "${MR_IMAP_PORT:?}"

start_postfix "$MR_LMTP"
cat > "$PF_DIR/etc/sender_bcc" <<'MAP'
/^([^+@]+)@example\.com$/ journal+${1}@example.com
MAP
postconf -c "$PF_DIR/etc" "sender_bcc_maps = regexp:$PF_DIR/etc/sender_bcc"
postfix -c "$PF_DIR/etc" reload >/dev/null 2>&1 || die "postfix reload failed"
sleep 1

id="<$(date +%s%N).$RANDOM@e2e.test>"
swaks --silent 2 --server "127.0.0.1:$PF_SMTP_PORT" --from "$MR_SENDER" --to "$MR_USER" \
    --header "Subject: journaled" --header "Message-ID: $id" --body "journal me" >/dev/null \
    || die "swaks could not submit to postfix"
wait_queue_empty 30
grep -q "journal+" "$PF_DIR/maillog" || { cat "$PF_DIR/maillog" >&2; die "no journal copy in the Postfix log"; }
[ "$(pop3 msgid-count "$id")" = 1 ] || die "message $id not in the recipient's INBOX exactly once"

python3 - "$id" <<'PY' || die "the message is not in the sender's archive"
import imaplib, os, re, ssl, sys
want = sys.argv[1]
ctx = ssl.create_default_context(cafile=os.environ["MR_CERT"])
ctx.check_hostname = False
m = imaplib.IMAP4(os.environ["MR_HOST"], int(os.environ["MR_IMAP_PORT"]))
m.starttls(ctx)
m.login(os.environ["MR_ADMIN"], os.environ["MR_ADMIN_PASSWORD"])
local = os.environ["MR_SENDER"].split("@")[0]
box = '"Other Users/archive@example.com/%s/%s/out"' % (local, os.environ["MR_MONTH"])
typ, _ = m.select(box, readonly=True)
assert typ == "OK", typ
typ, data = m.search(None, "HEADER", "Message-ID", want)
hits = data[0].split()
assert len(hits) == 1, hits
print("archived", box, len(hits))
m.logout()
PY
echo "postfix_journal: ok"
