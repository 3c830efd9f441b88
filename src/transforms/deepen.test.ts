import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { R2RError } from '../errors.ts';
import { GraphBuilder } from '../ir/builder.ts';
import { analyzeGraph, countMacs, countParams } from '../ir/graph.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { cloneWeights, initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { compareLogits } from '../reference/compare.ts';
import { forwardReference, runReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { deepen, defaultSites, stageEnds, type DeepenOptions } from './deepen.ts';

const N = 4;
const EXACT = 1e-5;
const models = new Map<string, { graph: Graph; weights: Weights; x: Float32Array }>();

/** A zoo model with trained-looking batch norms and a fixed random batch (cached per file). */
function model(name: string): { graph: Graph; weights: Weights; x: Float32Array } {
  if (!models.has(name)) {
    const graph = zooModel(name);
    const weights = initWeights(graph, new Rng(1), { randomBatchNorm: true });
    const r = new Rng(2);
    const x = new Float32Array(N * 32 * 32 * 3).map(() => r.normal());
    models.set(name, { graph, weights, x });
  }
  return models.get(name)!;
}

/** relDiff of student vs teacher logits in both modes; logged so the numbers show in the test output. */
function measure(t: TestContext, name: string, opts: DeepenOptions) {
  const { graph, weights, x } = model(name);
  const res = deepen(graph, weights, opts);
  const diff = (training: boolean) => compareLogits(forwardReference(graph, weights, x, N, { training }), forwardReference(res.graph, res.weights, x, N, { training })).relDiff;
  const inference = diff(false), training = diff(true);
  t.diagnostic(`${name} ${opts.method} after=${opts.after ?? `perStage ${opts.perStage ?? 1}`}${opts.init ? ` init=${JSON.stringify(opts.init)}` : ''}: relDiff inference ${inference.toExponential(2)}, training ${training.toExponential(2)}`);
  return { res, inference, training };
}

function assertCode(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof R2RError && e.code === code && pattern.test(e.message));
}

describe('deepen: exactness per method, model and mode (reference executor)', () => {
  it('small-conv after relu1: r2r exact in both modes', (t) => {
    const m = measure(t, 'small-conv', { method: 'r2r', after: 'relu1' });
    assert.ok(m.inference <= EXACT && m.training <= EXACT);
    assert.deepEqual(m.res.report.exact, { inference: true, training: true });
    // No batch norm in SmallConv, so the block mirrors it: biased convs, no BN.
    assert.ok(m.res.graph.nodes.every((n) => n.kind !== 'batchNorm'));
  });
  it('small-conv after relu1: net2net exact in both modes (no batch norm)', (t) => {
    const m = measure(t, 'small-conv', { method: 'net2net', after: 'relu1' });
    assert.ok(m.inference <= EXACT && m.training <= EXACT);
    assert.deepEqual(m.res.report.exact, { inference: true, training: true });
  });
  it('small-conv after relu1: random changes the function', (t) => {
    const m = measure(t, 'small-conv', { method: 'random', after: 'relu1' });
    assert.ok(m.inference > 1e-2 && m.training > 1e-2);
    assert.deepEqual(m.res.report.exact, { inference: false, training: false });
  });

  it('resnet-cifar18: r2r one block per stage, exact in both modes (match-std and he)', (t) => {
    const m = measure(t, 'resnet-cifar18', { method: 'r2r' });
    assert.ok(m.inference <= EXACT && m.training <= EXACT);
    const he = measure(t, 'resnet-cifar18', { method: 'r2r', after: 's1b1_relu2', init: { method: 'he' } });
    assert.ok(he.inference <= EXACT && he.training <= EXACT);
  });
  it('resnet-cifar18: random changes the function', (t) => {
    const m = measure(t, 'resnet-cifar18', { method: 'random' });
    assert.ok(m.inference > 1e-2 && m.training > 1e-2);
  });
  it('resnet-cifar18: net2net is refused on the residual stream, with the reason and a way out', () => {
    const { graph, weights } = model('resnet-cifar18');
    for (const opts of [{ method: 'net2net' }, { method: 'net2net', after: 's1b2_relu2' }] as DeepenOptions[]) {
      assertCode(() => deepen(graph, weights, opts), 'R2R_TRANSFORM', /residual stream.*add 's1b\d_add'.*'r2r'.*nores/s);
    }
  });

  it('resnet-cifar18-nores: net2net exact in inference, only approximate in training (measured)', (t) => {
    const m = measure(t, 'resnet-cifar18-nores', { method: 'net2net' });
    assert.ok(m.inference <= EXACT);
    assert.deepEqual(m.res.report.exact, { inference: true, training: false });
    // Identity batch norms normalise with batch statistics in training: not the identity.
    assert.ok(m.training > EXACT, `training relDiff ${m.training} should show the batch-statistics effect`);
  });
  it('resnet-cifar18-nores: r2r after a relu, exact in both modes', (t) => {
    const m = measure(t, 'resnet-cifar18-nores', { method: 'r2r', after: 's1b2_relu1' });
    assert.ok(m.inference <= EXACT && m.training <= EXACT);
  });

  it('mlp after act1: r2r and net2net exact in both modes with dense blocks, random not', (t) => {
    const r2r = measure(t, 'mlp', { method: 'r2r', after: 'act1' });
    const n2n = measure(t, 'mlp', { method: 'net2net', after: 'act1' });
    const rnd = measure(t, 'mlp', { method: 'random', after: 'act1' });
    assert.ok(r2r.inference <= EXACT && r2r.training <= EXACT);
    assert.ok(n2n.inference <= EXACT && n2n.training <= EXACT);
    assert.ok(rnd.inference > 1e-2 && rnd.training > 1e-2);
    const fc = r2r.res.graph.nodes.find((n) => n.name === 'act1_deep1_fc1a');
    assert.equal(fc?.kind, 'dense');
  });
});

describe('deepen: other insertion points', () => {
  /** A flat network with batch norm: input [12] -> dense 8 -> BN -> ReLU -> dense 3. */
  function flatBn(): { graph: Graph; weights: Weights; x: Float32Array } {
    const b = new GraphBuilder('flat-bn');
    const y = b.relu(b.batchNorm(b.dense(b.input([12]), 8, { useBias: false, name: 'fc1' }), { name: 'bn1' }), 'relu1');
    const graph = b.build(b.dense(y, 3, { name: 'fc2' }));
    const r = new Rng(5);
    return { graph, weights: initWeights(graph, new Rng(4), { randomBatchNorm: true }), x: new Float32Array(6 * 12).map(() => r.normal()) };
  }
  const diffs = (a: { graph: Graph; weights: Weights }, b: { graph: Graph; weights: Weights }, x: Float32Array, n: number) =>
    [false, true].map((training) => compareLogits(forwardReference(a.graph, a.weights, x, n, { training }), forwardReference(b.graph, b.weights, x, n, { training })).relDiff);

  it('flat volume in a network with batch norm: dense-BN blocks; r2r exact in both modes, net2net in inference', (t) => {
    const m = flatBn();
    const r2r = deepen(m.graph, m.weights, { method: 'r2r', after: 'relu1' });
    const n2n = deepen(m.graph, m.weights, { method: 'net2net', after: 'relu1' });
    const branch = ['dense', 'batchNorm', 'activation', 'dense', 'batchNorm'];
    assert.deepEqual(r2r.graph.nodes.filter((n) => n.name.startsWith('relu1_deep1')).map((n) => n.kind), [...branch, ...branch, 'add', 'add', 'activation']);
    const [ri, rt] = diffs(m, r2r, m.x, 6), [ni, nt] = diffs(m, n2n, m.x, 6);
    t.diagnostic(`flat-bn r2r: relDiff inference ${ri.toExponential(2)}, training ${rt.toExponential(2)}; net2net: inference ${ni.toExponential(2)}, training ${nt.toExponential(2)}`);
    assert.ok(ri <= EXACT && rt <= EXACT && ni <= EXACT);
    assert.ok(nt > EXACT);
    assert.deepEqual(n2n.report.exact, { inference: true, training: false });
  });

  it('r2r after a volume that is not an activation output (a max pool, a batch norm): no ReLU after the add, exact', (t) => {
    for (const [name, after] of [['small-conv', 'pool1'], ['resnet-cifar18-nores', 's1b1_bn2']]) {
      const m = model(name);
      const res = deepen(m.graph, m.weights, { method: 'r2r', after });
      const add = res.graph.nodes.find((n) => n.name === `${after}_deep1_add`)!;
      assert.ok(!res.graph.nodes.some((n) => n.inputs.includes(add.name) && n.kind === 'activation' && n.name.startsWith(`${after}_deep1`)));
      const [inf, train] = diffs(m, res, m.x, N);
      t.diagnostic(`${name} r2r after=${after}: relDiff inference ${inf.toExponential(2)}, training ${train.toExponential(2)}`);
      assert.ok(inf <= EXACT && train <= EXACT);
    }
  });
});

describe('deepen: structure', () => {
  it('R2DeeperR: two branches with [U1; U1] first kernels and [U2, -U2] last kernels; their sum is exactly zero', () => {
    const { graph, weights, x } = model('resnet-cifar18');
    const res = deepen(graph, weights, { method: 'r2r', after: 's2b4_relu2' });
    const w = (n: string) => res.weights[`s2b4_relu2_deep1_${n}/kernel`];
    assert.deepEqual(w('conv1a').shape, [3, 3, 16, 8]);
    assert.deepEqual(w('conv2a').shape, [3, 3, 8, 16]);
    assert.deepEqual(w('conv1b').data, w('conv1a').data);
    assert.deepEqual(w('conv2b').data, w('conv2a').data.map((v) => -v));
    assert.notEqual(w('conv1b').data, w('conv1a').data, 'separate tensors, free to diverge in training');
    assert.ok(w('conv1a').data.some((v) => v !== 0) && w('conv2a').data.some((v) => v !== 0), 'free parameters are not zero');
    for (const training of [false, true]) {
      const outs = runReference(res.graph, res.weights, x, N, { training });
      const a = outs.get('s2b4_relu2_deep1_bn2a')!;
      assert.ok(a.some((v) => Math.abs(v) > 0.1), 'each branch carries a real signal');
      // Not "small": exactly zero, in float64 here and in float32 on the engines (deepen_float32.test.ts).
      assert.ok(outs.get('s2b4_relu2_deep1_branch')!.every((v) => v === 0), `branch sum not exactly zero (training=${training})`);
      assert.deepEqual(outs.get('s2b4_relu2_deep1_relu2'), outs.get('s2b4_relu2'));
    }
  });

  it('resnet-cifar10 + 2 r2r blocks per stage has resnet-cifar18\'s multiply-adds; parameters: + one batch norm per block (96)', () => {
    const g10 = zooModel('resnet-cifar10'), g18 = zooModel('resnet-cifar18');
    const res = deepen(g10, initWeights(g10, new Rng(3)), { method: 'r2r', perStage: 2 });
    assert.equal(res.report.paramsBefore, 12082);
    // ResNetCifar-18 has 23,794; each new block normalises its two branches separately: + 2C trainable (gamma, beta) per block.
    assert.equal(res.report.paramsAfter, 23794 + 2 * (2 * 8) + 2 * (2 * 16));
    assert.equal(countParams(res.graph), res.report.paramsAfter);
    assert.equal(countMacs(res.graph), countMacs(g18));
    assert.equal(res.report.changes.length, 4);
  });
  it('resnet-cifar10-nores + 2 net2net blocks per stage has exactly resnet-cifar18-nores\'s params (23,634) and node shapes', () => {
    const g10 = zooModel('resnet-cifar10-nores');
    const res = deepen(g10, initWeights(g10, new Rng(3)), { method: 'net2net', perStage: 2 });
    assert.equal(res.report.paramsAfter, 23634);
    assert.deepEqual(signature(res.graph), signature(zooModel('resnet-cifar18-nores')));
  });

  it('stages are found generically: the last volume of each repeated shape', () => {
    assert.deepEqual(stageEnds(zooModel('resnet-cifar10')), ['s1b2_relu2', 's2b2_relu2']);
    assert.deepEqual(stageEnds(zooModel('resnet-cifar18-nores')), ['s1b4_relu2', 's2b4_relu2']);
    assert.deepEqual(stageEnds(zooModel('small-conv')), []);
  });
  it('without stages (SmallConv, the MLP), blocks go after every hidden layer; with stages, at stage ends', (t) => {
    assert.deepEqual(defaultSites(zooModel('small-conv')), ['relu1', 'relu2']);
    assert.deepEqual(defaultSites(zooModel('mlp')), ['act1', 'act2']);
    assert.deepEqual(defaultSites(zooModel('resnet-cifar10')), ['s1b2_relu2', 's2b2_relu2']);
    const m = measure(t, 'mlp', { method: 'r2r', perStage: 2 });
    assert.equal(m.res.report.changes.length, 4);
    assert.ok(m.inference === 0 && m.training === 0);
  });

  it('tensor maps: old tensors same, new tensors new, covering every student tensor; inputs untouched', () => {
    const { graph, weights } = model('resnet-cifar18');
    const before = cloneWeights(weights);
    const graphBefore = structuredClone(graph);
    const res = deepen(graph, weights, { method: 'r2r' });
    assert.deepEqual(Object.keys(res.tensorMaps).sort(), Object.keys(res.weights).sort());
    for (const key of Object.keys(weights)) assert.deepEqual(res.tensorMaps[key], { kind: 'same', from: key });
    for (const key of res.report.tensorsChanged) assert.deepEqual(res.tensorMaps[key], { kind: 'new' });
    // Per block: 4 kernels, 4 batch norms of 4 tensors.
    assert.equal(res.report.tensorsChanged.length, 2 * (4 + 4 * 4));
    for (const key of Object.keys(weights)) assert.notEqual(res.weights[key].data, weights[key].data, `${key} shares memory`);
    assert.deepEqual(weights, before);
    assert.deepEqual(graph, graphBefore);
  });

  it('one seed gives the same student bit for bit; another seed other free values', () => {
    const { graph, weights } = model('small-conv');
    const a = deepen(graph, weights, { method: 'r2r', after: 'relu1', seed: 7 });
    const b = deepen(graph, weights, { method: 'r2r', after: 'relu1', seed: 7 });
    const c = deepen(graph, weights, { method: 'r2r', after: 'relu1', seed: 8 });
    assert.deepEqual(a.weights, b.weights);
    assert.notDeepEqual(a.weights['relu1_deep1_conv1a/kernel'], c.weights['relu1_deep1_conv1a/kernel']);
  });

  it('init copy takes slices of the kernel before the insertion point; scale and he change the spread', () => {
    const { graph, weights } = model('resnet-cifar18');
    const copy = deepen(graph, weights, { method: 'r2r', after: 's1b1_relu2', init: { method: 'copy' } });
    const ref = weights['s1b1_conv2/kernel'].data, k1 = copy.weights['s1b1_relu2_deep1_conv1a/kernel'].data;
    // U1 = the reference's first 4 filters: element (tap, i, j<4) of [3, 3, 8, 4] equals ref (tap, i, j) of [3, 3, 8, 8].
    for (let r = 0; r < 9 * 8; r++) for (let j = 0; j < 4; j++) assert.equal(k1[r * 4 + j], ref[r * 8 + j]);
    const small = deepen(graph, weights, { method: 'r2r', after: 's1b1_relu2', init: { scale: 0.01 } });
    const big = deepen(graph, weights, { method: 'r2r', after: 's1b1_relu2' });
    const maxAbs = (r: typeof small) => Math.max(...r.weights['s1b1_relu2_deep1_conv1a/kernel'].data.map(Math.abs));
    assert.ok(maxAbs(small) < maxAbs(big) / 50);
  });

  it('init noise goes on U before pairing: r2r stays exact; on Net2Net identity kernels it is reported as not exact', () => {
    const { graph, weights, x } = model('small-conv');
    const r2r = deepen(graph, weights, { method: 'r2r', after: 'relu1', init: { noise: 0.05 } });
    const n2n = deepen(graph, weights, { method: 'net2net', after: 'relu1', init: { noise: 0.05 } });
    const d = (r: typeof r2r) => compareLogits(forwardReference(graph, weights, x, N, { training: false }), forwardReference(r.graph, r.weights, x, N, { training: false })).relDiff;
    assert.ok(d(r2r) <= EXACT);
    assert.deepEqual(r2r.report.exact, { inference: true, training: true });
    assert.ok(d(n2n) > EXACT);
    assert.deepEqual(n2n.report.exact, { inference: false, training: false });
  });

  it('deepen then deepen: new names stay unique and the student stays exact', (t) => {
    const { graph, weights, x } = model('resnet-cifar18');
    const once = deepen(graph, weights, { method: 'r2r' });
    const twice = deepen(once.graph, once.weights, { method: 'r2r', seed: 1 });
    const again = deepen(twice.graph, twice.weights, { method: 'r2r', after: 's1_deep2_relu2' });
    assert.ok(twice.graph.nodes.some((n) => n.name === 's1_deep2_conv1a'));
    assert.ok(again.graph.nodes.some((n) => n.name === 's1_deep2_relu2_deep1_conv1a'));
    analyzeGraph(again.graph);
    for (const training of [false, true]) {
      const d = compareLogits(forwardReference(graph, weights, x, N, { training }), forwardReference(again.graph, again.weights, x, N, { training })).relDiff;
      t.diagnostic(`resnet-cifar18 r2r x3 (two per stage + one after a new block), training=${training}: relDiff ${d.toExponential(2)}`);
      assert.ok(d <= EXACT);
    }
  });
});

describe('deepen: errors', () => {
  const { graph, weights } = model('small-conv');
  it('unknown node', () => assertCode(() => deepen(graph, weights, { method: 'r2r', after: 'nope' }), 'R2R_TRANSFORM', /no node named 'nope'/));
  it('the logits', () => assertCode(() => deepen(graph, weights, { method: 'r2r', after: 'fc2' }), 'R2R_TRANSFORM', /'fc2' is the output/));
  it('unknown method, bad perStage', () => {
    assertCode(() => deepen(graph, weights, { method: 'nope' as 'r2r', after: 'relu1' }), 'R2R_TRANSFORM', /unknown method "nope"/);
    assertCode(() => deepen(graph, weights, { method: 'r2r', perStage: 0 }), 'R2R_TRANSFORM', /perStage must be a positive integer/);
  });
  it('nothing to deepen without after: no stage and no hidden layer', () => {
    const b = new GraphBuilder('linear');
    const g = b.build(b.dense(b.flatten(b.input([4, 4, 2])), 3, { name: 'fc' }));
    assertCode(() => deepen(g, initWeights(g, new Rng(0)), { method: 'r2r' }), 'R2R_TRANSFORM', /no stage and no hidden layer.*'after'/);
  });
  it('r2r on an odd channel count: branches of width ceil(C/2), still exact', () => {
    const b = new GraphBuilder('odd');
    const y = b.relu(b.conv2d(b.input([4, 4, 2]), 5, 3, { name: 'c' }), 'r');
    const g = b.build(b.dense(b.flatten(y), 3, { name: 'fc' }));
    const w = initWeights(g, new Rng(0));
    const res = deepen(g, w, { method: 'r2r', after: 'r' });
    assert.deepEqual(res.weights['r_deep1_conv1a/kernel'].shape, [3, 3, 5, 3]);
    const x = new Float32Array(3 * 32).map((_, i) => Math.sin(i));
    for (const training of [false, true]) assert.deepEqual(forwardReference(res.graph, res.weights, x, 3, { training }), forwardReference(g, w, x, 3, { training }));
  });
  it('net2net after a non-idempotent or non-activation volume', () => {
    assertCode(() => deepen(graph, weights, { method: 'net2net', after: 'pool1' }), 'R2R_TRANSFORM', /'pool1' is not an activation output.*idempotent/);
    const g = zooModel('resnet-cifar18-nores');
    assertCode(() => deepen(g, initWeights(g, new Rng(0)), { method: 'net2net', after: 's1b1_bn1' }), 'R2R_TRANSFORM', /idempotent/);
  });
});

/** Sorted node signatures: kind, output shape and parameter shapes (names differ between the two). */
function signature(graph: Graph): string[] {
  const info = analyzeGraph(graph);
  return [...info.nodes.values()].map((ni) => `${ni.node.kind} ${ni.outputShape.join('x')} ${ni.params.map((p) => p.shape.join('x')).join(',')}`).sort();
}
