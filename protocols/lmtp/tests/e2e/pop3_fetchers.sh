#!/usr/bin/env bash
# fetchmail and getmail retrieve over POP3 in UIDL-based "keep" mode; a
# second run downloads nothing new, and a message delivered in between is
# the only one the third run fetches.
#
#   MR_HOST, MR_POP3_PORT, MR_USER, MR_PASSWORD: the POP3 server under test
#   MR_LMTP_HOST, MR_LMTP_PORT: its LMTP listener (to deliver test messages)
#   MR_POP3_TLS: plain (default: both clients send USER/PASS in the clear) or
#     stls: fetchmail uses STLS on MR_POP3_PORT and getmail implicit TLS on
#     MR_POP3S_PORT, both verifying the server's certificate MR_CAFILE
source "$(dirname "$0")/lib.sh"
need python3 fetchmail getmail
MR_LMTP_HOST="${MR_LMTP_HOST:-127.0.0.1}"
MR_LMTP_PORT="${MR_LMTP_PORT:-2424}"

W="$(mktemp -d /tmp/mr-fetch.XXXXXX)"
trap '[ -n "${KEEP_WORKDIR:-}" ] || rm -rf "$W"' EXIT

deliver() { # deliver N TAG
    python3 - "$MR_LMTP_HOST" "$MR_LMTP_PORT" "$MR_USER" "$1" "$2" <<'PY'
import smtplib, sys
host, port, user, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
c = smtplib.LMTP(host, port)
for i in range(n):
    msg = f"From: e2e@example.org\r\nTo: {user}\r\nSubject: fetchtest {tag} {i}\r\nMessage-ID: <{tag}.{i}@e2e.test>\r\n\r\nbody {i}\r\n.leading dot\r\n"
    refused = c.sendmail("e2e@example.org", [user], msg)
    assert not refused, refused
c.quit()
PY
}
count() { grep -c "^Subject: fetchtest" "$1" 2>/dev/null || true; }

pop3 delete-all
deliver 5 first

# fetchmail: keep + uidl, delivering to an mbox through an MDA.
if [ "$MR_POP3_TLS" = plain ]; then
    FM_TLS="sslproto ''"
else
    [ -f "$MR_CAFILE" ] || die "MR_CAFILE must name the server's certificate"
    : "${MR_POP3S_PORT:?set MR_POP3S_PORT for getmail over POP3S}"
    # sslproto without ssl: STLS is required (no fallback to the clear);
    # the certificate must verify against MR_CAFILE and name the host.
    # fetchmail checks DNS names only (not IP addresses): MR_TLS_NAME is the
    # name the certificate carries for MR_HOST (mailroomd's self-signed one
    # has localhost).
    FM_TLS="sslproto 'TLS1.2+' sslcertck sslcertfile '$MR_CAFILE' sslcommonname '${MR_TLS_NAME:-localhost}'"
fi
cat > "$W/fetchmailrc" <<RC
set no syslog
set idfile "$W/fetchids"
poll $MR_HOST service $MR_POP3_PORT protocol pop3 uidl auth password
    user "$MR_USER" there with password "$MR_PASSWORD" is root here
    options keep no rewrite $FM_TLS
    mda "/bin/sh -c 'cat >> $W/fetchmail.mbox'"
RC
chmod 600 "$W/fetchmailrc"
fm() { fetchmail -f "$W/fetchmailrc" --nodetach -s >>"$W/fetchmail.log" 2>&1 || [ $? -eq 1 ] \
    || { cat "$W/fetchmail.log" >&2; false; }; } # 1 = no mail
fm || die "fetchmail failed"
[ "$(count "$W/fetchmail.mbox")" = 5 ] || die "fetchmail first run got $(count "$W/fetchmail.mbox"), want 5"
fm || die "fetchmail failed"
[ "$(count "$W/fetchmail.mbox")" = 5 ] || die "fetchmail second run downloaded again"

# getmail: SimplePOP3Retriever (or SimplePOP3SSLRetriever) with
# read_all = false (UIDL memory), delete = false.
mkdir -p "$W/getmail"
if [ "$MR_POP3_TLS" = plain ]; then
    GM_RETRIEVER="type = SimplePOP3Retriever
port = $MR_POP3_PORT"
else
    GM_RETRIEVER="type = SimplePOP3SSLRetriever
port = $MR_POP3S_PORT
ca_certs = $MR_CAFILE"
fi
cat > "$W/getmail/getmailrc" <<RC
[retriever]
$GM_RETRIEVER
server = $MR_HOST
username = $MR_USER
password = $MR_PASSWORD

[destination]
# An external MDA (getmail's mbox writer refuses to run as root, as CI does).
type = MDA_external
path = /bin/sh
arguments = ("-c", "cat >> $W/getmail.mbox")
allow_root_commands = true

[options]
read_all = false
delete = false
verbose = 0
RC
gm() { getmail --getmaildir "$W/getmail" --rcfile getmailrc >>"$W/getmail.log" 2>&1 \
    || { cat "$W/getmail.log" >&2; false; }; }
gm || die "getmail failed"
[ "$(count "$W/getmail.mbox")" = 5 ] || die "getmail first run got $(count "$W/getmail.mbox"), want 5"
gm || die "getmail failed"
[ "$(count "$W/getmail.mbox")" = 5 ] || die "getmail second run downloaded again"

# One new message: each client fetches exactly that one.
deliver 1 second
fm || die "fetchmail failed"
gm || die "getmail failed"
[ "$(count "$W/fetchmail.mbox")" = 6 ] || die "fetchmail did not fetch exactly the new message"
[ "$(count "$W/getmail.mbox")" = 6 ] || die "getmail did not fetch exactly the new message"
grep -q "^Subject: fetchtest second 0" "$W/fetchmail.mbox" || die "fetchmail missed the new message"
[ "$(pop3 count)" = 6 ] || die "keep mode deleted messages"
echo "pop3_fetchers: ok"
