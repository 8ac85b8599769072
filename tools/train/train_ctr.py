#!/usr/bin/env python3
"""Train small binary CTR models on the public Avazu/Criteo samples and write parity fixtures.

For each data set this writes, into the output folder (default: model-runtime/tests/fixtures):
  <name>_rows.csv          held-out rows (header = feature names, empty cell = missing), plus
                           rows with injected missing values, unseen/negative/fractional
                           category values, zeros and exact split thresholds
  <name>_lgb.txt           LightGBM model (Booster.save_model), categorical features declared
  <name>_lgb_expected.csv  LightGBM predictions on <name>_rows.csv: prob,raw (repr floats)
  <name>_xgb.json          XGBoost model (save_model json), binary:logistic, NaN = missing
  <name>_xgb_expected.csv  XGBoost predictions: prob,raw
and a LightGBM regression model with zero_as_missing (criteo_lgb_reg.txt) so that the three
LightGBM missing types (None, Zero, NaN) all appear in the fixtures.

Run from the repository root:  python3 tools/train/train_ctr.py [--data ../shared/data/ctr] [--out DIR]
Deterministic: fixed seeds, single thread.
"""

import argparse
import os
import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

SEED = 7
TREES = 100


def frequency_codes(column: pd.Series) -> np.ndarray:
    """Integer code per value, 0 = most frequent (a stable stand-in for a hashed id)."""
    order = column.value_counts(sort=True)
    ranks = {value: rank for rank, value in enumerate(order.index)}
    return column.map(ranks).astype("float64").to_numpy()


def load_avazu(path: str):
    data = pd.read_csv(os.path.join(path, "avazu_10k.csv"), dtype=str)
    numeric = ["C1", "banner_pos", "device_type", "device_conn_type",
               "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21"]
    coded = ["site_category", "app_category", "site_id", "app_id", "app_domain", "device_model"]
    columns = {name: data[name].astype("float64").to_numpy() for name in numeric}
    for name in coded:
        columns[name] = frequency_codes(data[name])
    frame = pd.DataFrame(columns)
    label = data["click"].astype("int32").to_numpy()
    categorical = ["site_category", "app_category"]
    return frame, label, categorical


def load_criteo(path: str):
    data = pd.read_csv(os.path.join(path, "criteo_sample_200.txt"))
    dense = [f"I{i}" for i in range(1, 14)]
    coded = ["C6", "C9", "C14", "C17", "C20", "C22", "C23", "C25"]
    columns = {name: data[name].astype("float64").to_numpy() for name in dense}
    for name in coded:
        codes = frequency_codes(data[name].dropna())
        full = np.full(len(data), np.nan)
        full[data[name].notna().to_numpy()] = codes
        columns[name] = full
    frame = pd.DataFrame(columns)
    label = data["label"].astype("int32").to_numpy()
    categorical = ["C6", "C14", "C17", "C23"]
    return frame, label, categorical


def split_rows(frame: pd.DataFrame, label: np.ndarray, test_fraction: float):
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(frame))
    test_count = int(len(frame) * test_fraction)
    test, train = order[:test_count], order[test_count:]
    return frame.iloc[train], label[train], frame.iloc[test]


def lightgbm_params(small: bool, objective: str = "binary") -> dict:
    params = {
        "objective": objective,
        "num_leaves": 63,
        "max_depth": 6 if not small else 7,
        "learning_rate": 0.1,
        "num_threads": 1,
        "seed": SEED,
        "deterministic": True,
        "verbose": -1,
        "max_cat_to_onehot": 4,
        "min_data_per_group": 5 if small else 20,
        "cat_smooth": 1.0,
        "cat_l2": 1.0,
    }
    if small:
        params.update({"min_data_in_leaf": 3, "min_sum_hessian_in_leaf": 1e-3,
                       "min_data_in_bin": 1})
    return params


def thresholds_by_feature(model_text: str) -> dict:
    """Numeric split thresholds per feature index, read from LightGBM's model text."""
    found = {}
    for block in model_text.split("\nTree=")[1:]:
        fields = dict(re.findall(r"^(\w+)=(.*)$", block, flags=re.M))
        if int(fields["num_leaves"]) < 2:
            continue
        features = [int(v) for v in fields["split_feature"].split()]
        values = [float(v) for v in fields["threshold"].split()]
        kinds = [int(v) for v in fields["decision_type"].split()]
        for feature, value, kind in zip(features, values, kinds):
            if not kind & 1:
                found.setdefault(feature, set()).add(value)
    return {feature: sorted(values) for feature, values in found.items()}


def xgboost_thresholds(booster: xgb.Booster) -> dict:
    table = booster.trees_to_dataframe()
    table = table[table["Feature"] != "Leaf"]
    found = {}
    for name, value in zip(table["Feature"], table["Split"]):
        found.setdefault(name, set()).add(float(np.float32(value)))
    return {name: sorted(values) for name, values in found.items()}


def edge_rows(test: pd.DataFrame, categorical: list, lgb_thresholds: dict,
              xgb_thresholds: dict) -> pd.DataFrame:
    """Held-out rows plus rows with missing values, unseen categories, zeros and thresholds."""
    rng = np.random.default_rng(SEED + 1)
    names = list(test.columns)
    base = test.to_numpy(dtype="float64")
    parts = [base]

    with_missing = base.copy()
    with_missing[rng.random(with_missing.shape) < 0.25] = np.nan
    parts.append(with_missing)

    unseen = base[: min(200, len(base))].copy()
    cat_idx = [names.index(name) for name in categorical]
    odd_values = np.array([9999.0, -1.0, -0.5, 2.7, 1e12, np.nan, 0.0, 31.0, 32.0, 64.0])
    for column in cat_idx:
        unseen[:, column] = rng.choice(odd_values, size=len(unseen))
    parts.append(unseen)

    zeros = base[: min(100, len(base))].copy()
    zeros[rng.random(zeros.shape) < 0.4] = 0.0
    zeros[rng.random(zeros.shape) < 0.1] = -0.0
    parts.append(zeros)

    exact = base[: min(300, len(base))].copy()
    for column in range(len(names)):
        pool = list(lgb_thresholds.get(column, [])) + list(xgb_thresholds.get(names[column], []))
        # LightGBM writes DBL_MAX as the threshold of some splits; XGBoost refuses such inputs.
        pool = [value for value in pool if abs(value) < 1e30]
        if not pool:
            continue
        mask = rng.random(len(exact)) < 0.5
        exact[mask, column] = rng.choice(np.array(pool), size=int(mask.sum()))
    parts.append(exact)

    return pd.DataFrame(np.vstack(parts), columns=names)


def write_rows(frame: pd.DataFrame, path: str) -> None:
    with open(path, "w") as out:
        out.write(",".join(frame.columns) + "\n")
        for row in frame.itertuples(index=False):
            out.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")


def write_expected(prob: np.ndarray, raw: np.ndarray, path: str) -> None:
    with open(path, "w") as out:
        out.write("prob,raw\n")
        for p, r in zip(prob, raw):
            out.write(f"{float(p)!r},{float(r)!r}\n")


def train_lightgbm(train, label, categorical, small, objective="binary", extra=None):
    params = lightgbm_params(small, objective)
    params.update(extra or {})
    dataset = lgb.Dataset(train.to_numpy(dtype="float64"), label=label,
                          feature_name=list(train.columns), categorical_feature=categorical,
                          free_raw_data=False)
    return lgb.train(params, dataset, num_boost_round=TREES)


def train_xgboost(train, label, small):
    matrix = xgb.DMatrix(train.to_numpy(dtype="float64"), label=label,
                         feature_names=list(train.columns), missing=np.nan)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 1,
              "seed": SEED, "tree_method": "hist", "base_score": float(label.mean())}
    if small:
        params["min_child_weight"] = 0.01
    return xgb.train(params, matrix, num_boost_round=TREES)


def build(name, frame, label, categorical, out_dir, small):
    train, train_label, test = split_rows(frame, label, 0.25)
    lgb_model = train_lightgbm(train, train_label, categorical, small)
    xgb_model = train_xgboost(train, train_label, small)
    rows = edge_rows(test, categorical, thresholds_by_feature(lgb_model.model_to_string()),
                     xgboost_thresholds(xgb_model))
    matrix = rows.to_numpy(dtype="float64")
    write_rows(rows, os.path.join(out_dir, f"{name}_rows.csv"))

    lgb_path = os.path.join(out_dir, f"{name}_lgb.txt")
    lgb_model.save_model(lgb_path)
    reloaded = lgb.Booster(model_file=lgb_path)
    write_expected(reloaded.predict(matrix, num_threads=1),
                   reloaded.predict(matrix, raw_score=True, num_threads=1),
                   os.path.join(out_dir, f"{name}_lgb_expected.csv"))

    xgb_path = os.path.join(out_dir, f"{name}_xgb.json")
    xgb_model.save_model(xgb_path)
    xgb_reloaded = xgb.Booster(model_file=xgb_path)
    dmatrix = xgb.DMatrix(matrix, feature_names=list(rows.columns), missing=np.nan)
    write_expected(xgb_reloaded.predict(dmatrix),
                   xgb_reloaded.predict(dmatrix, output_margin=True),
                   os.path.join(out_dir, f"{name}_xgb_expected.csv"))
    return train, train_label, rows


def build_regression(train, label, categorical, rows, out_dir):
    """A LightGBM `regression` model with zero_as_missing, so Zero missing type appears."""
    model = train_lightgbm(train, label.astype("float64"), categorical, True, "regression",
                           {"zero_as_missing": True, "num_leaves": 15})
    path = os.path.join(out_dir, "criteo_lgb_reg.txt")
    model.save_model(path)
    reloaded = lgb.Booster(model_file=path)
    matrix = rows.to_numpy(dtype="float64")
    raw = reloaded.predict(matrix, raw_score=True, num_threads=1)
    write_expected(reloaded.predict(matrix, num_threads=1), raw,
                   os.path.join(out_dir, "criteo_lgb_reg_expected.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ctr")
    parser.add_argument("--out", default="model-runtime/tests/fixtures")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    frame, label, categorical = load_avazu(args.data)
    build("avazu", frame, label, categorical, args.out, small=False)

    frame, label, categorical = load_criteo(args.data)
    train, train_label, rows = build("criteo", frame, label, categorical, args.out, small=True)
    build_regression(train, train_label, categorical, rows, args.out)
    print(f"fixtures written to {args.out}")


if __name__ == "__main__":
    main()
