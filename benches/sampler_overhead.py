#!/usr/bin/env python3
"""Generator CPU with the timeline sampler on (100 ms, kernel socket view on) and off.

The server runs as a separate `ftpswarm serve` process so that the CPU measured is the load
generator's alone. Runs alternate off/on so drift on a shared machine hits both equally.
Reports CPU seconds per 1,000 transfers and the on/off ratio.

    cargo build --release && python3 benches/sampler_overhead.py [--rounds 3] [--duration 10s]
"""
import argparse, json, os, resource, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import free_port, wait_for_greeting  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
PASSWORD = "bench-secret"




def run_once(port, interval, duration, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    res = subprocess.run(
        [BIN, "run", "--target", f"ftp://ftpswarm@127.0.0.1:{port}", "--pasv-range", "30000-30099",
         "--duration", duration, "--sample-interval", interval, "--json", "-o", out],
        env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        sys.exit(f"run failed: {res.stderr}")
    summary = json.loads(res.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, summary["transfers"]["ok"], summary["transfers"]["attempted"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", default="10s")
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([BIN, "serve", "--port", str(port), "--pasv", "30000-30099"],
                              env=dict(os.environ, FTPSWARM_PASSWORD=PASSWORD),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_greeting(port)
        totals = {"0": [0.0, 0], "100ms": [0.0, 0]}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for interval in ("0", "100ms"):
                    cpu, ok, attempted = run_once(port, interval, args.duration, os.path.join(tmp, f"{r}-{interval}"))
                    totals[interval][0] += cpu
                    totals[interval][1] += ok
                    print(f"round {r} sampler {interval:>5}: {cpu:6.2f} s CPU, {ok}/{attempted} transfers, "
                          f"{cpu / max(ok, 1) * 1000:.3f} s CPU per 1k transfers")
        per_k = {k: v[0] / max(v[1], 1) * 1000 for k, v in totals.items()}
        print(f"CPU per 1k transfers: sampler off {per_k['0']:.3f} s, on {per_k['100ms']:.3f} s, "
              f"ratio on/off {per_k['100ms'] / per_k['0']:.3f}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
