/**
 * TensorFlow.js specifics: the wasm Conv2D gradient against the cpu backend's stock one, whole-model
 * gradients wasm vs cpu, tensor leaks, seeded dropout, backend selection. The engine-agnostic
 * conformance suite lives in test/engines/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { R2RError } from '../../errors.ts';
import { GraphBuilder } from '../../ir/builder.ts';
import type { Graph, Padding } from '../../ir/types.ts';
import { kitchenSink } from '../../../test/engines/conformance.ts';
import { resolveWindow } from '../../ir/shapes.ts';
import { initWeights } from '../../ir/weights.ts';
import { zooModel } from '../../models/zoo.ts';
import { compareLogits } from '../../reference/compare.ts';
import { forwardReference } from '../../reference/execute.ts';
import { Rng } from '../../rng.ts';
import { activate, initBackend } from './backend.ts';
import { createTfjsEngine } from './index.ts';
import * as ops from './ops.ts';

function randn(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.normal()), shape);
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return m === 0 ? d : d / m;
}

describe('tfjs engine: backends', () => {
  it("describes itself as 'tfjs <version> (<backend>)' and refuses unknown backends", async () => {
    assert.equal((await createTfjsEngine()).description, `tfjs ${tf.version_core} (wasm)`);
    assert.equal((await createTfjsEngine({ backend: 'cpu' })).description, `tfjs ${tf.version_core} (cpu)`);
    await assert.rejects(createTfjsEngine({ backend: 'webgpu' }), (e) => e instanceof R2RError && e.code === 'R2R_USAGE' && /webgpu/.test(e.message));
  });

  it('cpu backend matches the reference too (small-conv, both modes)', async () => {
    const g = zooModel('small-conv', { width: 0.25 });
    const rng = new Rng('cpu-fwd');
    const w = initWeights(g, rng);
    const x = Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => rng.normal());
    const m = await (await createTfjsEngine({ backend: 'cpu' })).build(g, w);
    for (const training of [false, true]) {
      const d = compareLogits(forwardReference(g, w, x, 2, { training }), await m.forward({ x, n: 2 }, { training }));
      assert.ok(d.relDiff <= 1e-5, `training=${training}: ${d.relDiff}`);
    }
    m.dispose();
  });
});

describe('tfjs engine: own Conv2D gradient (wasm, cpu) vs the stock one (cpu)', () => {
  const cases: { k: [number, number]; s: [number, number]; p: Padding; hw: [number, number] }[] = [
    { k: [3, 3], s: [1, 1], p: 'same', hw: [7, 6] },
    { k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], hw: [8, 8] },
    { k: [7, 7], s: [2, 2], p: [3, 3, 3, 3], hw: [12, 12] },
    { k: [1, 1], s: [2, 2], p: 'valid', hw: [7, 8] },
    { k: [4, 2], s: [2, 3], p: 'same', hw: [9, 10] },
    { k: [3, 5], s: [3, 2], p: [0, 2, 3, 1], hw: [10, 9] },
    { k: [2, 2], s: [1, 1], p: 'valid', hw: [5, 5] },
    { k: [1, 1], s: [1, 1], p: [2, 0, 0, 1], hw: [4, 4] },
  ];
  for (const c of cases) {
    it(`k=${c.k} s=${c.s} p=${JSON.stringify(c.p)} x=${c.hw}: dx and dK agree to 1e-5`, async () => {
      await initBackend('wasm');
      await initBackend('cpu');
      const rng = new Rng(JSON.stringify(c));
      const [h, w] = c.hw, cin = 3, cout = 4, n = 2;
      const win = resolveWindow(h, w, c.k, c.s, c.p);
      const xd = randn([n, h, w, cin], rng), kd = randn([...c.k, cin, cout], rng), rd = randn([n, win.outH, win.outW, cout], rng);
      const own = (backend: 'wasm' | 'cpu') => {
        activate(backend);
        return tf.tidy(() => {
          const [x, k, r] = [xd, kd, rd].map((t) => tf.tensor(t.dataSync(), t.shape));
          const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(ops.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, win), r));
          return tf.grads(f)([x, k]).map((t) => t.dataSync() as Float32Array);
        });
      };
      // tfjs's own gradient (Conv2DBackpropInput/Filter kernels) on cpu, dL/dy = r.
      const stock = () => {
        activate('cpu');
        return tf.tidy(() => {
          const [x, k, r] = [xd, kd, rd].map((t) => tf.tensor(t.dataSync(), t.shape));
          const pad = win.top + win.bottom + win.left + win.right === 0 ? 'valid' : [[0, 0], [win.top, win.bottom], [win.left, win.right], [0, 0]];
          const g = ops.stockConv2dGradient!.gradFunc(r, [x, k], { strides: c.s, pad, dilations: [1, 1], dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap);
          return [g.x(), g.filter()].map((t) => t.dataSync() as Float32Array);
        });
      };
      const [dxS, dkS] = stock();
      for (const backend of ['wasm', 'cpu'] as const) {
        const [dx, dk] = own(backend);
        assert.ok(maxRel(dx, dxS) <= 1e-5, `${backend} dx: ${maxRel(dx, dxS)}`);
        assert.ok(maxRel(dk, dkS) <= 1e-5, `${backend} dK: ${maxRel(dk, dkS)}`);
      }
      tf.dispose([xd, kd, rd]);
    });
  }

  const models: [string, Graph, number[]][] = [
    ['resnet-cifar10(0.125)', zooModel('resnet-cifar10', { width: 0.125 }), [32, 32, 3]],
    ['small-conv(0.25)', zooModel('small-conv', { width: 0.25 }), [32, 32, 3]],
    ['kitchen-sink', kitchenSink(), [9, 8, 3]],
  ];
  for (const [name, g, shape] of models) {
    it(`whole-model gradients agree between wasm and cpu: ${name}`, async () => {
      const rng = new Rng(`model-grads-${name}`);
      const w = initWeights(g, rng, { randomBatchNorm: true });
      const n = 4, size = shape.reduce((a, b) => a * b, 1);
      const batch = { x: Float32Array.from({ length: n * size }, () => rng.normal()), n, labels: Int32Array.from({ length: n }, () => rng.int(5)) };
      const mw = await (await createTfjsEngine({ backend: 'wasm' })).build(g, w);
      const mc = await (await createTfjsEngine({ backend: 'cpu' })).build(g, w);
      const a = await mw.gradients(batch), b = await mc.gradients(batch);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * a.loss);
      const maxAbs = (d: Float32Array) => d.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const global = Math.max(...Object.values(b.grads).map((t) => maxAbs(t.data)));
      for (const k of Object.keys(b.grads)) {
        const scale = maxAbs(b.grads[k].data);
        if (scale < 1e-4 * global) {
          // A bias right before a batch norm has zero gradient up to rounding: both must be ~0.
          assert.ok(maxAbs(a.grads[k].data) < 1e-4 * global, `${k}: wasm ${maxAbs(a.grads[k].data)} where cpu has ~0`);
          continue;
        }
        assert.ok(maxRel(a.grads[k].data, b.grads[k].data) <= 1e-4, `${k}: ${maxRel(a.grads[k].data, b.grads[k].data)}`);
      }
      mw.dispose();
      mc.dispose();
    });
  }
});

/** dL/dx of max pooling by definition: each output's gradient to the first maximum of its window. */
function maxPoolGradTruth(x: Float32Array, r: Float32Array, [n, h, w, c]: number[], k: [number, number], s: [number, number], win: ReturnType<typeof resolveWindow>): Float32Array {
  const g = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let oy = 0; oy < win.outH; oy++) for (let ox = 0; ox < win.outW; ox++) {
    let best = -Infinity, at = -1;
    for (let py = 0; py < k[0]; py++) for (let px = 0; px < k[1]; px++) {
      const iy = oy * s[0] + py - win.top, ix = ox * s[1] + px - win.left;
      if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
      const i = ((b * h + iy) * w + ix) * c + ch;
      if (x[i] > best) { best = x[i]; at = i; }
    }
    g[at] += r[((b * win.outH + oy) * win.outW + ox) * c + ch];
  }
  return g;
}

describe('tfjs engine: MaxPool gradient (wasm MaxPoolGrad is wrong for some shapes)', () => {
  const cases: { x: number[]; k: [number, number]; s: [number, number]; p: Padding }[] = [
    { x: [1, 6, 6, 2], k: [2, 2], s: [2, 2], p: 'valid' },
    { x: [4, 16, 16, 8], k: [3, 3], s: [2, 2], p: [1, 1, 1, 1] },
    { x: [2, 5, 4, 3], k: [3, 3], s: [2, 2], p: [2, 0, 1, 0] },
    { x: [2, 7, 7, 5], k: [3, 3], s: [1, 1], p: 'same' },
  ];
  for (const c of cases) {
    it(`x=${c.x} k=${c.k} s=${c.s} p=${JSON.stringify(c.p)}, half the inputs tied at 0: wasm and cpu match the definition`, async () => {
      await initBackend('wasm');
      await initBackend('cpu');
      const rng = new Rng(JSON.stringify(c));
      const win = resolveWindow(c.x[1], c.x[2], c.k, c.s, c.p);
      const xv = Float32Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, () => Math.max(0, rng.normal()));
      const rv = Float32Array.from({ length: c.x[0] * win.outH * win.outW * c.x[3] }, () => rng.normal());
      const want = maxPoolGradTruth(xv, rv, c.x, c.k, c.s, win);
      for (const backend of ['wasm', 'cpu'] as const) {
        activate(backend);
        const got = tf.tidy(() => {
          const r = tf.tensor(rv, [c.x[0], win.outH, win.outW, c.x[3]]);
          return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(ops.maxPool(x as tf.Tensor4D, c.k, c.s, win), r)))(tf.tensor(xv, c.x)).dataSync() as Float32Array;
        });
        assert.ok(maxRel(got, want) <= 1e-6, `${backend}: ${maxRel(got, want)}`);
      }
    });
  }
});

describe('tfjs engine: resources and dropout', () => {
  it('does not leak tensors over repeated steps, evaluations and optimizer changes', async () => {
    const engine = await createTfjsEngine();
    const g = zooModel('resnet-cifar10', { width: 0.125, inputShape: [16, 16, 3] });
    const rng = new Rng('leak');
    const before = tf.memory().numTensors;
    const m = await engine.build(g, initWeights(g, rng));
    const batch = { x: Float32Array.from({ length: 4 * 16 * 16 * 3 }, () => rng.normal()), n: 4, labels: Int32Array.from([1, 2, 3, 4]) };
    const cycle = async () => {
      await m.trainStep(batch);
      await m.forward(batch, { training: true });
      await m.forward(batch, { training: false });
      await m.evaluate(batch);
      await m.gradients(batch);
      await m.setWeights(await m.getWeights());
      await m.getOptimizerState();
    };
    m.setOptimizer({ kind: 'adam', lr: 1e-3 });
    await cycle();
    const steady = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await cycle();
    assert.equal(tf.memory().numTensors, steady);
    m.setOptimizer({ kind: 'sgd', lr: 0.1, momentum: 0.9 }, undefined);
    await cycle();
    assert.ok(tf.memory().numTensors < steady, 'SGD keeps one slot instead of two');
    await assert.rejects(m.trainStep({ ...batch, labels: Int32Array.from([0, 0, 0, 99]) }));
    await assert.rejects(m.forward({ x: batch.x, n: 3 }, { training: false }));
    m.dispose();
    assert.equal(tf.memory().numTensors, before);
    await assert.rejects(m.forward(batch, { training: false }), (e) => e instanceof R2RError && e.code === 'R2R_USAGE');
  });
});
