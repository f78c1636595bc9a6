#!/usr/bin/python3
# Torch side of bench/bench_optim.cc: the same optimizer steps and clip_grad_norm_ on one
# parameter of N floats; run with T=<threads> /usr/bin/python3 bench/torch_optim_bench.py
import torch, time, os
torch.set_num_threads(int(os.environ.get("T", "2")))
def bench(name, n, make, reps=30):
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(n)); p.grad = torch.randn(n)
    f = make([p]).step if make else (lambda: torch.nn.utils.clip_grad_norm_([p], 1e9))
    for _ in range(3): f()
    wall, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time(); f()
        wall.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    wall.sort(); cpu.sort()
    print(f"torch {name}/{n}: wall median {wall[len(wall)//2]*1e3:.3f} ms, min {wall[0]*1e3:.3f} ms; process cpu median {cpu[len(cpu)//2]*1e3:.3f} ms")
for n in [1 << 20, 11_700_000]:
    bench("SGDMomentum", n, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4))
    bench("Adam", n, lambda ps: torch.optim.Adam(ps))
    bench("AdamW", n, lambda ps: torch.optim.AdamW(ps, weight_decay=1e-2))
    bench("ClipGradNorm", n, None)
