#!/usr/bin/env python3
"""Open-loop rate accuracy: does `ftpswarm run` start sessions at the rate it was given?

Against `ftpswarm serve` in another process, an open-model run of sessions that log in and
quit (no files, so the server keeps up and the question is the scheduler's alone), for each
rate and arrival process. From sessions.csv:

- arrivals: the scheduler's arrivals within the duration per second (started sessions by
  their intended start, plus those dropped because `load.max_in_flight` sessions were in
  flight), against the target rate; constant arrivals are exact, Poisson ones have their own
  spread (1/sqrt(N): 0.45% for 50,000 arrivals);
- started: sessions that really started (t_start) within the duration, per second: short of
  the arrivals by the drops, when the server fell so far behind that the in-flight bound was
  reached;
- lateness: t_start - t_intended_start per session (p50, p99, max): how far behind its
  schedule the generator ran. Latencies are measured from the intended start, so lateness
  never hides in them.

    cargo build --release && python3 benches/open_rate.py [--rates 1000,5000] [--duration 10]
"""
import argparse, csv, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import free_port, wait_for_greeting  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
PASSWORD = "bench-secret"

PROFILE = """name = "open-{rate}-{arrival}"
[load]
model = "open"
rate = {rate}
arrival = "{arrival}"
duration = "{duration}s"
drain = "5s"
[session]
files_per_session = 0
parallel_connections = 1
"""


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0


def measure(rate, arrival, args, port, tmp):
    profile = os.path.join(tmp, f"open-{rate}-{arrival}.toml")
    with open(profile, "w") as f:
        f.write(PROFILE.format(rate=rate, arrival=arrival, duration=args.duration))
    out = os.path.join(tmp, f"run-{rate}-{arrival}")
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    res = subprocess.run(
        [BIN, "run", "-q", "--no-report", "--sample-interval", "0", "-p", profile,
         "--target", f"ftp://ftpswarm@127.0.0.1:{port}", "--pasv-range", "30000-30999", "-o", out],
        env=env, capture_output=True, text=True)
    if res.returncode not in (0, 130):
        sys.exit(f"run at {rate}/s failed ({res.returncode}): {res.stderr}")
    end_us = args.duration * 1_000_000
    scheduled, started, late, failed = 0, 0, [], 0
    with open(os.path.join(out, "sessions.csv"), newline="") as f:
        for row in csv.DictReader(f):
            intended, start = int(row["t_intended_start_us"]), int(row["t_start_us"])
            scheduled += intended < end_us
            started += start < end_us
            late.append(start - intended)
            failed += row["outcome"] != "ok"
    dropped = next((int(l.split()[1]) for l in res.stdout.splitlines() if l.startswith("dropped ")), 0)
    syn = ""
    with open(os.path.join(out, "summary.json")) as f:
        found = json.load(f).get("syn_retransmits")
    if found:
        syn = f"SYN retransmits: {found['after_1s']} connects at ~1 s, {found['after_3s']} at ~3 s"
    return scheduled, started, late, failed, dropped, syn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="1000,5000")
    ap.add_argument("--arrivals", default="constant,poisson")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="open-rate-")
    port = free_port()
    env = dict(os.environ, FTPSWARM_PASSWORD=PASSWORD)
    server = subprocess.Popen([BIN, "serve", "--port", str(port), "--pasv", "30000-30999"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_greeting(port)
        print("rate/s  arrival    arrivals/s  error   started/s  error   lateness p50 / p99 / max (ms)  "
              "not ok  dropped")
        for rate in (int(r) for r in args.rates.split(",")):
            for arrival in args.arrivals.split(","):
                scheduled, started, late, failed, dropped, syn = measure(rate, arrival, args, port, tmp)
                arrivals = (scheduled + dropped) / args.duration
                achieved = started / args.duration
                print(f"{rate:6d}  {arrival:9s} {arrivals:10.1f}  {(arrivals / rate - 1) * 100:+5.2f}%  "
                      f"{achieved:9.1f}  {(achieved / rate - 1) * 100:+5.2f}%  {quantile(late, 0.5) / 1e3:8.2f} / "
                      f"{quantile(late, 0.99) / 1e3:7.2f} / {max(late, default=0) / 1e3:7.2f}  "
                      f"{failed:6d}  {dropped:7d}  {syn}", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
