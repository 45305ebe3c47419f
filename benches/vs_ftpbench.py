#!/usr/bin/env python3
"""ftpswarm against pyftpdlib's own `ftpbench`, same server, same workload, side by side.

The workload is ftpbench's `concurrence` benchmark without its two single-file tests: N
clients log in, each downloads one file and uploads one file of SIZE bytes, then quits. The
ftpswarm side runs N concurrent sessions of 2 files (mix 1:1 RETR:STOR) of the same size,
`--total-sessions N --no-report --sample-interval 0` (no sampler, no charts). Runs alternate
tools, so drift on a shared machine hits both; each client's CPU (user + sys) comes from
getrusage of its process. With --ssl, pyftpdlib serves FTPS (TLS_FTPHandler, self-signed) and
both clients use explicit FTPS with PROT P (ftpbench -S).

    benches/vs-ftpbench.sh [--clients 200] [--size 1M] [--rounds 3] [--ssl]
"""
import argparse, ftplib, importlib.machinery, importlib.util, io, json, os, resource, socket
import statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
USER, PASSWORD = "bench", "bench-secret"

SERVER = r'''
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, root, lo, hi = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = FTPHandler
if len(sys.argv) > 6:
    from pyftpdlib.handlers import TLS_FTPHandler
    base = TLS_FTPHandler
    base.certfile, base.keyfile = sys.argv[5], sys.argv[6]
    base.tls_control_required = base.tls_data_required = True
class Handler(base):
    pass
auth = DummyAuthorizer()
auth.add_user("bench", "bench-secret", root, perm="elradfmwMT")
Handler.authorizer = auth
Handler.passive_ports = range(lo, hi + 1)
Handler.masquerade_address = "127.0.0.1"
server = FTPServer(("127.0.0.1", port), Handler, backlog=4096)
server.max_cons = server.max_cons_per_ip = 0
server.serve_forever(handle_exit=True)
'''

# ftpbench as a module with the two single-file tests of `concurrence` turned off.
RUN_FTPBENCH = r'''
import importlib.machinery, importlib.util, sys
path = sys.argv.pop(1)
loader = importlib.machinery.SourceFileLoader("ftpbench", path)
spec = importlib.util.spec_from_loader("ftpbench", loader)
mod = importlib.util.module_from_spec(spec)
loader.exec_module(mod)
mod.bench_stor = lambda *a, **k: None
mod.bench_retr = lambda *a, **k: None
mod.main()
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def human(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def timed(cmd, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return cpu, wall, res.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--size", default="1M")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ssl", action="store_true")
    ap.add_argument("--ftpbench", required=True, help="path of pyftpdlib's scripts/ftpbench")
    args = ap.parse_args()
    size = human(args.size)
    tmp = tempfile.mkdtemp(prefix="vs-ftpbench-")
    root = os.path.join(tmp, "root")
    os.mkdir(root)
    with open(os.path.join(root, "bench.bin"), "wb") as f:
        f.write(b"\x5a" * size)
    server_py = os.path.join(tmp, "server.py")
    open(server_py, "w").write(SERVER)
    runner = os.path.join(tmp, "run_ftpbench.py")
    open(runner, "w").write(RUN_FTPBENCH)
    port = free_port()
    server_cmd = [sys.executable, server_py, str(port), root, "40000", "40999"]
    tls_args = []
    if args.ssl:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-addext", "basicConstraints=critical,CA:FALSE"],
                       check=True, capture_output=True)
        server_cmd += [cert, key]
        tls_args = ["--ca-file", cert]
    server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = os.path.join(tmp, "vs-ftpbench.toml")
    open(profile, "w").write(f'''name = "vs-ftpbench"
seed = 1
[load]
model = "closed"
sessions = {args.clients}
total_sessions = {args.clients}
ramp_up = "0s"
[session]
files_per_session = 2
[mix]
retr = 1
stor = 1
list = 0
[file_size]
distribution = "fixed"
bytes = {size}
[remote]
retr_files = ["bench.bin"]
stor_dir = "."
''')
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("pyftpdlib did not start")
                time.sleep(0.05)
        scheme = "ftps" if args.ssl else "ftp"
        env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
        bench_cmd = [sys.executable, runner, args.ftpbench, "-u", USER, "-p", PASSWORD, "-H", "127.0.0.1",
                     "-P", str(port), "-b", "concurrence", "-n", str(args.clients), "-s", args.size]
        if args.ssl:
            bench_cmd.append("-S")
        rows = {"ftpbench": [], "ftpswarm": []}
        for r in range(args.rounds):
            cpu, wall, out = timed(bench_cmd)
            # ftpbench: N logins, N RETR, N STOR.
            rows["ftpbench"].append((cpu, wall, 2 * args.clients, 0))
            print(f"round {r + 1} ftpbench  {cpu:6.2f} s CPU  {wall:6.2f} s wall  {2 * args.clients} transfers",
                  flush=True)
            out_dir = os.path.join(tmp, f"run{r}")
            cpu, wall, out = timed([BIN, "run", "-p", profile, "--target",
                                    f"{scheme}://{USER}@127.0.0.1:{port}", "--pasv-range", "40000-40999",
                                    "--no-report", "--sample-interval", "0", "--json", "-o", out_dir] + tls_args,
                                   env=env)
            s = json.loads(out)
            n, failed = s["transfers"]["attempted"], s["transfers"]["failed"]
            rows["ftpswarm"].append((cpu, wall, n, failed))
            print(f"round {r + 1} ftpswarm  {cpu:6.2f} s CPU  {wall:6.2f} s wall  {n} transfers ({failed} failed)",
                  flush=True)
        per = {k: statistics.median(c / n for c, _, n, _ in v) for k, v in rows.items()}
        for k, v in rows.items():
            print(f"median {k:9s} {statistics.median(c for c, *_ in v):6.2f} s CPU, "
                  f"{per[k] * 1e3:6.3f} ms CPU per transfer")
        print(f"ratio ftpswarm/ftpbench, CPU per transfer: {per['ftpswarm'] / per['ftpbench']:.2f}"
              f" ({'FTPS' if args.ssl else 'plain FTP'}, {args.clients} clients x 2 x {args.size})")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
