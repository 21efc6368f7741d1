# Shared helpers for the end-to-end scripts (sourced, not run).
# Every required program is checked up front: a missing one is a failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MR_HOST="${MR_HOST:-127.0.0.1}"
MR_POP3_PORT="${MR_POP3_PORT:-1110}"
MR_USER="${MR_USER:-alice@example.com}"
MR_PASSWORD="${MR_PASSWORD:-secret}"

die() { echo "FAIL: $*" >&2; exit 1; }
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed"; done; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# POP3 security: plain (USER/PASS in the clear; the memory_server example),
# stls (STLS on MR_POP3_PORT, as mailroomd with allow_plaintext = false
# requires) or implicit (TLS on MR_POP3_PORT). MR_CAFILE: the certificate to trust.
MR_POP3_TLS="${MR_POP3_TLS:-plain}"
MR_CAFILE="${MR_CAFILE:-}"

# pop3 ARGS...: runs pop3_check.py against the server under test.
pop3() { python3 "$HERE/pop3_check.py" --host "$MR_HOST" --port "$MR_POP3_PORT" \
    --tls "$MR_POP3_TLS" --cafile "$MR_CAFILE" \
    --user "$MR_USER" --password "$MR_PASSWORD" "$@"; }

# start_postfix NEXTHOP: a throw-away Postfix on loopback whose local mailbox
# delivery goes to lmtp:NEXTHOP (inet:HOST:PORT or unix:/path). Sets PF_DIR,
# PF_SMTP_PORT; stopped by stop_postfix (installed as an EXIT trap).
start_postfix() {
    need postfix postconf postqueue swaks
    PF_DIR="$(mktemp -d /tmp/mr-postfix.XXXXXX)"
    chmod 755 "$PF_DIR"
    mkdir -p "$PF_DIR/etc" "$PF_DIR/queue" "$PF_DIR/data"
    chown postfix "$PF_DIR/data"
    PF_SMTP_PORT="$(free_port)"
    cp /etc/postfix/master.cf "$PF_DIR/etc/master.cf"
    cp /etc/postfix/dynamicmaps.cf "$PF_DIR/etc/" 2>/dev/null || true
    [ -d /etc/postfix/dynamicmaps.cf.d ] && cp -r /etc/postfix/dynamicmaps.cf.d "$PF_DIR/etc/"
    cat > "$PF_DIR/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test
myorigin = mx.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination = example.com, localhost
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
local_recipient_maps =
alias_maps =
alias_database =
mailbox_transport = lmtp:$1
maillog_file_prefixes = /var, /dev/stdout, /tmp
maillog_file = $PF_DIR/maillog
biff = no
smtputf8_enable = no
# Retries only when the test flushes the queue.
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
CF
    postconf -c "$PF_DIR/etc" -F '*/*/chroot = n'
    postconf -c "$PF_DIR/etc" -MX smtp/inet
    postconf -c "$PF_DIR/etc" -M "127.0.0.1:$PF_SMTP_PORT/inet=127.0.0.1:$PF_SMTP_PORT inet n - n - - smtpd"
    trap stop_postfix EXIT
    postfix -c "$PF_DIR/etc" start >/dev/null 2>&1 || { postfix -c "$PF_DIR/etc" start >&2 || true; die "postfix did not start"; }
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PF_SMTP_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    die "postfix is not listening on $PF_SMTP_PORT"
}

stop_postfix() {
    [ -n "${PF_DIR:-}" ] || return 0
    postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    if [ -n "${KEEP_WORKDIR:-}" ]; then echo "postfix dir kept: $PF_DIR" >&2; else rm -rf "$PF_DIR"; fi
}

# send_smtp TO SUBJECT [BODY-BYTES]: one message through the Postfix instance;
# prints its Message-ID.
send_smtp() {
    local id="<$(date +%s%N).$RANDOM@e2e.test>"
    local filler=""
    if [ "${3:-0}" -gt 0 ]; then filler="$(head -c "$3" /dev/zero | tr '\0' 'x' | fold -w 76)"; fi
    swaks --silent 2 --server "127.0.0.1:$PF_SMTP_PORT" --from sender@example.org --to "$1" \
        --header "Subject: $2" --header "Message-ID: $id" --body "${filler:-e2e body}" >/dev/null \
        || die "swaks could not submit to postfix"
    echo "$id"
}

# send_smtp_exact TO SUBJECT BODY-FILE: one message whose body is exactly
# BODY-FILE (LF line ends sent as CRLF), submitted with Python's smtplib
# (swaks adds a line end of its own); prints its Message-ID.
send_smtp_exact() {
    python3 - "$PF_SMTP_PORT" "$1" "$2" "$3" <<'PY' || die "smtplib could not submit to postfix"
import random, smtplib, sys, time
port, to, subject, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
body = open(path, "rb").read().replace(b"\n", b"\r\n")
mid = "<%d.%d@e2e.test>" % (time.time_ns(), random.randrange(1 << 30))
head = "From: sender@example.org\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n" % (to, subject, mid)
s = smtplib.SMTP("127.0.0.1", port)
s.sendmail("sender@example.org", [to], head.encode() + body)  # dot-stuffs the body
s.quit()
print(mid)
PY
}

# The queue listing (captured, not piped into grep -q: see postfix_lmtp.sh).
queue_list() { postqueue -c "$PF_DIR/etc" -p 2>/dev/null || true; }
queue_empty() { grep -q "Mail queue is empty" <<<"$(queue_list)"; }

# wait_queue_empty [SECONDS]
wait_queue_empty() {
    for _ in $(seq $((${1:-30} * 10))); do queue_empty && return 0; sleep 0.1; done
    postqueue -c "$PF_DIR/etc" -p >&2
    die "postfix queue did not drain"
}
