#!/usr/bin/env python3
"""FTPS against plain FTP: transfers/s and the load generator's CPU per transfer.

Two `ftpswarm serve` processes (one with --tls) on separate ports and passive ranges, so
the CPU measured is the generator's alone; runs alternate plain/FTPS so drift on a shared
machine hits both equally. Same profile (the quick one, --no-report), same duration.
Prints per round and the medians, with the FTPS/plain ratios.

    cargo build --release && python3 benches/ftps_cost.py [--rounds 3] [--duration 10s] [--sessions 4]
"""
import argparse, json, os, resource, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import free_port, wait_for_greeting  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
PASSWORD = "bench-secret"




def run_once(url, pasv, extra, args, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    res = subprocess.run(
        [BIN, "run", "--target", url, "--pasv-range", pasv, "--sessions", str(args.sessions),
         "--duration", args.duration, "--json", "--no-report", "-o", out] + extra,
        env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        sys.exit(f"run failed: {res.stderr}")
    s = json.loads(res.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return s["transfers_per_s"], cpu / max(1, s["transfers"]["attempted"]), s["transfers"]["failed"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--sessions", type=int, default=4)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ftps-cost-")
    cert = os.path.join(tmp, "cert.pem")
    plain_port, tls_port = free_port(), free_port()
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    servers = [
        subprocess.Popen([BIN, "serve", "--port", str(plain_port), "--pasv", "30000-30099"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([BIN, "serve", "--port", str(tls_port), "--pasv", "30100-30199", "--tls",
                          "--cert-out", cert], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_for_greeting(plain_port)
        wait_for_greeting(tls_port)
        kinds = {
            "plain": (f"ftp://ftpswarm@127.0.0.1:{plain_port}", "30000-30099", []),
            "ftps": (f"ftps://ftpswarm@127.0.0.1:{tls_port}", "30100-30199", ["--ca-file", cert]),
        }
        results = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind, (url, pasv, extra) in kinds.items():
                rate, cpu, failed = run_once(url, pasv, extra, args, os.path.join(tmp, f"{kind}{r}"))
                results[kind].append((rate, cpu))
                print(f"round {r + 1} {kind:5s} {rate:8.1f} transfers/s  {cpu * 1e6:7.1f} µs CPU/transfer  "
                      f"{failed} failed", flush=True)
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
               for k, v in results.items()}
        for k, (rate, cpu) in med.items():
            print(f"median {k:5s} {rate:8.1f} transfers/s  {cpu * 1e6:7.1f} µs CPU/transfer")
        print(f"ratio ftps/plain: transfers/s {med['ftps'][0] / med['plain'][0]:.2f}, "
              f"CPU per transfer {med['ftps'][1] / med['plain'][1]:.2f}")
    finally:
        for s in servers:
            s.terminate()
            s.wait()


if __name__ == "__main__":
    main()
