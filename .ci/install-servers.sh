#!/usr/bin/env bash
# Installs the real FTP servers that ftpswarm's integration tests start
# themselves (see tests/common/servers.rs): vsftpd (Debian package),
# pyftpdlib (PyPI), ProFTPD and Pure-FTPd (Debian packages unpacked under
# /opt/ftpswarm-servers, since all three Debian FTP servers conflict on
# ftp-server), plus the local account they log in as.
#
# Idempotent: every step checks first, so running it twice is cheap.
# Must run as root (apt-get, useradd, /etc/pam.d).
#
# The tests start their own vsftpd instances on free loopback ports with
# their own config files; the stock vsftpd service on port 21 is never needed
# and must not be left running.
set -euo pipefail

# Keep these in sync with tests/common/servers.rs.
FTP_USER="ftpswarm"
FTP_PASSWORD="ftpswarm-test"
FTP_HOME="/home/${FTP_USER}"
PAM_SERVICE="ftpswarm-vsftpd"

log() { printf '[install-servers] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (apt-get, useradd, /etc/pam.d)"
    exit 1
fi

# --- vsftpd -----------------------------------------------------------------
if [ -x /usr/sbin/vsftpd ]; then
    log "vsftpd already installed: skipping apt-get"
else
    export DEBIAN_FRONTEND=noninteractive
    # Stop the package's maintainer scripts from starting the stock service
    # on port 21 (exit 101 = "action forbidden" for invoke-rc.d). Only add a
    # policy-rc.d if the machine has none, and remove only the one we added.
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        added_policy="yes"
    fi
    cleanup_policy() {
        if [ -n "${added_policy}" ]; then rm -f /usr/sbin/policy-rc.d; fi
    }
    trap cleanup_policy EXIT
    apt-get update
    apt-get install -y --no-install-recommends vsftpd
    cleanup_policy
    trap - EXIT
fi

# Whatever happened above (an older install, a machine with systemd), make
# sure the stock service is neither running nor enabled: tests never use it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now vsftpd.service >/dev/null 2>&1 || true
else
    # The init script stops by pidfile, so this never touches the test
    # instances (which the tests start with their own config files).
    if [ -x /etc/init.d/vsftpd ] && [ -f /var/run/vsftpd/vsftpd.pid ]; then
        /etc/init.d/vsftpd stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d vsftpd disable >/dev/null 2>&1 || true
    fi
fi

# vsftpd's default secure_chroot_dir. The fixture points secure_chroot_dir at
# a directory of its own, but keep the default present (it lives under /run,
# which is a tmpfs on a booted system and is normally made by the init script).
mkdir -p /var/run/vsftpd/empty
chmod 0755 /var/run/vsftpd/empty

# --- ProFTPD and Pure-FTPd, unpacked beside vsftpd ------------------------------
# Their packages conflict with vsftpd's (Conflicts: ftp-server), so they are not
# installed: their libraries are, and the packages are unpacked with dpkg -x. The
# tests run the binaries from there with their own configuration.
SERVERS_DIR="${FTPSWARM_SERVERS_DIR:-/opt/ftpswarm-servers}"
if [ -x "${SERVERS_DIR}/usr/sbin/proftpd" ] && [ -x "${SERVERS_DIR}/usr/sbin/pure-ftpd" ] \
    && [ -f "${SERVERS_DIR}/usr/lib/proftpd/mod_tls.so" ]; then
    log "ProFTPD and Pure-FTPd already unpacked in ${SERVERS_DIR}: skipping"
else
    export DEBIAN_FRONTEND=noninteractive
    # The shared libraries proftpd-core and pure-ftpd link against.
    apt-get install -y --no-install-recommends libhiredis0.14 libmemcached11 libmemcachedutil2 \
        libsodium23 libpcre2-posix3 libcap2 libssl3 openssl || {
        apt-get update
        apt-get install -y --no-install-recommends libhiredis0.14 libmemcached11 libmemcachedutil2 \
            libsodium23 libpcre2-posix3 libcap2 libssl3 openssl
    }
    debs=$(mktemp -d)
    chmod 0755 "${debs}"
    # proftpd-mod-crypto carries mod_tls (FTPS), a module proftpd loads at start.
    (cd "${debs}" && apt-get download proftpd-core proftpd-mod-crypto pure-ftpd)
    mkdir -p "${SERVERS_DIR}"
    for deb in "${debs}"/*.deb; do dpkg -x "${deb}" "${SERVERS_DIR}"; done
    rm -rf "${debs}"
fi
"${SERVERS_DIR}/usr/sbin/proftpd" --version >/dev/null # fail loudly if a library is missing
"${SERVERS_DIR}/usr/sbin/pure-ftpd" --help >/dev/null 2>&1 || [ $? -le 1 ]

# --- pyftpdlib ----------------------------------------------------------------
PYTHON="${FTPSWARM_PYTHON:-python3}"
# pyOpenSSL: pyftpdlib's TLS_FTPHandler (FTPS) needs it.
if "${PYTHON}" -c 'import pyftpdlib, OpenSSL' >/dev/null 2>&1; then
    log "pyftpdlib and pyOpenSSL already importable by ${PYTHON}: skipping pip"
else
    "${PYTHON}" -m pip install --disable-pip-version-check --no-input --root-user-action=ignore pyftpdlib pyopenssl
    "${PYTHON}" -c 'import pyftpdlib, OpenSSL' # fail loudly if it still isn't importable
fi

# --- local FTP user for vsftpd -----------------------------------------------
# A real shell from /etc/shells (pam_shells would reject /usr/sbin/nologin if
# anyone ever points the tests at the stock PAM service).
if ! getent passwd "${FTP_USER}" >/dev/null 2>&1; then
    useradd --create-home --home-dir "${FTP_HOME}" --shell /bin/bash "${FTP_USER}"
fi
if [ "$(getent passwd "${FTP_USER}" | cut -d: -f6-7)" != "${FTP_HOME}:/bin/bash" ]; then
    usermod --shell /bin/bash --home "${FTP_HOME}" "${FTP_USER}"
fi
# An expired or locked password makes pam_unix's account step fail ("530
# Login incorrect" with nothing else to go on), so set it every time and
# clear any expiry.
# Hash it with SHA-512 at the minimum 1000 rounds: plain `chpasswd` goes
# through PAM and picks yescrypt, which costs ~35 ms of CPU per vsftpd login
# here (47 ms vs 10 ms per login measured on the 2-core machine), so a load
# test would mostly measure password hashing. This is a throwaway local
# account whose password is in the repository anyway.
echo "${FTP_USER}:${FTP_PASSWORD}" | chpasswd -c SHA512 -s 1000
chage -M -1 -E -1 "${FTP_USER}"
usermod --unlock "${FTP_USER}" >/dev/null 2>&1 || true
mkdir -p "${FTP_HOME}/fixtures"
chown "${FTP_USER}:${FTP_USER}" "${FTP_HOME}" "${FTP_HOME}/fixtures"
chmod 0755 "${FTP_HOME}" "${FTP_HOME}/fixtures"

# --- PAM service used only by the test vsftpd instances ------------------------
# Debian's /etc/pam.d/vsftpd adds pam_listfile (/etc/ftpusers) and pam_shells,
# either of which can reject the test user for reasons unrelated to ftpswarm.
# The fixture sets pam_service_name=ftpswarm-vsftpd, which is pam_unix only.
cat >"/etc/pam.d/${PAM_SERVICE}.tmp" <<'PAM'
# Written by ftpswarm .ci/install-servers.sh for the integration-test vsftpd.
# pam_unix only: no ftpusers list, no shell check.
auth     required pam_unix.so
account  required pam_unix.so
session  required pam_unix.so
PAM
chmod 0644 "/etc/pam.d/${PAM_SERVICE}.tmp"
mv -f "/etc/pam.d/${PAM_SERVICE}.tmp" "/etc/pam.d/${PAM_SERVICE}"

# vsftpd prints its version (and every "500 OOPS" error) on fd 0, not
# stdout/stderr: it was written for inetd, where fd 0 is the client socket.
log "$(/usr/sbin/vsftpd -v 0>&1 2>&1 || true)"
log "pyftpdlib: $("${PYTHON}" -c 'import pyftpdlib; print(pyftpdlib.__ver__)' 2>&1 || true)"
log "$("${SERVERS_DIR}/usr/sbin/proftpd" --version 2>&1 || true)"
log "$("${SERVERS_DIR}/usr/sbin/pure-ftpd" --help 2>&1 | head -n 1 || true)"
log "done"
