#!/usr/bin/env python3
"""PyTorch reference for training/inference throughput of r2r's zoo networks on this CPU.

The peer a user would otherwise pick, run by `npm run bench` in the same conditions as r2r.
Same architectures as the zoo (docs/SPEC.md section 4; src/models): ResNetCifar-10/18(r),
SmallConv and the MLP. Prints one JSON object per network on stdout, with the BLAS library
this process mapped.

Needs PyTorch: on Debian `apt-get install -y python3-torch` (then run with /usr/bin/python3).
Usage: pytorch_reference.py [--threads 0] [--batch 128] [--steps 20] [--infer-steps 50]
                            [--nets resnet18:0.125,smallconv:1,mlp:1,...]
--threads 0 keeps PyTorch's default (one thread per core, or OMP_NUM_THREADS).
"""
import argparse, json, math, time
import torch, torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride, residual=True):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(cout)
        self.residual = residual
        self.sc = None
        if residual and (stride != 1 or cin != cout):
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        if self.residual:
            y = y + (x if self.sc is None else self.sc(x))
        return torch.relu(y)


def resnet_cifar(r, blocks_per_stage, residual=True):
    c1, c2 = math.floor(64 * r), math.floor(128 * r)
    layers = [nn.Conv2d(3, c1, 7, 2, 3, bias=False), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = c1
    for i in range(blocks_per_stage):
        layers.append(Block(cin, c1, 1, residual)); cin = c1
    for i in range(blocks_per_stage):
        layers.append(Block(cin, c2, 2 if i == 0 else 1, residual)); cin = c2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def small_conv(w):
    f = round(16 * w)
    return nn.Sequential(nn.Conv2d(3, f, 7, 1, 3), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                         nn.Linear(f * 16 * 16, 150), nn.ReLU(), nn.Linear(150, 10))


def mlp(w):
    h1, h2 = (max(1, round(h * w)) for h in (256, 128))
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, 10))


def build(spec):
    kind, r = spec.split(":"); r = float(r)
    if kind == "smallconv": return small_conv(r)
    if kind == "mlp": return mlp(r)
    kind = kind.replace("-nores", ""); residual = not spec.split(":")[0].endswith("-nores")
    return resnet_cifar(r, {"resnet10": 2, "resnet18": 4}[kind], residual)


def blas_libraries():
    """The BLAS shared objects this process mapped (symlinks resolved by the kernel)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    except OSError:
        return []
    return sorted(p for p in paths if any(k in p.rsplit("/", 1)[-1] for k in ("blas", "mkl_", "blis")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--infer-steps", type=int, default=50)
    ap.add_argument("--nets", default="resnet18:0.125,resnet18:0.1875,resnet10:0.125,resnet18:0.5")
    a = ap.parse_args()
    if a.threads > 0: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for spec in a.nets.split(","):
        m = build(spec)
        opt = torch.optim.Adam(m.parameters(), 3e-3)
        x = torch.randn(a.batch, 3, 32, 32); y = torch.randint(0, 10, (a.batch,))

        def step():
            opt.zero_grad(); loss = nn.functional.cross_entropy(m(x), y); loss.backward(); opt.step()

        for _ in range(a.warmup): step()
        t = time.perf_counter()
        for _ in range(a.steps): step()
        train = a.batch * a.steps / (time.perf_counter() - t)
        m.eval(); xe = torch.randn(256, 3, 32, 32)
        with torch.no_grad():
            for _ in range(5): m(xe)
            t = time.perf_counter()
            for _ in range(a.infer_steps): m(xe)
            infer = 256 * a.infer_steps / (time.perf_counter() - t)
        print(json.dumps({"engine": f"pytorch-{torch.__version__}", "net": spec,
                          "params": sum(p.numel() for p in m.parameters()),
                          "threads": torch.get_num_threads(), "batch": a.batch, "blas": blas_libraries(),
                          "train_images_per_s": round(train, 1), "infer_images_per_s": round(infer, 1)}))


if __name__ == "__main__":
    main()
