/** Small graphs from issue 8's reports, shared by the transform tests (weights seeded, BN statistics random). */
import { GraphBuilder } from '../../src/ir/builder.ts';
import { initWeights } from '../../src/ir/weights.ts';
import { Rng } from '../../src/rng.ts';
import type { Net } from './preserved.ts';

/** A 4-layer MLP with batch norm: input [12], 3 x (dense 8, BN, ReLU), dense 3. */
export function mlp4(): Net {
  const b = new GraphBuilder('mlp4');
  let x = b.input([12]);
  for (let i = 1; i <= 3; i++) x = b.relu(b.batchNorm(b.dense(x, 8, { name: `fc${i}`, useBias: false }), { name: `bn${i}` }), `relu${i}`);
  const graph = b.build(b.dense(x, 3, { name: 'fc4' }));
  return { graph, weights: initWeights(graph, new Rng(1), { randomBatchNorm: true }) };
}

/** input [3, 11, 2] -> avgPool 3/2 ('pool') -> globalAvgPool -> batchNorm -> dropout(0). */
export function pooled(): Net {
  const b = new GraphBuilder('pooled');
  const p = b.avgPool(b.input([3, 11, 2]), 3, { stride: 2, name: 'pool' });
  const graph = b.build(b.dropout(b.batchNorm(b.globalAvgPool(p, 'gap'), { name: 'bn' }), 0, 'drop'));
  return { graph, weights: initWeights(graph, new Rng(1), { randomBatchNorm: true }) };
}
