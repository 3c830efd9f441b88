/**
 * The native libtorch engine: the shared conformance suite (both memory formats), agreement with
 * the TensorFlow.js engine (gradients, Adam steps), the native dataset fast path against a
 * trainStep loop, exactness after transforms, and the "not built" message.
 *
 * Without the addon these tests skip with a loud message locally; with CI=true they fail.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { describeEngineConformance, kitchenSink, randomBatch } from '../../../test/engines/conformance.ts';
import { calibratedNet } from '../../../test/helpers/preserved.ts';
import { EngineUnavailableError, R2RError } from '../../errors.ts';
import { analyzeGraph } from '../../ir/graph.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { initWeights } from '../../ir/weights.ts';
import { zooModel } from '../../models/zoo.ts';
import { compareLogits } from '../../reference/compare.ts';
import { forwardReference } from '../../reference/execute.ts';
import { Rng } from '../../rng.ts';
import { applyTransform, type TransformSpec } from '../../transforms/index.ts';
import type { Batch, Engine, EngineModel, OptimizerConfig } from '../engine.ts';
import { getEngine } from '../registry.ts';
import { compileGraph, createTorchEngine } from './index.ts';
import { loadAddon } from './native.ts';
import { requireTorch, torchUnavailable } from '../../../test/helpers/torch_available.ts';

const skip = requireTorch('the native torch engine tests');
const unavailable = torchUnavailable;

it('a missing addon is an EngineUnavailableError that says how to install and build it', () => {
  assert.throws(() => loadAddon('/nonexistent/r2r_torch.node'), (e) => {
    assert.ok(e instanceof EngineUnavailableError, String(e));
    assert.equal(e.code, 'R2R_ENGINE_UNAVAILABLE');
    assert.match(e.message, /apt-get install -y libtorch-dev && npm run build:native/);
    assert.match(e.message, /LIBTORCH=\/path\/to\/libtorch/);
    return true;
  });
});

if (!unavailable) {
  describeEngineConformance('torch (cpu, channels_last)', () => createTorchEngine({ threads: 2, channelsLast: true }));
  describeEngineConformance('torch (cpu, NCHW)', () => createTorchEngine({ threads: 2, channelsLast: false }));
}

/** maxAbs(a - b) / max|b| over one tensor. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return compareLogits(b, a).relDiff;
}

/** Weights as the addon takes them: name -> data. */
function plain(w: Weights): Record<string, Float32Array> {
  const data: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(w)) data[k] = t.data;
  return data;
}

function maxAbsAll(ws: Weights): number {
  let mx = 0;
  for (const t of Object.values(ws)) for (const v of t.data) mx = Math.max(mx, Math.abs(v));
  return mx;
}

function gather(x: Float32Array, labels: Int32Array, idx: ArrayLike<number>, size: number): Batch {
  const bx = new Float32Array(idx.length * size), by = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    bx.set(x.subarray(idx[i] * size, (idx[i] + 1) * size), i * size);
    by[i] = labels[idx[i]];
  }
  return { x: bx, n: idx.length, labels: by };
}

describe('torch engine', { skip }, () => {
  let engine: Engine;
  const models: EngineModel[] = [];
  const build = async (g: Graph, w: Weights, e: Engine = engine) => {
    const m = await e.build(g, w);
    models.push(m);
    return m;
  };
  before(async () => { engine = await createTorchEngine({ threads: 2 }); });
  after(() => { for (const m of models) m.dispose(); });

  it('describes itself and is what the registry picks for auto', async () => {
    assert.match(engine.description, /^libtorch 1\.\d+\.\d+ \(cpu, 2 threads/);
    assert.equal((await getEngine('auto', { threads: 1 })).name, 'torch');
  });

  it('threads default to auto: with a CPU-burning process competing, fewer threads than cores (at least 1)', async () => {
    const burner = spawn(process.execPath, ['-e', 'const end = Date.now() + 10000; while (Date.now() < end);'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const e = await createTorchEngine({ threads: 'auto' });
      const m = /\(cpu, auto threads, (\d+) at start[,)]/.exec(e.description);
      assert.ok(m, e.description);
      assert.ok(Number(m[1]) >= 1 && Number(m[1]) <= Math.max(1, availableParallelism() - 1), e.description);
    } finally {
      burner.kill();
    }
    // OMP_NUM_THREADS, as in PyTorch, fixes the count.
    const saved = process.env.OMP_NUM_THREADS;
    process.env.OMP_NUM_THREADS = '1';
    try {
      assert.match((await createTorchEngine()).description, /\(cpu, 1 thread[,)]/);
    } finally {
      if (saved === undefined) delete process.env.OMP_NUM_THREADS; else process.env.OMP_NUM_THREADS = saved;
    }
  });

  it('OpenBLAS, when libtorch maps it, gets its thread count from the engine', { skip: !existsSync('/proc/self/maps') && 'no /proc/self/maps' }, () => {
    const info = loadAddon().info();
    const maps = readFileSync('/proc/self/maps', 'utf8');
    assert.equal(info.openblasThreads, /libopenblas/.test(maps), `openblasThreads ${info.openblasThreads}; libopenblas mapped: ${/libopenblas/.test(maps)}`);
  });

  it('the addon is built with OpenMP, so its own parallel loops use every intra-op thread', () => {
    // at::parallel_for is a header template: built without -fopenmp, the addon's Adam, batch-norm
    // and dense loops compiled to serial code on one thread whatever the thread count.
    assert.equal(loadAddon().info().openmp, true);
  });

  it('the addon is built with oneDNN where Debian\'s libtorch and libdnnl-dev are installed (scripts/setup.sh installs both)', () => {
    // Without it, dense layers in inference fall back to BLAS: correct, but mlp:1 inferred 0.83x
    // PyTorch that way (docs/bench/2026-12-01b.md) against 1.16x-1.19x with oneDNN (2026-12-01c.md).
    const debian = !process.env.LIBTORCH && existsSync('/usr/include/oneapi/dnnl/dnnl.hpp');
    assert.equal(loadAddon().info().onednn ?? false, debian && process.env.R2R_TORCH_ONEDNN !== '0');
  });

  describe('inference dense layers (oneDNN with a cached reordered kernel, else BLAS split over threads)', () => {
    const native = (g: Graph, threads: number, onednn: boolean) => {
      const { ops, output } = compileGraph(g);
      return new (loadAddon().NativeModel)(ops, output, { device: 'cpu', threads, channelsLast: false, onednn });
    };
    const g = zooModel('mlp', { width: 0.5, inputShape: [8, 8, 3] });
    const w = initWeights(g, new Rng(5));

    for (const onednn of [true, false]) {
      it(`${onednn ? 'oneDNN' : 'BLAS'}: batch sizes 96, 5 and 96 again match the float64 reference, bit for bit the same on 1 and 2 threads`, async () => {
        const byThreads: Float32Array[][] = [];
        for (const threads of [1, 2]) {
          const m = native(g, threads, onednn);
          const outs: Float32Array[] = [];
          try {
            await m.setWeights(plain(w));
            for (const n of [96, 5, 96]) {
              const batch = randomBatch([8, 8, 3], n, 10, new Rng(6 + n));
              const got = await m.forward(batch.x, batch.n, false);
              const d = compareLogits(forwardReference(g, w, batch.x, batch.n, { training: false }), got);
              assert.ok(d.relDiff <= 1e-5, `${threads} threads, n ${n}: relDiff ${d.relDiff}`);
              outs.push(got);
            }
          } finally {
            m.dispose();
          }
          byThreads.push(outs);
        }
        // Neither path splits a dot product across threads, so the thread count cannot change a bit.
        byThreads[0].forEach((one, k) => assert.deepEqual(byThreads[1][k], one, `call ${k}: 2 threads differ from 1`));
      });
    }

    it('oneDNN and BLAS agree, and a changed batch changes the logits (the comparison can fail)', async () => {
      const batch = randomBatch([8, 8, 3], 96, 10, new Rng(6));
      const run = async (onednn: boolean, x = batch.x) => {
        const m = native(g, 2, onednn);
        try {
          await m.setWeights(plain(w));
          return await m.forward(x, batch.n, false);
        } finally {
          m.dispose();
        }
      };
      const a = await run(true), b = await run(false);
      assert.ok(relDiff(a, b) <= 1e-5, `oneDNN vs BLAS: ${relDiff(a, b)}`);
      const x = batch.x.slice();
      x[0] += 1;
      assert.ok(relDiff(await run(true, x), b) > 1e-5);
    });

    it('the cached kernel follows every weight change: setWeights, Adam (one-pass kernel), SGD, trainEpoch', async () => {
      // A stale kernel would keep the first logits: each step is checked against the reference of
      // the weights read back, and against the logits before it (which must differ).
      const m = await engine.build(g, w, { threads: 2 });
      try {
        const batch = randomBatch([8, 8, 3], 64, 10, new Rng(7));
        const check = async (what: string, before: Float32Array) => {
          const now = await m.forward(batch, { training: false });
          const ref = forwardReference(g, await m.getWeights(), batch.x, batch.n, { training: false });
          assert.ok(compareLogits(ref, now).relDiff <= 1e-5, `${what}: logits vs reference of the current weights: ${compareLogits(ref, now).relDiff}`);
          assert.ok(relDiff(now, before) > 1e-4, `${what}: the logits did not change`);
          return now;
        };
        let last = await m.forward(batch, { training: false });
        await m.setWeights(initWeights(g, new Rng(8)));
        last = await check('setWeights', last);
        m.setOptimizer({ kind: 'adam', lr: 1e-2 });
        await m.trainStep(batch);
        last = await check('adam step', last);
        m.setOptimizer({ kind: 'sgd', lr: 0.5, momentum: 0.9 });
        await m.trainStep(batch);
        last = await check('sgd step', last);
        assert.ok(m.uploadDataset && m.trainEpoch, 'the torch engine trains whole epochs natively');
        const data = await m.uploadDataset(batch.x, batch.labels!, batch.n);
        await m.trainEpoch(data, Int32Array.from({ length: 64 }, (_, i) => i), 32);
        data.release();
        await check('trainEpoch', last);
      } finally {
        m.dispose();
      }
    });

    it('a transformer\'s dense layers on [N, T, F] match the reference in inference', async () => {
      const tg = zooModel('gpt', { layers: 1, heads: 2, dim: 16, block: 8, vocab: 11 });
      const tw = initWeights(tg, new Rng(9));
      const m = await engine.build(tg, tw, { threads: 2 });
      try {
        const rng = new Rng(10);
        const tokens = Int32Array.from({ length: 3 * 8 }, () => rng.int(11));
        const got = await m.forward({ x: new Float32Array(0), tokens, n: 3 }, { training: false });
        const d = compareLogits(forwardReference(tg, tw, tokens, 3, { training: false }), got);
        assert.ok(d.relDiff <= 1e-5, `relDiff ${d.relDiff}`);
      } finally {
        m.dispose();
      }
    });
  });

  it('setThreads changes a model\'s threads between calls without changing its results', async () => {
    const g = zooModel('resnet-cifar10', { width: 0.0625, inputShape: [16, 16, 3] });
    const w = initWeights(g, new Rng(3));
    const { ops, output } = compileGraph(g);
    const native = new (loadAddon().NativeModel)(ops, output, { device: 'cpu', threads: 2, channelsLast: false });
    try {
      await native.setWeights(plain(w));
      const batch = randomBatch([16, 16, 3], 8, 10, new Rng(4));
      const two = await native.forward(batch.x, batch.n, false);
      native.setThreads!(1);
      assert.ok(relDiff(await native.forward(batch.x, batch.n, false), two) <= 1e-6);
      assert.throws(() => native.setThreads!(0), /positive integer/);
    } finally {
      native.dispose();
    }
  });

  it('training is deterministic on 2 threads: repeated gradients are bit-identical (strided 1x1 convs included)', async () => {
    // Guards the NCHW fallback for strided 1x1 convs: oneDNN's channels_last weight gradient for
    // them races on 2+ threads (s2b1_sc_conv here varied by ~1e-2 between calls).
    const g = zooModel('resnet-cifar10', { width: 0.0625, inputShape: [16, 16, 3] });
    const m = await build(g, initWeights(g, new Rng(7)));
    const batch = randomBatch([16, 16, 3], 64, 10, new Rng(1));
    const first = await m.gradients(batch);
    for (let r = 0; r < 8; r++) assert.deepEqual((await m.gradients(batch)).grads, first.grads, `call ${r + 2}`);
  });

  it('refuses cuda on a build without CUDA, and unknown devices', async () => {
    if (loadAddon().info().cuda) return;
    await assert.rejects(createTorchEngine({ device: 'cuda' }), (e) => e instanceof EngineUnavailableError && /LIBTORCH=/.test(e.message));
    await assert.rejects(createTorchEngine({ device: 'tpu' }), (e) => e instanceof R2RError && e.code === 'R2R_USAGE');
  });

  it('reads a batch in place: a view into a larger array gives the copy\'s results, and the input is left as it was', async () => {
    const g = zooModel('resnet-cifar10', { width: 0.125 });
    const rng = new Rng('borrowed-input');
    const m = await build(g, initWeights(g, rng, { randomBatchNorm: true }));
    const batch = randomBatch([32, 32, 3], 4, 10, rng);
    const big = new Float32Array(batch.x.length + 3 * 3072);
    big.set(batch.x, 2 * 3072);
    const view = { ...batch, x: big.subarray(2 * 3072, 2 * 3072 + batch.x.length) };
    const before = Float32Array.from(big);
    for (const training of [false, true]) {
      assert.deepEqual(await m.forward(view, { training }), await m.forward(batch, { training }));
    }
    assert.deepEqual((await m.gradients(view)).grads, (await m.gradients(batch)).grads);
    assert.deepEqual(await m.evaluate(view), await m.evaluate(batch));
    m.setOptimizer({ kind: 'sgd', lr: 0.1 });
    await m.trainStep(view);
    assert.deepEqual(big, before);
    // Another batch in the same view's place now gives other logits (no stale copy is kept).
    const a = await m.forward(view, { training: false });
    view.x.set(randomBatch([32, 32, 3], 4, 10, rng).x);
    assert.notDeepEqual(await m.forward(view, { training: false }), a);
  });

  it('channels_last and NCHW give the same logits and the same weights after Adam steps', async () => {
    const g = zooModel('resnet-cifar18', { width: 0.125 });
    const rng = new Rng('formats');
    const w = initWeights(g, rng, { randomBatchNorm: true });
    const a = await build(g, w, await createTorchEngine({ threads: 2, channelsLast: true }));
    const b = await build(g, w, await createTorchEngine({ threads: 2, channelsLast: false }));
    const batch = randomBatch([32, 32, 3], 8, 10, rng);
    for (const training of [false, true]) {
      assert.ok(relDiff(await a.forward(batch, { training }), await b.forward(batch, { training })) <= 1e-5);
    }
    for (const m of [a, b]) m.setOptimizer({ kind: 'adam', lr: 1e-3 });
    for (let i = 0; i < 3; i++) { await a.trainStep(batch); await b.trainStep(batch); }
    const wa = await a.getWeights(), wb = await b.getWeights();
    for (const k of Object.keys(wa)) assert.ok(relDiff(wa[k].data, wb[k].data) <= 1e-4, `${k}: ${relDiff(wa[k].data, wb[k].data)}`);
  });

  describe('agrees with the TensorFlow.js engine (cpu backend)', () => {
    let tfjs: Engine;
    before(async () => { tfjs = await getEngine('tfjs', { backend: 'cpu' }); });
    const nets: { name: string; graph: () => Graph; n: number }[] = [
      { name: 'resnet-cifar10(0.125)', graph: () => zooModel('resnet-cifar10', { width: 0.125 }), n: 3 },
      { name: 'resnet-cifar18-nores(0.125)', graph: () => zooModel('resnet-cifar18-nores', { width: 0.125 }), n: 3 },
      { name: 'small-conv(0.25)', graph: () => zooModel('small-conv', { width: 0.25 }), n: 3 },
      { name: 'mlp(0.125)', graph: () => zooModel('mlp', { width: 0.125 }), n: 6 },
      { name: 'kitchen-sink', graph: kitchenSink, n: 6 },
    ];
    for (const { name, graph, n } of nets) {
      it(`${name}: same gradients, and the same weights after 3 Adam steps (<= 1e-4 relative)`, async () => {
        const g = graph();
        const rng = new Rng(`vs-tfjs-${name}`);
        const w = initWeights(g, rng, { randomBatchNorm: true });
        const info = analyzeGraph(g);
        const classes = info.outputShape[0];
        const batches = [0, 1, 2].map(() => randomBatch(info.inputShape, n, classes, rng));
        const t = await build(g, w), f = await build(g, w, tfjs);
        const gt = await t.gradients(batches[0]), gf = await f.gradients(batches[0]);
        assert.ok(Math.abs(gt.loss - gf.loss) <= 1e-5 * Math.max(1, Math.abs(gf.loss)), `loss ${gt.loss} vs ${gf.loss}`);
        // A gradient that is zero in exact arithmetic (a bias before batch norm) is float noise in
        // both engines: judged against 1e-5 of the largest gradient instead of its own size.
        const floor = 1e-5 * maxAbsAll(gf.grads);
        // Those tensors' Adam trajectories are noise too; the weight comparison leaves them out.
        const noise = new Set(Object.keys(gf.grads).filter((k) => maxAbsAll({ [k]: gf.grads[k] }) < 10 * floor));
        assert.ok([...noise].every((k) => k.endsWith('/bias')), `only biases before batch norm have zero gradients: ${[...noise].join(', ')}`);
        for (const k of Object.keys(gf.grads)) {
          const { maxAbsDiff } = compareLogits(gf.grads[k].data, gt.grads[k].data);
          const own = maxAbsAll({ [k]: gf.grads[k] });
          assert.ok(maxAbsDiff <= 1e-4 * own + floor, `gradient ${k}: maxAbsDiff ${maxAbsDiff}, max|g| ${own}, floor ${floor}`);
        }
        // Adam divides by sqrt(v): with the default epsilon an entry whose gradient is float noise
        // (near-cancelling sums, a bias before batch norm) moves by ~lr in whichever direction the
        // noise points, in any two engines. Adam's step lr*m/(sqrt(v)+eps) changes by at most
        // lr/eps times a gradient difference, so eps = lr carries the engines' (float32, differently
        // ordered) gradient differences into the weights without amplifying them.
        const config: OptimizerConfig = { kind: 'adam', lr: 1e-3, epsilon: 1e-3, weightDecay: 1e-4 };
        t.setOptimizer(config);
        f.setOptimizer(config);
        for (const b of batches) {
          const rt = await t.trainStep(b), rf = await f.trainStep(b);
          assert.equal(rt.correct, rf.correct);
        }
        const wt = await t.getWeights(), wf = await f.getWeights();
        for (const k of Object.keys(wf)) {
          if (noise.has(k)) continue;
          const d = relDiff(wt[k].data, wf[k].data);
          assert.ok(d <= 1e-4, `weight ${k} after 3 steps: relDiff ${d}`);
        }
        const st = (await t.getOptimizerState())!, sf = (await f.getOptimizerState())!;
        assert.equal(st.step, sf.step);
        for (const slot of ['m', 'v']) {
          for (const k of Object.keys(sf.slots[slot])) {
            if (noise.has(k)) continue;
            const d = relDiff(st.slots[slot][k].data, sf.slots[slot][k].data);
            assert.ok(d <= 1e-3, `slot ${slot} ${k}: relDiff ${d}`);
          }
        }
      });
    }
  });

  describe('native dataset fast path', () => {
    const g = zooModel('resnet-cifar10', { width: 0.125, inputShape: [16, 16, 3] });
    const size = 16 * 16 * 3, N = 70, BS = 16;
    const rng = new Rng('fast-path');
    const w = initWeights(g, rng, { randomBatchNorm: true });
    const data = randomBatch([16, 16, 3], N, 10, rng);
    const order = Int32Array.from(rng.shuffle(Array.from({ length: N }, (_, i) => i)));

    it('trainEpoch equals a trainStep loop over the same batches (last one smaller), with progress', async () => {
      for (const config of [{ kind: 'adam', lr: 1e-3, weightDecay: 5e-4 }, { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true }] as OptimizerConfig[]) {
        const fast = await build(g, w), slow = await build(g, w);
        fast.setOptimizer(config);
        slow.setOptimizer(config);
        const handle = await fast.uploadDataset!(data.x, data.labels!, N);
        assert.equal(handle.n, N);
        const progress: [number, number][] = [];
        const r = await fast.trainEpoch!(handle, order, BS, (b, l) => progress.push([b, l]));
        let lossSum = 0, correct = 0, steps = 0;
        for (let s = 0; s < N; s += BS) {
          const idx = order.subarray(s, Math.min(N, s + BS));
          const sr = await slow.trainStep(gather(data.x, data.labels!, idx, size));
          lossSum += sr.loss * idx.length;
          correct += sr.correct;
          steps++;
        }
        assert.equal(r.steps, 5);
        assert.equal(r.steps, steps);
        assert.equal(r.examples, N);
        assert.equal(r.correct, correct);
        assert.ok(Math.abs(r.loss - lossSum / N) <= 1e-6 * Math.abs(r.loss), `${r.loss} vs ${lossSum / N}`);
        assert.deepEqual(progress.map(([b]) => b), [1, 2, 3, 4, 5]);
        assert.ok(Math.abs(progress[4][1] - r.loss) <= 1e-9);
        const wf = await fast.getWeights(), ws = await slow.getWeights();
        for (const k of Object.keys(ws)) assert.ok(relDiff(wf[k].data, ws[k].data) <= 1e-6, `${config.kind} ${k}: ${relDiff(wf[k].data, ws[k].data)}`);
        const sf = (await fast.getOptimizerState())!, ss = (await slow.getOptimizerState())!;
        assert.equal(sf.step, 5);
        assert.equal(ss.step, 5);
        handle.release();
        await assert.rejects(fast.trainEpoch!(handle, order, BS), (e) => e instanceof R2RError && e.code === 'R2R_USAGE');
      }
    });

    it('evaluateDataset equals an evaluate loop; bad orders and foreign handles are refused', async () => {
      const m = await build(g, w), other = await build(g, w);
      const handle = await m.uploadDataset!(data.x, data.labels!, N);
      const r = await m.evaluateDataset!(handle, BS);
      let lossSum = 0, correct = 0;
      for (let s = 0; s < N; s += BS) {
        const idx = Int32Array.from({ length: Math.min(N, s + BS) - s }, (_, i) => s + i);
        const er = await m.evaluate(gather(data.x, data.labels!, idx, size));
        lossSum += er.loss * idx.length;
        correct += er.correct;
      }
      assert.equal(r.examples, N);
      assert.equal(r.steps, 5);
      assert.equal(r.correct, correct);
      assert.ok(Math.abs(r.loss - lossSum / N) <= 1e-6 * Math.abs(r.loss));
      assert.deepEqual(await m.getWeights(), w);
      m.setOptimizer({ kind: 'sgd', lr: 0.1 });
      await assert.rejects(m.trainEpoch!(handle, Int32Array.from([0, N]), BS), (e) => e instanceof R2RError && e.code === 'R2R_USAGE');
      other.setOptimizer({ kind: 'sgd', lr: 0.1 });
      await assert.rejects(other.trainEpoch!(handle, order, BS), (e) => e instanceof R2RError && e.code === 'R2R_USAGE');
      handle.release();
    });

    it('keeps the JS main thread free while an epoch runs', async () => {
      const m = await build(g, w);
      m.setOptimizer({ kind: 'adam', lr: 1e-3 });
      const handle = await m.uploadDataset!(data.x, data.labels!, N);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const t0 = performance.now();
      await m.trainEpoch!(handle, order, 8);
      const ms = performance.now() - t0;
      clearInterval(timer);
      handle.release();
      // A blocked main thread would see ~0 ticks; allow for a loaded machine.
      assert.ok(ticks >= Math.min(5, ms / 20), `${ticks} timer ticks in ${ms.toFixed(0)} ms`);
    });
  });

  describe('exactness after transforms (student through torch = reference executor; R2R preserves the teacher)', () => {
    const teacher = calibratedNet(zooModel('resnet-cifar10', { width: 0.125 }), 7);
    const plain = calibratedNet(zooModel('resnet-cifar10-nores', { width: 0.125 }), 7);
    const specs: TransformSpec[] = [
      { transform: 'widen', method: 'r2r', factor: 1.5, seed: 1 },
      { transform: 'widen', method: 'net2net', factor: 1.5, seed: 1 },
      { transform: 'widen', method: 'netmorph', factor: 1.5, seed: 1 },
      { transform: 'deepen', method: 'r2r', seed: 1 },
      { transform: 'deepen', method: 'net2net', seed: 1 },
    ];
    for (const spec of specs) {
      it(`${spec.transform} ${'method' in spec ? spec.method : ''}`, async () => {
        // Net2DeeperNet adds plain layers: it needs the NoResidual model.
        const net = spec.transform === 'deepen' && spec.method === 'net2net' ? plain : teacher;
        const r = applyTransform(net.graph, net.weights, spec);
        const rng = new Rng('transform-batch');
        const batch = randomBatch([32, 32, 3], 4, 10, rng);
        const student = await build(r.graph, r.weights);
        const t = await build(net.graph, net.weights);
        for (const training of [false, true]) {
          const got = await student.forward(batch, { training });
          const ref = forwardReference(r.graph, r.weights, batch.x, batch.n, { training });
          const d = compareLogits(ref, got);
          assert.ok(d.relDiff <= 1e-5, `training=${training}: torch vs reference relDiff ${d.relDiff}`);
        }
        if (spec.transform === 'widen' && spec.method === 'r2r') {
          for (const training of [false, true]) {
            const d = compareLogits(await t.forward(batch, { training }), await student.forward(batch, { training }));
            assert.ok(d.relDiff <= 1e-5, `R2R widen changed the function (training=${training}): relDiff ${d.relDiff}`);
          }
        }
      });
    }
  });

  it('a disposed model refuses calls with a usage error', async () => {
    const g = zooModel('mlp', { width: 0.125 });
    const m = await engine.build(g, initWeights(g, new Rng(3)));
    m.dispose();
    await assert.rejects(m.forward({ x: new Float32Array(3072), n: 1 }, { training: false }), (e) => e instanceof R2RError && e.code === 'R2R_USAGE');
  });
});
