/**
 * Where the torch engine's training step spends its time: records `--steps` steps with the
 * libtorch profiler (a chrome trace, --trace to keep it) and prints self time per op, the same
 * table that bench/profile_pytorch.py prints for PyTorch.
 *
 *   node --import tsx bench/profile.ts [--net resnet18:0.125|resnet10:W|smallconv:W|mlp:W] [--threads 2] [--steps 10] [--infer]
 */
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTorchEngine } from '../src/engines/torch/index.ts';
import { loadAddon } from '../src/engines/torch/native.ts';
import { initWeights } from '../src/ir/weights.ts';
import { zooModel } from '../src/models/zoo.ts';
import { Rng } from '../src/rng.ts';

const arg = (k: string, d: string) => { const i = process.argv.indexOf(k); return i >= 0 ? process.argv[i + 1] : d; };
const [kind, r] = arg('--net', 'resnet18:0.125').split(':');
const threads = Number(arg('--threads', '2')), steps = Number(arg('--steps', '10'));
const infer = process.argv.includes('--infer');
const trace = arg('--trace', path.join(os.tmpdir(), `r2r-torch-profile-${process.pid}.json`));

const engine = await createTorchEngine({ threads });
const zooName: Record<string, string> = { resnet10: 'resnet-cifar10', resnet18: 'resnet-cifar18', smallconv: 'small-conv', mlp: 'mlp' };
const g = zooModel(zooName[kind] ?? kind, { width: Number(r) });
const rng = new Rng(0);
const m = await engine.build(g, initWeights(g, rng));
const n = infer ? 256 : 128;
const x = new Float32Array(n * 3072).map(() => rng.normal());
const labels = new Int32Array(n).map(() => rng.int(10));
m.setOptimizer({ kind: 'adam', lr: 3e-3 });
const step = () => (infer ? m.forward({ x, n }, { training: false }) : m.trainStep({ x, n, labels }));
for (let i = 0; i < 5; i++) await step();
const addon = loadAddon() as unknown as { profile(p: string): Promise<void> };
await addon.profile(trace);
const t0 = performance.now();
for (let i = 0; i < steps; i++) await step();
const wall = performance.now() - t0;
await addon.profile('');
m.dispose();

interface Ev { name: string; ts: number; dur: number; tid: number }
const events = (JSON.parse(readFileSync(trace, 'utf8')) as Ev[]).filter((e) => typeof e.dur === 'number');
if (!process.argv.includes('--trace')) rmSync(trace);
// Self time: an event's duration minus its direct children's (events nest per thread).
const self = new Map<string, { total: number; self: number; calls: number }>();
const byTid = new Map<number, Ev[]>();
for (const e of events) (byTid.get(e.tid) ?? byTid.set(e.tid, []).get(e.tid)!).push(e);
let top = 0;
for (const evs of byTid.values()) {
  evs.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const stack: { e: Ev; child: number }[] = [];
  const close = (s: { e: Ev; child: number }) => {
    const a = self.get(s.e.name) ?? { total: 0, self: 0, calls: 0 };
    a.total += s.e.dur; a.self += s.e.dur - s.child; a.calls++;
    self.set(s.e.name, a);
    if (stack.length) stack[stack.length - 1].child += s.e.dur; else top += s.e.dur;
  };
  for (const e of evs) {
    while (stack.length && stack[stack.length - 1].e.ts + stack[stack.length - 1].e.dur <= e.ts) close(stack.pop()!);
    stack.push({ e, child: 0 });
  }
  while (stack.length) close(stack.pop()!);
}
const perStep = (us: number) => (us / steps / 1000).toFixed(3);
console.log(`${engine.description}, ${g.name}, ${infer ? 'inference batch 256' : 'training batch 128'}: ${(wall / steps).toFixed(2)} ms/step wall, ${perStep(top)} ms/step in ops`);
console.log('op                                              self ms/step  total ms/step  calls/step');
for (const [name, a] of [...self].sort((p, q) => q[1].self - p[1].self).slice(0, 25)) {
  console.log(`${name.slice(0, 48).padEnd(48)} ${perStep(a.self).padStart(12)} ${perStep(a.total).padStart(14)} ${(a.calls / steps).toFixed(0).padStart(11)}`);
}
