#!/usr/bin/env python3
"""Single-thread peers for the GBDT benchmark: LightGBM Booster.predict(num_threads=1) and,
if installed, lleaves (LLVM-compiled LightGBM), on the same model and tiled rows as
model-runtime's gbdt_bench example (thread CPU time, best of 11). Prints `name ns_per_row=X ns_per_tree_row=Y checksum=Z`.
Usage: bench.py MODEL_TXT ROWS_CSV ROW_COUNT"""

import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

PASSES = 11


def best_ns_per_row(predict, rows):
    best = float("inf")
    result = None
    for _ in range(PASSES):
        start = time.thread_time_ns()
        result = predict(rows)
        best = min(best, (time.thread_time_ns() - start) / len(rows))
    return best, result


def main():
    model_path, rows_path, row_count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    booster = lgb.Booster(model_file=model_path)
    frame = pd.read_csv(rows_path)[booster.feature_name()]
    base = frame.to_numpy(dtype="float64")
    rows = np.ascontiguousarray(np.resize(base, (row_count, base.shape[1])))
    trees = booster.num_trees()

    def report(name, ns, result):
        print(f"{name} ns_per_row={ns:.1f} ns_per_tree_row={ns / trees:.2f} checksum={float(np.sum(result)):.6f}")

    ns, result = best_ns_per_row(lambda x: booster.predict(x, raw_score=True, num_threads=1), rows)
    report(f"lightgbm batch={row_count}", ns, result)
    small = rows[:2000]
    ns, _ = best_ns_per_row(
        lambda x: [booster.predict(x[i:i + 100], raw_score=True, num_threads=1) for i in range(0, len(x), 100)], small)
    report("lightgbm batch=100", ns, booster.predict(rows, raw_score=True, num_threads=1))
    ns, _ = best_ns_per_row(
        lambda x: [booster.predict(x[i:i + 1], raw_score=True, num_threads=1) for i in range(len(x))], rows[:500])
    report("lightgbm batch=1", ns, booster.predict(rows, raw_score=True, num_threads=1))
    try:
        import lleaves
    except ImportError:
        print("lleaves not installed: skipped")
        return
    compiled = lleaves.Model(model_file=model_path)
    compiled.compile(raw_score=True)
    ns, result = best_ns_per_row(lambda x: compiled.predict(x, n_jobs=1), rows)
    report(f"lleaves batch={row_count}", ns, result)
    ns, _ = best_ns_per_row(
        lambda x: [compiled.predict(x[i:i + 100], n_jobs=1) for i in range(0, len(x), 100)], small)
    report("lleaves batch=100", ns, compiled.predict(rows, n_jobs=1))
    ns, _ = best_ns_per_row(lambda x: [compiled.predict(x[i:i + 1], n_jobs=1) for i in range(len(x))], rows[:500])
    report("lleaves batch=1", ns, compiled.predict(rows, n_jobs=1))


if __name__ == "__main__":
    main()
