#!/usr/bin/env python3
"""Writes tests/golden/data/plateau_keras.json: the learning rate Keras's ReduceLROnPlateau sets
after each epoch for given per-epoch training losses (the schedule Fawaz et al. 2019 train FCN
and ResNet with), for tests/train/test_series_loop.cc's check of train::plateau_lr.

Needs TensorFlow/Keras: /work/peers-venv/bin/python tests/golden/make_plateau_goldens.py
Layout: {"keras": version, "cases": [{"lr", "factor", "patience", "min_lr", "min_delta",
"losses": [...], "lr_after": [lr for the epoch after each loss]}]}.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402

rng = np.random.default_rng(16)


def case(lr, factor, patience, min_lr, min_delta, losses):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse")
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=factor, patience=patience, min_lr=min_lr,
                                           min_delta=min_delta)
    cb.set_model(model)
    cb.on_train_begin()
    after = []
    for epoch, loss in enumerate(losses):
        cb.on_epoch_end(epoch, {"loss": float(loss)})
        after.append(float(np.float32(keras.ops.convert_to_numpy(model.optimizer.learning_rate))))
    return {"lr": lr, "factor": factor, "patience": patience, "min_lr": min_lr, "min_delta": min_delta,
            "losses": [float(v) for v in losses], "lr_after": after}


# A falling loss with flat stretches and noise, long enough to reach min_lr.
falling = np.concatenate([np.linspace(2, 1, 10), np.full(12, 1.0), np.linspace(1, 0.5, 5),
                          0.5 + 0.01 * rng.standard_normal(40)])
# Improvements smaller than min_delta do not count.
tiny_steps = 1.0 - 1e-5 * np.arange(30)
cases = [
    case(1e-3, 0.5, 3, 1e-4, 1e-4, falling),
    case(1e-2, 0.1, 5, 1e-5, 1e-4, falling),
    case(1e-3, 0.5, 4, 1e-4, 1e-4, tiny_steps),
    case(1e-3, 0.5, 2, 3e-4, 0.0, np.full(15, 0.7)),
]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "plateau_keras.json")
with open(out + ".tmp", "w") as f:
    json.dump({"keras": keras.__version__, "tensorflow": tf.__version__, "cases": cases}, f)
os.replace(out + ".tmp", out)
print("wrote", out)
