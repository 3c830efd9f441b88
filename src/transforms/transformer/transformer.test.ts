/**
 * Growing a GPT on the reference executor (float64): every transform of issue 10 with every
 * method, exactness in both modes with a failing random counterpart, the structure each method
 * promises, refusals, and the optimizer-state mapping checked against numerical gradients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OptimizerState } from '../../engines/engine.ts';
import { analyzeGraph, countParams, paramSpecs } from '../../ir/graph.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { initWeights } from '../../ir/weights.ts';
import { gpt } from '../../models/gpt.ts';
import { compareLogits } from '../../reference/compare.ts';
import { forwardReference, runReference } from '../../reference/execute.ts';
import { Rng } from '../../rng.ts';
import { applyTransform, mapOptimizerState, type TransformSpec } from '../index.ts';
import type { AxisMap, TensorMap, TransformResult } from '../types.ts';

const T = 6, V = 11, N = 3;
const small = gpt({ layers: 2, heads: 2, dim: 16, block: T, vocab: V });
/** Trained-looking weights: PyTorch init plus noise on layer norms and biases (so nothing is trivially 0 or 1). */
function weightsFor(graph: Graph, seed: number): Weights {
  const rng = new Rng(seed);
  const w = initWeights(graph, rng);
  for (const [k, t] of Object.entries(w)) if (/gamma|beta|[bB]ias/.test(k)) for (let i = 0; i < t.data.length; i++) t.data[i] += 0.3 * rng.normal();
  return w;
}
const weights = weightsFor(small, 1);
const tokensRng = new Rng(9);
const tokens = Int32Array.from({ length: N * T }, () => tokensRng.int(V));

function relDiff(a: Graph, wa: Weights, b: Graph, wb: Weights, training: boolean): number {
  return compareLogits(forwardReference(a, wa, tokens, N, { training }), forwardReference(b, wb, tokens, N, { training })).relDiff;
}

const METHODS = ['r2r', 'net2net', 'netmorph', 'random'] as const;
const cases: { spec: TransformSpec; exact: boolean }[] = [
  ...METHODS.map((m) => ({ spec: { transform: 'mlp', method: m, factor: 2 } as TransformSpec, exact: m !== 'random' })),
  ...METHODS.map((m) => ({ spec: { transform: 'heads', method: m, add: 2 } as TransformSpec, exact: m !== 'random' })),
  { spec: { transform: 'heads', method: 'netmorph', add: 1, netmorphZeroSide: 'consumers' }, exact: true },
  { spec: { transform: 'heads', method: 'net2net', add: 3 }, exact: true },
  ...METHODS.map((m) => ({ spec: { transform: 'width', method: m, factor: 2 } as TransformSpec, exact: m === 'r2r' || m === 'net2net' })),
  { spec: { transform: 'width', method: 'net2net', factor: 3 }, exact: true },
  { spec: { transform: 'width', method: 'random', add: 6 }, exact: false },
  ...(['r2r', 'netmorph', 'random'] as const).flatMap((m) => [
    { spec: { transform: 'deepen', method: m } as TransformSpec, exact: m !== 'random' },
    { spec: { transform: 'deepen', method: m, position: 0, perStage: 2 } as TransformSpec, exact: m !== 'random' },
    { spec: { transform: 'deepen', method: m, after: 'h0_add2', init: { method: 'copy' } } as TransformSpec, exact: m !== 'random' },
  ]),
];

describe('transformer growth on the reference executor', () => {
  for (const { spec, exact } of cases) {
    it(`${JSON.stringify(spec)}: ${exact ? 'same logits in both modes' : 'changes the function (the baseline fails)'}`, () => {
      const r = applyTransform(small, weights, { seed: 3, ...spec });
      assert.deepEqual(r.report.exact, { inference: exact, training: exact });
      assert.ok(countParams(r.graph) > countParams(small));
      for (const training of [false, true]) {
        const d = relDiff(small, weights, r.graph, r.weights, training);
        if (exact) assert.ok(d <= 1e-6, `relDiff ${d}`);
        else assert.ok(d > 1e-3, `a non-preserving transform kept the function: relDiff ${d}`);
      }
      // The student never shares memory with the teacher.
      for (const [k, t] of Object.entries(r.weights)) if (weights[k]) assert.notEqual(t.data, weights[k].data, k);
    });
  }

  it('growing 2 layers / 2 heads / 16 to 4 / 4 / 32 by R2R gives exactly the gpt zoo model of that size, same function', () => {
    let g = small, w = weights;
    for (const spec of [
      { transform: 'width', method: 'r2r', factor: 2 },
      { transform: 'heads', method: 'r2r', add: 2 },
      { transform: 'mlp', method: 'r2r', factor: 2 },
      { transform: 'deepen', method: 'r2r', perStage: 2 },
    ] as TransformSpec[]) {
      const r = applyTransform(g, w, spec);
      g = r.graph; w = r.weights;
    }
    const target = gpt({ layers: 4, heads: 4, dim: 32, block: T, vocab: V });
    assert.deepEqual(g.nodes, target.nodes);
    assert.deepEqual([...paramSpecs(g).keys()].sort(), [...paramSpecs(target).keys()].sort());
    for (const training of [false, true]) assert.ok(relDiff(small, weights, g, w, training) <= 1e-6);
  });

  it('R2R heads: new heads in equal pairs (q, k, v), output rows [V; -V]', () => {
    const r = applyTransform(small, weights, { transform: 'heads', method: 'r2r', at: 'h1_attn', add: 4 });
    const [D, H, K] = [16, 6, 8];
    const head = (key: string, h: number) => Array.from({ length: D * K }, (_, i) => r.weights[key].data[(Math.floor(i / K) * H + h) * K + (i % K)]);
    for (const p of ['query', 'key', 'value']) {
      for (const [a, b] of [[2, 4], [3, 5]]) assert.deepEqual(head(`h1_attn/${p}Kernel`, a), head(`h1_attn/${p}Kernel`, b));
      assert.notDeepEqual(head(`h1_attn/${p}Kernel`, 2), head(`h1_attn/${p}Kernel`, 3));
    }
    const rows = (h: number) => [...r.weights['h1_attn/outputKernel'].data.slice(h * K * D, (h + 1) * K * D)];
    assert.deepEqual(rows(4), rows(2).map((v) => -v));
    assert.ok(rows(2).some((v) => v !== 0));
    assert.equal(r.graph.nodes.find((n) => n.name === 'h1_attn')!.kind === 'attention' && (r.graph.nodes.find((n) => n.name === 'h1_attn') as { heads: number }).heads, 6);
    assert.equal((r.graph.nodes.find((n) => n.name === 'h0_attn') as { heads: number }).heads, 2, 'only the named node grows');
  });

  it('width: embeddings [e, e], layer norm gamma [g, g], R2R consumer rows sum to the old row; net2net rows W/2', () => {
    for (const method of ['r2r', 'net2net'] as const) {
      const r = applyTransform(small, weights, { transform: 'width', method, factor: 2, seed: 2 });
      const e = r.weights['wte/embeddings'].data, e0 = weights['wte/embeddings'].data;
      for (let v = 0; v < V; v++) for (let c = 0; c < 16; c++) { assert.equal(e[v * 32 + c], e0[v * 16 + c]); assert.equal(e[v * 32 + 16 + c], e0[v * 16 + c]); }
      const gam = r.weights['h0_ln1/gamma'].data;
      assert.deepEqual([...gam.slice(16)], [...gam.slice(0, 16)]);
      const fc = r.weights['h0_fc/kernel'].data, fc0 = weights['h0_fc/kernel'].data; // [D, F] rows
      const F = 64;
      for (let c = 0; c < 16; c++) {
        for (let j = 0; j < F; j++) {
          const a = fc[c * F + j], b = fc[(c + 16) * F + j];
          assert.ok(Math.abs(a + b - fc0[c * F + j]) <= 1e-6, `row ${c} col ${j}`);
          if (method === 'net2net') assert.equal(a, b);
        }
      }
      if (method === 'r2r') assert.ok([...fc.slice(0, F)].some((v, j) => v !== fc[16 * F + j]), 'r2r breaks the symmetry of the two rows');
      assert.equal((r.graph.nodes.find((n) => n.name === 'wte') as { dim: number }).dim, 32);
      assert.equal((r.graph.nodes.find((n) => n.name === 'h1_proj') as { units: number }).units, 32);
    }
  });

  it('R2DeeperR: the new block adds exactly zero to the stream (attention and MLP), with nonzero weights', () => {
    const r = applyTransform(small, weights, { transform: 'deepen', method: 'r2r', position: 1 });
    const outs = runReference(r.graph, r.weights, tokens, N, { training: false });
    // Zoo names: the new block is h1, the old h1 became h2.
    assert.deepEqual(r.graph.nodes.filter((n) => n.kind === 'attention').map((n) => n.name), ['h0_attn', 'h1_attn', 'h2_attn']);
    assert.deepEqual(r.tensorMaps['h2_attn/queryKernel'], { kind: 'same', from: 'h1_attn/queryKernel' });
    assert.deepEqual(r.tensorMaps['h1_attn/queryKernel'], { kind: 'new' });
    const x = outs.get('h0_add2')!, y1 = outs.get('h1_add1')!, y2 = outs.get('h1_add2')!;
    for (let i = 0; i < x.length; i++) { assert.ok(Math.abs(y1[i] - x[i]) <= 1e-12); assert.ok(Math.abs(y2[i] - x[i]) <= 1e-12); }
    for (const k of ['h1_attn/queryKernel', 'h1_attn/outputKernel', 'h1_fc/kernel', 'h1_proj/kernel']) assert.ok(r.weights[k].data.some((v) => v !== 0), k);
    assert.deepEqual([...r.weights['h1_ln1/gamma'].data], new Array(16).fill(1));
    assert.deepEqual([...r.weights['h1_ln2/beta'].data], new Array(16).fill(0));
  });

  it('deepening a graph not named like the zoo uses fresh deep<n> names', () => {
    const renamed: Graph = JSON.parse(JSON.stringify(small).replaceAll('h0_', 'blockA_').replaceAll('h1_', 'blockB_'));
    const w: Weights = Object.fromEntries(Object.entries(weights).map(([k, t]) => [k.replace('h0_', 'blockA_').replace('h1_', 'blockB_'), t]));
    const r = applyTransform(renamed, w, { transform: 'deepen', method: 'netmorph', after: 'blockA_add2' });
    assert.ok(r.graph.nodes.some((n) => n.name === 'deep1_attn'));
    assert.deepEqual(r.graph.nodes.find((n) => n.name === 'blockB_ln1')!.inputs, ['deep1_add2']);
    assert.ok(relDiff(renamed, w, r.graph, r.weights, false) <= 1e-6);
  });

  const refusals: [string, TransformSpec, RegExp][] = [
    ['width net2net by 1.5 (layer norm)', { transform: 'width', method: 'net2net', factor: 1.5 }, /layer norm .*mean and variance.*integer factor/s],
    ['width r2r by 3', { transform: 'width', method: 'r2r', factor: 3 }, /factor must be 2/],
    ['width by a factor that adds nothing', { transform: 'width', method: 'random', factor: 1.01 }, /adds no channel/],
    ['width with noise', { transform: 'width', method: 'net2net', init: { noise: 0.01 } }, /noise/],
    ['heads r2r odd', { transform: 'heads', method: 'r2r', add: 3 }, /equal pairs.*even/],
    ['heads at a dense', { transform: 'heads', method: 'r2r', at: 'h0_fc' }, /'h0_fc' is a dense node, not attention/],
    ['deepen net2net', { transform: 'deepen', method: 'net2net' }, /identity/],
    ['deepen after a non-boundary', { transform: 'deepen', method: 'r2r', after: 'h0_fc' }, /not a block boundary/],
    ['deepen position out of range', { transform: 'deepen', method: 'r2r', position: 5 }, /position must be an integer from 0 to 2/],
    ['mlp at a layer norm', { transform: 'mlp', method: 'r2r', at: 'h0_ln2' }, /not the first dense/],
    ['widen the stream channel-wise', { transform: 'widen', method: 'r2r', at: 'h0_ln1', add: 2 }, /coupled.*width transform/s],
  ];
  for (const [what, spec, msg] of refusals) {
    it(`refuses ${what} with a message that says why`, () => {
      assert.throws(() => applyTransform(small, weights, spec), (e: unknown) => (e as { code?: string }).code === 'R2R_TRANSFORM' && msg.test((e as Error).message));
    });
  }

  it('R2DeeperR refuses an odd head count, naming the node', () => {
    const odd = gpt({ layers: 1, heads: 3, dim: 12, block: T, vocab: V });
    assert.throws(() => applyTransform(odd, initWeights(odd, new Rng(1)), { transform: 'deepen', method: 'r2r' }), /'h0_attn', which has 3 heads/);
  });
});

// ---------------------------------------------------------------------------------------------
// Optimizer state: numerical gradients of the mean token cross-entropy (float64 reference).

const labels = Int32Array.from({ length: N * T }, (_, i) => (tokens[i] * 7 + 3) % V);
function loss(graph: Graph, w: Weights): number {
  const info = analyzeGraph(graph);
  const logits = runReference(graph, w, tokens, N, { training: true }, info).get(graph.output)!;
  let l = 0;
  for (let p = 0; p < N * T; p++) {
    const row = logits.subarray(p * V, (p + 1) * V);
    const m = Math.max(...row);
    let z = 0;
    for (const v of row) z += Math.exp(v - m);
    l += Math.log(z) + m - row[labels[p]];
  }
  return l / (N * T);
}
/** d loss / d w[key][i] by central differences, with the float32 step actually taken. */
function grad(graph: Graph, w: Weights, key: string, i: number): number {
  const t = w[key].data, x = t[i];
  t[i] = x + 1e-3; const hp = t[i] - x; const lp = loss(graph, w);
  t[i] = x - 1e-3; const hm = x - t[i]; const lm = loss(graph, w);
  t[i] = x;
  return (lp - lm) / (hp + hm);
}
/** Index in the teacher's tensor of student entry `i` under a gather map, and its gradient factor. */
function sourceOf(shape: number[], srcShape: number[], map: Extract<TensorMap, { kind: 'gather' }>, i: number): { j: number; g: number } {
  let rem = i, j = 0, g = 1, stride = 1;
  const idx: number[] = [];
  for (let a = shape.length - 1; a >= 0; a--) { idx[a] = rem % shape[a]; rem = Math.floor(rem / shape[a]); }
  const src: number[] = idx.map((v, a) => {
    const m: AxisMap | undefined = map.axes.find((x) => x.axis === a);
    if (!m) return v;
    g *= (m.gradScale ?? m.scale)?.[v] ?? 1;
    return m.source[v];
  });
  for (let a = srcShape.length - 1; a >= 0; a--) { j += src[a] * stride; stride *= srcShape[a]; }
  return { j, g };
}
const ADAM = { b1: 0.9, b2: 0.999, eps: 1e-8, lr: 1e-3 };
function adamStep(m: number, v: number, g: number, step: number): number {
  const m1 = ADAM.b1 * m + (1 - ADAM.b1) * g, v1 = ADAM.b2 * v + (1 - ADAM.b2) * g * g;
  return ADAM.lr * (m1 / (1 - ADAM.b1 ** step)) / (Math.sqrt(v1 / (1 - ADAM.b2 ** step)) + ADAM.eps);
}
/** A plausible Adam state: m ~ gradient-sized, v ~ m^2 scale. */
function adamState(graph: Graph, seed: number): OptimizerState {
  const rng = new Rng(seed);
  const slots: Record<string, Weights> = { m: {}, v: {} };
  for (const [k, s] of paramSpecs(graph)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const m = Float32Array.from({ length: n }, () => 1e-2 * rng.normal());
    slots.m[k] = { shape: [...s.shape], data: m };
    slots.v[k] = { shape: [...s.shape], data: m.map((x) => x * x * rng.uniform(1, 3)) };
  }
  return { kind: 'adam', step: 20, slots };
}

/**
 * For sampled entries of every changed tensor: the student's gradient is gradScale times its
 * source's, and with the mapped state its next Adam step equals the source's next step.
 */
function checkAdam(r: TransformResult, keys: string[]): { worst: number } {
  const state = adamState(small, 4);
  const mapped = mapOptimizerState(state, r);
  let worst = 0;
  const rng = new Rng(11);
  for (const key of keys) {
    const map = r.tensorMaps[key];
    assert.equal(map.kind, 'gather', key);
    if (map.kind !== 'gather') continue;
    const shape = r.weights[key].shape, n = r.weights[key].data.length;
    for (let s = 0; s < 6; s++) {
      const i = rng.int(n);
      const { j, g } = sourceOf(shape, weights[map.from].shape, map, i);
      const gs = grad(r.graph, r.weights, key, i), gt = grad(small, weights, map.from, j);
      assert.ok(Math.abs(gs - g * gt) <= 1e-6 * Math.max(1, Math.abs(gt)) + 1e-9, `${key}[${i}]: gradient ${gs}, expected ${g} x ${gt}`);
      const step = state.step + 1;
      const ds = adamStep(mapped.slots.m[key].data[i], mapped.slots.v[key].data[i], gs, step);
      const dt = adamStep(state.slots.m[map.from].data[j], state.slots.v[map.from].data[j], gt, step);
      worst = Math.max(worst, Math.abs(ds - dt) / Math.abs(dt));
    }
  }
  return { worst };
}

describe('optimizer state through transformer growth', () => {
  it('width x2 (net2net): replicated entries get half the gradient, divided rows the full one; each entry takes its source\'s Adam step', () => {
    const r = applyTransform(small, weights, { transform: 'width', method: 'net2net', factor: 2 });
    const keys = ['wte/embeddings', 'wpe/embeddings', 'h0_ln1/gamma', 'h0_ln1/beta', 'h0_attn/queryKernel', 'h0_attn/valueKernel', 'h0_attn/outputKernel', 'h0_attn/outputBias', 'h1_fc/kernel', 'h1_proj/kernel', 'h1_proj/bias', 'ln_f/gamma', 'head/kernel'];
    const { worst } = checkAdam(r, keys);
    assert.ok(worst <= 1e-4, `Adam steps differ by ${worst} (relative)`);
    // Counterpart: carrying the moments unscaled (ignoring gradScale) gives other steps.
    const naive: TransformResult = { ...r, tensorMaps: Object.fromEntries(Object.entries(r.tensorMaps).map(([k, m]) => [k, m.kind === 'gather' ? { ...m, axes: m.axes.map((a) => ({ axis: a.axis, source: a.source })) } : m])) };
    const state = adamState(small, 4), s2 = mapOptimizerState(state, naive);
    const gs = grad(r.graph, r.weights, 'h0_ln1/gamma', 0), gt = grad(small, weights, 'h0_ln1/gamma', 0);
    const ds = adamStep(s2.slots.m['h0_ln1/gamma'].data[0], s2.slots.v['h0_ln1/gamma'].data[0], gs, 21), dt = adamStep(state.slots.m['h0_ln1/gamma'].data[0], state.slots.v['h0_ln1/gamma'].data[0], gt, 21);
    assert.ok(Math.abs(ds - dt) / Math.abs(dt) > 1e-2, `unscaled moments should change the step: ${ds} vs ${dt}`);
  });

  it('heads (net2net): copies share the gradient 1/n_c, divided output rows keep theirs; Adam steps match', () => {
    const r = applyTransform(small, weights, { transform: 'heads', method: 'net2net', add: 2, seed: 5 });
    const { worst } = checkAdam(r, ['h0_attn/queryKernel', 'h0_attn/keyBias', 'h0_attn/valueKernel', 'h0_attn/outputKernel', 'h1_attn/valueBias']);
    assert.ok(worst <= 1e-4, `Adam steps differ by ${worst}`);
  });

  it('MLP width (net2net, through widen): the copied hidden units share the gradient, divided rows keep theirs; Adam steps match', () => {
    const r = applyTransform(small, weights, { transform: 'mlp', method: 'net2net', at: 'h1_fc', factor: 1.5, seed: 6 });
    const { worst } = checkAdam(r, ['h1_fc/kernel', 'h1_fc/bias', 'h1_proj/kernel']);
    assert.ok(worst <= 1e-4, `Adam steps differ by ${worst}`);
  });

  it('R2R heads and deepening: old entries carried, new ones start at zero; renamed blocks keep their state', () => {
    const state = adamState(small, 4);
    const h = mapOptimizerState(state, applyTransform(small, weights, { transform: 'heads', method: 'r2r', add: 2 }));
    const q = h.slots.m['h0_attn/queryKernel'].data, q0 = state.slots.m['h0_attn/queryKernel'].data; // [16, 4, 8] from [16, 2, 8]
    for (let d = 0; d < 16; d++) for (let k = 0; k < 16; k++) { assert.equal(q[d * 32 + k], q0[d * 16 + k]); assert.equal(q[d * 32 + 16 + k], 0); }
    const r = applyTransform(small, weights, { transform: 'deepen', method: 'r2r', position: 0 });
    const d = mapOptimizerState(state, r);
    assert.deepEqual(d.slots.v['h1_fc/kernel'].data, state.slots.v['h0_fc/kernel'].data);
    assert.ok(d.slots.m['h0_fc/kernel'].data.every((v) => v === 0));
    assert.equal(d.step, 20);
  });
});
