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

--scale 2 also checks scaling: the plan made on the plain run predicts a run with twice the
sessions, which is then measured at the widths the plan names.

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

    def __init__(self, kind, width):
        self.kind, self.port = kind, free_port()
        self.proc = subprocess.Popen(
            ["bash", os.path.join(ROOT, "benches", "real-server.sh"), kind, str(self.port),
             str(RANGE_START), str(RANGE_START + width - 1)],
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


def check(kind, profile, out, budget, extra, scale, measure=True):
    prof = os.path.join(ROOT, "profiles", f"{profile}.toml")
    plain = os.path.join(out, f"{kind}-{profile}-plain")
    if measure:
        shutil.rmtree(plain, ignore_errors=True)
        server = None if kind == "embedded" else Server(kind, 100)
        try:
            ftpswarm("run", "-q", "--no-report", "-p", prof, *target_args(kind, server.port if server else 0),
                     "--pasv-range", f"{RANGE_START}-{RANGE_START + 99}", "-o", plain)
        finally:
            if server:
                server.stop()
    rec = json.loads(ftpswarm("plan", "--run", plain, "--json"))
    width = rec["model_width"]
    widths = sorted({width, max(1 if kind != "proftpd" else 2, round(0.7 * width)), *extra})
    sweep_dir = os.path.join(out, f"{kind}-{profile}-sweep")
    if measure:
        shutil.rmtree(sweep_dir, ignore_errors=True)
    sessions = []
    if scale != 1:
        with open(prof) as f:
            base = int([l for l in f if l.strip().startswith("sessions")][0].split("=")[1])
        sessions = ["--sessions", str(base * scale)]
        rec = json.loads(ftpswarm("plan", "--run", plain, "--json", "--users", str(base * scale),
                                  "--at", ",".join(map(str, widths))))
    if measure:
        ftpswarm("sweep", "-p", prof, *sessions, *sweep_args(kind), "--widths", ",".join(map(str, widths)),
                 "--range-start", str(RANGE_START), "--budget", f"{budget * len(widths)}s", "--no-verify",
                 "-o", sweep_dir)
    with open(os.path.join(sweep_dir, "sweep.json")) as f:
        measured = {w["width"]: w for w in json.load(f)["widths"]}
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
    for kind in a.servers.split(","):
        for profile in a.profiles.split(","):
            try:
                rec, width, rows = check(kind, profile, a.out, a.budget, extra, a.scale, not a.table_only)
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
