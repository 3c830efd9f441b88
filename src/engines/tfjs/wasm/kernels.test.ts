/**
 * r2r's wasm SIMD kernels against the same layers written with tfjs ops (tf.matMul, tf.softmax,
 * tf.erf, tf.moments) on random data, values and gradients, with shapes that leave remainders in
 * every tiled loop; each comparison also shows a wrong variant (a transposed operand, no mask,
 * unbiased variance, tanh GELU, a bias summed over the wrong axis) failing it. Also: the embedded module is the build of kernels.c,
 * both modes (in place on tfjs's heap; copying) give the same, and the sharing Identity/Cast
 * replacements neither alias wrongly nor leak.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { R2RError } from '../../../errors.ts';
import { initWeights } from '../../../ir/weights.ts';
import { gpt } from '../../../models/gpt.ts';
import { Rng } from '../../../rng.ts';
import { initBackend } from '../backend.ts';
import { createTfjsEngine } from '../index.ts';
import { KERNELS_SOURCE_SHA256 } from './kernels_wasm.ts';
import * as k from './kernels.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../../../..');

function randn(shape: number[], rng: Rng, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => scale * rng.normal()), shape);
}

/** max |a - b| / max(1, max |b|). */
function diff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync(), y = b.dataSync();
  let d = 0, m = 1;
  for (let i = 0; i < x.length; i++) { d = Math.max(d, Math.abs(x[i] - y[i])); m = Math.max(m, Math.abs(y[i])); }
  return d / m;
}

/** max |a - b|. */
function absDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** The attention core with tfjs ops; `swap` computes k q^T instead of q k^T (a transposed operand). */
function refAttention(qkv: tf.Tensor, h: number, kd: number, causal: boolean, swap = false): tf.Tensor {
  const [n, t] = qkv.shape;
  const [q, kk, v] = tf.split(qkv, 3, 2).map((p) => tf.transpose(tf.reshape(p, [n, t, h, kd]), [0, 2, 1, 3]));
  let s = tf.mul(swap ? tf.matMul(kk, q, false, true) : tf.matMul(q, kk, false, true), 1 / Math.sqrt(kd));
  if (causal) s = tf.add(s, tf.linalg.bandPart(tf.ones([t, t]), -1, 0).sub(1).mul(1e9));
  const o = tf.matMul(tf.softmax(s), v);
  return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [n, t, h * kd]);
}

const refGelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
const tanhGelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1));

function refLayerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number, unbiased = false): tf.Tensor {
  const d = x.shape[x.rank - 1];
  const { mean, variance } = tf.moments(x, x.rank - 1, true);
  const v = unbiased ? tf.mul(variance, d / (d - 1)) : variance;
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(v, eps))), g), b);
}

describe('tfjs wasm kernels', () => {
  before(async () => {
    await initBackend('wasm');
    await tf.setBackend('wasm');
  });

  it('the embedded module is the build of kernels.c (source hash; byte-for-byte where clang is installed)', () => {
    const sha = createHash('sha256').update(readFileSync(join(here, 'kernels.c'))).digest('hex');
    assert.equal(KERNELS_SOURCE_SHA256, sha, 'kernels.c changed since kernels_wasm.ts was built: run npm run build:wasm');
    if (spawnSync('clang', ['--version']).status !== 0) {
      // CI installs clang (scripts/setup.sh): there the rebuild check must run, never skip.
      assert.ok(!process.env.CI, 'clang is not installed (scripts/setup.sh installs clang and lld): the byte-for-byte rebuild check cannot run');
      console.warn('\n!!! clang not installed: kernels_wasm.ts checked against the source hash only (apt-get install clang lld for the rebuild check)\n');
      return;
    }
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-wasm-kernels.mjs'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('loads and is active on the wasm backend, in place on tfjs\'s heap (Node has WebAssembly SIMD and single-threaded wasm)', async () => {
    assert.equal(await k.loadWasmKernels(), true, k.wasmKernelsError);
    assert.ok(k.wasmKernelsActive());
    assert.equal(k.wasmKernelsMode(), 'in place');
  });

  for (const copying of [false, true]) describe(copying ? 'copying through the module\'s own memory' : 'in place on tfjs\'s heap', () => {
  before(() => k.setWasmKernelsCopying(copying));
  after(() => k.setWasmKernelsCopying(false));

  for (const [n, t, h, kd] of [[2, 7, 3, 5], [3, 64, 4, 32], [1, 1, 1, 1], [2, 13, 2, 9]]) {
    for (const causal of [true, false]) {
      it(`attention [N=${n}, T=${t}, H=${h}, K=${kd}] ${causal ? 'causal' : 'full'}: value and gradient equal tfjs ops; a transposed operand fails`, () => {
        tf.tidy(() => {
          const rng = new Rng(n * 1000 + t * 10 + (causal ? 1 : 0));
          const qkv = randn([n, t, 3 * h * kd], rng), dy = randn([n, t, h * kd], rng);
          const got = k.attentionCore(qkv, h, kd, causal), want = refAttention(qkv, h, kd, causal);
          assert.ok(diff(got, want) < 1e-5, `value: ${diff(got, want)}`);
          const gGot = tf.grad((x: tf.Tensor) => k.attentionCore(x, h, kd, causal))(qkv, dy);
          const gWant = tf.grad((x: tf.Tensor) => refAttention(x, h, kd, causal))(qkv, dy);
          assert.ok(diff(gGot, gWant) < 1e-5, `gradient: ${diff(gGot, gWant)}`);
          if (t > 1) {
            assert.ok(diff(got, refAttention(qkv, h, kd, causal, true)) > 1e-2, 'k q^T must differ from q k^T');
            assert.ok(diff(got, refAttention(qkv, h, kd, !causal)) > 1e-2, 'the mask must matter');
          }
        });
      });
    }
  }

  it('GELU (exact, erf): value and gradient equal tfjs ops on [5, 7, 13] incl. large |x|; tanh GELU fails', () => {
    tf.tidy(() => {
      const rng = new Rng(3);
      const x = tf.concat([randn([5 * 7 * 13 - 6], rng, 3), tf.tensor1d([-30, -9, 0, 1e-8, 9, 30])]).reshape([5, 7, 13]);
      const dy = randn([5, 7, 13], rng);
      const got = k.gelu(x);
      // Both sides use erf's Abramowitz-Stegun formula (error <= 1.5e-7, times |x|).
      assert.ok(absDiff(got, refGelu(x)) < 5e-6, `value: ${absDiff(got, refGelu(x))}`);
      const g = tf.grad((v: tf.Tensor) => k.gelu(v))(x, dy), gw = tf.grad(refGelu)(x, dy);
      assert.ok(absDiff(g, gw) < 5e-6, `gradient: ${absDiff(g, gw)}`);
      assert.ok(absDiff(got, tanhGelu(x)) > 1e-4, `tanh GELU must be told apart: ${absDiff(got, tanhGelu(x))}`);
      assert.ok(Array.from(got.dataSync()).every(Number.isFinite));
    });
  });

  it('layer norm: value and gradients (x, gamma, beta) equal tfjs ops on [3, 5, 37]; unbiased variance fails', () => {
    tf.tidy(() => {
      const rng = new Rng(4);
      const x = tf.add(randn([3, 5, 37], rng, 2), 1.5), g = randn([37], rng), b = randn([37], rng), dy = randn([3, 5, 37], rng);
      const eps = 1e-5;
      const got = k.layerNorm(x, g, b, eps);
      assert.ok(diff(got, refLayerNorm(x, g, b, eps)) < 1e-5, `value: ${diff(got, refLayerNorm(x, g, b, eps))}`);
      const gGot = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => k.layerNorm(xi, gi, bi, eps))([x, g, b], dy);
      const gWant = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => refLayerNorm(xi, gi, bi, eps))([x, g, b], dy);
      ['x', 'gamma', 'beta'].forEach((name, i) => assert.ok(diff(gGot[i], gWant[i]) < 1e-5, `d/d${name}: ${diff(gGot[i], gWant[i])}`));
      assert.ok(diff(got, refLayerNorm(x, g, b, eps, true)) > 1e-3, 'unbiased variance must be told apart');
    });
  });

  it('bias add: value and gradients equal tf.add on [5, 7, 13] + [13] and [768, 512] + [512]; a gradient summed over the wrong axis fails', () => {
    tf.tidy(() => {
      const rng = new Rng(5);
      for (const shape of [[5, 7, 13], [768, 512]]) {
        const u = shape[shape.length - 1];
        const x = randn(shape, rng), b = randn([u], rng), dy = randn(shape, rng);
        assert.ok(absDiff(k.biasAdd(x, b), tf.add(x, b)) === 0);
        const got = tf.grads((xi: tf.Tensor, bi: tf.Tensor) => k.biasAdd(xi, bi))([x, b], dy);
        const want = tf.grads((xi: tf.Tensor, bi: tf.Tensor) => tf.add(xi, bi))([x, b], dy);
        assert.ok(absDiff(got[0], want[0]) === 0, 'dx is dy');
        assert.ok(diff(got[1], want[1]) < 1e-5, `dbias: ${diff(got[1], want[1])}`);
        const rowSums = tf.sum(tf.reshape(dy, [-1, u]), 1).slice(0, u);
        assert.ok(diff(got[1], rowSums) > 1e-2, 'sums over the wrong axis must be told apart');
      }
    });
  });

  it('2-D transpose equals tf.transpose on [7, 13], [768, 128], [1, 5], [6, 6], [37, 50], [50, 37] (and differs from its input); its gradient transposes back', () => {
    tf.tidy(() => {
      const rng = new Rng(6);
      for (const shape of [[7, 13], [768, 128], [1, 5], [6, 6], [37, 50], [50, 37]]) {
        const x = randn(shape, rng);
        assert.ok(absDiff(k.transpose2d(x), tf.transpose(x)) === 0, `${shape}`);
      }
      const sq = randn([6, 6], rng);
      assert.ok(absDiff(k.transpose2d(sq), sq) > 1e-2);
      const x = randn([7, 13], rng), dy = randn([13, 7], rng);
      assert.ok(absDiff(tf.grad((v: tf.Tensor) => k.transpose2d(v))(x, dy), tf.transpose(dy)) === 0);
    });
  });

  it('Adam: the same bits as the optimizer\'s tfjs ops (with and without weight decay; tails); no bias correction fails', () => {
    tf.tidy(() => {
      const rng = new Rng(8);
      const shapes = [[3, 5], [7], [2, 2, 3], [1]];
      const total = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
      const ps = shapes.map((s) => randn(s, rng)), gs = shapes.map((s) => randn(s, rng));
      const m = randn([total], rng, 0.1), v = tf.abs(randn([total], rng, 0.01));
      for (const weightDecay of [0, 1e-2]) {
        const c = { lr: 3e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay, bc1: 1 - 0.8 ** 3, bc2: 1 - 0.99 ** 3 };
        const got = k.adamStep(ps, gs, m, v, c);
        // TfjsOptimizer.apply's ops (optimizers.ts), on the flat vectors.
        const p = tf.concat(ps.map((t) => t.reshape([-1])));
        let g = tf.concat(gs.map((t) => t.reshape([-1])));
        if (weightDecay !== 0) g = tf.add(g, tf.mul(p, weightDecay));
        const mm = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1));
        const vv = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
        const denom = tf.add(tf.div(tf.sqrt(vv), Math.sqrt(c.bc2)), c.epsilon);
        const next = tf.sub(p, tf.mul(tf.div(mm, denom), c.lr / c.bc1));
        assert.deepEqual(got.m.dataSync(), mm.dataSync(), 'm');
        assert.deepEqual(got.v.dataSync(), vv.dataSync(), 'v');
        assert.deepEqual(tf.concat(got.params.map((t) => t.reshape([-1]))).dataSync(), next.dataSync(), 'weights');
        got.params.forEach((t, i) => assert.deepEqual(t.shape, ps[i].shape));
        const uncorrected = tf.sub(p, tf.mul(tf.div(mm, tf.add(tf.sqrt(vv), c.epsilon)), c.lr));
        assert.ok(absDiff(tf.concat(got.params.map((t) => t.reshape([-1]))), uncorrected) > 1e-4, 'bias correction must matter');
      }
    });
  });

  it('leaves its inputs unchanged and allocates no tfjs tensors beyond its outputs', () => {
    const rng = new Rng(7);
    const qkv = randn([2, 6, 3 * 2 * 3], rng), x = randn([4, 10], rng);
    const copies = [qkv, x].map((t) => Float32Array.from(t.dataSync()));
    const before = tf.memory().numTensors;
    const outs = [k.attentionCore(qkv, 2, 3, true), k.gelu(x), k.layerNorm(x, tf.ones([10]), tf.zeros([10]), 1e-5), k.transpose2d(x)];
    assert.ok(tf.memory().numTensors <= before + outs.length + 2, `${tf.memory().numTensors - before} new tensors`);
    assert.deepEqual(Float32Array.from(qkv.dataSync()), copies[0]);
    assert.deepEqual(Float32Array.from(x.dataSync()), copies[1]);
    tf.dispose([...outs, qkv, x]);
  });
  });

  it('refuses inputs whose shapes or dtypes would take it past a buffer: R2R_ENGINE naming the kernel', () => {
    tf.tidy(() => {
      const refused = (f: () => unknown, msg: RegExp) => assert.throws(f, (e) => e instanceof R2RError && e.code === 'R2R_ENGINE' && msg.test(e.message));
      refused(() => k.attentionCore(tf.zeros([2, 5, 17]), 2, 3, true), /R2rAttention: unsupported inputs qkv float32\[2,5,17\]/);
      refused(() => k.transpose2d(tf.zeros([2, 3, 4])), /R2rTranspose2d/);
      refused(() => k.gelu(tf.zeros([3], 'int32')), /R2rGelu: unsupported inputs x int32/);
      refused(() => k.layerNorm(tf.zeros([2, 4]), tf.ones([3]), tf.zeros([4]), 1e-5), /R2rLayerNorm/);
    });
  });

  it('a GPT on wasm: gradients and three Adam steps with the kernels equal those with tfjs ops', async () => {
    const g = gpt({ layers: 2, heads: 3, dim: 12, block: 9, vocab: 11 });
    const w = initWeights(g, new Rng(9));
    const rng = new Rng(10);
    const batches = [0, 1, 2].map(() => ({ x: new Float32Array(0), n: 3, tokens: Int32Array.from({ length: 27 }, () => rng.int(11)), labels: Int32Array.from({ length: 27 }, () => rng.int(11)) }));
    const engine = await createTfjsEngine({ backend: 'wasm' });
    const run = async (on: boolean) => {
      k.setWasmKernelsEnabled(on);
      const m = await engine.build(g, w);
      try {
        const grads = (await m.gradients(batches[0])).grads;
        m.setOptimizer({ kind: 'adam', lr: 1e-2, weightDecay: 1e-3 });
        const losses = [];
        for (const b of batches) losses.push((await m.trainStep(b)).loss);
        return { grads, losses, weights: await m.getWeights() };
      } finally { m.dispose(); k.setWasmKernelsEnabled(true); }
    };
    const fast = await run(true), plain = await run(false);
    const rel = (a: Float32Array, b: Float32Array) => {
      let d = 0, s = 0;
      for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
      return d / Math.max(s, 1e-12);
    };
    // keyBias's gradient is 0 in exact arithmetic (softmax ignores a shift shared by a query's
    // scores): only float32 noise, compared by size.
    for (const key of Object.keys(plain.grads)) {
      if (key.endsWith('/keyBias')) assert.ok([fast, plain].every((r) => r.grads[key].data.every((x) => Math.abs(x) < 1e-6)), key);
      else assert.ok(rel(fast.grads[key].data, plain.grads[key].data) < 1e-4, `d/d${key}: ${rel(fast.grads[key].data, plain.grads[key].data)}`);
    }
    fast.losses.forEach((l, i) => assert.ok(Math.abs(l - plain.losses[i]) < 1e-5, `step ${i}: ${l} vs ${plain.losses[i]}`));
    // Adam turns keyBias's noise into +-lr steps: not compared.
    for (const key of Object.keys(plain.weights).filter((n) => !n.endsWith('/keyBias'))) {
      assert.ok(rel(fast.weights[key].data, plain.weights[key].data) < 1e-4, `${key}: ${rel(fast.weights[key].data, plain.weights[key].data)}`);
    }
  });

  it('Identity and Cast share data on wasm: values survive disposing the source, nothing leaks, other casts convert', () => {
    const buffers = () => tf.engine().backend.numDataIds();
    const before = buffers();
    const a = tf.tensor([1.5, -2, 3]);
    const b = tf.clone(a), c = tf.cast(a, 'float32'), i = tf.cast(a, 'int32');
    assert.equal(buffers(), before + 2, 'clone and same-dtype cast share the buffer; the int cast has its own');
    a.dispose();
    assert.deepEqual(Array.from(b.dataSync()), [1.5, -2, 3]);
    assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3]);
    assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3]);
    b.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3]);
    c.dispose(); i.dispose();
    assert.equal(buffers(), before);
  });
});
