#!/usr/bin/python3
"""Goldens for the 1-D pooling layers and the time-series / text models (models/series_*.h).

Writes into tests/golden/data/:
  series_pool1d.safetensors  for each pooling case <c>: the input <c>.x, output <c>.y, an upstream
                             gradient <c>.dy and the input gradient <c>.dx (torch.nn.functional's
                             max_pool1d / avg_pool1d / adaptive_avg_pool1d / adaptive_max_pool1d).
  series_models.safetensors  for each model <m> (the PyTorch twins below, written as models/series_*.h
                             builds them): input <m>.x, labels <m>.y, eval-mode output <m>.eval,
                             train-mode output <m>.train (batch statistics), and after
                             cross_entropy(train output, y).backward() the input gradient <m>.dx
                             (float inputs only). The metadata holds each model's SeriesSpec fields
                             (<m>.spec: "field=value,...") and its parameter count (<m>.params).

The model weights are not stored: both sides generate them with make_model_goldens.py's
counter-based hash (repeated below, without that script's torchvision import;
tests/models/model_golden.h is the C++ twin), exact in fp32.
Run with Debian's python3-torch (1.13), which made the checked-in files:
  /usr/bin/python3 tests/golden/make_series_goldens.py
(torch 2.15 gives the same inputs and outputs within 5e-7.)
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402

SEED = 2024
M64 = (1 << 64) - 1


def splitmix64(x):
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def golden_values(k, name, shape):
    """As make_model_goldens.golden_values: entry k of the state dict from the hash of (seed, k, i)."""
    n = int(np.prod(shape)) if len(shape) else 1
    base = (SEED * 0x1000000000000 + (k + 1) * 0x100000000) & M64
    with np.errstate(over="ignore"):
        u = splitmix64(np.uint64(base) + np.arange(n, dtype=np.uint64))
    q = (u >> np.uint64(56)).astype(np.int64) - 128
    if name.endswith("running_var"):
        v = 1.0 + (q + 128) / 256.0
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = q / 512.0
    elif len(shape) == 1:
        v = 1.0 + q / 512.0
    else:
        m, e = math.frexp(math.sqrt(6.0 / (n // shape[0])) / 128.0)
        v = q * math.ldexp(1.0, e - 1)
    return torch.tensor(v, dtype=torch.float32).reshape(shape)


def load_golden_weights(model):
    new = {}
    for k, (name, t) in enumerate(model.state_dict().items()):
        new[name] = t if name.endswith("num_batches_tracked") else golden_values(k, name, list(t.shape))
    model.load_state_dict(new, strict=True)


# ---- the models, as models/series_conv.h builds them ----
class FCN(nn.Module):
    def __init__(self, c, k, w):
        super().__init__()
        self.conv1 = nn.Conv1d(c, w[0], 8, padding="same"); self.bn1 = nn.BatchNorm1d(w[0])
        self.conv2 = nn.Conv1d(w[0], w[1], 5, padding="same"); self.bn2 = nn.BatchNorm1d(w[1])
        self.conv3 = nn.Conv1d(w[1], w[2], 3, padding="same"); self.bn3 = nn.BatchNorm1d(w[2])
        self.relu = nn.ReLU(); self.gap = nn.AdaptiveAvgPool1d(1); self.fc = nn.Linear(w[2], k)

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.relu(self.bn3(self.conv3(h)))
        return self.fc(self.gap(h).flatten(1))


class ResBlock1d(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 8, padding="same"); self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 5, padding="same"); self.bn2 = nn.BatchNorm1d(cout)
        self.conv3 = nn.Conv1d(cout, cout, 3, padding="same"); self.bn3 = nn.BatchNorm1d(cout)
        self.relu = nn.ReLU()
        sc = [nn.Conv1d(cin, cout, 1)] if cin != cout else []
        self.shortcut = nn.Sequential(*sc, nn.BatchNorm1d(cout))

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return self.relu(h + self.shortcut(x))


class ResNet1d(nn.Module):
    def __init__(self, c, k, w):
        super().__init__()
        self.blocks = nn.Sequential(ResBlock1d(c, w[0]), ResBlock1d(w[0], w[1]), ResBlock1d(w[1], w[2]))
        self.gap = nn.AdaptiveAvgPool1d(1); self.fc = nn.Linear(w[2], k)

    def forward(self, x):
        return self.fc(self.gap(self.blocks(x)).flatten(1))


class HarCNN(nn.Module):
    def __init__(self, c, k, width, depth):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [nn.Conv1d(c if i == 0 else width, width, 4, padding=2), nn.ReLU(), nn.MaxPool1d(2)]
        self.features = nn.Sequential(*layers); self.gap = nn.AdaptiveAvgPool1d(1); self.fc = nn.Linear(width, k)

    def forward(self, x):
        return self.fc(self.gap(self.features(x)).flatten(1))


class EcgCNN(nn.Module):
    def __init__(self, c, t, k, w, hidden, dropout):
        super().__init__()
        layers, cin = [], c
        for cout in w:
            layers += [nn.Conv1d(cin, cout, 5, padding="same"), nn.BatchNorm1d(cout), nn.ReLU(), nn.MaxPool1d(2)]
            cin, t = cout, t // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(cin * t, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, k))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class EcgBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 7, padding=3, bias=False); self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 7, padding=3, bias=False); self.bn2 = nn.BatchNorm1d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout)) if cin != cout else None

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class EcgResNet(nn.Module):
    def __init__(self, c, k, w):
        super().__init__()
        self.conv1 = nn.Conv1d(c, w, 7, padding=3, bias=False); self.bn1 = nn.BatchNorm1d(w)
        self.relu = nn.ReLU(); self.pool = nn.MaxPool1d(2)
        self.blocks = nn.ModuleList([EcgBlock(w, 2 * w), EcgBlock(2 * w, 2 * w), EcgBlock(2 * w, 2 * w)])
        self.gap = nn.AdaptiveAvgPool1d(1); self.fc = nn.Linear(2 * w, k)

    def forward(self, x):
        h = self.pool(self.relu(self.bn1(self.conv1(x))))
        for i, b in enumerate(self.blocks):
            h = b(h)
            if i + 1 < len(self.blocks):
                h = self.pool(h)
        return self.fc(self.gap(h).flatten(1))


# ---- the recurrent models, as models/series_rnn.h builds them ----
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402


def run_rnn(rnn, x, lengths):
    """x [B, T, IN] batch_first; with lengths, pack as pack_padded_sequence(enforce_sorted=False)."""
    if lengths is not None:
        x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, state = rnn(x)
    h = state[0] if isinstance(rnn, nn.LSTM) else state
    return torch.cat([h[-2], h[-1]], 1) if rnn.bidirectional else h[-1]


class RnnClassifier(nn.Module):
    def __init__(self, gru, c, k, h, layers, bi, dropout=0.0):
        super().__init__()
        cls = nn.GRU if gru else nn.LSTM
        self.rnn = cls(c, h, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0, bidirectional=bi)
        self.dropout = nn.Dropout(dropout); self.fc = nn.Linear((2 if bi else 1) * h, k)

    def forward(self, x, lengths=None):
        return self.fc(self.dropout(run_rnn(self.rnn, x.transpose(1, 2), lengths)))


class DeepConvLSTM(nn.Module):
    def __init__(self, c, k, f, h, layers, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, f, (5, 1)); self.conv2 = nn.Conv2d(f, f, (5, 1))
        self.conv3 = nn.Conv2d(f, f, (5, 1)); self.conv4 = nn.Conv2d(f, f, (5, 1))
        self.relu = nn.ReLU(); self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(f * c, h, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.fc = nn.Linear(h, k)

    def forward(self, x, lengths=None):
        h = x.transpose(1, 2).unsqueeze(1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            h = self.relu(conv(h))
        b, f, t, c = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t, f * c)
        return self.fc(self.dropout(run_rnn(self.lstm, h, None if lengths is None else lengths - 16)))


class TextLSTM(nn.Module):
    def __init__(self, v, e, h, layers, bi, k, padding_idx=0, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(v, e, padding_idx=padding_idx)
        self.lstm = nn.LSTM(e, h, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0, bidirectional=bi)
        self.dropout = nn.Dropout(dropout); self.fc = nn.Linear((2 if bi else 1) * h, k)

    def forward(self, tokens, lengths=None):
        return self.fc(self.dropout(run_rnn(self.lstm, self.embedding(tokens), lengths)))


class LSTMForecaster(nn.Module):
    def __init__(self, c, targets, horizon, h, layers, dropout=0.0):
        super().__init__()
        self.targets, self.horizon = targets, horizon
        self.lstm = nn.LSTM(c, h, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout); self.fc = nn.Linear(h, targets * horizon)

    def forward(self, x, lengths=None):
        y = self.fc(self.dropout(run_rnn(self.lstm, x.transpose(1, 2), lengths)))
        return y.reshape(y.shape[0], self.targets, self.horizon)


# name -> (model, finch SeriesSpec fields, input shape, lengths); token inputs are [B, T] ids
RECURRENT = {
    "lstm": (lambda: RnnClassifier(False, 3, 4, 5, 2, False),
             {"in_channels": 3, "num_classes": 4, "hidden_size": 5, "num_layers": 2}, [3, 3, 9], [9, 4, 6]),
    "gru": (lambda: RnnClassifier(True, 2, 3, 4, 1, True),
            {"in_channels": 2, "num_classes": 3, "hidden_size": 4, "num_layers": 1, "bidirectional": 1},
            [3, 2, 7], [2, 7, 5]),
    "bilstm": (lambda: RnnClassifier(False, 3, 2, 4, 2, True),
               {"in_channels": 3, "num_classes": 2, "hidden_size": 4, "num_layers": 2}, [3, 3, 8], [8, 1, 5]),
    "deepconvlstm": (lambda: DeepConvLSTM(3, 4, 4, 6, 2),
                     {"in_channels": 3, "num_classes": 4, "width": 4, "hidden_size": 6, "num_layers": 2},
                     [3, 3, 24], [24, 17, 20]),
    "imdb_lstm": (lambda: TextLSTM(30, 8, 5, 2, False, 1),
                  {"vocab_size": 30, "embed_dim": 8, "hidden_size": 5, "num_layers": 2, "num_classes": 1},
                  [3, 10], [10, 6, 3]),
    "imdb_bilstm": (lambda: TextLSTM(30, 6, 4, 1, True, 1),
                    {"vocab_size": 30, "embed_dim": 6, "hidden_size": 4, "num_layers": 1, "num_classes": 1},
                    [3, 10], [4, 10, 7]),
    "lstm_forecaster": (lambda: LSTMForecaster(2, 2, 3, 5, 2),
                        {"in_channels": 2, "num_targets": 2, "horizon": 3, "hidden_size": 5, "num_layers": 2},
                        [3, 2, 12], [12, 8, 10]),
}


def recurrent_goldens(out, meta):
    """Eval output without and with lengths, and with lengths the gradients of sum(out · r) for a
    fixed r: every parameter's (grad.<name>) and, for float inputs, the input's. Padded steps hold
    random values (tokens: ids ≠ 0), which a length-aware model must ignore."""
    for name, (make, spec, xshape, lengths) in RECURRENT.items():
        torch.manual_seed(100 + len(name))
        model = make()
        load_golden_weights(model)
        model.eval()
        text = len(xshape) == 2
        x = torch.randint(1, 30, xshape) if text else torch.randn(xshape)
        lens = torch.tensor(lengths, dtype=torch.int64)
        with torch.no_grad():
            full = model(x)
        xg = x if text else x.clone().requires_grad_(True)
        y = model(xg, lens)
        r = torch.randn(y.shape)
        (y * r).sum().backward()
        out.update({f"{name}.x": x, f"{name}.lengths": lens, f"{name}.full": full, f"{name}.len": y.detach(),
                    f"{name}.r": r})
        if not text:
            out[f"{name}.dx"] = xg.grad
        for pname, p in model.named_parameters():
            out[f"{name}.grad.{pname}"] = p.grad
        meta[f"{name}.spec"] = ",".join(f"{k}={v}" for k, v in spec.items())
        meta[f"{name}.params"] = str(sum(p.numel() for p in model.parameters()))


# name -> (class, finch SeriesSpec fields, torch constructor args, input shape [B, C, T])
MODELS = {
    "fcn": (FCN, {"in_channels": 3, "num_classes": 4, "width": 16}, (3, 4, [16, 32, 16]), [3, 3, 40]),
    "resnet1d": (ResNet1d, {"in_channels": 2, "num_classes": 3, "width": 8}, (2, 3, [8, 16, 16]), [3, 2, 33]),
    "har_cnn": (HarCNN, {"in_channels": 6, "num_classes": 6}, (6, 6, 21, 6), [3, 6, 100]),
    "ecg_cnn": (EcgCNN, {"in_channels": 12, "num_classes": 5, "seq_len": 70, "width": 4, "hidden_size": 32},
                (12, 70, 5, [4, 8, 8, 8], 32, 0.5), [3, 12, 70]),
    "ecg_resnet": (EcgResNet, {"in_channels": 12, "num_classes": 5, "width": 8}, (12, 5, 8), [3, 12, 50]),
}


def model_goldens(out, meta):
    for name, (cls, spec, args, xshape) in MODELS.items():
        torch.manual_seed(len(name))
        model = cls(*args)
        load_golden_weights(model)
        x = torch.randn(xshape)
        y = torch.randint(0, args[1] if name != "ecg_cnn" else args[2], [xshape[0]])
        model.eval()
        with torch.no_grad():
            ev = model(x)
        model.train()
        for m in model.modules():  # dropout is random: the golden keeps it off (the test does too)
            if isinstance(m, nn.Dropout):
                m.eval()
        xg = x.clone().requires_grad_(True)
        tr = model(xg)
        F.cross_entropy(tr, y).backward()
        out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.eval": ev, f"{name}.train": tr, f"{name}.dx": xg.grad})
        meta[f"{name}.spec"] = ",".join(f"{k}={v}" for k, v in spec.items())
        meta[f"{name}.params"] = str(sum(p.numel() for p in model.parameters()))


# ---- pooling ----
POOLS = [  # name, function, input shape
    ("max_k3s2p1", lambda x: F.max_pool1d(x, 3, 2, 1), [2, 3, 11]),
    ("max_k2_ceil", lambda x: F.max_pool1d(x, 2, ceil_mode=True), [2, 3, 7]),
    ("max_k4s1p2_ceil_2d", lambda x: F.max_pool1d(x, 4, 1, 2, ceil_mode=True), [3, 9]),
    ("max_k5s3p2_ceil", lambda x: F.max_pool1d(x, 5, 3, 2, ceil_mode=True), [1, 2, 12]),
    ("avg_k2", lambda x: F.avg_pool1d(x, 2), [2, 3, 9]),
    ("avg_k3s2p1_nopad_ceil", lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [2, 2, 10]),
    ("avg_k4s3p2", lambda x: F.avg_pool1d(x, 4, 3, 2), [2, 2, 10]),
    ("adaptive_avg_3", lambda x: F.adaptive_avg_pool1d(x, 3), [2, 3, 10]),
    ("adaptive_avg_1", lambda x: F.adaptive_avg_pool1d(x, 1), [2, 3, 7]),
    ("adaptive_avg_5_of_3", lambda x: F.adaptive_avg_pool1d(x, 5), [1, 2, 3]),
    ("adaptive_max_4", lambda x: F.adaptive_max_pool1d(x, 4), [2, 3, 10]),
    ("adaptive_max_1", lambda x: F.adaptive_max_pool1d(x, 1), [2, 3, 7]),
    ("adaptive_max_3_2d", lambda x: F.adaptive_max_pool1d(x, 3), [4, 8]),
]


def pool_goldens(out):
    torch.manual_seed(16)
    for name, fn, shape in POOLS:
        x = torch.randn(shape, requires_grad=True)
        y = fn(x)
        dy = torch.randn(y.shape)
        y.backward(dy)
        out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": x.grad})


def main():
    pools = {}
    pool_goldens(pools)
    golden_io.save(pools, os.path.join(golden_io.DATA, "series_pool1d.safetensors"))
    models, meta = {}, {}
    model_goldens(models, meta)
    recurrent_goldens(models, meta)
    golden_io.save(models, os.path.join(golden_io.DATA, "series_models.safetensors"), meta)


if __name__ == "__main__":
    main()
