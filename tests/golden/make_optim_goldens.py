#!/usr/bin/python3
"""Writes tests/golden/data/optim_goldens.safetensors: optimizer trajectories, LR schedules and
clip_grad_norm_ results printed by PyTorch 1.13, for tests/autograd/test_optim_golden.cc.

Run with Debian's torch: /usr/bin/python3 tests/golden/make_optim_goldens.py
Layout (all names flat):
  init.p{i}, grad.s{k}.p{i}            fixed parameters and per-step gradients (f32); the
                                       gradient of p1 is missing at step 2 (skip semantics)
  {opt}.s{k}.p{i}                      parameters after step k (k = 0..4) of optimizer {opt}
  sched.{name}.lr / .momentum          f64 [n]: the lr (momentum) at scheduler step 0..n-1
  clip.g{i}                            gradients before clipping (f32)
  clip.{case}.total, clip.{case}.g{i}  total norm and clipped gradients
"""
import math
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402


def save_safetensors(tensors, path, metadata):
    golden_io.save(tensors, path, metadata)

warnings.filterwarnings("ignore")
torch.manual_seed(1234)
out = {}

SHAPES = [(3, 4), (5,)]
STEPS = 5
init = [torch.randn(s) for s in SHAPES]
grads = [[torch.randn(s) for s in SHAPES] for _ in range(STEPS)]
for i, t in enumerate(init):
    out[f"init.p{i}"] = t
for k in range(STEPS):
    for i in range(len(SHAPES)):
        if k == 2 and i == 1:
            continue  # p1 has no gradient at step 2
        out[f"grad.s{k}.p{i}"] = grads[k][i]

OPTIMIZERS = {
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd_dampening": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.001),
    "sgd_plain": lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.01),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), weight_decay=0.01),
    "adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6, amsgrad=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "adamw_amsgrad": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.05, amsgrad=True),
}
for name, make in OPTIMIZERS.items():
    ps = [torch.nn.Parameter(t.clone()) for t in init]
    opt = make(ps)
    for k in range(STEPS):
        for i, p in enumerate(ps):
            p.grad = None if (k == 2 and i == 1) else grads[k][i].clone()
        opt.step()
        for i, p in enumerate(ps):
            out[f"{name}.s{k}.p{i}"] = p.detach().clone()


def record(name, make_sched, n, base_lr=0.1, momentum=0.0):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr, momentum=momentum)
    sched = make_sched(opt)
    lrs, moms = [], []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    out[f"sched.{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    out[f"sched.{name}.momentum"] = torch.tensor(moms, dtype=torch.float64)


S = torch.optim.lr_scheduler
record("step", lambda o: S.StepLR(o, step_size=3, gamma=0.5), 12)
record("multistep", lambda o: S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.1), 12)
record("warmup_cosine", lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.25, total_iters=5),
                                                     S.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)],
                                                 milestones=[5]), 20)
record("onecycle_cos", lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=20, pct_start=0.3), 20,
       momentum=0.9)
record("onecycle_linear3", lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=25, pct_start=0.25,
                                                  anneal_strategy="linear", three_phase=True,
                                                  div_factor=10, final_div_factor=100,
                                                  base_momentum=0.8, max_momentum=0.9), 25, momentum=0.9)
record("cyclic_triangular", lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4), 20,
       momentum=0.9)
record("cyclic_triangular2", lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                  step_size_down=5, mode="triangular2"), 30, momentum=0.9)
record("cyclic_exp_range", lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4,
                                                mode="exp_range", gamma=0.97), 20, momentum=0.9)

clip_grads = [torch.randn(s) * 3 for s in [(7, 9), (100,), (2, 3, 4)]]
for i, g in enumerate(clip_grads):
    out[f"clip.g{i}"] = g
for case, (max_norm, norm_type) in {"l2_clip": (1.0, 2.0), "l2_noclip": (1e3, 2.0),
                                    "inf": (0.5, math.inf), "l1": (10.0, 1.0), "l3": (2.0, 3.0)}.items():
    ps = [torch.nn.Parameter(torch.zeros_like(g)) for g in clip_grads]
    for p, g in zip(ps, clip_grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    out[f"clip.{case}.total"] = total.reshape(1).double()
    for i, p in enumerate(ps):
        out[f"clip.{case}.g{i}"] = p.grad.clone()

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "optim_goldens.safetensors")
save_safetensors(out, path, metadata={"generator": "tests/golden/make_optim_goldens.py",
                             "torch": torch.__version__})
print(f"wrote {len(out)} tensors to {path} ({os.path.getsize(path)} bytes)")
