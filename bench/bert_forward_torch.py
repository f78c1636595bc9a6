#!/work/peers-venv/bin/python
"""The PyTorch peer of bench/bert_forward.cc: forward latency (eval, torch.inference_mode) of
transformers' BertForQuestionAnswering with random weights, same flags, same JSON line.
--attn picks transformers' attention implementation: "sdpa" (its default: torch's fused
scaled_dot_product_attention) or "eager" (matmul + softmax + matmul, the textbook form).
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import BertConfig, BertForQuestionAnswering

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=12)
ap.add_argument("--hidden", type=int, default=768)
ap.add_argument("--heads", type=int, default=0)
ap.add_argument("--intermediate", type=int, default=0)
ap.add_argument("--seq", type=int, default=384)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
a = ap.parse_args()
for k in ("layers", "hidden", "seq", "batch", "threads", "iters"):
    if getattr(a, k) < 1:
        raise SystemExit(f"bert_forward_torch.py: expected --{k} >= 1, found {getattr(a, k)}")
torch.set_num_threads(a.threads)
torch.manual_seed(7)
cfg = BertConfig(num_hidden_layers=a.layers, hidden_size=a.hidden,
                 num_attention_heads=a.heads or max(1, a.hidden // 64),
                 intermediate_size=a.intermediate or 4 * a.hidden,
                 max_position_embeddings=max(512, a.seq), attn_implementation=a.attn)
model = BertForQuestionAnswering(cfg).eval()
assert model.config._attn_implementation == a.attn, model.config._attn_implementation
ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq))
mask = torch.ones_like(ids)
types = torch.zeros_like(ids)
ms = []
with torch.inference_mode():
    for it in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        dt = (time.perf_counter() - t0) * 1e3
        if it >= a.warmup:
            ms.append(dt)
print(json.dumps({"impl": f"torch {torch.__version__.split('+')[0]} ({a.attn})", "layers": a.layers,
                  "hidden": a.hidden, "seq": a.seq, "batch": a.batch, "threads": a.threads,
                  "ms": round(statistics.median(ms), 3), "ms_min": round(min(ms), 3),
                  "transformers": transformers.__version__}))
