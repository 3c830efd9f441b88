/**
 * The engine-agnostic conformance suite: every engine must agree with the reference executor
 * (forward, both modes), with finite differences (gradients), with float64 PyTorch formulas
 * (Adam, SGD), with the IR's batch-norm moving-statistics rule, and round-trip its weights and
 * optimizer state. Call `describeEngineConformance(label, makeEngine)` from a `*.test.ts` file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Batch, Engine, EngineModel, OptimizerConfig, OptimizerState } from '../../src/engines/engine.ts';
import { R2RError } from '../../src/errors.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { paramSpecs } from '../../src/ir/graph.ts';
import type { Graph, Node, Weights } from '../../src/ir/types.ts';
import { cloneWeights, initWeights } from '../../src/ir/weights.ts';
import { zooModel } from '../../src/models/zoo.ts';
import { compareLogits } from '../../src/reference/compare.ts';
import { forwardReference, runReference } from '../../src/reference/execute.ts';
import { Rng } from '../../src/rng.ts';
import { randomBatch as randomInput } from '../../src/verify.ts';

export function randomBatch(inputShape: number[], n: number, classes: number, rng: Rng): Batch {
  const x = randomInput(inputShape, n, rng);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(classes);
  return { x, n, labels };
}

function inputShapeOf(g: Graph): number[] {
  return (g.nodes.find((n) => n.kind === 'input') as Extract<Node, { kind: 'input' }>).shape;
}

/** Every node kind and padding flavour in one small graph (no dropout: the reference has none in training). */
export function kitchenSink(): Graph {
  const b = new GraphBuilder('kitchen-sink');
  const x = b.input([9, 8, 3]);
  const c1 = b.conv2d(x, 6, 4, { stride: 2, padding: 'same', name: 'c_same_even' });
  const c2 = b.conv2d(x, 6, 3, { stride: 2, padding: [0, 2, 1, 0], useBias: false, name: 'c_explicit' });
  const c3 = b.conv2d(x, 6, 3, { stride: 2, padding: 'valid', name: 'c_valid' });
  const c3p = b.conv2d(c3, 6, 1, { padding: [1, 0, 1, 0], name: 'c_1x1_pad' });
  const cat = b.concat([c1, c2], 'cat');
  const bn = b.batchNorm(cat, { momentum: 0.8, epsilon: 1e-3, name: 'bn' });
  const acts = (['relu', 'relu6', 'leakyRelu', 'elu', 'tanh', 'sigmoid', 'gelu'] as const).reduce((v, fn) => b.activation(v, fn, `act_${fn}`), bn);
  const mp = b.maxPool(acts, 3, { stride: 2, padding: [2, 0, 1, 0], name: 'mp_explicit' });
  const ap = b.avgPool(acts, 3, { stride: 2, padding: 'same', name: 'ap_same' });
  const ap2 = b.avgPool(c3p, 2, { stride: 2, padding: [1, 1, 0, 1], name: 'ap_explicit' });
  const sum = b.add([mp, ap, b.conv2d(ap2, 12, 1, { name: 'c_proj' })], 'add3');
  const f = b.flatten(sum, 'flat');
  const d1 = b.dense(f, 7, { name: 'fc1' });
  const bn2 = b.batchNorm(d1, { name: 'bn_dense' });
  const d2 = b.dense(b.dropout(bn2, 0, 'drop0'), 5, { name: 'fc2' });
  const g = b.dense(b.globalAvgPool(acts, 'gap'), 5, { useBias: false, name: 'fc_gap' });
  return b.build(b.add([d2, g], 'logits'));
}

/** The zoo at test size, plus the kitchen sink. */
export function conformanceModels(): { name: string; graph: Graph }[] {
  return [
    { name: 'resnet-cifar18(0.125)', graph: zooModel('resnet-cifar18', { width: 0.125 }) },
    { name: 'resnet-cifar10(0.125)', graph: zooModel('resnet-cifar10', { width: 0.125 }) },
    { name: 'resnet-cifar18-nores(0.125)', graph: zooModel('resnet-cifar18-nores', { width: 0.125 }) },
    { name: 'resnet-cifar10-nores(0.125)', graph: zooModel('resnet-cifar10-nores', { width: 0.125 }) },
    { name: 'small-conv(0.25)', graph: zooModel('small-conv', { width: 0.25 }) },
    { name: 'mlp(0.125)', graph: zooModel('mlp', { width: 0.125 }) },
    { name: 'kitchen-sink', graph: kitchenSink() },
  ];
}

/** A tiny smooth-ish conv net for finite differences and batch-norm checks. */
export function tinyConvNet(): Graph {
  const b = new GraphBuilder('tiny-conv');
  const x = b.input([5, 5, 2]);
  let y = b.conv2d(x, 3, 3, { stride: 2, padding: 'same', name: 'conv' });
  y = b.batchNorm(y, { momentum: 0.7, name: 'bn' });
  y = b.activation(y, 'tanh', 'act');
  y = b.avgPool(y, 2, { stride: 1, padding: 'same', name: 'pool' });
  y = b.flatten(y, 'flat');
  y = b.dense(y, 4, { name: 'fc' });
  return b.build(y);
}

export function tinyDenseNet(): Graph {
  const b = new GraphBuilder('tiny-dense');
  const x = b.input([5]);
  let y = b.dense(x, 6, { name: 'fc1' });
  y = b.activation(y, 'tanh', 'act');
  y = b.dense(y, 3, { name: 'fc2' });
  return b.build(y);
}

function trainableNames(g: Graph): string[] {
  return [...paramSpecs(g)].filter(([, s]) => s.trainable).map(([k]) => k);
}

/** |a - b| <= atol + rtol * |b| elementwise, with the worst offender in the message. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) { worst = i; worstExcess = excess; }
  }
  assert.ok(worst < 0, `${what}: index ${worst}: ${a[worst]} vs expected ${b[worst]}`);
}

/** Float64 PyTorch optimizer, the formulas of torch.optim.Adam / SGD (dampening 0). */
export class ReferenceOptimizer {
  step = 0;
  readonly slots: Record<string, Record<string, Float64Array>> = {};
  constructor(private readonly c: OptimizerConfig) {}

  apply(params: Record<string, Float64Array>, grads: Weights): void {
    this.step++;
    const c = this.c;
    const wd = c.weightDecay ?? 0;
    for (const [name, p] of Object.entries(params)) {
      const g = Float64Array.from(grads[name].data);
      for (let i = 0; i < g.length; i++) g[i] += wd * p[i];
      if (c.kind === 'adam') {
        const b1 = c.beta1 ?? 0.9, b2 = c.beta2 ?? 0.999, eps = c.epsilon ?? 1e-8;
        const m = (this.slots.m ??= {})[name] ??= new Float64Array(p.length);
        const v = (this.slots.v ??= {})[name] ??= new Float64Array(p.length);
        const bc1 = 1 - b1 ** this.step, bc2 = 1 - b2 ** this.step;
        for (let i = 0; i < p.length; i++) {
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          p[i] -= (c.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
        }
      } else {
        const mom = c.momentum ?? 0;
        let upd: Float64Array = g;
        if (mom > 0) {
          const first = !this.slots.momentum?.[name];
          const buf = (this.slots.momentum ??= {})[name] ??= new Float64Array(p.length);
          for (let i = 0; i < p.length; i++) buf[i] = first ? g[i] : mom * buf[i] + g[i];
          upd = c.nesterov ? g.map((gi, i) => gi + mom * buf[i]) : buf;
        }
        for (let i = 0; i < p.length; i++) p[i] -= c.lr * upd[i];
      }
    }
  }
}

export function describeEngineConformance(label: string, makeEngine: () => Promise<Engine>): void {
  describe(`engine conformance: ${label}`, () => {
    let engine: Engine;
    const models: EngineModel[] = [];
    const build = async (g: Graph, w: Weights, seed?: number) => {
      const m = await engine.build(g, w, { seed });
      models.push(m);
      return m;
    };
    before(async () => { engine = await makeEngine(); });
    after(() => { for (const m of models) m.dispose(); });

    it('has a name and a description', () => {
      assert.ok(engine.name.length > 0);
      assert.ok(engine.description.length > 0);
    });

    for (const { name, graph } of conformanceModels()) {
      it(`forward matches the reference executor: ${name}, inference and training mode, <= 1e-5 relative`, async () => {
        const rng = new Rng(`fwd-${name}`);
        const w = initWeights(graph, rng, { randomBatchNorm: true });
        const batch = randomBatch(inputShapeOf(graph), 3, 5, rng);
        const m = await build(graph, w);
        for (const training of [false, true]) {
          const got = await m.forward(batch, { training });
          const want = forwardReference(graph, w, batch.x, batch.n, { training });
          const d = compareLogits(want, got);
          assert.ok(d.relDiff <= 1e-5, `${name} training=${training}: relDiff ${d.relDiff} (maxAbs ${d.maxAbsDiff})`);
        }
        // A plain forward never touches the moving statistics.
        assert.deepEqual(await m.getWeights(), w);
      });
    }

    it('gradients match central finite differences on a tiny conv net (training mode)', async () => {
      const g = tinyConvNet();
      const rng = new Rng('fd');
      const w = initWeights(g, rng, { randomBatchNorm: true });
      const batch = randomBatch([5, 5, 2], 4, 4, rng);
      const m = await build(g, w);
      const { loss, grads } = await m.gradients(batch);
      assert.ok(Number.isFinite(loss));
      const h = 1e-2;
      let checked = 0;
      for (const name of trainableNames(g)) {
        for (const i of [0, Math.floor(w[name].data.length / 2), w[name].data.length - 1]) {
          const at = async (delta: number) => {
            const w2 = cloneWeights(w);
            w2[name].data[i] += delta;
            await m.setWeights(w2);
            return (await m.gradients(batch)).loss;
          };
          const fd = ((await at(h)) - (await at(-h))) / (2 * h);
          const an = grads[name].data[i];
          assert.ok(Math.abs(fd - an) <= 2e-3 + 2e-2 * Math.abs(an), `${name}[${i}]: analytic ${an} vs finite difference ${fd}`);
          checked++;
        }
      }
      assert.ok(checked >= 18);
      // gradients() left the moving statistics alone.
      await m.setWeights(w);
      await m.gradients(batch);
      assert.deepEqual(await m.getWeights(), w);
    });

    const optimizerCases: OptimizerConfig[] = [
      { kind: 'adam', lr: 1e-2 },
      { kind: 'adam', lr: 3e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 1e-2 },
      { kind: 'sgd', lr: 0.1 },
      { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-3 },
      { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
    ];
    for (const config of optimizerCases) {
      it(`${JSON.stringify(config)} matches float64 PyTorch formulas for 5 steps`, async () => {
        const g = tinyDenseNet();
        const rng = new Rng(`opt-${JSON.stringify(config)}`);
        const w = initWeights(g, rng);
        const m = await build(g, w);
        m.setOptimizer(config);
        const ref = new ReferenceOptimizer(config);
        const params: Record<string, Float64Array> = {};
        for (const name of trainableNames(g)) params[name] = Float64Array.from(w[name].data);
        for (let step = 0; step < 5; step++) {
          const batch = randomBatch([5], 8, 3, rng);
          const { grads } = await m.gradients(batch);
          await m.trainStep(batch);
          // The reference steps from the engine's own (float32) weights, so errors do not compound.
          const now = await m.getWeights();
          ref.apply(params, grads);
          for (const name of Object.keys(params)) {
            assertClose(now[name].data, params[name], 1e-6, 1e-5, `step ${step + 1} ${name}`);
            params[name] = Float64Array.from(now[name].data);
          }
        }
        const state = await m.getOptimizerState();
        assert.ok(state);
        assert.equal(state.kind, config.kind);
        assert.equal(state.step, 5);
        for (const [slot, byName] of Object.entries(ref.slots)) {
          for (const [name, want] of Object.entries(byName)) assertClose(state.slots[slot][name].data, want, 1e-6, 1e-4, `slot ${slot} ${name}`);
        }
      });
    }

    it('trainStep updates batch-norm moving statistics with momentum and the unbiased batch variance', async () => {
      const g = tinyConvNet();
      const rng = new Rng('bn');
      const w = initWeights(g, rng, { randomBatchNorm: true });
      const batch = randomBatch([5, 5, 2], 6, 4, rng);
      const m = await build(g, w);
      m.setOptimizer({ kind: 'sgd', lr: 0.1 });
      await m.trainStep(batch);
      const after = await m.getWeights();
      const conv = runReference(g, w, batch.x, batch.n, { training: true }).get('conv')!;
      const c = 3, rows = conv.length / c, mom = 0.7;
      const mean = new Float64Array(c), sq = new Float64Array(c);
      for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) mean[j] += conv[r * c + j] / rows;
      for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) sq[j] += (conv[r * c + j] - mean[j]) ** 2;
      const wantMean = Array.from(mean, (v, j) => mom * w['bn/movingMean'].data[j] + (1 - mom) * v);
      const wantVar = Array.from(sq, (v, j) => mom * w['bn/movingVariance'].data[j] + (1 - mom) * (v / (rows - 1)));
      assertClose(after['bn/movingMean'].data, wantMean, 1e-6, 1e-5, 'movingMean');
      assertClose(after['bn/movingVariance'].data, wantVar, 1e-6, 1e-5, 'movingVariance');
    });

    it('evaluate gives the inference-mode loss and correct count', async () => {
      const g = tinyConvNet();
      const rng = new Rng('eval');
      const w = initWeights(g, rng, { randomBatchNorm: true });
      const batch = randomBatch([5, 5, 2], 7, 4, rng);
      const m = await build(g, w);
      const r = await m.evaluate(batch);
      const logits = forwardReference(g, w, batch.x, batch.n, { training: false });
      let loss = 0, correct = 0;
      for (let e = 0; e < batch.n; e++) {
        const row = Array.from(logits.subarray(e * 4, e * 4 + 4));
        const mx = Math.max(...row);
        const lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
        loss += (lse - row[batch.labels![e]]) / batch.n;
        if (row.indexOf(mx) === batch.labels![e]) correct++;
      }
      assert.ok(Math.abs(r.loss - loss) <= 1e-5 * Math.max(1, loss), `loss ${r.loss} vs ${loss}`);
      assert.equal(r.correct, correct);
      assert.deepEqual(await m.getWeights(), w);
    });

    it('getWeights/setWeights round-trip, and optimizer state carries over exactly', async () => {
      const g = tinyConvNet();
      const rng = new Rng('roundtrip');
      const w = initWeights(g, rng, { randomBatchNorm: true });
      const batches = [0, 1, 2, 3, 4].map(() => randomBatch([5, 5, 2], 4, 4, rng));
      for (const config of [{ kind: 'adam', lr: 1e-2, weightDecay: 1e-3 }, { kind: 'sgd', lr: 0.05, momentum: 0.9 }] as OptimizerConfig[]) {
        const a = await build(g, w);
        assert.deepEqual(await a.getWeights(), w);
        a.setOptimizer(config);
        for (const b of batches.slice(0, 3)) await a.trainStep(b);
        const midWeights = await a.getWeights();
        const midState = (await a.getOptimizerState()) as OptimizerState;
        assert.equal(midState.step, 3);
        // A second model resumed from the snapshot takes the same steps as the first one continuing.
        const b = await build(g, midWeights);
        b.setOptimizer(config, midState);
        for (const batch of batches.slice(3)) {
          const ra = await a.trainStep(batch), rb = await b.trainStep(batch);
          assert.equal(rb.loss, ra.loss);
        }
        const wa = await a.getWeights(), wb = await b.getWeights();
        for (const k of Object.keys(wa)) assertClose(wb[k].data, wa[k].data, 0, 1e-6, `resumed ${config.kind} ${k}`);
        const sb = (await b.getOptimizerState())!;
        assert.equal(sb.step, 5);
        // setWeights then getWeights returns the same values.
        await b.setWeights(midWeights);
        assert.deepEqual(await b.getWeights(), midWeights);
      }
    });

    it('setLearningRate changes the step size and keeps the state', async () => {
      const g = tinyDenseNet();
      const rng = new Rng('lr');
      const w = initWeights(g, rng);
      const batch = randomBatch([5], 8, 3, rng);
      const m = await build(g, w);
      m.setOptimizer({ kind: 'sgd', lr: 0.1 });
      m.setLearningRate(0);
      await m.trainStep(batch);
      assert.deepEqual(await m.getWeights(), w);
      assert.equal((await m.getOptimizerState())!.step, 1);
      m.setLearningRate(0.1);
      await m.trainStep(batch);
      assert.notDeepEqual(await m.getWeights(), w);
    });

    it('dropout: one seed draws the same masks in every model built with it, even interleaved; inference is the identity', async () => {
      const b = new GraphBuilder('drop');
      const g = b.build(b.dense(b.dropout(b.input([50]), 0.5, 'drop'), 3, { name: 'fc' }));
      const rng = new Rng('drop');
      const w = initWeights(g, rng);
      const batch = { x: Float32Array.from({ length: 4 * 50 }, () => rng.normal()), n: 4 };
      // All three are built before any forward: a generator shared between models would give m1
      // and m2 different masks (the torch engine's did, issue 8).
      const [m1, m2, m3] = [await build(g, w, 7), await build(g, w, 7), await build(g, w, 8)];
      const t1 = await m1.forward(batch, { training: true });
      assert.deepEqual(await m2.forward(batch, { training: true }), t1);
      assert.notDeepEqual(await m3.forward(batch, { training: true }), t1);
      const second = await m1.forward(batch, { training: true });
      assert.notDeepEqual(second, t1, 'the mask changes from call to call');
      assert.deepEqual(await m2.forward(batch, { training: true }), second, 'the two models stay in step');
      const ref = forwardReference(g, w, batch.x, batch.n, { training: false });
      assert.ok(compareLogits(ref, await m1.forward(batch, { training: false })).relDiff <= 1e-6);
    });

    it('a dead node (output read by nothing): zero gradients, left alone by a training step', async () => {
      // tfjs threw "Argument 'x' passed to 'reshape' must be a Tensor" here (issue 8).
      const b = new GraphBuilder('dead');
      const x = b.input([1]);
      b.dense(x, 3, { name: 'fc1' });
      const g = b.build(b.dense(x, 2, { name: 'fc2' }));
      const w = initWeights(g, new Rng('dead'));
      const batch = { x: Float32Array.from([0.5, -1, 2]), n: 3, labels: Int32Array.from([0, 1, 0]) };
      const m = await build(g, w);
      const { grads } = await m.gradients(batch);
      assert.deepEqual(Object.keys(grads).sort(), ['fc1/bias', 'fc1/kernel', 'fc2/bias', 'fc2/kernel']);
      for (const k of ['fc1/kernel', 'fc1/bias']) assert.ok(grads[k].data.every((v) => v === 0), k);
      assert.ok(grads['fc2/kernel'].data.some((v) => v !== 0));
      m.setOptimizer({ kind: 'adam', lr: 0.1 });
      await m.trainStep(batch);
      const after = await m.getWeights();
      assert.deepEqual(after['fc1/kernel'], w['fc1/kernel']);
      assert.notDeepEqual(after['fc2/kernel'], w['fc2/kernel']);
    });

    it('training a small conv net on a separable synthetic problem lowers the loss', async () => {
      const b = new GraphBuilder('toy');
      let y = b.input([8, 8, 1]);
      y = b.conv2d(y, 4, 3, { name: 'conv' });
      y = b.batchNorm(y, { name: 'bn' });
      y = b.relu(y, 'relu');
      y = b.maxPool(y, 2, { name: 'pool' });
      y = b.globalAvgPool(y, 'gap');
      const g = b.build(b.dense(y, 2, { name: 'fc' }));
      const rng = new Rng('toy');
      const m = await build(g, initWeights(g, rng));
      // Class 0: a bright left half; class 1: a bright right half; plus noise.
      const n = 32;
      const make = () => {
        const x = new Float32Array(n * 64), labels = new Int32Array(n);
        for (let e = 0; e < n; e++) {
          labels[e] = rng.int(2);
          for (let p = 0; p < 64; p++) x[e * 64 + p] = 0.3 * rng.normal() + ((p % 8 < 4) === (labels[e] === 0) ? 1 : 0);
        }
        return { x, n, labels };
      };
      const val = make();
      const first = await m.evaluate(val);
      m.setOptimizer({ kind: 'adam', lr: 3e-2 });
      for (let i = 0; i < 40; i++) await m.trainStep(make());
      const last = await m.evaluate(val);
      assert.ok(last.loss < 0.5 * first.loss, `loss ${first.loss} -> ${last.loss}`);
      assert.ok(last.correct >= 0.9 * n, `accuracy ${last.correct}/${n}`);
    });

    it('reports errors with codes: bad batch size, missing labels, trainStep without optimizer, bad weights', async () => {
      const g = tinyDenseNet();
      const w = initWeights(g, new Rng(1));
      const m = await build(g, w);
      const code = (e: unknown) => (e instanceof R2RError ? e.code : String(e));
      await assert.rejects(m.forward({ x: new Float32Array(7), n: 2 }, { training: false }), (e) => code(e) === 'R2R_SHAPE_MISMATCH');
      await assert.rejects(m.evaluate({ x: new Float32Array(10), n: 2 }), (e) => code(e) === 'R2R_USAGE');
      await assert.rejects(m.evaluate({ x: new Float32Array(10), n: 2, labels: Int32Array.from([0, 3]) }), (e) => code(e) === 'R2R_DATA');
      await assert.rejects(m.trainStep({ x: new Float32Array(10), n: 2, labels: Int32Array.from([0, 1]) }), (e) => code(e) === 'R2R_USAGE');
      const bad = cloneWeights(w);
      delete bad['fc1/bias'];
      await assert.rejects(m.setWeights(bad), (e) => code(e) === 'R2R_INVALID_WEIGHTS');
      await assert.rejects(engine.build(g, bad), (e) => code(e) === 'R2R_INVALID_WEIGHTS');
      assert.throws(() => m.setOptimizer({ kind: 'adam', lr: -1 }), (e) => code(e) === 'R2R_USAGE');
      const unsupported = { ...g, nodes: g.nodes.map((n) => (n.name === 'act' ? { ...n, kind: 'softmax' } : n)) } as unknown as Graph;
      await assert.rejects(engine.build(unsupported, w), (e) => code(e) === 'R2R_UNSUPPORTED_LAYER');
    });
  });
}
