#!/usr/bin/env python3
"""PyTorch reference for GPT training throughput (tokens/s), the peer of r2r's `gpt` zoo model.

The same network as `r2r inspect --model gpt` (docs/design/transformer-ir.md), written the way
a PyTorch user would (nanoGPT's block, without dropout; PyTorch 1.13 has no
scaled_dot_product_attention): nn.Embedding for tokens and positions, pre-LN blocks with
nn.LayerNorm, nn.Linear(d, 3d) for q/k/v, nn.Linear(d, d), nn.Linear(d, 4d), exact GELU,
nn.Linear(4d, d), a final nn.LayerNorm and an untied nn.Linear(d, vocab) head. Adam lr 1e-3,
per-token softmax cross-entropy, `--warmup` untimed then `--steps` timed steps on one random
batch of token windows. Prints one JSON object per network on stdout.

Needs PyTorch: on Debian `apt-get install -y python3-torch` (then run with /usr/bin/python3).
Usage: pytorch_gpt.py [--threads 1] [--batch 12] [--block 64] [--vocab 65] [--steps 20]
                      [--nets 4/4/128,6/6/384]   (layers/heads/dim)
"""
import argparse, json, math, os, time
import torch, torch.nn as nn, torch.nn.functional as F


def blas_libraries():
    """The BLAS / MKL shared libraries this process has loaded (real paths), e.g. OpenBLAS."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    names = [p for p in paths if any(k in os.path.basename(p).lower() for k in ("blas", "mkl_rt", "libmkl"))]
    return sorted({os.path.realpath(p) for p in names})


class Block(nn.Module):
    def __init__(self, d, heads, block):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

    def attn(self, x):
        n, t, d = x.shape
        k_dim = d // self.heads
        q, k, v = self.c_attn(x).split(d, dim=2)
        q = q.view(n, t, self.heads, k_dim).transpose(1, 2)
        k = k.view(n, t, self.heads, k_dim).transpose(1, 2)
        v = v.view(n, t, self.heads, k_dim).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k_dim))
        att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(n, t, d)
        return self.c_proj(y)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, block, layers, heads, d):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.blocks = nn.Sequential(*[Block(d, heads, block) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        return self.head(self.ln_f(self.blocks(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--nets", default="4/4/128,6/6/384")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for spec in a.nets.split(","):
        layers, heads, d = (int(v) for v in spec.split("/"))
        m = GPT(a.vocab, a.block, layers, heads, d)
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        x = torch.randint(0, a.vocab, (a.batch, a.block))
        y = torch.randint(0, a.vocab, (a.batch, a.block))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(x).view(-1, a.vocab), y.view(-1))
            loss.backward()
            opt.step()

        for _ in range(a.warmup): step()
        t = time.perf_counter()
        for _ in range(a.steps): step()
        train = a.batch * a.block * a.steps / (time.perf_counter() - t)
        print(json.dumps({"engine": f"pytorch-{torch.__version__}", "net": spec,
                          "params": sum(p.numel() for p in m.parameters()),
                          "threads": a.threads, "batch": a.batch, "block": a.block,
                          "train_tokens_per_s": round(train, 1), "blas": blas_libraries()}))


if __name__ == "__main__":
    main()
