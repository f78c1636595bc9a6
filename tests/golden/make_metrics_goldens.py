#!/usr/bin/env python3
"""Writes tests/golden/data/metrics_sklearn.json: classification scores (accuracy, macro
precision/recall/F1, balanced accuracy, Cohen's kappa, per-class precision/recall/F1) and
regression errors (MSE, MAE) as scikit-learn computes them, for tests/train/test_series_metrics.cc.

Needs numpy and scikit-learn (any venv: python3 -m venv V && V/bin/pip install scikit-learn):
  V/bin/python tests/golden/make_metrics_goldens.py
Layout: {"sklearn": version, "classification": [{"k", "y_true", "y_pred", "confusion",
"accuracy", ..., "precision": [per class or null]}], "regression": [{"y_true", "y_pred", "std",
"mse", "mae", "mse_original", "mae_original"}]}. null stands for NaN.
"""
import json
import math
import os
import warnings

import numpy as np
import sklearn
from sklearn import metrics

warnings.filterwarnings("ignore")
rng = np.random.default_rng(16)


def num(x):
    x = float(x)
    return None if math.isnan(x) else x


def classification_case(k, y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    p, r, f, _ = metrics.precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    per = {name: [None] * k for name in ("precision", "recall", "f1")}
    for i, c in enumerate(present):
        per["precision"][c], per["recall"][c], per["f1"][c] = float(p[i]), float(r[i]), float(f[i])
    return {
        "k": k,
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
        "confusion": metrics.confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist(),
        "accuracy": num(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": num(metrics.balanced_accuracy_score(y_true, y_pred)),
        "macro_precision": num(metrics.precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "macro_recall": num(metrics.recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "macro_f1": num(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "cohen_kappa": num(metrics.cohen_kappa_score(y_true, y_pred)),
        **per,
    }


cases = []
for k, n, noise in [(2, 40, 0.3), (3, 31, 0.5), (5, 60, 0.6), (7, 25, 0.8), (4, 100, 0.1)]:
    y = rng.integers(0, k, n)
    wrong = rng.random(n) < noise
    cases.append(classification_case(k, y, np.where(wrong, rng.integers(0, k, n), y)))
# A class that is predicted but never true, and one in neither (class 3 of 4).
cases.append(classification_case(4, [0, 0, 1, 1, 1, 0], [0, 2, 1, 1, 0, 2]))
# Perfect, and everything one class (kappa is 0/0: NaN).
cases.append(classification_case(3, [0, 1, 2, 2], [0, 1, 2, 2]))
cases.append(classification_case(2, [1, 1, 1], [1, 1, 1]))

regression = []
for shape, std in [((13,), [2.5]), ((6, 3), [0.5, 2.0, 10.0]), ((5, 4), [1.7])]:
    t = rng.normal(size=shape)
    y = t + rng.normal(scale=0.3, size=shape)
    s = np.broadcast_to(np.asarray(std), shape)
    regression.append({
        "shape": list(shape), "y_true": t.ravel().tolist(), "y_pred": y.ravel().tolist(), "std": std,
        "mse": metrics.mean_squared_error(t.ravel(), y.ravel()),
        "mae": metrics.mean_absolute_error(t.ravel(), y.ravel()),
        "mse_original": metrics.mean_squared_error((t * s).ravel(), (y * s).ravel()),
        "mae_original": metrics.mean_absolute_error((t * s).ravel(), (y * s).ravel()),
    })

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "metrics_sklearn.json")
with open(out + ".tmp", "w") as f:
    json.dump({"sklearn": sklearn.__version__, "classification": cases, "regression": regression}, f)
os.replace(out + ".tmp", out)
print("wrote", out)
