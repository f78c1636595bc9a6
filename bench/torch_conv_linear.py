#!/usr/bin/python3
"""torch 1.13 timings for the layers of bench/bench_conv.cc and bench/bench_linear.cc:
forward+backward (requires_grad on input, weight, bias; y.backward(dy)) and forward only, at
1 and 2 threads. Prints the median wall and process-CPU milliseconds per
iteration (CPU time is the fairer number on a shared, oversubscribed machine).
Run: /usr/bin/python3 bench/torch_conv_linear.py [iters]"""
import sys
import time

import torch
import torch.nn.functional as F


def bench(fn, iters):
    fn()
    fn()
    ts, cs = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    ts.sort()
    cs.sort()
    return f"{ts[len(ts) // 2] * 1e3:.2f} ms wall, {cs[len(cs) // 2] * 1e3:.2f} ms cpu (process)"


def main():
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    torch.manual_seed(0)
    cases = {
        "Conv3x3_64x64": ((64, 64, 32, 32), (64, 64, 3, 3), 1),
        "Depthwise3x3_144": ((64, 144, 32, 32), (144, 1, 3, 3), 144),
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, (xs, ws, groups) in cases.items():
            x = torch.randn(*xs, requires_grad=True)
            w = torch.randn(*ws, requires_grad=True)
            b = torch.randn(ws[0], requires_grad=True)
            dy = torch.randn(xs[0], ws[0], xs[2], xs[3])

            def fwdbwd():
                y = F.conv2d(x, w, b, padding=1, groups=groups)
                y.backward(dy)

            def fwd():
                with torch.no_grad():
                    F.conv2d(x, w, b, padding=1, groups=groups)

            print(f"torch {name}_FwdBwd/{threads}: {bench(fwdbwd, iters)}")
            print(f"torch {name}_Fwd/{threads}: {bench(fwd, iters)}")
        x = torch.randn(256, 1024, requires_grad=True)
        w = torch.randn(1024, 1024, requires_grad=True)
        b = torch.randn(1024, requires_grad=True)
        dy = torch.randn(256, 1024)

        def lin_fb():
            F.linear(x, w, b).backward(dy)

        def lin_f():
            with torch.no_grad():
                F.linear(x, w, b)

        print(f"torch Linear1024_256_FwdBwd/{threads}: {bench(lin_fb, iters * 5)}")
        print(f"torch Linear1024_256_Fwd/{threads}: {bench(lin_f, iters * 5)}")


if __name__ == "__main__":
    main()
