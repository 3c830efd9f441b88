/**
 * The torch engine flushes denormals to zero (FTZ/DAZ), as TensorFlow does on CPUs: weights that
 * weight decay drives toward zero turn denormal, and arithmetic on denormals takes a slow path
 * (a NetMorph student trained 10x slower). Behaviour, not timing: a product below the smallest
 * normal float32 (1.2e-38) comes out as exactly 0, on the engine thread and on intra-op workers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Graph, Weights } from '../../ir/types.ts';
import { requireTorch } from '../../../test/helpers/torch_available.ts';
import { createTorchEngine } from './index.ts';

const graph: Graph = {
  format: 'r2r-graph', version: 1, output: 'fc',
  nodes: [{ kind: 'input', name: 'x', inputs: [], shape: [1] }, { kind: 'dense', name: 'fc', inputs: ['x'], units: 1, useBias: false }],
};
const weights = (k: number): Weights => ({ 'fc/kernel': { shape: [1, 1], data: Float32Array.of(k) } });

describe('torch engine: denormals flushed to zero', { skip: requireTorch('the denormal tests') }, () => {
  for (const threads of [1, 2]) {
    it(`a denormal product is 0, a normal one is kept (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      const engine = await createTorchEngine({ threads });
      const x = Float32Array.of(1e-20, 1e-20, 1e-20, 1e-20);
      const tiny = await engine.build(graph, weights(1e-20), { threads });
      // 1e-20 * 1e-20 = 1e-40: a denormal float32 without flushing.
      assert.deepEqual([...(await tiny.forward({ x, n: 4 }, { training: false }))], [0, 0, 0, 0]);
      tiny.dispose();
      const normal = await engine.build(graph, weights(1e-10), { threads });
      const y = await normal.forward({ x, n: 4 }, { training: false });
      for (const v of y) assert.ok(Math.abs(v - 1e-30) < 1e-36, `1e-30 expected, got ${v}`);
      normal.dispose();
    });
  }
});
