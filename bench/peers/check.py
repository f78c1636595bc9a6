"""Equal predictions: every runtime's top-1 agreement with finch fp32, its accuracy, its logits' distance.

finch's outputs come from `finch run PROG --predictions CSV` on the first N Fashion-MNIST test images
(the same images, normalized the same way, as the peers get here). mobilenet_v1 at 224² has no data
set: there the reference is PyTorch fp32 on seeded N(0, 1) images (finch's loaders read image files
at 32² only), and finch's own fp32 program is checked on the same weights at 3×32×32 (the stride-2
stem and five stride-2 stages reach 1×1) through an image folder of random pixels instead.
"""
import csv
import os
import subprocess
import sys

import numpy as np

from peers import timing


def finch_logits(a, prog, n, dataset="fashion-mnist", data=None, extra=()):
    out = os.path.join(a.work, os.path.basename(prog) + ".pred.csv")
    cmd = [a.finch, "run", prog, "--dataset", dataset, "--limit-test", str(n), "--latency-images", "0",
           "--threads", "2", "--predictions", out, *extra]
    if data:
        cmd += ["--data", data]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"runtime_vs_peers: {' '.join(cmd)} failed: {p.stderr.strip()[-600:]}")
    rows = list(csv.DictReader(open(out)))
    k = sum(1 for c in rows[0] if c.startswith("logit_"))
    labels = np.array([int(r["label"]) for r in rows])
    return np.array([[float(r[f"logit_{j}"]) for j in range(k)] for r in rows], np.float32), labels


def peer_logits(kind, path_or_model, x, info_m=None):
    """Logits of x (NCHW float32) through one peer runtime, 2 threads, in batches of up to 100."""
    outs = []
    for i in range(0, x.shape[0], 100):
        xb = x[i:i + 100]
        if kind == "ort":
            outs.append(timing.ort_session(path_or_model, 2).run(None, {"x": xb})[0])
        elif kind == "litert":
            it = timing.litert_interpreter(path_or_model, 2, xb.shape[0])
            it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(xb.transpose(0, 2, 3, 1)))
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
        else:
            import torch
            with torch.inference_mode():
                outs.append(path_or_model(torch.from_numpy(xb)).numpy())
    return np.concatenate(outs).astype(np.float32)


def litert_delegation(path):
    """Which ops the XNNPACK delegate took: 1-thread batch-1 medians with and without the default
    delegate (the op list still names every node; the time shows whether XNNPACK ran them)."""
    from peers.timing import litert_interpreter, stats
    res = {}
    for dd in (True, False):
        it = litert_interpreter(path, 1, 1, default_delegates=dd)
        inp = it.get_input_details()[0]
        x = np.random.default_rng(3).standard_normal(inp["shape"], dtype=np.float32)
        it.set_tensor(inp["index"], x)
        if dd:
            ops = [o["op_name"] for o in it._get_ops_details()]
            res["delegate_nodes"] = ops.count("DELEGATE")
            res["ops"] = sorted(set(ops) - {"DELEGATE"})

        def fn():
            it.invoke()
        res["ms_with_xnnpack" if dd else "ms_builtin_kernels"] = stats(fn, 10, 50)["p50"]
    return res


def folder_of_noise(root, n, size, seed=11):
    """n random-pixel RGB PNGs in root/test/<class>/ (10 classes); their normalized NCHW floats, in
    the order finch's image-folder loader reads them (classes sorted, files sorted)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    order = []
    for k in range(10):
        d = os.path.join(root, "test", f"c{k}")
        os.makedirs(d, exist_ok=True)
        for i in range(k, n, 10):
            Image.fromarray(imgs[i]).save(os.path.join(d, f"{i:05d}.png"))
            order.append(i)
    x = imgs[order].transpose(0, 3, 1, 2).astype(np.float32) / 255
    return ((x - 0.5) / 0.25).astype(np.float32)


def check_model(a, m, mi):
    """One model's rows: runtime, precision, top-1 agreement with the reference, accuracy, max |Δlogit|."""
    from peers.prepare import torch_net
    x = np.load(mi["test"])
    tm = torch_net(m, mi["weights"])
    rows, ref_name, extra = [], "finch fp32", {}
    if mi["labels"] is not None:
        labels = np.load(mi["labels"])
        ref, flabels = finch_logits(a, mi["finch"]["fp32"], x.shape[0])
        if not np.array_equal(flabels, labels):
            sys.exit(f"runtime_vs_peers: finch run's labels of the first {x.shape[0]} test images differ from "
                     "the ones read here; expected the same images in the same order")
        f8, _ = finch_logits(a, mi["finch"]["int8"], x.shape[0])
        outs = {("finch", "fp32"): ref, ("finch", "int8"): f8}
    else:
        labels = None
        ref_name = "torch fp32"
        ref = peer_logits("torch", tm, x)
        outs = {}
        # finch on the same weights at 3×32×32, against torch on the same images.
        import torch
        prog = os.path.join(a.work, f"{m}-fp32-32px.finch")
        if not os.path.exists(prog):
            subprocess.run([a.finch, "bench-program", "--model", m, "--checkpoint", mi["weights"], "--width", "0.5",
                            "--input-size", "3x32x32", "--precision", "fp32", "--out", prog], check=True,
                           capture_output=True)
        n32 = 200
        x32 = folder_of_noise(os.path.join(a.work, "noise32"), n32, 32)
        f32, _ = finch_logits(a, prog, n32, "folder", os.path.join(a.work, "noise32"),
                              ("--mean", "0.5", "--std", "0.25"))
        with torch.inference_mode():
            t32 = tm(torch.from_numpy(x32)).numpy()
        extra = {"finch_fp32_vs_torch_at_32px": {"images": n32, "agree": float((f32.argmax(1) == t32.argmax(1)).mean()),
                                                 "max_abs_logit_diff": float(np.abs(f32 - t32).max())}}
    outs[("torch", "fp32")] = peer_logits("torch", tm, x)
    for prec in ("fp32", "int8"):
        outs[("ort", prec)] = peer_logits("ort", mi["ort"][prec], x)
        outs[("litert", prec)] = peer_logits("litert", mi["litert"][prec], x)
    if labels is None:
        # Random weights on noise images leave little image-dependent signal in the logits, so int8
        # agreement with fp32 is low for every runtime alike; the two int8 peers against each other
        # show whether their conversions agree.
        o8, l8 = outs[("ort", "int8")], outs[("litert", "int8")]
        extra["ort_int8_vs_litert_int8"] = {"agree": float((o8.argmax(1) == l8.argmax(1)).mean()),
                                            "max_abs_logit_diff": float(np.abs(o8 - l8).max())}
    top = ref.argmax(1)
    for (rt, prec), lg in outs.items():
        rows.append({"model": m, "runtime": rt, "precision": prec, "images": int(x.shape[0]), "reference": ref_name,
                     "agree": float((lg.argmax(1) == top).mean()),
                     "accuracy": None if labels is None else float((lg.argmax(1) == labels).mean()),
                     "max_abs_logit_diff": float(np.abs(lg - ref).max()),
                     "logit_scale": float(np.abs(ref).max())})
    return rows, extra


def check(a, info):
    rows, extra = [], {}
    for m in a.models:
        r, e = check_model(a, m, info[m])
        rows += r
        if e:
            extra[m] = e
        extra.setdefault(m, {})["litert_int8_delegation"] = litert_delegation(info[m]["litert"]["int8"])
    return rows, extra
