"""runtime_vs_peers.md: versions, the agreement check, latency tables and the ratios of the issue's table."""
import statistics

RT = ["finch", "ort", "litert", "torch"]
NAME = {"finch": "finch", "ort": "ORT", "litert": "LiteRT", "torch": "torch"}


def p50(rows, rt, m, prec, b, t):
    """Median over the rounds of each round's median (ms), or None where not measured."""
    v = [r["p50"] for r in rows if (r["runtime"], r["model"], r["precision"], r["batch"], r["threads"]) ==
         (rt, m, prec, b, t)]
    return statistics.median(v) if v else None


def ratio(x, y):
    return None if x is None or y is None else x / y


def fmt(v, d=2):
    return "—" if v is None else f"{v:.{d}f}"


def markdown(meta, check_rows, check_extra, rows, models, batches, threads):
    L = ["# finch vs ONNX Runtime, LiteRT/XNNPACK and PyTorch (batch-1 and batch-8 latency)", ""]
    L.append(f"Command: `{meta['command']}`  ")
    L.append(f"finch: `{meta['finch']}` ({meta['finch_commit']}); machine: {meta['cpu']}, {meta['nproc']} cores; "
             f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}  ")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    L.append("")
    bi = "" if not meta.get("batch_iters") else (f" (at batch > 1: {meta['batch_iters'][1]} warm-ups, "
                                                 f"{meta['batch_iters'][0]} runs)")
    L.append(f"Method: per batch size, {meta['rounds']} alternating rounds; in each, per thread count, finch "
             "(`finch bench`, a process per program), then ONNX Runtime, LiteRT and PyTorch each in a child "
             f"process started for that thread count; each measurement is {meta['warmup']} warm-ups then the "
             f"median of {meta['iters']} runs{bi} on seeded N(0, 1) inputs; the figure is the median of the rounds' "
             "medians. ORT: graph optimization level all, `intra_op_num_threads` = T, sequential execution; "
             "int8 = QDQ, per-channel s8 weights, u8 activations (`quantize_static`, MinMax). LiteRT: "
             "`Interpreter(model_path, num_threads=T)` with its default XNNPACK delegate; int8 = full-integer "
             "(`TFLITE_BUILTINS_INT8`) with float32 input and output, like finch's int8 programs. PyTorch: fp32 "
             "eager under `inference_mode`. finch int8: static, per-channel (`finch quantize --mode static`; "
             "MobileNet v1: `finch bench-program --precision int8 --checkpoint`).")
    L.append("")
    L.append("## Models")
    L.append("")
    L.append("| model | input | weights | calibration (finch, ORT, LiteRT) |")
    L.append("|---|---|---|---|")
    for m, mi in meta["models"].items():
        L.append(f"| {m} | {'×'.join(map(str, mi['input']))} | {mi['weights_kind']} | {mi['calib_images']} images, "
                 f"{mi['calib_source']} |")
    L.append("")
    if check_rows:
        L.append("## Equal predictions")
        L.append("")
        L.append("| model | runtime | precision | images | reference | top-1 agreement | accuracy | max abs Δlogit (ref. max abs logit) |")
        L.append("|---|---|---|---|---|---|---|---|")
        for r in check_rows:
            acc = "—" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f} %"
            L.append(f"| {r['model']} | {NAME[r['runtime']]} | {r['precision']} | {r['images']} | {r['reference']} | "
                     f"{100 * r['agree']:.1f} % | {acc} | {r['max_abs_logit_diff']:.2e} ({r['logit_scale']:.2f}) |")
        L.append("")
        for m, e in check_extra.items():
            if "finch_fp32_vs_torch_at_32px" in e:
                f = e["finch_fp32_vs_torch_at_32px"]
                L.append(f"- {m}: finch fp32 vs PyTorch fp32 on the same weights at 3×32×32 ({f['images']} random-pixel "
                         f"images through `finch run --dataset folder`): top-1 agreement {100 * f['agree']:.1f} %, max abs "
                         f"Δlogit {f['max_abs_logit_diff']:.2e}.")
            if "ort_int8_vs_litert_int8" in e:
                f = e["ort_int8_vs_litert_int8"]
                L.append(f"- {m}: ORT int8 vs LiteRT int8 on the same images: top-1 agreement {100 * f['agree']:.1f} %, "
                         f"max abs Δlogit {f['max_abs_logit_diff']:.2e} (seeded weights on noise: the logits vary "
                         "little from image to image, so int8 rounding flips many top-1s against fp32).")
            d = e.get("litert_int8_delegation")
            if d:
                L.append(f"- {m}: LiteRT int8 graph ops {', '.join(d['ops'])}; {d['delegate_nodes']} XNNPACK delegate "
                         f"node(s); 1 thread batch 1: {d['ms_with_xnnpack']:.3f} ms with the default delegate, "
                         f"{d['ms_builtin_kernels']:.3f} ms on the builtin kernels alone.")
        L.append("")
    for b in batches:
        L.append(f"## Batch {b}: median latency, ms")
        L.append("")
        L.append("| model | threads | finch fp32 | finch int8 | ORT fp32 | ORT int8 | LiteRT fp32 | LiteRT int8 | torch fp32 |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for m in models:
            for t in threads:
                cells = [fmt(p50(rows, rt, m, prec, b, t), 3) for rt, prec in
                         [("finch", "fp32"), ("finch", "int8"), ("ort", "fp32"), ("ort", "int8"), ("litert", "fp32"),
                          ("litert", "int8"), ("torch", "fp32")]]
                L.append(f"| {m} | {t} | " + " | ".join(cells) + " |")
        L.append("")
        L.append(f"### Batch {b}: finch ÷ peer (above 1 = finch slower; the issue's table)")
        L.append("")
        L.append("| model | threads | finch fp32 ÷ ORT fp32 | finch fp32 ÷ LiteRT fp32 | finch int8 ÷ LiteRT int8 | "
                 "finch int8 ÷ ORT int8 (u8 act.) | finch fp32 ÷ torch fp32 |")
        L.append("|---|---|---|---|---|---|---|")
        for m in models:
            for t in threads:
                g = lambda rt, prec: p50(rows, rt, m, prec, b, t)  # noqa: E731
                L.append(f"| {m} | {t} | {fmt(ratio(g('finch', 'fp32'), g('ort', 'fp32')))} | "
                         f"{fmt(ratio(g('finch', 'fp32'), g('litert', 'fp32')))} | "
                         f"{fmt(ratio(g('finch', 'int8'), g('litert', 'int8')))} | "
                         f"{fmt(ratio(g('finch', 'int8'), g('ort', 'int8')))} | "
                         f"{fmt(ratio(g('finch', 'fp32'), g('torch', 'fp32')))} |")
        L.append("")
        L.append(f"### Batch {b}: int8 ÷ fp32 per runtime, and {max(threads)} threads ÷ {min(threads)} thread")
        L.append("")
        hdr = ["model"] + [f"{NAME[rt]} int8÷fp32 (T={t})" for rt in RT[:3] for t in threads]
        hdr += [f"{NAME[rt]} {p} T{max(threads)}÷T{min(threads)}" for rt in RT for p in ("fp32", "int8")
                if not (rt == "torch" and p == "int8")]
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        for m in models:
            c = [fmt(ratio(p50(rows, rt, m, "int8", b, t), p50(rows, rt, m, "fp32", b, t))) for rt in RT[:3] for t in threads]
            c += [fmt(ratio(p50(rows, rt, m, p, b, max(threads)), p50(rows, rt, m, p, b, min(threads))))
                  for rt in RT for p in ("fp32", "int8") if not (rt == "torch" and p == "int8")]
            L.append(f"| {m} | " + " | ".join(c) + " |")
        L.append("")
    return "\n".join(L) + "\n"
