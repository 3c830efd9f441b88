import assert from 'node:assert/strict';
import { test } from 'node:test';
import { R2RError } from '../errors.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import { applyTransform, type TransformSpec } from '../transforms/index.ts';
import { estimateStudent } from '../transforms/estimate.ts';
import { assertFits, estimateSize, memoryLimit } from './budget.ts';
import { initWeights } from './weights.ts';

const stored = (w: Record<string, { data: Float32Array }>) => Object.values(w).reduce((a, t) => a + t.data.length, 0);

test('estimateSize: parameters are every stored value, activations every node output, from the graph alone', () => {
  const g = zooModel('mlp', {});
  const e = estimateSize(g, 8);
  assert.equal(e.params, stored(initWeights(g, new Rng(0))));
  assert.equal(e.bytes, 4 * (5 * e.params + 2 * 8 * e.activationsPerExample));
  // --width 1e5 is sized without allocating anything.
  assert.ok(estimateSize(zooModel('resnet-cifar18', { width: 1e5 }), 1).params > 1e15);
});

for (const [model, spec] of [
  ['resnet-cifar10', { transform: 'widen', method: 'r2r', factor: 1.5 }],
  ['resnet-cifar10', { transform: 'widen', method: 'net2net', add: 3, at: 's1b1_relu1' }],
  ['mlp', { transform: 'widen', method: 'random', factor: 2 }],
  ['resnet-cifar10', { transform: 'deepen', method: 'r2r', perStage: 3 }],
  ['small-conv', { transform: 'kernel', node: 'conv1', size: 9 }],
] as [string, TransformSpec][]) {
  test(`estimateStudent matches the student the transform builds: ${model} ${JSON.stringify(spec)}`, () => {
    const g = zooModel(model, { width: 0.0625 });
    const w = initWeights(g, new Rng(1));
    const est = estimateStudent(g, w, spec, 4)!;
    const real = applyTransform(g, w, spec);
    assert.equal(est.params, stored(real.weights));
    assert.equal(est.activationsPerExample, estimateSize(real.graph, 4).activationsPerExample);
  });
}

test('the limit: R2R_MEMORY_LIMIT with K/M/G/T suffixes, else half the memory; assertFits refuses with R2R_TOO_LARGE', () => {
  assert.equal(memoryLimit({ R2R_MEMORY_LIMIT: '8G' }).bytes, 8 * 1024 ** 3);
  assert.equal(memoryLimit({ R2R_MEMORY_LIMIT: '512M' }).bytes, 512 * 1024 ** 2);
  assert.equal(memoryLimit({ R2R_MEMORY_LIMIT: '1000' }).bytes, 1000);
  assert.ok(memoryLimit({}).bytes > 0);
  assert.throws(() => memoryLimit({ R2R_MEMORY_LIMIT: 'lots' }), /R2R_MEMORY_LIMIT: expected bytes or a size like 512M or 8G, got 'lots'/);
  const e = estimateSize(zooModel('mlp', {}), 1);
  assertFits('mlp', [e], { bytes: e.bytes, source: 'test' });
  assert.throws(() => assertFits('mlp', [e], { bytes: e.bytes - 1, source: 'test' }), (x: unknown) => x instanceof R2RError && x.code === 'R2R_TOO_LARGE' && /^mlp needs about .* more than the limit of .* \(test\)/.test(x.message));
});
