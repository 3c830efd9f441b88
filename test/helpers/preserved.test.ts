import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initWeights } from '../../src/ir/weights.ts';
import { zooModel } from '../../src/models/zoo.ts';
import { Rng } from '../../src/rng.ts';
import { expectChanged, expectPreserved, randomInput, referenceDiff } from './preserved.ts';

describe('test helpers: expectPreserved / expectChanged', () => {
  const graph = zooModel('mlp', { width: 0.05 });
  const weights = initWeights(graph, new Rng(1));
  it('passes on the same network, fails on a perturbed one', () => {
    const d = expectPreserved({ graph, weights }, { graph, weights });
    assert.equal(d.inference.relDiff, 0);
    const bumped = { ...weights, 'fc3/bias': { shape: [10], data: weights['fc3/bias'].data.map((v) => v + 1) } };
    assert.throws(() => expectPreserved({ graph, weights }, { graph, weights: bumped }), /relDiff/);
    expectChanged({ graph, weights }, { graph, weights: bumped });
    assert.throws(() => expectChanged({ graph, weights }, { graph, weights }), /expected the function to change/);
  });
  it('random input is seeded', () => {
    assert.deepEqual(randomInput(graph, 2, 7), randomInput(graph, 2, 7));
    assert.notDeepEqual(randomInput(graph, 2, 7), randomInput(graph, 2, 8));
    assert.equal(referenceDiff({ graph, weights }, { graph, weights }, { n: 3 }).training.maxAbsDiff, 0);
  });
});
