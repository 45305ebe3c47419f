#!/usr/bin/env python3
"""ftpswarm against pyftpdlib's own `ftpbench`, same server, same workload, side by side.

The workload is ftpbench's `concurrence` benchmark without its two single-file tests: N
clients log in, each downloads one file and uploads one file of SIZE bytes, then quits. The
ftpswarm side runs N concurrent sessions of 2 files (mix 1:1 RETR:STOR) of the same size,
`--no-report --sample-interval 0` (no sampler, no charts). Runs alternate tools, so drift on a
shared machine hits both; each client's CPU (user + sys) comes from getrusage of its process,
the server's from /proc (its own and its reaped children's). Workloads: `large` (200 x 2 x
1 MiB) and `small` (500 x 2 x 1 KiB; ftpswarm ramps its sessions over 1 s, ftpbench logs its
clients in one after another). Servers: pyftpdlib, and vsftpd (benches/real-server.sh, needs
.ci/install-servers.sh and root). With --ssl, pyftpdlib serves FTPS (TLS_FTPHandler,
self-signed) and both clients use explicit FTPS with PROT P (ftpbench -S).

    benches/vs-ftpbench.sh [--server pyftpdlib|vsftpd|both] [--workload large|small|both] [--rounds 3] [--ssl] [--perf]

--perf (needs `apt-get install linux-perf`) profiles one more run of each tool after the rounds.
"""
import argparse, ftplib, importlib.machinery, importlib.util, io, json, os, resource, socket
import shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import free_port, wait_for_greeting  # noqa: E402

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


WORKLOADS = {"large": (200, "1M", "0s"), "small": (500, "1K", "1s")}



def human(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def proc_cpu(pid):
    """CPU seconds of a process and its reaped children (vsftpd's sessions), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def timed(cmd, server_pid, env=None):
    before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), proc_cpu(server_pid)
    t0 = time.time()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    after, server_after = resource.getrusage(resource.RUSAGE_CHILDREN), proc_cpu(server_pid)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    if res.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    timed.last_split = (user, system)
    return user + system, server_after - server_before, wall, res.stdout


def start_server(kind, tmp, ssl):
    """(process, pid to measure, port, user, password, range, CA file or None)"""
    port, lo, hi = free_port(), 40000, 40999
    if kind == "vsftpd":
        if ssl:
            sys.exit("--ssl is for pyftpdlib only here")
        proc = subprocess.Popen(["bash", os.path.join(ROOT, "benches", "real-server.sh"), "vsftpd", str(port),
                                 str(lo), str(hi)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        user, password = "ftpswarm", "ftpswarm-test"
    else:
        root = os.path.join(tmp, "root")
        os.makedirs(root, exist_ok=True)
        server_py = os.path.join(tmp, "server.py")
        open(server_py, "w").write(SERVER)
        cmd = [sys.executable, server_py, str(port), root, str(lo), str(hi)]
        if ssl:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                            cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-addext", "basicConstraints=critical,CA:FALSE"], check=True, capture_output=True)
            cmd += [cert, key]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        user, password = USER, PASSWORD
    deadline = time.time() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                if ssl or c.recv(64).startswith(b"220"):
                    break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit(f"{kind} did not start")
        time.sleep(0.05)
    pid = proc.pid
    if kind == "vsftpd":
        # real-server.sh runs vsftpd as its child: measure vsftpd, which reaps the sessions.
        out = subprocess.run(["pgrep", "-P", str(proc.pid), "vsftpd"], capture_output=True, text=True).stdout.split()
        pid = int(out[0])
    ca = os.path.join(tmp, "cert.pem") if ssl else None
    return proc, pid, port, user, password, f"{lo}-{hi}", ca


def upload(port, user, password, size, ssl):
    ftp = ftplib.FTP_TLS() if ssl else ftplib.FTP()
    ftp.connect("127.0.0.1", port)
    ftp.login(user, password)
    if ssl:
        ftp.prot_p()
    ftp.storbinary("STOR bench.bin", io.BytesIO(b"\x5a" * size))
    ftp.quit()


# The kernel entry points a client's time is spent under (perf's "children" share).
SYSCALLS = ["epoll_wait", "connect", "sendto", "recvfrom", "futex", "close", "socket", "shutdown", "sendfile64",
            "epoll_ctl", "write", "read", "select", "poll"]


def where_time_goes(name, cmd, work, env):
    """One more pass of the tool under `perf record` (cpu-clock, call graphs): its CPU by kernel
    and user space, by library, and by the system calls the kernel's share runs under."""
    data = os.path.join(work, f"perf-{name}.data")
    if shutil.which("perf") is None:
        print("  perf: not installed (apt-get install linux-perf)", flush=True)
        return
    rec = subprocess.run(["perf", "record", "-F", "1999", "-g", "-q", "-o", data, "--"] + cmd, env=env,
                         capture_output=True, text=True)
    if rec.returncode != 0:
        print(f"  perf {name}: perf record failed ({rec.returncode}): {rec.stderr[-500:]}", flush=True)
        return

    def report(*extra):
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + list(extra),
                             capture_output=True, text=True).stdout
        return [line.split() for line in out.splitlines() if line.strip() and not line.startswith("#")]

    by_dso = [(float(r[0].rstrip("%")), r[1]) for r in report("--no-children", "--sort", "dso") if r[0].endswith("%")]
    print(f"  perf {name}: " + ", ".join(f"{d} {p:.1f}%" for p, d in by_dso[:5]), flush=True)
    calls = {}
    for r in report("--children", "--sort", "sym"):
        if len(r) >= 4 and r[0].endswith("%") and r[3].startswith("__x64_sys_"):
            calls[r[3][len("__x64_sys_"):]] = float(r[0].rstrip("%"))
    top = sorted(((calls[c], c) for c in SYSCALLS if c in calls), reverse=True)
    print(f"  perf {name}: under system calls: " + ", ".join(f"{c} {p:.1f}%" for p, c in top), flush=True)


def compare(kind, workload, args, tmp):
    clients, size_text, ramp = WORKLOADS[workload]
    size = human(size_text)
    work = tempfile.mkdtemp(dir=tmp)
    proc, pid, port, user, password, pasv, ca = start_server(kind, work, args.ssl)
    try:
        upload(port, user, password, size, args.ssl)
        runner = os.path.join(work, "run_ftpbench.py")
        open(runner, "w").write(RUN_FTPBENCH)
        profile = os.path.join(work, "vs-ftpbench.toml")
        open(profile, "w").write(f"""name = "vs-ftpbench"
seed = 1
[load]
model = "closed"
sessions = {clients}
total_sessions = {clients}
ramp_up = "{ramp}"
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
""")
        scheme = "ftps" if args.ssl else "ftp"
        env = dict(os.environ, FTPSWARM_PASSWORD=password)
        bench_cmd = [sys.executable, runner, args.ftpbench, "-u", user, "-p", password, "-H", "127.0.0.1",
                     "-P", str(port), "-b", "concurrence", "-n", str(clients), "-s", size_text]
        if args.ssl:
            bench_cmd.append("-S")
        swarm_cmd = [BIN, "run", "-p", profile, "--target", f"{scheme}://{user}@127.0.0.1:{port}", "--pasv-range",
                     pasv, "--no-report", "--sample-interval", "0", "--json", "--force"]
        if ca:
            swarm_cmd += ["--ca-file", ca]
        rows = {"ftpbench": [], "ftpswarm": []}
        # The kernel's share of each tool's CPU (user, system) per 1,000 transfers.
        split = {"ftpbench": [], "ftpswarm": []}
        for r in range(args.rounds):
            cpu, server, wall, _ = timed(bench_cmd, pid)
            rows["ftpbench"].append((cpu, server, 2 * clients))
            split["ftpbench"].append(tuple(1000 * x / (2 * clients) for x in timed.last_split))
            cpu2, server2, wall2, out = timed(swarm_cmd + ["-o", os.path.join(work, f"run{r}")], pid, env=env)
            s = json.loads(out)
            n, failed = s["transfers"]["attempted"], s["transfers"]["failed"]
            rows["ftpswarm"].append((cpu2, server2, n))
            split["ftpswarm"].append(tuple(1000 * x / n for x in timed.last_split))
            print(f"  round {r + 1}: ftpbench {cpu:5.2f} s CPU ({wall:5.2f} s wall, {2 * clients} transfers), "
                  f"ftpswarm {cpu2:5.2f} s CPU ({wall2:5.2f} s wall, {n} transfers, {failed} failed)", flush=True)
        med = {k: (statistics.median(1000 * c / n for c, _, n in v), statistics.median(1000 * sv / n for _, sv, n in v))
               for k, v in rows.items()}
        title = f"{kind}, {workload} ({clients} x 2 x {size_text}{', FTPS' if args.ssl else ''})"
        print(f"{title}: CPU s per 1,000 transfers: ftpbench {med['ftpbench'][0]:.3f}, "
              f"ftpswarm {med['ftpswarm'][0]:.3f}, ratio {med['ftpswarm'][0] / med['ftpbench'][0]:.2f}; "
              f"server {med['ftpbench'][1]:.3f} / {med['ftpswarm'][1]:.3f}", flush=True)
        us = {k: (statistics.median(u for u, _ in v), statistics.median(y for _, y in v)) for k, v in split.items()}
        # What no client that opens the same connections and moves the same bytes can go
        # below: ftpswarm's kernel time alone, against ftpbench's whole CPU.
        print(f"  user / system per 1,000 transfers: ftpbench {us['ftpbench'][0]:.3f} / {us['ftpbench'][1]:.3f}, "
              f"ftpswarm {us['ftpswarm'][0]:.3f} / {us['ftpswarm'][1]:.3f}; ftpswarm's system time alone is "
              f"{us['ftpswarm'][1] / med['ftpbench'][0]:.2f} of ftpbench's CPU", flush=True)
        if args.perf:
            for name, cmd in (("ftpbench", bench_cmd), ("ftpswarm", swarm_cmd + ["-o", os.path.join(work, "run-perf")])):
                where_time_goes(name, cmd, work, env)
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    # ftpbench itself fails against vsftpd 3.0.3 here (every session's first command after its
    # concurrent RETR phase gets `421 Timeout.`), so vsftpd is opt-in.
    ap.add_argument("--server", choices=["pyftpdlib", "vsftpd", "both"], default="pyftpdlib")
    ap.add_argument("--workload", choices=["large", "small", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ssl", action="store_true")
    ap.add_argument("--perf", action="store_true",
                    help="after the rounds, profile one more run of each tool with perf record and print where its CPU goes")
    ap.add_argument("--ftpbench", required=True, help="path of pyftpdlib's scripts/ftpbench")
    args = ap.parse_args()
    # 500 clients with a data connection each pass ftpbench's default 1,024 descriptors.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="vs-ftpbench-")
    servers = ["pyftpdlib", "vsftpd"] if args.server == "both" else [args.server]
    workloads = ["large", "small"] if args.workload == "both" else [args.workload]
    if args.ssl:
        servers = [s for s in servers if s == "pyftpdlib"]
    for kind in servers:
        for workload in workloads:
            print(f"{kind}, {workload}:", flush=True)
            compare(kind, workload, args, tmp)


if __name__ == "__main__":
    main()
