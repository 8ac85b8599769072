#!/usr/bin/env python3
"""RTB timeout/revenue table (seed Part 3): revenue captured at each cutoff as a share of a
no-timeout oracle run over the same requests, with our engine and our DSP simulator.

`tools/dsp-sim --population seed --per-request` plays the seed's 50 DSPs on loopback ports (latency
calibrated to the seed's response-time table, slow tail, late answers, errors, bid rates and
lognormal prices per tier). With `--per-request` every answer is a pure function of (seed, DSP,
request id), so every run sees exactly the same bids; only the engine's cutoff decides which of
them arrive in time. One dsp-sim process serves every run.

For each configuration the real `adserver` binary is started with internal demand reduced to a
house ad (so revenue is external only) and dsp-sim's listing as its [[dsp]] registry (tiers
frozen, every DSP called), and the same N requests are sent; revenue and the DSP answer share
come from its /stats.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
import http.client


def start_dsp_sim(exe, seed, tmp):
    """Starts dsp-sim with the seed population; returns (process, listing)."""
    ports = os.path.join(tmp, "dsp-sim-ports.json")
    proc = subprocess.Popen([exe, "--population", "seed", "--seed", str(seed), "--per-request",
                             "--ports-file", ports], stdout=subprocess.DEVNULL)
    for _ in range(400):
        if os.path.exists(ports):
            return proc, json.load(open(ports))
        if proc.poll() is not None:
            sys.exit(f"dsp-sim exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    sys.exit("dsp-sim wrote no ports file within 20 s")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(listing, listen, catalog, rtb):
    lines = [f'[server]\nlisten = "{listen}"\nshards = 2\npin_cores = false\n',
             f'[catalog]\npath = "{catalog}"\n', "[rtb]\n"]
    lines += [f"{k} = {v}\n" for k, v in rtb.items()]
    timeout = rtb["absolute_cutoff_ms"]
    # Every DSP gets an endpoint in the requests' region (us-east), so tier 2 is called too.
    for d in listing["dsps"]:
        lines.append(f'[[dsp]]\nid = "{d["id"]}"\ntier = {d["tier"]}\nqps_max = 100000\n'
                     f'timeout_ms = {timeout}\nformats = ["banner"]\n'
                     f'endpoints = {{ us-east = "http://{d["addr"]}/openrtb2/auction" }}\n')
    return "".join(lines)


def house_catalog(src, dst):
    c = json.load(open(src))
    c["campaigns"] = [x for x in c["campaigns"] if x["kind"]["type"] == "house"]
    json.dump(c, open(dst, "w"))


def drive(addr, n, concurrency):
    host, port = addr.split(":")

    def one(i):
        body = json.dumps({"id": f"r{i}", "tmax": 5000, "imp": [{"id": "1", "bidfloor": 0.5,
                           "banner": {"w": 300, "h": 250}}], "user": {"id": f"u{i}"},
                           "device": {"geo": {"country": "USA"}}})
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("POST", "/openrtb2/auction", body, {"content-type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    with ThreadPoolExecutor(concurrency) as ex:
        return list(ex.map(one, range(n)))


def run_one(args, listing, label, rtb, catalog):
    listen = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "adserver.toml")
        open(path, "w").write(config(listing, listen, catalog, rtb))
        # A fresh budget WAL per row: rows must not inherit each other's spend.
        proc = subprocess.Popen([args.adserver, "--config", path, "--wal-dir", os.path.join(tmp, "wal"), "serve"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://{listen}/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.05)
            t0 = time.time()
            statuses = drive(listen, args.requests, args.concurrency)
            elapsed = time.time() - t0
            stats = json.loads(urllib.request.urlopen(f"http://{listen}/stats", timeout=5).read())
        finally:
            proc.terminate()
            proc.wait(10)
    r = stats["rtb"]
    req = sum(d["requests"] for d in r["dsps"])
    resp = sum(d["responses"] for d in r["dsps"])
    bids = sum(d["bids"] for d in r["dsps"])
    revenue = sum(d["won_cpm_micros"] for d in r["dsps"])
    errors = sum(d["errors"] for d in r["dsps"])
    timeouts = sum(d["timeouts"] for d in r["dsps"])
    p99 = stats["total"]["latency_total"]["p99_us"] / 1000.0
    return {"label": label, "dsp_requests": req, "answered": resp, "bids": bids,
            "revenue_cpm_micros": revenue, "wins": r["external_wins"], "ok": statuses.count(200),
            "errors": errors, "timeouts": timeouts,
            "collect_max_ms": r["collect_max_ms"], "elapsed_s": elapsed, "internal_p99_ms": p99}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--adserver", required=True)
    ap.add_argument("--dsp-sim", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    # Longer than any dsp-sim answer: the slow tail stays under ~500 ms, late answers come at 1 s.
    ap.add_argument("--oracle-ms", type=int, default=1500)
    ap.add_argument("--out", default="-")
    ap.add_argument("--cutoffs", type=int, nargs="*", default=[50, 70, 80, 100])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sim, listing = start_dsp_sim(args.dsp_sim, args.seed, tmp)
        try:
            results = run_all(args, listing, tmp)
        finally:
            sim.terminate()
            sim.wait(10)
    oracle = results[0]
    print(f"dsp-sim --population seed --seed {args.seed} --per-request: {len(listing['dsps'])} DSPs; "
          f"{args.requests} requests per run, {args.concurrency} in flight")
    print("| run | DSP answers in time | revenue (% of oracle) | slowest collection | server p99 |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['label']} | {100 * r['answered'] / max(1, r['dsp_requests']):.1f} % "
              f"({r['answered']}/{r['dsp_requests']}) | "
              f"{100 * r['revenue_cpm_micros'] / max(1, oracle['revenue_cpm_micros']):.1f} % | "
              f"{r['collect_max_ms']} ms | {r['internal_p99_ms']:.1f} ms |")
    if args.out != "-":
        json.dump({"seed": args.seed, "requests": args.requests, "concurrency": args.concurrency,
                   "dsps": len(listing["dsps"]), "runs": results}, open(args.out, "w"), indent=1)


def run_all(args, listing, tmp):
    catalog = os.path.join(tmp, "house.json")
    house_catalog(args.catalog, catalog)
    # Tiers frozen (no health reassignment, no probes), every tier called (premium floor 0).
    frozen = {"health_min_requests": 1000000000, "adaptive_min_samples": 1000000000,
              "health_probe_every": 0, "premium_floor_cpm_micros": 0}
    o = args.oracle_ms
    runs = [(f"oracle (no timeout, {o} ms)", {**frozen, "operational_cutoff_ms": o,
             "absolute_cutoff_ms": o, "global_timeout_ms": o})]
    for ms in args.cutoffs:
        runs.append((f"hard cutoff {ms} ms", {**frozen, "operational_cutoff_ms": ms,
                     "absolute_cutoff_ms": ms, "global_timeout_ms": ms}))
    runs.append(("engine default: progressive 70/120 ms, adaptive timeouts", {
        "health_min_requests": 1000000000, "health_probe_every": 0, "adaptive_min_samples": 50,
        "premium_floor_cpm_micros": 0}))
    results = []
    for label, rtb in runs:
        rtb.setdefault("operational_cutoff_ms", 70)
        rtb.setdefault("absolute_cutoff_ms", 120)
        rtb.setdefault("global_timeout_ms", 100)
        res = run_one(args, listing, label, rtb, catalog)
        results.append(res)
        print(json.dumps(res), file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    main()
