#!/usr/bin/env python3
"""Trains the benchmark's second model: LightGBM on the Avazu sample with no categorical
features declared (numeric splits only), same size as the fixture (100 trees, depth 6).
Usage: train_numeric.py DATA_DIR OUT_MODEL_TXT"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "train"))
import train_ctr  # noqa: E402


def main():
    data_dir, out_path = sys.argv[1], sys.argv[2]
    frame, label, _ = train_ctr.load_avazu(data_dir)
    train, train_label, _ = train_ctr.split_rows(frame, label, 0.25)
    model = train_ctr.train_lightgbm(train, train_label, [], small=False)
    model.save_model(out_path)


if __name__ == "__main__":
    main()
