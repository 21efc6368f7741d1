#!/usr/bin/env bash
# The quota test of issue 4: fill a user to the limit, deliver more through
# Postfix, see the message deferred (452 4.2.2: not bounced, not lost) in
# Postfix's queue, raise the quota, flush the queue, see it delivered once.
#
#   MR_LMTP=inet:127.0.0.1:2424 (or unix:/path)
#   MR_QUOTA_SET='mailroomd --config /etc/mailroom.toml quota set {user} --storage {kib}'
#       ({user} and {kib} are substituted; {kib} may be "0" for a tiny quota)
#   MR_HOST, MR_POP3_PORT, MR_USER, MR_PASSWORD: POP3 of the same server
source "$(dirname "$0")/lib.sh"
need python3
: "${MR_LMTP:?set MR_LMTP}"
: "${MR_QUOTA_SET:?set MR_QUOTA_SET to the quota command template}"

quota_set() {
    local cmd="${MR_QUOTA_SET//\{user\}/$MR_USER}"
    cmd="${cmd//\{kib\}/$1}"
    eval "$cmd" || die "quota command failed: $cmd"
}

start_postfix "$MR_LMTP"
pop3 delete-all
quota_set 16
fill="$(send_smtp "$MR_USER" "fills the quota" 12000)"
wait_queue_empty 30
[ "$(pop3 msgid-count "$fill")" = 1 ] || die "the first message should fit"

over="$(send_smtp "$MR_USER" "over quota" 12000)"
for _ in $(seq 100); do grep -q "452 4.2.2" "$PF_DIR/maillog" 2>/dev/null && break; sleep 0.1; done
grep -q "status=deferred.*452 4.2.2" "$PF_DIR/maillog" || { cat "$PF_DIR/maillog" >&2; die "no deferral with 452 4.2.2"; }
queue_empty && die "the over-quota message left the queue"
queue="$(queue_list)"
grep -q "452 4.2.2" <<<"$queue" || die "queue entry does not show 452 4.2.2: $queue"
grep -q "status=bounced" "$PF_DIR/maillog" && die "a message was bounced"
[ "$(pop3 msgid-count "$over")" = 0 ] || die "over-quota message was stored"

quota_set 10000
postqueue -c "$PF_DIR/etc" -f
wait_queue_empty 30
[ "$(pop3 msgid-count "$over")" = 1 ] || die "deferred message not delivered exactly once after the flush"
[ "$(pop3 msgid-count "$fill")" = 1 ] || die "first message duplicated or lost"
echo "postfix_quota: ok"
