#!/usr/bin/env bash
# Delivery benchmark: messages per second over one LMTP connection and over 8,
# for the server under test and for Dovecot's LMTP (Debian dovecot-lmtpd,
# Maildir, mail_fsync = always) on the same machine in the same run.
# Run the server under test with fsync on (the CRC store's default).
#
#   MR_LMTP_HOST, MR_LMTP_PORT: the server under test;  MR_USER: a recipient it knows
#   BENCH_MESSAGES (default 2000), BENCH_SIZE (default 4096 bytes)
source "$(dirname "$0")/lib.sh"
need python3
DOVECOT=/usr/sbin/dovecot
[ -x "$DOVECOT" ] || die "Dovecot is not installed (Debian packages dovecot-core dovecot-lmtpd)"
: "${MR_LMTP_PORT:?set MR_LMTP_PORT}"
MR_LMTP_HOST="${MR_LMTP_HOST:-127.0.0.1}"
N="${BENCH_MESSAGES:-2000}"
SIZE="${BENCH_SIZE:-4096}"

D="$(mktemp -d /tmp/mr-dovecot-bench.XXXXXX)"
chmod 755 "$D"
mkdir -p "$D/run" "$D/state" "$D/home"
chown -R nobody:nogroup "$D/home"
DPORT="$(free_port)"
cat > "$D/dovecot.conf" <<CF
protocols = lmtp
listen = 127.0.0.1
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
ssl = no
first_valid_uid = 1
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$D/home/%u allow_all_users=yes
}
mail_location = maildir:~/Maildir
mail_fsync = always
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DPORT
  }
}
CF
"$DOVECOT" -c "$D/dovecot.conf" || die "dovecot did not start"
trap '"$DOVECOT" -c "$D/dovecot.conf" stop >/dev/null 2>&1 || true; sleep 0.5; rm -rf "$D"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$DPORT") 2>/dev/null && break; sleep 0.1; done

bench() { python3 "$HERE/bench_lmtp.py" --rcpt "$MR_USER" --messages "$N" --size "$SIZE" "$@" \
    | grep '^RESULT' || die "benchmark run failed: $*"; }
results=()
for conns in 1 8; do
    results+=("$(bench --label mailroom --host "$MR_LMTP_HOST" --port "$MR_LMTP_PORT" --connections "$conns")")
    results+=("$(bench --label dovecot --host 127.0.0.1 --port "$DPORT" --connections "$conns")")
done
delivered="$(find "$D/home" -path '*/Maildir/new/*' -type f | wc -l)"
[ "$delivered" -eq $((2 * N)) ] || die "dovecot stored $delivered messages, expected $((2 * N))"

printf '%-10s %6s %8s %9s %10s\n' server conns messages seconds "msgs/s"
for r in "${results[@]}"; do
    read -r _ label conns msgs secs rate <<<"$r"
    printf '%-10s %6s %8s %9s %10s\n' "$label" "$conns" "$msgs" "$secs" "$rate"
done
