"""Everything the timing needs, built once and reused: weights, finch programs, torch/ONNX/TFLite models, data.

Layout under --work (default <out>/models): <model>-{fp32,int8}.finch, <model>-{fp32,int8}.onnx,
<model>-{fp32,int8}.tflite, <model>-test.npy (the check's images, NCHW float32, normalized as finch
normalizes Fashion-MNIST), <model>-labels.npy and models.json. A file already there is reused, except
the .finch programs when --finch names another binary than last time (finch.stamp).
"""
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(BENCH, "..", "..", "shared", "tools", "peer"))

MODELS = ["resnet20", "mobilenetv2", "mobilenet_v1"]
INPUT = {"resnet20": (1, 28, 28), "mobilenetv2": (1, 28, 28), "mobilenet_v1": (3, 224, 224)}
TRAINED = {"resnet20", "mobilenetv2"}  # trained on Fashion-MNIST by finch; mobilenet_v1: seeded weights
FMNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # finch's Fashion-MNIST normalization (apps/lib/train_options.cc)


def log(msg):
    print(f"[prepare] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log(" ".join(map(str, cmd)))
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"runtime_vs_peers: {' '.join(map(str, cmd))} failed (exit {p.returncode}): "
                 f"{(p.stderr or p.stdout).strip()[-800:]}")
    return p.stdout


def fmnist(split, n):
    """The first n images of a Fashion-MNIST split as normalized float32 NCHW, and their labels."""
    p = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(FMNIST, p + "-images-idx3-ubyte.gz")) as f:
        _, total, r, c = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(), np.uint8).reshape(total, 1, r, c)[:n]
    with gzip.open(os.path.join(FMNIST, p + "-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = np.frombuffer(f.read(), np.uint8)[:n]
    return ((x.astype(np.float32) / 255 - MEAN) / STD).astype(np.float32), y.astype(np.int64)


def data(a):
    """(calibration images, check images, check labels) per model: Fashion-MNIST for the 28×28 models,
    seeded N(0, 1) for mobilenet_v1 at 224² (no such data here: the check then has no labels)."""
    calib, _ = fmnist("train", a.calib)
    test, labels = fmnist("test", a.check)
    rng = np.random.default_rng(7)
    c, h, w = INPUT["mobilenet_v1"]
    out = {}
    for m in a.models:
        if m in TRAINED:
            out[m] = (calib, test, labels)
        else:  # fewer images at 224²: the TFLite calibration and the checks are 64× the work per image
            out[m] = (rng.standard_normal((min(a.calib, 64), c, h, w), np.float32),
                      rng.standard_normal((min(a.check, 100), c, h, w), np.float32), None)
    return out


def weights(a, model):
    """finch-format safetensors of the model: trained by train_cifar (reused when present), or seeded."""
    d = os.path.join(a.weights_root, model)
    path = os.path.join(d, "model.safetensors")
    if os.path.exists(path):
        return path
    os.makedirs(d, exist_ok=True)
    if model in TRAINED:
        epochs = a.train_epochs[model]
        cmd = [os.path.join(os.path.dirname(a.finch), "train_cifar"), "--model", model, "--dataset", "fashion-mnist",
               "--data", FMNIST, "--epochs", epochs, "--threads", 0, "--seed", 1, "--out", d]
        if a.train_limit:
            cmd += ["--limit-train", a.train_limit]
        run(cmd)
        if not os.path.exists(path):
            sys.exit(f"runtime_vs_peers: train_cifar wrote no {path}")
        return path
    # mobilenet_v1 α 0.5: torch's init with seed 0, BatchNorm affine parameters drawn away from the
    # identity, and BatchNorm statistics measured on N(0, 1) images (a cumulative train-mode pass):
    # with torch's raw init and identity statistics the activations shrink layer by layer until
    # every image gives the same logits, and an agreement check on such a network checks nothing.
    import torch
    import st
    from torch_int8_peer import torch_model
    torch.manual_seed(0)
    tm = torch_model(model, INPUT[model][0])
    c, h, w = INPUT[model]
    with torch.no_grad():
        for mod in tm.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None
                mod.weight.copy_(torch.rand(mod.num_features) + 0.5)
                mod.bias.copy_(torch.randn(mod.num_features) * 0.2)
        tm.train()
        for _ in range(4):
            tm(torch.randn(16, c, h, w))
        tm.eval()
        for mod in tm.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = 0.1
        tm.classifier.weight.mul_(4.0)  # logits of a few units, as a trained classifier gives
    st.save(tm.state_dict(), path + ".tmp", {"model": model, "width": "0.5"})
    os.replace(path + ".tmp", path)
    return path


def finch_programs(a, model, wpath, calib_n):
    """<work>/<model>-fp32.finch and -int8.finch (static int8, per-channel, calibrated like the peers)."""
    f32, i8 = (os.path.join(a.work, f"{model}-{k}.finch") for k in ("fp32", "int8"))
    if model in TRAINED:
        if not os.path.exists(f32):
            run([a.finch, "compile", "--checkpoint", wpath, "--model", model, "--out", f32, "--limit-test", 64])
        if not os.path.exists(i8):
            # Calibration on exactly the first calib_n training images (one seeded pass over
            # --limit-train in batches of 64), the images the ORT and TFLite calibrations get.
            bs = 64 if calib_n % 64 == 0 else calib_n
            run([a.finch, "quantize", "--checkpoint", wpath, "--model", model, "--mode", "static", "--qconfig", "int8",
                 "--limit-train", calib_n, "--batch-size", bs, "--calib-batches", calib_n // bs, "--limit-test", 64,
                 "--latency-images", 0, "--out", i8])
    else:
        c, h, w = INPUT[model]
        for prec, p in (("fp32", f32), ("int8", i8)):
            if not os.path.exists(p):
                run([a.finch, "bench-program", "--model", model, "--checkpoint", wpath, "--width", 0.5,
                     "--input-size", f"{c}x{h}x{w}", "--precision", prec, "--calib-batches", max(1, calib_n // 8),
                     "--calib-batch-size", 8, "--out", p])
    return f32, i8


def torch_net(model, wpath):
    """The torch twin (finch's module names), weights loaded strictly, eval mode."""
    import st
    from torch_int8_peer import torch_model
    tm = torch_model(model, INPUT[model][0])
    tm.load_state_dict(st.load(wpath), strict=True)
    return tm.eval()


def onnx_models(a, model, tm, calib):
    """<model>-fp32.onnx (torch.onnx.export, batch dynamic) and -int8.onnx (QDQ, per-channel s8
    weights, u8 activations, MinMax calibration on calib)."""
    import torch
    f32, i8 = (os.path.join(a.work, f"{model}-{k}.onnx") for k in ("fp32", "int8"))
    if not os.path.exists(f32):
        x = torch.from_numpy(calib[:1])
        # The TorchScript exporter (dynamo=False): the dynamo one needs onnxscript, which the peer
        # venv does not have; in eval mode it folds BatchNorm into the convs itself.
        torch.onnx.export(tm, (x,), f32 + ".tmp", dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=17)
        os.replace(f32 + ".tmp", f32)
    if not os.path.exists(i8):
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(calib[i:i + 1] for i in range(calib.shape[0]))

            def get_next(self):
                x = next(self.it, None)
                return None if x is None else {"x": x}

        pre = os.path.join(a.work, f"{model}-pre.onnx")
        quant_pre_process(f32, pre)  # shape inference + ORT's graph optimizations before quantizing
        quantize_static(pre, i8 + ".tmp", Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.replace(i8 + ".tmp", i8)
    return f32, i8


def tflite_models(a, model, tm, calib):
    """<model>-fp32.tflite and -int8.tflite (full integer, float in/out) from the Keras twin."""
    f32, i8 = (os.path.join(a.work, f"{model}-{k}.tflite") for k in ("fp32", "int8"))
    if os.path.exists(f32) and os.path.exists(i8):
        return f32, i8
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from peers.keras_net import keras_model, to_tflite
    km = keras_model(model, tm, INPUT[model])
    if not os.path.exists(f32):
        to_tflite(km, f32)
    if not os.path.exists(i8):
        to_tflite(km, i8, np.ascontiguousarray(calib.transpose(0, 2, 3, 1)))
    return f32, i8


def prepare(a):
    """Build (or reuse) every model file; returns {model: {...paths...}} and writes <work>/models.json."""
    os.makedirs(a.work, exist_ok=True)
    # finch's programs are rebuilt whenever --finch is another binary (or was rebuilt): a newer
    # compiler may lower the same weights differently; the peers' files do not depend on it.
    st_ = os.stat(a.finch)
    stamp, mark = os.path.join(a.work, "finch.stamp"), f"{a.finch} {st_.st_size} {st_.st_mtime_ns}\n"
    if not os.path.exists(stamp) or open(stamp).read() != mark:
        for f in os.listdir(a.work):
            if f.endswith(".finch"):
                os.remove(os.path.join(a.work, f))
    ds = data(a)
    info = {}
    for m in a.models:
        calib, test, labels = ds[m]
        np.save(os.path.join(a.work, f"{m}-test.npy"), test)
        if labels is not None:
            np.save(os.path.join(a.work, f"{m}-labels.npy"), labels)
        wpath = weights(a, m)
        ff32, fi8 = finch_programs(a, m, wpath, calib.shape[0])
        tm = torch_net(m, wpath)
        of32, oi8 = onnx_models(a, m, tm, calib)
        tf32, ti8 = tflite_models(a, m, tm, calib)
        info[m] = {"weights": wpath, "weights_kind": "trained by finch (train_cifar, Fashion-MNIST)" if m in TRAINED
                   else "seeded (torch init seed 0, BN statistics of N(0,1) images)",
                   "input": list(INPUT[m]), "calib_images": int(calib.shape[0]),
                   "calib_source": "Fashion-MNIST train[:n]" if m in TRAINED else "N(0,1) seed 7",
                   "finch": {"fp32": ff32, "int8": fi8}, "ort": {"fp32": of32, "int8": oi8},
                   "litert": {"fp32": tf32, "int8": ti8}, "test": os.path.join(a.work, f"{m}-test.npy"),
                   "labels": os.path.join(a.work, f"{m}-labels.npy") if labels is not None else None}
    with open(os.path.join(a.work, "models.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    with open(stamp, "w") as fh:
        fh.write(mark)
    return info
