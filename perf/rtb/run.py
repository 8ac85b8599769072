#!/usr/bin/env python3
"""RTB timeout/revenue table (seed Part 3): revenue captured at each cutoff as a share of a
no-timeout oracle run over the same requests.

One process plays a population of 50 DSPs on loopback ports. Every DSP answer is a pure function
of (seed, DSP, request id): latency from a lognormal fitted to the seed's response-time table
(P(<=50 ms) = 70 %, P(<=70 ms) = 85 %, P(<=100 ms) = 95 %, median ~36 ms) with a per-DSP speed
factor, bid probability and a lognormal CPM price (premium DSPs bid higher). So every run sees
exactly the same bids; only the engine's cutoff decides which of them arrive in time.

For each configuration the real `adserver` binary is started with internal demand reduced to a
house ad (so revenue is external only), the population as its [[dsp]] registry (tiers frozen),
and the same N requests are sent; revenue and the DSP answer share come from its /stats.
"""

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
import http.client

DSPS = 50
MU, SIGMA = math.log(36.0), 0.618  # lognormal fit of the seed's table, ms


def unit(seed, *parts):
    h = hashlib.blake2b(("|".join(map(str, (seed,) + parts))).encode(), digest_size=8)
    return (int.from_bytes(h.digest(), "big") + 0.5) / 2**64


def normal(seed, *parts):
    u1, u2 = unit(seed, *parts, "a"), unit(seed, *parts, "b")
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def dsp_profile(seed, d):
    premium = d < 12
    return {
        "tier": 1 if premium else (2 if d < 38 else 3),
        "speed": 0.75 + 0.5 * unit(seed, "speed", d),
        "bid_p": 0.55 + 0.35 * unit(seed, "bidp", d),
        "price_mu": math.log(2.2 if premium else 1.4),
    }


def answer(seed, d, rid):
    p = dsp_profile(seed, d)
    lat = math.exp(MU + SIGMA * normal(seed, "lat", d, rid)) * p["speed"]
    bids = unit(seed, "bid", d, rid) < p["bid_p"]
    price = round(math.exp(p["price_mu"] + 0.6 * normal(seed, "price", d, rid)), 4)
    return min(lat, 400.0), bids, max(price, 0.02)


async def serve_dsp(seed, d, port):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                if head.startswith(b"GET"):
                    writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    continue
                req = json.loads(body)
                lat, bids, price = answer(seed, d, req["id"])
                await asyncio.sleep(lat / 1000.0)
                if not bids:
                    writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    continue
                out = json.dumps({"id": req["id"], "cur": "USD", "seatbid": [{"seat": f"d{d}", "bid": [{
                    "id": f"{req['id']}-{d}", "impid": req["imp"][0]["id"], "price": price,
                    "adm": "<div>ad</div>", "crid": f"c{d}", "adomain": ["dsp.example"]}]}]}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(out)).encode() + b"\r\n\r\n" + out)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)


def start_population(seed, base_port):
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def main():
        for d in range(DSPS):
            await serve_dsp(seed, d, base_port + d)
        ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    ready.wait(10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(seed, base_port, listen, catalog, rtb):
    lines = [f'[server]\nlisten = "{listen}"\nshards = 2\npin_cores = false\n',
             f'[catalog]\npath = "{catalog}"\n', "[rtb]\n"]
    lines += [f"{k} = {v}\n" for k, v in rtb.items()]
    timeout = rtb["absolute_cutoff_ms"]
    for d in range(DSPS):
        p = dsp_profile(seed, d)
        lines.append(f'[[dsp]]\nid = "dsp-{d:02}"\ntier = {p["tier"]}\nqps_max = 100000\n'
                     f'timeout_ms = {timeout}\nformats = ["banner"]\n'
                     f'endpoints = {{ us-east = "http://127.0.0.1:{base_port + d}/bid" }}\n')
    return "".join(lines)


def house_catalog(src, dst):
    c = json.load(open(src))
    c["campaigns"] = [x for x in c["campaigns"] if x["kind"]["type"] == "house"]
    json.dump(c, open(dst, "w"))


def drive(addr, n, concurrency):
    host, port = addr.split(":")

    def one(i):
        body = json.dumps({"id": f"r{i}", "tmax": 2000, "imp": [{"id": "1", "bidfloor": 0.5,
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


def run_one(args, label, rtb, catalog):
    listen = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "adserver.toml")
        open(path, "w").write(config(args.seed, args.base_port, listen, catalog, rtb))
        proc = subprocess.Popen([args.adserver, "--config", path, "serve"],
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
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--base-port", type=int, default=19400)
    ap.add_argument("--out", default="-")
    ap.add_argument("--cutoffs", type=int, nargs="*", default=[50, 70, 80, 100])
    args = ap.parse_args()
    start_population(args.seed, args.base_port)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = os.path.join(tmp, "house.json")
        house_catalog(args.catalog, catalog)
        # Tiers frozen (no health reassignment, no probes), every tier called (premium floor 0).
        frozen = {"health_min_requests": 1000000000, "adaptive_min_samples": 1000000000,
                  "health_probe_every": 0, "premium_floor_cpm_micros": 0}
        runs = [("oracle (no timeout, 450 ms)", {**frozen, "operational_cutoff_ms": 450,
                 "absolute_cutoff_ms": 450, "global_timeout_ms": 450})]
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
            res = run_one(args, label, rtb, catalog)
            results.append(res)
            print(json.dumps(res), file=sys.stderr, flush=True)
    oracle = results[0]
    print("| run | DSP answers in time | revenue (% of oracle) | slowest collection | internal p99 |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['label']} | {100 * r['answered'] / max(1, r['dsp_requests']):.1f} % "
              f"({r['answered']}/{r['dsp_requests']}) | "
              f"{100 * r['revenue_cpm_micros'] / max(1, oracle['revenue_cpm_micros']):.1f} % | "
              f"{r['collect_max_ms']} ms | {r['internal_p99_ms']:.1f} ms |")
    if args.out != "-":
        json.dump(results, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
