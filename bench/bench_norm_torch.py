#!/usr/bin/python3
"""PyTorch 1.13 side of bench/bench_norm.cc: the same shapes, forward + backward through
autograd, grads reset each iteration. Usage: /usr/bin/python3 bench/bench_norm_torch.py THREADS"""
import sys
import time

import torch


def bench(fn, min_time=1.0):
    """(wall, process CPU) seconds per call: the machine is shared, so with one thread the CPU
    time is the fairer number (compare with Google Benchmark's CPU column)."""
    fn()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el > min_time and n >= 5:
            return el / n, (time.process_time() - c0) / n


def main():
    th = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(th)
    torch.manual_seed(0)
    x = torch.randn(64, 64, 32, 32, requires_grad=True)
    bn = torch.nn.BatchNorm2d(64)
    dy = torch.randn_like(x)

    def bn_step():
        x.grad = None; bn.weight.grad = None; bn.bias.grad = None
        bn(x).backward(dy)

    xl = torch.randn(4096, 768, requires_grad=True)
    ln = torch.nn.LayerNorm(768)
    dyl = torch.randn_like(xl)

    def ln_step():
        xl.grad = None; ln.weight.grad = None; ln.bias.grad = None
        ln(xl).backward(dyl)

    xc = torch.randn(256, 1000, requires_grad=True)
    t = torch.randint(0, 1000, (256,))

    def ce_step():
        xc.grad = None
        torch.nn.functional.cross_entropy(xc, t).backward()

    # Kernel-level (no autograd, matching BM_*Ops): aten's native forward/backward pairs.
    xd, w64, b64 = x.detach(), torch.ones(64), torch.zeros(64)
    rm, rv = torch.zeros(64), torch.ones(64)

    def bn_ops():
        y, m, s = torch.native_batch_norm(xd, w64, b64, rm, rv, True, 0.1, 1e-5)
        torch.ops.aten.native_batch_norm_backward(dy, xd, w64, rm, rv, m, s, True, 1e-5,
                                                  [True, True, True])

    xld, w768, b768 = xl.detach(), torch.ones(768), torch.zeros(768)

    def ln_ops():
        y, m, r = torch.native_layer_norm(xld, [768], w768, b768, 1e-5)
        torch.ops.aten.native_layer_norm_backward(dyl, xld, [768], m, r, w768, b768,
                                                  [True, True, True])

    xcd = xc.detach()

    def ce_ops():
        lsm = torch._log_softmax(xcd, 1, False)
        loss, total = torch.ops.aten.nll_loss_forward(lsm, t, None, 1, -100)
        g = torch.ops.aten.nll_loss_backward(torch.ones(()), lsm, t, None, 1, -100, total)
        torch.ops.aten._log_softmax_backward_data(g, lsm, 1, torch.float32)

    print(f"threads {th}")
    for name, fn, scale, unit in (("batch_norm train fwd+bwd [64,64,32,32]", bn_step, 1e3, "ms"),
                                  ("layer_norm fwd+bwd [4096,768]", ln_step, 1e3, "ms"),
                                  ("cross_entropy fwd+bwd [256,1000]", ce_step, 1e6, "us"),
                                  ("ops: batch_norm [64,64,32,32]", bn_ops, 1e3, "ms"),
                                  ("ops: layer_norm [4096,768]", ln_ops, 1e3, "ms"),
                                  ("ops: cross_entropy [256,1000]", ce_ops, 1e6, "us")):
        wall, cpu = bench(fn)
        print(f"{name:42s} wall {wall * scale:9.1f} {unit}   cpu {cpu * scale:9.1f} {unit}")


if __name__ == "__main__":
    main()
