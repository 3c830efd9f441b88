// Transforms composed in both orders (the core issue's "widen then deepen; deepen then widen"),
// with optimizer state carried through every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibratedNet, expectChanged, expectPreserved } from '../../test/helpers/preserved.ts';
import { countParams } from '../ir/graph.ts';
import { zooModel } from '../models/zoo.ts';
import { applyTransform, mapOptimizerState, type TransformSpec } from './index.ts';
import type { OptimizerState } from '../engines/engine.ts';
import type { Weights } from '../ir/types.ts';

const WIDEN: TransformSpec = { transform: 'widen', method: 'r2r', factor: 1.5, seed: 3 };
const DEEPEN: TransformSpec = { transform: 'deepen', method: 'r2r', perStage: 1, seed: 4 };
const MORPH: TransformSpec = { transform: 'kernel', node: 's1b1_conv1', size: 5 };

function adamState(w: Weights): OptimizerState {
  const ones = (k: string) => ({ shape: w[k].shape, data: new Float32Array(w[k].data.length).fill(0.5) });
  const trainable = Object.keys(w).filter((k) => !k.includes('moving'));
  return { kind: 'adam', step: 9, slots: { m: Object.fromEntries(trainable.map((k) => [k, ones(k)])), v: Object.fromEntries(trainable.map((k) => [k, ones(k)])) } };
}

for (const order of [[WIDEN, DEEPEN], [DEEPEN, WIDEN], [MORPH, WIDEN, DEEPEN], [DEEPEN, MORPH, WIDEN]]) {
  const name = order.map((s) => s.transform).join(' then ');
  test(`resnet-cifar10(1/8): ${name} preserves the function in both modes and carries Adam state`, () => {
    const teacher = calibratedNet(zooModel('resnet-cifar10', { width: 0.125 }));
    let net = teacher;
    let state = adamState(teacher.weights);
    for (const spec of order) {
      const res = applyTransform(net.graph, net.weights, spec);
      state = mapOptimizerState(state, res);
      net = { graph: res.graph, weights: res.weights };
    }
    expectPreserved(teacher, net, { n: 4 });
    assert.ok(countParams(net.graph) > countParams(teacher.graph));
    // Every trainable tensor of the final student has state of its shape; old entries kept 0.5.
    assert.equal(state.step, 9);
    for (const [k, t] of Object.entries(state.slots.m)) assert.deepEqual(t.shape, net.weights[k].shape, k);
    assert.equal(state.slots.m['fc/bias'].data[0], 0.5);
    assert.equal(state.slots.v['conv1/kernel'].data[0], 0.5);
  });
}

test('composition with a random-padding step is caught by the same check', () => {
  const teacher = calibratedNet(zooModel('resnet-cifar10', { width: 0.125 }));
  const a = applyTransform(teacher.graph, teacher.weights, DEEPEN);
  const b = applyTransform(a.graph, a.weights, { ...WIDEN, method: 'random' } as TransformSpec);
  expectChanged(teacher, { graph: b.graph, weights: b.weights }, { n: 4 });
});
