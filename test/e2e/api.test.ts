// The README's library example, through the public entry point only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as r2r from '../../src/index.ts';

test('public API: zoo model, widen and deepen as in the README, preserved on an engine', async () => {
  const graph = r2r.zooModel('resnet-cifar18', { width: 0.125 });
  assert.equal(r2r.countParams(graph), 23_794);
  const weights = r2r.initWeights(graph, new r2r.Rng(0), { randomBatchNorm: true });
  const wide = r2r.widen(graph, weights, { method: 'r2r', factor: 1.5 });
  assert.equal(wide.report.paramsAfter, 52_198);
  const deep = r2r.deepen(wide.graph, wide.weights, { method: 'r2r', perStage: 1 });
  assert.ok(deep.report.changes.length > 0);
  const engine = await r2r.getEngine('tfjs');
  const rng = new r2r.Rng(1);
  const n = 4;
  const x = r2r.randomBatch(r2r.analyzeGraph(graph).inputShape, n, rng);
  const [a, b] = await Promise.all([engine.build(graph, weights), engine.build(deep.graph, deep.weights)]);
  const la = await a.forward({ x, n }, { training: false });
  const lb = await b.forward({ x, n }, { training: false });
  a.dispose(); b.dispose();
  assert.ok(r2r.compareLogits(la, lb).relDiff <= r2r.EXACT_TOLERANCE);
  // Random padding through the same API is not preserving: the check can fail.
  const rand = r2r.widen(graph, weights, { method: 'random', factor: 1.5 });
  const c = await engine.build(rand.graph, rand.weights);
  const lc = await c.forward({ x, n }, { training: false });
  c.dispose();
  assert.ok(r2r.compareLogits(la, lc).relDiff > 1e-2);
});
