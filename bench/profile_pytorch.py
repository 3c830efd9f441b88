#!/usr/bin/env python3
"""PyTorch's side of bench/profile.ts: self time per op for the reference training step.

/usr/bin/python3 bench/profile_pytorch.py [--net resnet18:0.125] [--threads 2] [--steps 10] [--infer]
"""
import argparse, importlib.util, os, time
import torch, torch.nn as nn

here = os.path.dirname(os.path.abspath(__file__))
ref_path = os.environ.get("R2R_PYTORCH_REFERENCE") or os.path.join(here, "pytorch_reference.py")
spec = importlib.util.spec_from_file_location("ref", ref_path); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
ap = argparse.ArgumentParser()
ap.add_argument("--net", default="resnet18:0.125"); ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=10); ap.add_argument("--infer", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
m = ref.build(a.net)
opt = torch.optim.Adam(m.parameters(), 3e-3)
x = torch.randn(128, 3, 32, 32); y = torch.randint(0, 10, (128,)); xe = torch.randn(256, 3, 32, 32)
def step():
    if a.infer:
        with torch.no_grad(): m(xe)
    else:
        opt.zero_grad(); nn.functional.cross_entropy(m(x), y).backward(); opt.step()
if a.infer: m.eval()
for _ in range(5): step()
with torch.autograd.profiler.profile() as prof:
    t = time.perf_counter()
    for _ in range(a.steps): step()
    wall = time.perf_counter() - t
print(f"pytorch {torch.__version__}, {a.net}: {wall / a.steps * 1000:.2f} ms/step wall")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
