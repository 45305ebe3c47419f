#!/usr/bin/env bash
# ftpswarm against pyftpdlib's ftpbench on the same server (pyftpdlib, vsftpd) and workload, side by
# side (see benches/vs_ftpbench.py). Fetches ftpbench from the pyftpdlib source package on
# PyPI once (it is not in the wheel), builds ftpswarm in release mode, then runs.
#   benches/vs-ftpbench.sh [--server pyftpdlib|vsftpd|both] [--workload large|small|both] [--rounds 3] [--ssl] [--perf]
set -euo pipefail
cd "$(dirname "$0")/.."
cache=target/ftpbench
version=$(python3 -c 'import pyftpdlib; print(pyftpdlib.__ver__)')
script="$cache/pyftpdlib-$version/scripts/ftpbench"
if [ ! -f "$script" ]; then
    mkdir -p "$cache"
    python3 -m pip download --no-deps --no-binary :all: "pyftpdlib==$version" -d "$cache" >/dev/null
    tar -xzf "$cache/pyftpdlib-$version.tar.gz" -C "$cache"
fi
cargo build --release --quiet
exec python3 benches/vs_ftpbench.py --ftpbench "$script" "$@"
