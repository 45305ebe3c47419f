#!/usr/bin/env bash
# Starts a real FTP server on 127.0.0.1 in the foreground, for benchmarks and manual runs.
#   benches/real-server.sh vsftpd|pyftpdlib|proftpd|pure-ftpd CTRL_PORT PASV_MIN PASV_MAX
# Needs .ci/install-servers.sh (user ftpswarm / ftpswarm-test, PAM service; ProFTPD and
# Pure-FTPd unpacked under /opt/ftpswarm-servers). Ctrl-C or SIGTERM stops it.
# Then e.g.: FTPSWARM_PASSWORD=ftpswarm-test ftpswarm run --target ftp://ftpswarm@127.0.0.1:PORT \
#              --pasv-range MIN-MAX --prepare
set -euo pipefail
kind=${1:?vsftpd, pyftpdlib, proftpd or pure-ftpd}; port=${2:?control port}; lo=${3:?pasv min}; hi=${4:?pasv max}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
case "$kind" in
vsftpd)
    root=/home/ftpswarm/fixtures/bench-$$; mkdir -p "$root"; chown ftpswarm: "$root"
    trap 'rm -rf "$work" "$root"' EXIT
    mkdir -p "$work/empty"
    cat >"$work/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name=ftpswarm-vsftpd
userlist_enable=NO
session_support=NO
local_root=$root
chroot_local_user=YES
allow_writeable_chroot=YES
secure_chroot_dir=$work/empty
pasv_enable=YES
pasv_min_port=$lo
pasv_max_port=$hi
pasv_address=127.0.0.1
connect_from_port_20=NO
max_clients=2000
max_per_ip=2000
xferlog_enable=NO
CONF
    chmod 600 "$work/vsftpd.conf"
    # vsftpd reports configuration errors on fd 0.
    /usr/sbin/vsftpd "$work/vsftpd.conf" 0>&1
    ;;
pyftpdlib)
    mkdir -p "$work/root"
    python3 - "$port" "$lo" "$hi" "$work/root" <<'PY'
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, lo, hi, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
logging.basicConfig(level=logging.WARNING)
auth = DummyAuthorizer(); auth.add_user("ftpswarm", "ftpswarm-test", root, perm="elradfmwMT")
FTPHandler.authorizer = auth
FTPHandler.passive_ports = range(lo, hi + 1)
FTPHandler.masquerade_address = "127.0.0.1"
server = FTPServer(("127.0.0.1", port), FTPHandler)
server.max_cons = 0; server.max_cons_per_ip = 0
server.serve_forever()
PY
    ;;
proftpd|pure-ftpd)
    root=/home/ftpswarm/fixtures/bench-$$; mkdir -p "$root"; chown ftpswarm: "$root"
    trap 'rm -rf "$work" "$root"' EXIT
    servers=${FTPSWARM_SERVERS_DIR:-/opt/ftpswarm-servers}
    # A SHA-512 crypt hash keeps logins cheap (an argon2 hash costs 1-3 s per login).
    hash=$(openssl passwd -6 -salt ftpswarmbench ftpswarm-test)
    uid=$(id -u ftpswarm); gid=$(id -g ftpswarm)
    if [ "$kind" = proftpd ]; then
        [ "$lo" -lt "$hi" ] || { echo "ProFTPD's PassivePorts needs min < max" >&2; exit 2; }
        echo "ftpswarm:$hash:$uid:$gid::$root:/bin/bash" >"$work/passwd"
        chmod 600 "$work/passwd"
        cat >"$work/proftpd.conf" <<CONF
ServerType standalone
DefaultAddress 127.0.0.1
SocketBindTight on
Port $port
User nobody
Group nogroup
UseIPv6 off
UseReverseDNS off
DelayEngine off
WtmpLog off
AuthOrder mod_auth_file.c
AuthUserFile $work/passwd
RequireValidShell off
DefaultRoot ~
MaxInstances 2000
MaxClients none
MaxLoginAttempts 100
PassivePorts $lo $hi
MasqueradeAddress 127.0.0.1
AllowOverwrite on
PidFile $work/proftpd.pid
ScoreboardFile $work/proftpd.scoreboard
DelayTable none
TransferLog none
SystemLog none
ServerLog none
CONF
        "$servers/usr/sbin/proftpd" --nodaemon --config "$work/proftpd.conf"
    else
        echo "ftpswarm:$hash:$uid:$gid::$root/./::::::::::::" >"$work/pureftpd.passwd"
        "$servers/usr/bin/pure-pw" mkdb "$work/pureftpd.pdb" -f "$work/pureftpd.passwd"
        # Pure-FTPd caps clients at width/2 by itself (and width 1 means no cap): -c only
        # when the range is wider than that.
        "$servers/usr/sbin/pure-ftpd" -S "127.0.0.1,$port" -p "$lo:$hi" -P 127.0.0.1 \
            -l "puredb:$work/pureftpd.pdb" -E -A -H -c 2000 -C 2000
    fi
    ;;
*) echo "unknown server $kind (vsftpd, pyftpdlib, proftpd or pure-ftpd)" >&2; exit 2 ;;
esac
