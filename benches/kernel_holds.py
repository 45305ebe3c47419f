#!/usr/bin/env python3
"""The server's own port holds, from the kernel, next to what ftpswarm saw: the ground truth the
sizing model's hold rules and lags are checked against.

Runs one load against a server on 127.0.0.1 while `perf` records every TCP state change on the
passive range (tracepoint `sock:inet_sock_set_state`: a listener's CLOSE->LISTEN and
LISTEN->CLOSE, with the kernel's CLOCK_MONOTONIC time), then lines the kernel's record up with
the run's events.csv and prints:

- how long the server's listeners really lived, and where they opened and closed against our
  227 and our 226 (per 10 s of the run, as TIME_WAITs pile up on the ports);
- how many ports were listening at each refusal (a range refusal needs nearly all of them);
- the time share of each listener count.

The clocks are lined up on the data connections: on loopback the kernel moves our SYN to
ESTABLISHED inside our connect(), so our `t_data_connected_us` trails that state change by a few
microseconds (the fastest 1% are taken as zero lag).

Needs root and `perf` (Debian: linux-perf), and for real servers what `.ci/install-servers.sh`
installs. Not part of CI: it measures, it checks nothing.

  sudo python3 benches/kernel_holds.py --server vsftpd --profile sweep-realistic --width 6 \\
       --sessions 40 --duration 90s --out /tmp/kh-vsftpd
  python3 benches/kernel_holds.py --analyse /tmp/kh-vsftpd      # again, on a recorded run
"""
import argparse
import bisect
import collections
import csv
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
FAILED_LISTEN_S = 20e-6
STATE = re.compile(
    r"\s*(\S+)\s+(\d+)(?:/\d+)?\s+([\d.]+):.*sport=(\d+) dport=(\d+).*oldstate=(\S+) newstate=(\S+)"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def greets(port):
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as c:
            return c.recv(10).startswith(b"220")
    except OSError:
        return False


def record(a):
    lo, hi = a.range_start, a.range_start + a.width - 1
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out + ".kernel", exist_ok=True)
    server = None
    target = []
    if a.server != "embedded":
        port = free_port()
        server = subprocess.Popen(
            ["bash", "benches/real-server.sh", a.server, str(port), str(lo), str(hi)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            if greets(port):
                break
            time.sleep(0.2)
        else:
            sys.exit(f"{a.server} did not greet on 127.0.0.1:{port}")
        target = ["--target", f"ftp://ftpswarm@127.0.0.1:{port}", "--prepare"]
    data = os.path.join(a.out + ".kernel", "perf.data")
    perf = subprocess.Popen(
        ["perf", "record", "-k", "CLOCK_MONOTONIC", "-e", "sock:inet_sock_set_state",
         "--filter", f"sport >= {lo} && sport <= {hi}", "-a", "-o", data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        env = dict(os.environ, FTPSWARM_PASSWORD=os.environ.get("FTPSWARM_PASSWORD", "ftpswarm-test"))
        subprocess.run([BIN, "run", "-q", "--no-report", "-p", f"profiles/{a.profile}.toml", *target,
                        "--pasv-range", f"{lo}-{hi}", "--duration", a.duration,
                        "--sessions", str(a.sessions), "-o", a.out], cwd=ROOT, env=env, check=True)
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait()
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
    with open(os.path.join(a.out + ".kernel", "trace.txt"), "w") as f:
        subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,time,trace"],
                       stdout=f, stderr=subprocess.DEVNULL, check=True)


def read_kernel(path):
    """Listener intervals (open, close, port) and ESTABLISHED times per port."""
    listening, intervals = {}, []
    established = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            m = STATE.match(line)
            if not m:
                continue
            _, pid, t, sport, dport, old, new = m.groups()
            t, sport = float(t), int(sport)
            if dport != "0":
                if old == "TCP_SYN_RECV" and new == "TCP_ESTABLISHED":
                    established[sport].append(t)
                continue
            if new == "TCP_LISTEN":
                listening.setdefault(sport, []).append((t, pid))
            elif old == "TCP_LISTEN":
                open_ = listening.get(sport, [])
                for i, (t0, p) in enumerate(open_):
                    if p == pid:
                        intervals.append((t0, t, sport))
                        open_.pop(i)
                        break
    # A listen() that fails (another socket listens on the port) sets LISTEN and takes it back
    # within microseconds; no listener that served a PASV lives that briefly.
    failed = sum(1 for a, b, _ in intervals if b - a < FAILED_LISTEN_S)
    return sorted(i for i in intervals if i[1] - i[0] >= FAILED_LISTEN_S), established, failed


def offset(events, established):
    """Kernel time of the run's t = 0: where our connects best meet the kernel's SYN->ESTABLISHED."""
    pairs = [(int(e["pasv_port"]), int(e["t_data_connected_us"]) / 1e6)
             for e in events if e["outcome"] == "ok" and e["t_data_connected_us"]][:3000]
    if not pairs or not established:
        sys.exit("no data connections to line the clocks up on")
    first = min(min(v) for v in established.values()) - min(t for _, t in pairs)

    def near(off, sample):
        n = 0
        for port, t in sample:
            times = established.get(port, [])
            i = bisect.bisect_right(times, t + off) - 1
            n += i >= 0 and t + off - times[i] < 200e-6
        return n
    best = max((near(first + k * 50e-6, pairs[:300]), first + k * 50e-6) for k in range(-4000, 4001))[1]
    lags = []
    for port, t in pairs:
        times = established.get(port, [])
        i = bisect.bisect_right(times, t + best) - 1
        if i >= 0:
            lags.append(t + best - times[i])
    lags.sort()
    return best - lags[len(lags) // 100]


def q(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def analyse(out):
    events = list(csv.DictReader(open(os.path.join(out, "events.csv"))))
    intervals, established, failed = read_kernel(os.path.join(out + ".kernel", "trace.txt"))
    off = offset(events, established)
    ms = lambda s: f"{s * 1e3:.3f}"
    held = [b - a for a, b, _ in intervals]
    print(f"listeners: {len(intervals)} (and {failed} listen() calls that failed at once); lived "
          f"p50 {ms(q(held, .5))} p90 {ms(q(held, .9))} p99 {ms(q(held, .99))} mean {ms(statistics.mean(held))} ms")
    by_port = collections.defaultdict(list)
    for a, b, port in intervals:
        by_port[port].append((a, b))
    # A listener no 227 of ours came from: a listen() that failed after walking the port's
    # TIME_WAITs (in LISTEN state all along), or a session's that never answered.
    replies = collections.defaultdict(list)
    for e in events:
        if e["pasv_port"] and e["t_pasv_reply_us"]:
            replies[int(e["pasv_port"])].append(off + int(e["t_pasv_reply_us"]) / 1e6)
    for v in replies.values():
        v.sort()

    # Each 227 came from the earliest-opened listener on its port still listening then (a
    # failed listen() opens later and overlaps it); our reading of the 227 trails its close
    # by at most a few hundred microseconds.
    chosen = set()
    for port, times in replies.items():
        spans = by_port.get(port, [])
        for t in times:
            i = bisect.bisect_right(spans, (t, float("inf")))
            for j in range(max(0, i - 8), i):
                if spans[j][1] + 0.0005 >= t:
                    chosen.add((spans[j][0], spans[j][1], port))
                    break
    serving = sorted(chosen)
    print(f"  of them {len(serving)} answered one of our PASVs; the rest are left out below")
    edges = sorted([(a, 1) for a, _, _ in serving] + [(b, -1) for _, b, _ in serving])
    times, counts, c = [], [], 0
    for t, d in edges:
        c += d
        times.append(t)
        counts.append(c)

    def most_between(t0, t1):
        i = bisect.bisect_right(times, t0) - 1
        m = counts[i] if i >= 0 else 0
        for j in range(i + 1, len(times)):
            if times[j] > t1:
                break
            m = max(m, counts[j])
        return m

    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    for e in events:
        if e["outcome"] != "ok" or not e["pasv_port"]:
            continue
        reply = off + int(e["t_pasv_reply_us"]) / 1e6
        spans = by_port[int(e["pasv_port"])]
        i = bisect.bisect_right(spans, (reply, float("inf"))) - 1
        if i < 0 or not spans[i][0] <= reply <= spans[i][1] + 0.002:
            continue
        a, b = spans[i]
        r = rows[int(e["t_pasv_sent_us"]) // 10_000_000]
        r["listen before our 227"].append(reply - a)
        r["close after our 226"].append(b - (off + int(e["t_final_reply_us"]) / 1e6))
        r["our PASV round trip"].append((int(e["t_pasv_reply_us"]) - int(e["t_pasv_sent_us"])) / 1e6)
        r["kernel hold"].append(b - a)
    print("per 10 s of the run, ms (mean; close after our 226 also p90 and p99):")
    for k in sorted(rows):
        r = rows[k]
        close = r["close after our 226"]
        print(f"  {k * 10:3d}-{k * 10 + 10:<3d} s  " + "  ".join(
            f"{name} {ms(statistics.mean(v))}" for name, v in r.items())
            + f"  (p90 {ms(q(close, .9))}, p99 {ms(q(close, .99))})")
    refused = sorted((e for e in events if e["outcome"] == "pasv_rejected"), key=lambda e: int(e["t_pasv_sent_us"]))
    seen, at = set(), {"first on its connection": collections.Counter(), "later on it": collections.Counter()}
    for e in refused:
        t0 = off + int(e["t_pasv_sent_us"]) / 1e6
        t1 = off + int(e["t_pasv_reply_us"] or e["t_pasv_sent_us"]) / 1e6
        conn = (e["session_id"], e["connection_id"])
        at["later on it" if conn in seen else "first on its connection"][most_between(t0, t1)] += 1
        seen.add(conn)
    print(f"refusals: {len(refused)}; most ports listening while each was pending:")
    for kind, held_at in at.items():
        print(f"  {kind} ({sum(held_at.values())}): " + ", ".join(f"{n}: {c}" for n, c in sorted(held_at.items())))
    span = collections.Counter()
    start, end = off, off + max(int(e["t_final_reply_us"] or 0) for e in events) / 1e6
    prev, level = start, 0
    for t, n in zip(times, counts):
        if t < start:
            level = n
            continue
        if t > end:
            break
        span[level] += t - prev
        prev, level = t, n
    total = sum(span.values()) or 1.0
    print("time share by ports listening: " + ", ".join(
        f"{n}: {v / total:.4f}" for n, v in sorted(span.items())))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="embedded", help="embedded, vsftpd, pyftpdlib, proftpd or pure-ftpd")
    ap.add_argument("--profile", default="sweep-realistic")
    ap.add_argument("--width", type=int, default=6)
    ap.add_argument("--range-start", type=int, default=30000)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--duration", default="90s")
    ap.add_argument("--out", default="/tmp/kernel-holds")
    ap.add_argument("--analyse", metavar="RUN", help="only analyse a run recorded before")
    a = ap.parse_args()
    if a.analyse:
        analyse(a.analyse)
        return
    if shutil.which("perf") is None:
        sys.exit("needs perf (Debian: apt-get install linux-perf) and root")
    record(a)
    analyse(a.out)


if __name__ == "__main__":
    main()
