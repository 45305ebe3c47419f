#!/usr/bin/env python3
"""Memory per idle session: RSS of `ftpswarm run` holding N logged-in sessions in a long think
time, against `ftpswarm serve` in another process, with the sessions spread over loopback
source addresses.

Each session logs in, downloads one 1 KiB file and then thinks for 60 s; the ramp starts them
evenly over --ramp seconds. The generator's RSS (/proc/PID/status) is sampled every 100 ms, and
the timeline (written live) says how many control connections were open then; the figure kept
is the RSS at the plateau, when every session is logged in and idle. The cost per idle session
is the slope between two counts, so the run's fixed cost (runtime, buffers, the sampler) drops
out.

    cargo build --release && python3 benches/idle_memory.py [--sessions 1000,5000,10000] \
        [--sources 127.0.0.2-127.0.0.41] [--ramp 10] [--server serve|pyftpdlib]

`ftpswarm serve` relays each control connection through a second loopback connection (its
cap on line length), so it holds 3 descriptors per session and stops accepting near a third
of its open-file limit (6,600 sessions under a 20,000 hard limit). `--server pyftpdlib` (one
process, 1 descriptor per session, from .ci/install-servers.sh) holds 10,000.
"""
import argparse, csv, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import free_port, wait_for_greeting  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
PASSWORD = "bench-secret"

PROFILE = """name = "idle-{n}"
[load]
model = "closed"
sessions = {n}
ramp_up = "{ramp}s"
duration = "{duration}s"
drain = "1s"
[session]
files_per_session = 2
parallel_connections = 1
think_time = "60s"
source_addresses = [{sources}]
[mix]
retr = 1
stor = 0
list = 0
[file_size]
distribution = "fixed"
bytes = 1024
"""


PYFTPDLIB = """
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, password, root = sys.argv[1:4]
logging.basicConfig(level=logging.WARNING)
auth = DummyAuthorizer()
auth.add_user("ftpswarm", password, root, perm="elradfmwMT")
FTPHandler.authorizer = auth
FTPHandler.passive_ports = range(30000, 31000)
FTPHandler.timeout = 0  # no idle timeout: the sessions think for a minute
server = FTPServer(("127.0.0.1", int(port)), FTPHandler, backlog=4096)
server.max_cons = 0
server.max_cons_per_ip = 0
server.serve_forever(handle_exit=True)
"""


def start_server(kind, port, tmp):
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    if kind == "pyftpdlib":
        root = os.path.join(tmp, "root")
        os.makedirs(root, exist_ok=True)
        cmd = [sys.executable, "-c", PYFTPDLIB, str(port), PASSWORD, root]
    else:
        cmd = [BIN, "serve", "--port", str(port), "--pasv", "30000-30999"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def control_open(timeline):
    """The last row's open control connections, or None before the first row."""
    try:
        with open(timeline, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    for row in reversed(rows):
        try:
            return int(row["control_open"])
        except (KeyError, ValueError):
            continue
    return None


def measure(n, args, port, tmp):
    profile = os.path.join(tmp, f"idle-{n}.toml")
    sources = ", ".join(f'"{s}"' for s in args.sources.split(",")) if args.sources else ""
    with open(profile, "w") as f:
        f.write(PROFILE.format(n=n, ramp=args.ramp, duration=args.ramp + 6, sources=sources))
    out = os.path.join(tmp, f"run-{n}")
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    proc = subprocess.Popen(
        [BIN, "run", "-q", "--no-report", "--prepare", "-p", profile, "--target", f"ftp://ftpswarm@127.0.0.1:{port}",
         "--pasv-range", "30000-30999", "-o", out],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    best = (-1, 0)  # (control connections open, RSS KiB) at the fullest sample
    peak = 0
    timeline = os.path.join(out, "timeline.csv")
    while proc.poll() is None:
        rss = rss_kib(proc.pid)
        opened = control_open(timeline)
        if rss is not None:
            peak = max(peak, rss)
            if opened is not None and opened >= best[0]:
                best = (opened, rss)
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    if proc.returncode not in (0, 130):
        sys.exit(f"run of {n} sessions failed ({proc.returncode}): {stderr}")
    return best[0], best[1], peak, stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", default="1000,5000,10000")
    ap.add_argument("--sources", default="127.0.0.2-127.0.0.41",
                    help="loopback source addresses, comma-separated ranges; empty for the kernel's choice")
    ap.add_argument("--ramp", type=int, default=10)
    ap.add_argument("--server", choices=["serve", "pyftpdlib"], default="serve")
    args = ap.parse_args()
    counts = [int(x) for x in args.sessions.split(",")]
    tmp = tempfile.mkdtemp(prefix="idle-memory-")
    port = free_port()
    server = start_server(args.server, port, tmp)
    try:
        wait_for_greeting(port)
        rows = []
        for n in counts:
            opened, rss, peak, stdout = measure(n, args, port, tmp)
            rows.append((n, opened, rss, peak))
            print(f"{n:6d} sessions: {opened:6d} control connections open, RSS {rss / 1024:7.1f} MiB "
                  f"(peak {peak / 1024:7.1f} MiB), {rss / max(1, opened):6.2f} KiB per open connection", flush=True)
            for line in stdout.splitlines():
                if line.startswith(("sessions ", "sources ", "failures ")):
                    print("        " + line)
        for (n0, o0, r0, _), (n1, o1, r1, _) in zip(rows, rows[1:]):
            if o1 > o0:
                print(f"marginal {n0}->{n1}: {(r1 - r0) / (o1 - o0):.2f} KiB RSS per idle session")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
