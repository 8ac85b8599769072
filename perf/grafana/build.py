#!/usr/bin/env python3
"""Writes perf/grafana/adcore.json, the Grafana dashboard over adserver's Prometheus metrics.

Run from anywhere: python3 perf/grafana/build.py. The panels mirror /dashboard: per-core QPS,
latency percentiles and stage breakdown, mesh hops, ring-full and stalls; outcomes and no-bid
reasons; revenue and spend; the integrity/profile/rtb stages; per-DSP latency, bid and win rates,
timeouts, health score and tier (adcore_rtb_*, exported when DSPs are configured); pacing per
campaign; degradation level and integrity flags.
engine/tests/grafana.rs checks that every metric named here is one adserver exports.
"""
import json
import pathlib

DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries", legend="{{shard}}"):
    targets = []
    for i, e in enumerate(exprs):
        expr, fmt = (e if isinstance(e, tuple) else (e, legend))
        targets.append({"datasource": DS, "expr": expr, "legendFormat": fmt, "refId": chr(65 + i)})
    return {
        "id": pid, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right"}},
        "targets": targets,
    }


def quantile(q, stage="total"):
    return (
        f'histogram_quantile({q}, sum by (shard, le) (rate(adcore_stage_duration_seconds_bucket'
        f'{{stage="{stage}",shard=~"$shard"}}[$__rate_interval])))'
    )


panels = []
y = 0
panels.append(panel(1, "QPS per core", ['sum by (shard) (rate(adcore_requests_total{shard=~"$shard"}[$__rate_interval]))'], 0, y, unit="reqps"))
panels.append(panel(2, "Internal latency per core (p50 / p99 / p99.9)", [
    (quantile(0.5), "p50 shard {{shard}}"), (quantile(0.99), "p99 shard {{shard}}"), (quantile(0.999), "p99.9 shard {{shard}}"),
], 12, y, unit="s"))
y += 8
panels.append(panel(3, "Stage p99 (all cores)", [
    ('histogram_quantile(0.99, sum by (stage, le) (rate(adcore_stage_duration_seconds_bucket{stage!="total",shard=~"$shard"}[$__rate_interval])))', "{{stage}}"),
], 0, y, unit="s"))
panels.append(panel(4, "Outcomes", [
    ('sum by (outcome) (rate(adcore_requests_total{shard=~"$shard"}[$__rate_interval]))', "{{outcome}}"),
], 12, y, unit="reqps"))
y += 8
panels.append(panel(5, "Hops between cores", [
    ('sum by (shard) (rate(adcore_hops_out_total{shard=~"$shard"}[$__rate_interval]))', "out {{shard}}"),
    ('sum by (shard) (rate(adcore_hops_in_total{shard=~"$shard"}[$__rate_interval]))', "in {{shard}}"),
    ('sum by (shard) (rate(adcore_hop_fallback_local_total{shard=~"$shard"}[$__rate_interval]))', "served locally (ring full) {{shard}}"),
], 0, y, unit="ops"))
panels.append(panel(6, "Ring full and executor stalls", [
    ('sum by (shard) (rate(adcore_ring_full_total{shard=~"$shard"}[$__rate_interval]))', "ring full {{shard}}"),
    ('sum by (shard) (rate(adcore_stalls_total{shard=~"$shard"}[$__rate_interval]))', "stalls {{shard}}"),
    ('max by (shard) (adcore_stall_seconds_max{shard=~"$shard"})', "longest stall {{shard}}"),
], 12, y, unit="short"))
y += 8
panels.append(panel(7, "No-bid reasons", [
    ('sum by (reason) (rate(adcore_nobid_total{shard=~"$shard"}[$__rate_interval]))', "{{reason}}"),
], 0, y, unit="reqps"))
panels.append(panel(8, "Revenue (USD per second) and fill", [
    ('sum(rate(adcore_revenue_micros_total[$__rate_interval])) / 1e6', "revenue USD/s"),
    ('sum(rate(adcore_impressions_paid_total[$__rate_interval]))', "paid impressions/s"),
    ('sum(rate(adcore_impressions_house_total[$__rate_interval]))', "house impressions/s"),
], 12, y, unit="short"))
y += 8
panels.append(panel(9, "Campaign spend today (top 20, USD)", [
    ('topk(20, sum by (campaign) (adcore_campaign_spend_today_micros)) / 1e6', "{{campaign}}"),
], 0, y, w=24, unit="currencyUSD"))
y += 8

# Stages the issue names beyond the core breakdown: integrity (fraud tier 1), rtb (fan-out and
# collection on the receiving core), profile (lookup and features on the owner core).
panels.append(panel(10, "Stage p50 (all cores)", [
    ('histogram_quantile(0.5, sum by (stage, le) (rate(adcore_stage_duration_seconds_bucket{stage!="total",shard=~"$shard"}[$__rate_interval])))', "{{stage}}"),
], 0, y, unit="s"))
panels.append(panel(11, "Integrity, profile and RTB stages p99 per core", [
    (quantile(0.99, "integrity"), "integrity {{shard}}"),
    (quantile(0.99, "profile"), "profile {{shard}}"),
    (quantile(0.99, "rtb"), "rtb {{shard}}"),
], 12, y, unit="s"))
y += 8


def dsp_quantile(q):
    return (
        f'histogram_quantile({q}, sum by (dsp, le) (rate(adcore_rtb_latency_seconds_bucket'
        f'{{shard=~"$shard"}}[$__rate_interval])))'
    )


def per_dsp(metric):
    return f'sum by (dsp) (rate({metric}{{shard=~"$shard"}}[$__rate_interval]))'


panels.append(panel(12, "DSP latency (p50 / p95 / p99)", [
    (dsp_quantile(0.5), "p50 {{dsp}}"), (dsp_quantile(0.95), "p95 {{dsp}}"), (dsp_quantile(0.99), "p99 {{dsp}}"),
], 0, y, unit="s"))
panels.append(panel(13, "DSP bid rate and win rate", [
    (f'{per_dsp("adcore_rtb_bids_total")} / {per_dsp("adcore_rtb_requests_total")}', "bid rate {{dsp}}"),
    (f'{per_dsp("adcore_rtb_wins_total")} / {per_dsp("adcore_rtb_bids_total")}', "win rate {{dsp}}"),
], 12, y, unit="percentunit"))
y += 8
panels.append(panel(14, "DSP timeouts and errors", [
    (per_dsp("adcore_rtb_timeouts_total"), "timeouts {{dsp}}"),
    (per_dsp("adcore_rtb_errors_total"), "errors {{dsp}}"),
    (per_dsp("adcore_rtb_qps_refused_total"), "QPS cap {{dsp}}"),
], 0, y, unit="ops"))
panels.append(panel(15, "DSP health score and tier", [
    ('max by (dsp) (adcore_rtb_health_score)', "score {{dsp}}"),
    ('max by (dsp) (adcore_rtb_tier)', "tier {{dsp}}"),
], 12, y, unit="short"))
y += 8
panels.append(panel(16, "Pacing: spend vs target today (top 20 campaigns, USD)", [
    ('topk(20, adcore_pacing_actual_micros) / 1e6', "spend {{campaign}}"),
    ('topk(20, adcore_pacing_target_micros) / 1e6', "target {{campaign}}"),
], 0, y, unit="currencyUSD"))
panels.append(panel(17, "Pacing throttle (top 20 campaigns)", [
    ('topk(20, adcore_pacing_throttle)', "{{campaign}}"),
], 12, y, unit="percentunit"))
y += 8
panels.append(panel(18, "Degradation level per core (0 normal .. 4 critical)", [
    ('max by (shard) (adcore_degradation_level{shard=~"$shard"})', "level {{shard}}"),
    ('sum by (shard) (increase(adcore_degradation_transitions_total{shard=~"$shard"}[5m]))', "transitions/5m {{shard}}"),
], 0, y, unit="short"))
panels.append(panel(19, "Requests by degradation level, integrity flags", [
    ('sum by (level) (rate(adcore_degradation_requests_total{shard=~"$shard"}[$__rate_interval]))', "level {{level}}"),
    ('sum by (rule) (rate(adcore_integrity_flagged_total{shard=~"$shard"}[$__rate_interval]))', "flagged {{rule}}"),
], 12, y, unit="reqps"))
y += 8

dashboard = {
    "title": "adcore: per-core ad server",
    "uid": "adcore-per-core",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "time": {"from": "now-15m", "to": "now"},
    "refresh": "5s",
    "tags": ["adcore"],
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "shard", "type": "query", "datasource": DS, "label": "core",
         "query": "label_values(adcore_requests_total, shard)", "includeAll": True, "multi": True,
         "current": {"text": "All", "value": "$__all"}, "refresh": 2},
    ]},
    "panels": panels,
}

out = pathlib.Path(__file__).with_name("adcore.json")
out.write_text(json.dumps(dashboard, indent=2) + "\n")
print(f"wrote {out}")
