#!/usr/bin/env python3
"""Writes tests/golden/data/distill_torch.safetensors: the knowledge-distillation loss
(Hinton et al. 2015) as PyTorch computes it, and its gradient on the student's logits, for
tests/train/test_distill.cc:
  loss = a * T^2 * kl_div(log_softmax(s/T), log_softmax(t/T), 'batchmean', log_target=True)
       + (1 - a) * cross_entropy(s, y)
Run with Debian's torch 1.13:  /usr/bin/python3 tests/golden/make_distill_goldens.py
Per case i: case{i}_student, case{i}_teacher [B, K] f64, case{i}_labels i64 [B], case{i}_ta f64
[2] = (T, a), case{i}_loss f64 [] and case{i}_grad f64 [B, K] (d loss / d student logits).
"""
import os

import torch
import torch.nn.functional as F

from golden_io import DATA, save

torch.manual_seed(18)
cases = [(5, 4, 1.0, 0.5, 1.0), (8, 10, 4.0, 0.9, 3.0), (3, 3, 2.0, 0.0, 1.0), (6, 5, 3.0, 1.0, 2.0),
         (4, 7, 20.0, 0.7, 8.0)]  # (B, K, T, alpha, logit scale)
out = {}
for i, (b, k, temp, alpha, scale) in enumerate(cases):
    s = (torch.randn(b, k, dtype=torch.float64) * scale).requires_grad_()
    t = torch.randn(b, k, dtype=torch.float64) * scale
    y = torch.randint(0, k, (b,))
    soft = F.kl_div(F.log_softmax(s / temp, 1), F.log_softmax(t / temp, 1), reduction="batchmean",
                    log_target=True) * temp * temp
    loss = alpha * soft + (1 - alpha) * F.cross_entropy(s, y)
    loss.backward()
    out.update({f"case{i}_student": s.detach(), f"case{i}_teacher": t, f"case{i}_labels": y,
                f"case{i}_ta": torch.tensor([temp, alpha], dtype=torch.float64),
                f"case{i}_loss": loss.detach(), f"case{i}_grad": s.grad})
save(out, os.path.join(DATA, "distill_torch.safetensors"), {"torch": torch.__version__, "cases": str(len(cases))})
