/**
 * R2DeeperR's numerics in float32 (SPEC section 3). The reference executor accumulates in
 * float64, where the pair U2 h - U2 h cancels to ~1e-16 and deepen.test.ts measures 0. An engine
 * computes in float32: the residue is ~1e-7 of the terms, and in training mode the batch norm
 * after the branch divides it by its batch std floored by sqrt(eps), ~300x. Measured here on the
 * TensorFlow.js engine, student vs teacher on the same engine.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getEngine } from '../engines/registry.ts';
import { initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { compareLogits } from '../reference/compare.ts';
import { Rng } from '../rng.ts';
import { deepen, type DeepenOptions } from './deepen.ts';

const N = 8;

describe('deepen in float32 (tfjs engine)', () => {
  async function measure(model: string, opts: DeepenOptions): Promise<[number, number]> {
    const engine = await getEngine('tfjs');
    const graph = zooModel(model);
    const weights = initWeights(graph, new Rng(1), { randomBatchNorm: true });
    const r = new Rng(2);
    const x = new Float32Array(N * 32 * 32 * 3).map(() => r.normal());
    const res = deepen(graph, weights, opts);
    const teacher = await engine.build(graph, weights), student = await engine.build(res.graph, res.weights);
    try {
      const d = async (training: boolean) => compareLogits(await teacher.forward({ x, n: N }, { training }), await student.forward({ x, n: N }, { training })).relDiff;
      return [await d(false), await d(true)];
    } finally { teacher.dispose(); student.dispose(); }
  }

  it('r2r: resnet-cifar10 -> 18 (two blocks per stage), match-std init: within 1e-5 in both modes', async (t) => {
    const [inf, train] = await measure('resnet-cifar10', { method: 'r2r', perStage: 2 });
    t.diagnostic(`float32 r2r resnet-cifar10 perStage 2 match-std: relDiff inference ${inf.toExponential(2)}, training ${train.toExponential(2)}`);
    assert.ok(inf <= 1e-5 && train <= 1e-5);
  });

  it('r2r with He init (larger new weights): within 1e-5 in both modes', async (t) => {
    const [inf, train] = await measure('resnet-cifar18', { method: 'r2r', init: { method: 'he' } });
    t.diagnostic(`float32 r2r resnet-cifar18 perStage 1 he: relDiff inference ${inf.toExponential(2)}, training ${train.toExponential(2)}`);
    // Inference has no batch-statistics amplification; in training the float32 residue (~1e-7 of
    // the terms) is multiplied by up to 1/sqrt(eps) (~316) in the batch norm after the branch.
    // Measured 4.8e-6..5.7e-6 here (the SPEC's author measured 2.5e-5 on his code): the exactness
    // bound is not loosened for it.
    assert.ok(inf <= 1e-5, `inference ${inf}`);
    assert.ok(train <= 1e-5, `training ${train}`);
  });
});
