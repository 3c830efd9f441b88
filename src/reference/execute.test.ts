import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../ir/builder.ts';
import { tensor } from '../ir/weights.ts';
import type { Weights } from '../ir/types.ts';
import { zooModel } from '../models/zoo.ts';
import { initWeights } from '../ir/weights.ts';
import { Rng } from '../rng.ts';
import { compareLogits } from './compare.ts';
import { erf, forwardReference, runReference } from './execute.ts';

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** A one-input graph whose (flat) output is `body(input)`; `run` returns that output. */
function single(inputShape: number[], body: (b: GraphBuilder, x: string) => string): { run: (w: Weights, x: number[], n?: number, training?: boolean) => Float64Array } {
  const b = new GraphBuilder('t');
  const x = b.input(inputShape);
  const y = body(b, x);
  const g = b.build(y);
  return { run: (w, xs, n = 1, training = false) => runReference(g, w, Float32Array.from(xs), n, { training }).get(y)! };
}

describe('reference executor', () => {
  it('conv2d valid, stride 1, with bias: hand-computed 3x3 * 2x2', () => {
    const t = single([3, 3, 1], (b, x) => b.flatten(b.conv2d(x, 1, 2, { padding: 'valid', name: 'c' })));
    const w = { 'c/kernel': tensor([2, 2, 1, 1], [1, 2, 3, 4]), 'c/bias': tensor([1], [0.5]) };
    // x = 1..9 row-major; out(0,0) = 1*1 + 2*2 + 4*3 + 5*4 = 37
    close(t.run(w, [1, 2, 3, 4, 5, 6, 7, 8, 9]), [37.5, 47.5, 67.5, 77.5]);
  });

  it("conv2d 'same' stride 2 puts the odd pad at the bottom/right (TensorFlow)", () => {
    const t = single([4, 4, 1], (b, x) => b.flatten(b.conv2d(x, 1, 3, { stride: 2, padding: 'same', useBias: false, name: 'c' })));
    const ones = tensor([3, 3, 1, 1], new Array(9).fill(1));
    const x = Array.from({ length: 16 }, (_, i) => i + 1);
    // pads: top 0, bottom 1, left 0, right 1. out(0,0) = rows 0-2, cols 0-2 = 1+2+3+5+6+7+9+10+11;
    // out(0,1) = rows 0-2, cols 2-3; out(1,0) = rows 2-3, cols 0-2 = 9+10+11+13+14+15; out(1,1) = rows 2-3, cols 2-3
    close(t.run({ 'c/kernel': ones }, x), [54, 45, 72, 54]);
  });

  it('conv2d with explicit pads and two channels in/out', () => {
    const t = single([1, 1, 2], (b, x) => b.flatten(b.conv2d(x, 2, 3, { padding: 1, useBias: false, name: 'c' })));
    // Only the centre tap sees the single pixel: out = x @ K[1,1] with K[1,1] = [[1,2],[3,4]] (cin x cout).
    const k = new Float32Array(3 * 3 * 2 * 2);
    k.set([1, 2, 3, 4], (1 * 3 + 1) * 4);
    close(t.run({ 'c/kernel': tensor([3, 3, 2, 2], k) }, [10, 100]), [310, 420]);
  });

  it('dense with bias, two examples', () => {
    const t = single([2], (b, x) => b.dense(x, 3, { name: 'd' }));
    const w = { 'd/kernel': tensor([2, 3], [1, 2, 3, 4, 5, 6]), 'd/bias': tensor([3], [1, 0, -1]) };
    close(t.run(w, [1, 1, 2, -1], 2), [6, 7, 8, -1, -1, -1]);
  });

  it('batchNorm: moving stats in inference, biased batch stats in training', () => {
    const t = single([2], (b, x) => b.batchNorm(x, { name: 'bn', epsilon: 1e-3 }));
    const w = {
      'bn/gamma': tensor([2], [2, 1]), 'bn/beta': tensor([2], [1, 0]),
      'bn/movingMean': tensor([2], [1, 0]), 'bn/movingVariance': tensor([2], [4, 1]),
    };
    const x = [3, 1, 5, 3]; // two examples
    const s0 = 2 / Math.sqrt(4 + 1e-3), s1 = 1 / Math.sqrt(1 + 1e-3);
    close(t.run(w, x, 2, false), [(3 - 1) * s0 + 1, 1 * s1, (5 - 1) * s0 + 1, 3 * s1]);
    // batch: ch0 mean 4, biased var 1; ch1 mean 2, var 1
    const b0 = 2 / Math.sqrt(1 + 1e-3), b1 = 1 / Math.sqrt(1 + 1e-3);
    close(t.run(w, x, 2, true), [-b0 + 1, -b1, b0 + 1, b1]);
    // The reference never updates moving stats.
    assert.deepEqual([...w['bn/movingMean'].data], [1, 0]);
  });

  it('activations, gelu in the exact erf form', () => {
    const xs = [-2, -0.5, 0, 0.5, 1, 7];
    const run = (fn: 'relu' | 'relu6' | 'leakyRelu' | 'elu' | 'tanh' | 'sigmoid' | 'gelu') => single([6], (b, x) => b.activation(x, fn, 'a')).run({}, xs);
    close(run('relu'), [0, 0, 0, 0.5, 1, 7]);
    close(run('relu6'), [0, 0, 0, 0.5, 1, 6]);
    close(run('leakyRelu'), [-0.02, -0.005, 0, 0.5, 1, 7]);
    close(run('elu'), [Math.exp(-2) - 1, Math.exp(-0.5) - 1, 0, 0.5, 1, 7]);
    close(run('tanh'), xs.map(Math.tanh));
    close(run('sigmoid'), xs.map((v) => 1 / (1 + Math.exp(-v))));
    // gelu(1) = Phi(1) = 0.8413447460685429; gelu(-0.5) = -0.5 * Phi(-0.5) = -0.5 * 0.3085375387259869
    close(run('gelu'), [-2 * 0.022750131948179195, -0.5 * 0.3085375387259869, 0, 0.5 * 0.6914624612740131, 0.8413447460685429, 7], 1e-10);
    close([erf(0.5), erf(-1), erf(3), erf(6.5)], [0.5204998778130465, -0.8427007929497149, 0.9999779095030014, 1], 1e-15);
  });

  it('maxPool pads with -inf; avgPool excludes explicit pads from the count', () => {
    const x = [-1, -2, -3, -4]; // 2x2x1
    const mp = single([2, 2, 1], (b, v) => b.flatten(b.maxPool(v, 2, { stride: 1, padding: 1, name: 'p' })));
    // 3x3 output; every window holds at least one real (negative) cell, which must win over the pad.
    close(mp.run({}, x), [-1, -1, -2, -1, -1, -2, -3, -3, -4]);
    const ap = single([2, 2, 1], (b, v) => b.flatten(b.avgPool(v, 2, { stride: 1, padding: 1, name: 'p' })));
    close(ap.run({}, x), [-1, -1.5, -2, -2, -2.5, -3, -3, -3.5, -4]);
    const same = single([3, 3, 1], (b, v) => b.flatten(b.avgPool(v, 2, { stride: 2, padding: 'same', name: 'p' })));
    // pads bottom/right 1: windows (0,0) 4 cells, (0,1) 2 cells, (1,0) 2 cells, (1,1) 1 cell
    close(same.run({}, [1, 2, 3, 4, 5, 6, 7, 8, 9]), [3, 4.5, 7.5, 9]);
  });

  it('globalAvgPool, flatten in NHWC order, add and concat on the channel axis', () => {
    const x = [1, 10, 2, 20, 3, 30, 4, 40]; // 2x2x2: channel 0 = 1..4, channel 1 = 10..40
    close(single([2, 2, 2], (b, v) => b.globalAvgPool(v, 'g')).run({}, x), [2.5, 25]);
    close(single([2, 2, 2], (b, v) => b.flatten(v)).run({}, x), x);
    close(single([2, 2, 2], (b, v) => b.globalAvgPool(b.add([v, v, v]))).run({}, x), [7.5, 75]);
    const cat = single([1, 2, 2], (b, v) => b.flatten(b.concat([v, b.activation(v, 'relu6')])));
    close(cat.run({}, [1, 10, 2, 20]), [1, 10, 1, 6, 2, 20, 2, 6]);
    close(single([3], (b, v) => b.dropout(v, 0.5)).run({}, [1, 2, 3], 1, true), [1, 2, 3]);
  });

  it('runs the zoo models and returns [n, K] logits without mutating inputs', () => {
    const g = zooModel('resnet-cifar10', { width: 0.125 });
    const w = initWeights(g, new Rng(1), { randomBatchNorm: true });
    const rng = new Rng(2);
    const x = Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => rng.normal());
    const xCopy = x.slice();
    const a = forwardReference(g, w, x, 2, { training: false });
    const b = forwardReference(g, w, x, 2, { training: true });
    assert.equal(a.length, 20);
    assert.ok(a.every(Number.isFinite));
    assert.ok(compareLogits(a, b).relDiff > 1e-3, 'training-mode BN must differ from inference with random moving stats');
    assert.deepEqual(x, xCopy);
    assert.throws(() => forwardReference(g, w, x, 3, { training: false }), { code: 'R2R_SHAPE_MISMATCH' });
    const { ['fc/bias']: _drop, ...missing } = w;
    assert.throws(() => forwardReference(g, missing, x, 2, { training: false }), (e: Error & { code?: string }) => e.code === 'R2R_INVALID_WEIGHTS' && /fc\/bias/.test(e.message));
  });
});

describe('compareLogits', () => {
  it('maxAbsDiff and relDiff = maxAbsDiff / max|a|', () => {
    assert.deepEqual(compareLogits([1, -4, 2], [1.5, -4, 2]), { maxAbsDiff: 0.5, relDiff: 0.125 });
    assert.deepEqual(compareLogits([0, 0], [0, 0]), { maxAbsDiff: 0, relDiff: 0 });
    assert.equal(compareLogits([0, 0], [0, 1]).relDiff, Infinity);
    assert.ok(Number.isNaN(compareLogits([1, 2], [NaN, 2]).relDiff));
    assert.throws(() => compareLogits([1], [1, 2]), { code: 'R2R_SHAPE_MISMATCH' });
  });
});
