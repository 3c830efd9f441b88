import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OptimizerState } from '../engines/engine.ts';
import { paramSpecs } from '../ir/graph.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import { mapOptimizerState } from './optimizer_state.ts';
import type { TensorMap, TransformResult } from './types.ts';
import { composeMaps, widen } from './widen.ts';

/** A random slot tensor for every trainable parameter (v positive, like Adam's). */
function slot(graph: Graph, rng: Rng, positive = false): Weights {
  const out: Weights = {};
  for (const [k, s] of paramSpecs(graph)) {
    if (!s.trainable) continue;
    const d = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < d.length; i++) d[i] = positive ? rng.uniform(0.1, 1) : rng.normal();
    out[k] = { shape: [...s.shape], data: d };
  }
  return out;
}

const graph = zooModel('mlp', { width: 0.125 }); // fc1 [3072, 32], fc2 [32, 16], fc3 [16, 10]
const weights = initWeights(graph, new Rng(1));
const rng = new Rng(2);
const adam: OptimizerState = { kind: 'adam', step: 37, slots: { m: slot(graph, rng), v: slot(graph, rng, true) } };

describe('mapOptimizerState', () => {
  it('R2R: shapes follow the student, old entries carried, new entries zero, step kept', () => {
    const r = widen(graph, weights, { method: 'r2r', at: 'fc1', add: 4 });
    const s = mapOptimizerState(adam, r);
    assert.equal(s.kind, 'adam');
    assert.equal(s.step, 37);
    for (const name of ['m', 'v']) {
      assert.deepEqual(Object.keys(s.slots[name]).sort(), Object.keys(r.weights).sort());
      for (const [k, t] of Object.entries(s.slots[name])) assert.deepEqual(t.shape, r.weights[k].shape);
      const k1 = s.slots[name]['fc1/kernel'], o1 = adam.slots[name]['fc1/kernel'];
      for (let i = 0; i < 3072; i++) {
        for (let c = 0; c < 32; c++) assert.equal(k1.data[i * 36 + c], o1.data[i * 32 + c]);
        for (let c = 32; c < 36; c++) assert.equal(k1.data[i * 36 + c], 0);
      }
      assert.deepEqual([...s.slots[name]['fc1/bias'].data.slice(32)], [0, 0, 0, 0]);
      const k2 = s.slots[name]['fc2/kernel'];
      assert.deepEqual(k2.data.slice(0, 32 * 16), adam.slots[name]['fc2/kernel'].data);
      assert.ok(k2.data.slice(32 * 16).every((v) => v === 0));
      assert.deepEqual(s.slots[name]['fc3/kernel'], adam.slots[name]['fc3/kernel']);
      assert.notEqual(s.slots[name]['fc3/kernel'].data, adam.slots[name]['fc3/kernel'].data);
    }
  });

  it("Net2Net: copies share the copied channel's state (m/n_c, v/n_c²: each gets 1/n_c of its gradient); a 1/n_c row keeps m and v", () => {
    const r = widen(graph, weights, { method: 'net2net', at: 'fc2', add: 5, seed: 4 });
    const s = mapOptimizerState(adam, r);
    const rows = (r.tensorMaps['fc3/kernel'] as Extract<TensorMap, { kind: 'gather' }>).axes[0];
    const cols = (r.tensorMaps['fc2/kernel'] as Extract<TensorMap, { kind: 'gather' }>).axes[0];
    assert.equal(cols.axis, 1);
    assert.ok(rows.scale && [...rows.scale].some((v) => v < 1), 'some channel was copied');
    const n = (c: number) => [...cols.source].filter((x) => x === c).length;
    for (let i = 0; i < 21; i++) {
      const from = rows.source[i];
      assert.equal(cols.source[i], from);
      for (let j = 0; j < 10; j++) {
        // Rows W_c / n_c see the same input as before: their gradient, so their moments, are unchanged.
        assert.equal(s.slots.m['fc3/kernel'].data[i * 10 + j], adam.slots.m['fc3/kernel'].data[from * 10 + j]);
        assert.equal(s.slots.v['fc3/kernel'].data[i * 10 + j], adam.slots.v['fc3/kernel'].data[from * 10 + j]);
      }
      // The producer's columns for channel c (original and copies) carry 1/n_c of its gradient.
      const g = 1 / n(from);
      assert.ok(Math.abs(s.slots.m['fc2/bias'].data[i] - adam.slots.m['fc2/bias'].data[from] * g) < 1e-7);
      assert.ok(Math.abs(s.slots.v['fc2/bias'].data[i] - adam.slots.v['fc2/bias'].data[from] * g * g) < 1e-7);
    }
  });

  it('mapping through a composed double widen equals mapping twice', () => {
    const r1 = widen(graph, weights, { method: 'net2net', at: 'fc2', add: 3, seed: 1 });
    const r2 = widen(r1.graph, r1.weights, { method: 'net2net', at: 'fc2', add: 4, seed: 2 });
    const both: TransformResult = { ...r2, tensorMaps: composeMaps(r1.tensorMaps, r2.tensorMaps) };
    const once = mapOptimizerState(adam, both);
    const twice = mapOptimizerState(mapOptimizerState(adam, r1), r2);
    for (const name of ['m', 'v']) {
      for (const [k, t] of Object.entries(twice.slots[name])) {
        const a = once.slots[name][k].data;
        assert.ok(t.data.every((v, i) => Math.abs(v - a[i]) <= 1e-6 * Math.max(1, Math.abs(v))), `${name}/${k}`);
      }
    }
  });

  it("SGD momentum scales like a first moment; 'new' tensors start at zero (deepen-style maps)", () => {
    const sgd: OptimizerState = { kind: 'sgd', step: 5, slots: { momentum: slot(graph, new Rng(3)) } };
    const r = widen(graph, weights, { method: 'net2net', at: 'fc1', add: 2 });
    const s = mapOptimizerState(sgd, r);
    const rows = (r.tensorMaps['fc2/kernel'] as Extract<TensorMap, { kind: 'gather' }>).axes[0];
    const cols = (r.tensorMaps['fc1/bias'] as Extract<TensorMap, { kind: 'gather' }>).axes[0];
    assert.equal(s.slots.momentum['fc2/kernel'].data[33 * 16], sgd.slots.momentum['fc2/kernel'].data[rows.source[33] * 16]);
    assert.ok(Math.abs(s.slots.momentum['fc1/bias'].data[33] - sgd.slots.momentum['fc1/bias'].data[cols.source[33]] * cols.gradScale![33]) < 1e-7);
    assert.ok(cols.gradScale![33] < 1);
    // A result whose fc3 is brand new (as a deepen's inserted layers are).
    const fresh: TransformResult = { ...r, tensorMaps: { ...r.tensorMaps, 'fc3/kernel': { kind: 'new' } } };
    assert.ok(mapOptimizerState(sgd, fresh).slots.momentum['fc3/kernel'].data.every((v) => v === 0));
  });

  it('unknown slots and missing entries are clear errors', () => {
    const r = widen(graph, weights, { method: 'r2r', at: 'fc1', add: 2 });
    assert.throws(() => mapOptimizerState({ kind: 'adam', step: 1, slots: { vMax: adam.slots.v } }, r), /unknown slot 'vMax'/);
    const { ['fc2/kernel']: _gone, ...partial } = adam.slots.m;
    assert.throws(() => mapOptimizerState({ kind: 'adam', step: 1, slots: { m: partial } }, r), /slot 'm' has no entry for 'fc2\/kernel'/);
  });
});
