#!/usr/bin/env python3
"""Train the demo CTR model (engine/models/demo_ctr_v1.txt) from an adgen impression log.

The log (`adgen --logs N` writes impressions.csv) has the engine's feature schema v1 columns
(written by the engine's own row builder), then `tier` (1-4, the engine's cold-start tier) and
`click` (drawn from adgen's hidden ground truth). This script trains a small LightGBM model
(100 trees, depth 6) on 80 % of the rows and reports held-out AUC for:
  - gbdt:   the model on every row;
  - engine: what the engine serves (the model for tiers 1-3, the category prior for tier 4);
  - prior:  the category CTR prior alone (cold-start tier 4 for everyone).

Run from the repository root (after `bash tools/train/setup.sh`):
  cargo run --release -p tools --bin adgen -- --out /tmp/demo --today 2026-11-28 --logs 400000
  python3 tools/train/train_demo.py --log /tmp/demo/impressions.csv --out engine/models/demo_ctr_v1.txt
Deterministic: fixed seeds, single thread.
"""

import argparse
import json

import lightgbm as lgb
import numpy as np
import pandas as pd

SEED = 7
CATEGORICAL = ["user_gender", "ad_category", "ad_format", "ad_pricing",
               "ctx_device_type", "ctx_os", "ctx_country"]


def auc(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties get the average rank)."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    pos = label == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--out", default="engine/models/demo_ctr_v1.txt")
    ap.add_argument("--trees", type=int, default=100)
    args = ap.parse_args()

    data = pd.read_csv(args.log)
    features = [c for c in data.columns if c not in ("tier", "click")]
    label = data["click"].to_numpy()
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(data))
    cut = int(len(data) * 0.8)
    train, test = order[:cut], order[cut:]
    x = data[features]
    params = {
        "objective": "binary",
        "num_leaves": 31,
        "max_depth": 6,
        "learning_rate": 0.08,
        "min_data_in_leaf": 200,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_cat_to_onehot": 16,
        "seed": SEED,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    ds = lgb.Dataset(x.iloc[train], label[train], categorical_feature=CATEGORICAL,
                     free_raw_data=False)
    booster = lgb.train(params, ds, num_boost_round=args.trees)
    booster.save_model(args.out)

    y = label[test]
    gbdt = booster.predict(x.iloc[test])
    prior = data["ad_ctr_prior"].to_numpy()[test]
    tier4 = data["tier"].to_numpy()[test] == 4
    engine = np.where(tier4, prior, gbdt)
    report = {
        "rows_train": int(len(train)),
        "rows_test": int(len(test)),
        "ctr": float(label.mean()),
        "auc_gbdt": auc(y, gbdt),
        "auc_engine": auc(y, engine),
        "auc_prior": auc(y, prior),
    }
    for tier in (1, 2, 3, 4):
        mask = data["tier"].to_numpy()[test] == tier
        if mask.sum() > 0 and 0 < y[mask].sum() < mask.sum():
            report[f"auc_gbdt_tier{tier}"] = auc(y[mask], gbdt[mask])
            report[f"rows_tier{tier}"] = int(mask.sum())
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
