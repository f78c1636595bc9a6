#!/usr/bin/python3
"""The PyTorch eager peer of train_bert's training step, for bench/bert_train_vs_torch.py: the same
BERT (post-LN, GELU, dropout 0.1, masked-LM head tied to the word embeddings and applied to the
selected ~15 % of positions only, as train_bert does), the same batch and sequence length,
AdamW with transformers' decay groups, gradient clipping at 1.0. Written in plain torch so that
Debian's torch 1.13 (which has no transformers) runs it. Prints one JSON line:
{"sequences_per_second": ..., "seconds": ..., "steps": ...}.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--intermediate", type=int, default=1024)
ap.add_argument("--vocab", type=int, default=30522)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
a = ap.parse_args()
for k in ("layers", "hidden", "heads", "intermediate", "vocab", "seq", "batch", "threads", "steps"):
    if getattr(a, k) < 1:
        raise SystemExit(f"bert_train_torch.py: expected --{k} >= 1, found {getattr(a, k)}")
if a.hidden % a.heads:
    raise SystemExit(f"bert_train_torch.py: --hidden {a.hidden} is not a multiple of --heads {a.heads}")
torch.set_num_threads(a.threads)
torch.manual_seed(0)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        H, I = a.hidden, a.intermediate
        self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(H, eps=1e-12), nn.LayerNorm(H, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(H, I), nn.Linear(I, H)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask):
        B, S, H = x.shape
        nh, hd = a.heads, H // a.heads
        split = lambda t: t.view(B, S, nh, hd).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask
        p = self.drop(scores.softmax(-1))
        ctx = (p @ v).transpose(1, 2).reshape(B, S, H)
        x = self.ln1(x + self.drop(self.o(ctx)))
        return self.ln2(x + self.drop(self.fc2(F.gelu(self.fc1(x)))))


class BertMLM(nn.Module):
    def __init__(self):
        super().__init__()
        H = a.hidden
        self.word, self.pos, self.tok_type = nn.Embedding(a.vocab, H), nn.Embedding(512, H), nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer() for _ in range(a.layers))
        self.t_dense, self.t_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(a.vocab))

    def forward(self, ids, attn, positions, labels):
        B, S = ids.shape
        x = self.word(ids) + self.pos.weight[:S] + self.tok_type.weight[0]
        x = self.drop(self.ln(x))
        mask = (1.0 - attn[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, mask)
        h = x.reshape(B * S, -1).index_select(0, positions)
        h = self.t_ln(F.gelu(self.t_dense(h)))
        logits = F.linear(h, self.word.weight, self.bias)
        return F.cross_entropy(logits, labels)


model = BertMLM()
model.train()
decay = [p for n, p in model.named_parameters() if "bias" not in n and "ln" not in n]
no_decay = [p for n, p in model.named_parameters() if "bias" in n or "ln" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=1e-4, eps=1e-8)
g = torch.Generator().manual_seed(1)


def batch():
    ids = torch.randint(5, a.vocab, (a.batch, a.seq), generator=g)
    attn = torch.ones(a.batch, a.seq, dtype=torch.long)
    sel = torch.rand(a.batch * a.seq, generator=g) < 0.15
    positions = sel.nonzero().flatten()
    return ids, attn, positions, ids.flatten()[positions]


def step(b):
    opt.zero_grad(set_to_none=True)
    loss = model(*b)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(a.warmup):
    step(batch())
batches = [batch() for _ in range(a.steps)]
t0 = time.perf_counter()
for b in batches:
    step(b)
secs = time.perf_counter() - t0
print(json.dumps({"sequences_per_second": a.batch * a.steps / secs, "seconds": secs, "steps": a.steps,
                  "torch": torch.__version__, "threads": a.threads}))
