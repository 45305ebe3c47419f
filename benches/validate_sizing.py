#!/usr/bin/env python3
"""Checks ftpswarm's sizing advice against measurement, per server and profile.

For each server and profile:
  1. a plain `ftpswarm run` on a 100-port range (the run a user makes first);
  2. `ftpswarm plan` on it: the recommended width W, and its predictions;
  3. `ftpswarm sweep` at W and round(0.7 W) (and any --extra widths): the measured share of
     sessions failing, with its 95% interval, next to the prediction.
The recommendation holds when W's upper bound is at most 2x the target and 0.7 W misses it.

  python3 benches/validate_sizing.py [--servers embedded,vsftpd,...] [--profiles sweep-burst,...]
                                     [--budget 90] [--out DIR] [--scale 2] [--table-only]

"predicted (plain run)" is what the plan made on the plain run says of each width;
"predicted (sweep's run)" what the plan made on the sweep's first run at its widest width
says (the sweep's own prediction). --table-only re-plans the runs already in --out.

--scale 2 also checks scaling: the plan made on the plain run, for twice its sessions, names W
and predicts each width; the sweep then runs twice the sessions.

--steady 60 measures what the plan predicts: a load that has run longer than the 60 s Linux
keeps TIME_WAIT sockets. Each width is swept in one run of 60 + 30 s, and only the sessions
that started after the first 60 s count (95% Wilson interval). Without it the sweep's runs
last as the profile says (10 or 20 s), and measure a range still filling with TIME_WAITs.

Each server and profile gets its own stretch of ports (21000, 22000, ...), so that no run
starts on the TIME_WAITs of the one before.

Needs `cargo build --release` and, for real servers, .ci/install-servers.sh (as root). Every
server runs on 127.0.0.1 through benches/real-server.sh. Prints a Markdown table.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ftpswarm")
ENV = dict(os.environ, FTPSWARM_PASSWORD="ftpswarm-test")
RANGE_START = 21000
TARGET = 0.01


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A real server on a free control port with a 100-port range, for the plain run."""

    def __init__(self, kind, width, range_start=RANGE_START):
        self.kind, self.port = kind, free_port()
        self.proc = subprocess.Popen(
            ["bash", os.path.join(ROOT, "benches", "real-server.sh"), kind, str(self.port),
             str(range_start), str(range_start + width - 1)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as c:
                    if c.recv(200).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{kind} did not greet on {self.port}")

    def stop(self):
        try:
            os.killpg(self.proc.pid, 15)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


def ftpswarm(*args):
    r = subprocess.run([BIN, *args], env=ENV, cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in (0, 130):
        raise RuntimeError(f"ftpswarm {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def target_args(kind, port):
    if kind == "embedded":
        return []
    return ["--target", f"ftp://ftpswarm@127.0.0.1:{port}", "--prepare"]


def sweep_args(kind):
    if kind == "embedded":
        return []
    return ["--target", "ftp://ftpswarm@127.0.0.1",
            "--server-cmd", f"bash benches/real-server.sh {kind} {{ctrl_port}} {{pasv_min}} {{pasv_max}}"]


def wilson(failed, n, z=1.959964):
    if n == 0:
        return None, None
    p = failed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, centre - half), min(1.0, centre + half)


def steady_measure(sweep_dir, width, steady):
    """Sessions of the width's runs that started after `steady` seconds: their count, failures
    and interval, as sweep.json gives them for whole runs."""
    import csv
    import glob
    n = failed = 0
    for path in glob.glob(os.path.join(sweep_dir, f"w{width:05d}", "run*", "sessions.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                if not row["t_start_us"] or int(row["t_start_us"]) < steady * 1_000_000:
                    continue
                if row["outcome"] == "interrupted":
                    continue
                n += 1
                failed += row["outcome"] != "ok"
    if n == 0:
        return None
    low, high = wilson(failed, n)
    return {"sessions": n, "sessions_failed": failed, "session_failure": failed / n,
            "session_ci_low": low, "session_ci_high": high}


def check(kind, profile, out, budget, extra, scale, measure=True, range_start=RANGE_START, steady=0):
    prof = os.path.join(ROOT, "profiles", f"{profile}.toml")
    plain = os.path.join(out, f"{kind}-{profile}-plain")
    if measure:
        shutil.rmtree(plain, ignore_errors=True)
        server = None if kind == "embedded" else Server(kind, 100, range_start)
        try:
            ftpswarm("run", "-q", "--no-report", "-p", prof, *target_args(kind, server.port if server else 0),
                     "--pasv-range", f"{range_start}-{range_start + 99}", "-o", plain)
        finally:
            if server:
                server.stop()
    sessions, users = [], []
    if scale != 1:
        # The plan for `scale` times the sessions, made on the plain run, names the widths.
        with open(prof) as f:
            base = int([l for l in f if l.strip().startswith("sessions")][0].split("=")[1])
        sessions = ["--sessions", str(base * scale)]
        users = ["--users", str(base * scale)]
    rec = json.loads(ftpswarm("plan", "--run", plain, "--json", *users))
    width = rec["model_width"]
    widths = sorted({width, max(1 if kind != "proftpd" else 2, round(0.7 * width)), *extra})
    sweep_dir = os.path.join(out, f"{kind}-{profile}-sweep")
    if measure:
        shutil.rmtree(sweep_dir, ignore_errors=True)
    if scale != 1:
        rec = json.loads(ftpswarm("plan", "--run", plain, "--json", *users, "--at", ",".join(map(str, widths))))
    if measure:
        duration = ["--duration", f"{steady + 30}s"] if steady else []
        per_width = steady + 30 if steady else budget
        ftpswarm("sweep", "-p", prof, *sessions, *duration, *sweep_args(kind), "--widths",
                 ",".join(map(str, widths)), "--range-start", str(range_start),
                 "--budget", f"{per_width * len(widths)}s", "--no-verify", "-o", sweep_dir)
    with open(os.path.join(sweep_dir, "sweep.json")) as f:
        measured = {w["width"]: w for w in json.load(f)["widths"]}
    if steady:
        for w in widths:
            m = steady_measure(sweep_dir, w, steady)
            if m is not None and w in measured:
                m["predicted_session_failure"] = measured[w].get("predicted_session_failure")
            measured[w] = m
    predicted = {p["width"]: p for p in rec["predictions"]}
    rows = []
    for w in widths:
        m, p = measured.get(w), predicted.get(w)
        rows.append((w, m, p))
    return rec, width, rows


def pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", default="embedded,vsftpd,pyftpdlib,proftpd,pure-ftpd")
    ap.add_argument("--profiles", default="sweep-burst,sweep-realistic")
    ap.add_argument("--budget", type=float, default=60, help="seconds of load per measured width")
    ap.add_argument("--extra", default="", help="more widths to measure, e.g. 20,40")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "output", "validate-sizing"))
    ap.add_argument("--steady", type=float, default=0,
                    help="seconds of warm-up before sessions count (60: past the TIME_WAITs' lifetime)")
    ap.add_argument("--table-only", action="store_true",
                    help="re-plan the plain runs already in --out and print the table, measuring nothing")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    extra = [int(x) for x in a.extra.split(",") if x]
    os.makedirs(a.out, exist_ok=True)
    print("| server | profile | plan | width | sessions | failed | measured | 95% interval "
          "| predicted (plain run) | predicted (sweep's run) | verdict |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|")
    steps = [(k, p) for k in a.servers.split(",") for p in a.profiles.split(",")]
    all_steps = [(k, p) for k in "embedded,vsftpd,pyftpdlib,proftpd,pure-ftpd".split(",")
                 for p in "sweep-burst,sweep-realistic".split(",")]
    for kind, profile in steps:
        # Its own ports, whichever servers are measured: 1,000 apart, below the ephemeral range.
        step = all_steps.index((kind, profile)) if (kind, profile) in all_steps else len(all_steps)
        start = RANGE_START + 1000 * step
        try:
            rec, width, rows = check(kind, profile, a.out, a.budget, extra, a.scale, not a.table_only,
                                     start, a.steady)
        except Exception as e:  # one failing server must not lose the others' rows
            print(f"| {kind} | {profile} | error | {e} ||||||||", flush=True)
            continue
        for w, m, p in rows:
            verdict = ""
            if m is not None and w == width:
                verdict = "meets (≤ 2× target)" if m["session_ci_high"] <= 2 * TARGET else "MISSES"
            elif m is not None and w < width:
                verdict = "misses (as it should)" if m["session_failure"] > TARGET else "meets too"
            own = m and m.get("predicted_session_failure")
            if m is not None and m["session_failure"] >= 0.005:
                ratios = []
                if p is not None:
                    ratios.append(f"{p['session_failure_at_range'] / m['session_failure']:.2f}")
                if own is not None:
                    ratios.append(f"{own / m['session_failure']:.2f}")
                verdict += "; predicted/measured " + " and ".join(ratios)
            print(f"| {kind} | {profile} | {width} | {w} | {m and m['sessions']} | {m and m['sessions_failed']} | "
                  f"{pct(m and m['session_failure'])} | {pct(m and m['session_ci_low'])}–{pct(m and m['session_ci_high'])} | "
                  f"{pct(p and p['session_failure_at_range'])} | {pct(own)} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
