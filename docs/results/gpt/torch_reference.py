# The issue-9 GPT in PyTorch (nn.Embedding, nn.LayerNorm, nn.Linear(D, 3D) for q/k/v,
# nn.Linear(D, D), nn.Linear(D, 4D), nn.Linear(4D, D); PyTorch's default init), batch 12,
# Adam lr 1e-3; prints the mean validation loss on 10 fixed random batches every 100 steps.
# Usage: python3 torch_reference.py STEPS [path/to/input.txt]
import math, sys, time, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0); torch.set_num_threads(1)
text = open(sys.argv[2] if len(sys.argv) > 2 else '../shared/data/tinyshakespeare/input.txt', encoding='utf-8').read()
chars = sorted(set(text)); stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data)); train, val = data[:n], data[n:]
L, H, D, T, V, B = 4, 4, 128, 64, len(chars), 12
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.ln1 = nn.LayerNorm(D); s.attn = nn.Linear(D, 3 * D); s.proj = nn.Linear(D, D)
        s.ln2 = nn.LayerNorm(D); s.fc = nn.Linear(D, 4 * D); s.fc2 = nn.Linear(4 * D, D)
        s.register_buffer('mask', torch.tril(torch.ones(T, T)).bool())
    def forward(s, x):
        b, t, d = x.shape
        q, k, v = s.attn(s.ln1(x)).split(D, 2)
        q, k, v = [z.view(b, t, H, D // H).transpose(1, 2) for z in (q, k, v)]
        a = (q @ k.transpose(-2, -1)) / math.sqrt(D // H)
        a = a.masked_fill(~s.mask[:t, :t], float('-inf')).softmax(-1)
        x = x + s.proj((a @ v).transpose(1, 2).reshape(b, t, d))
        return x + s.fc2(F.gelu(s.fc(s.ln2(x))))
class GPT(nn.Module):
    def __init__(s):
        super().__init__(); s.wte = nn.Embedding(V, D); s.wpe = nn.Embedding(T, D)
        s.blocks = nn.Sequential(*[Block() for _ in range(L)]); s.ln = nn.LayerNorm(D); s.head = nn.Linear(D, V)
    def forward(s, idx):
        x = s.wte(idx) + s.wpe(torch.arange(idx.shape[1]))
        return s.head(s.ln(s.blocks(x)))
m = GPT(); print('params', sum(p.numel() for p in m.parameters()))
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(1)
def batch(split, gen):
    ix = torch.randint(len(split) - T, (B,), generator=gen)
    return torch.stack([split[i:i + T] for i in ix]), torch.stack([split[i + 1:i + T + 1] for i in ix])
def evaluate():
    ge = torch.Generator().manual_seed(2); m.eval(); tot = 0
    with torch.no_grad():
        for _ in range(10):
            x, y = batch(val, ge); tot += F.cross_entropy(m(x).view(-1, V), y.view(-1)).item()
    m.train(); return tot / 10
steps = int(sys.argv[1]); t0 = time.time()
print(0, round(evaluate(), 4))
for s in range(1, steps + 1):
    x, y = batch(train, g)
    loss = F.cross_entropy(m(x).view(-1, V), y.view(-1)); opt.zero_grad(); loss.backward(); opt.step()
    if s % 100 == 0: print(s, round(evaluate(), 4), f'{time.time() - t0:.1f}s', flush=True)
