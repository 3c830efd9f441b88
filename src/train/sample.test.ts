import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Engine } from '../engines/engine.ts';
import { R2RError } from '../errors.ts';
import type { Graph } from '../ir/types.ts';
import { initWeights } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { zooModel } from '../models/zoo.ts';
import { forwardReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { sampleText } from './sample.ts';

/** An engine whose models run the reference executor, and that counts how often it was built. */
function referenceEngine(): Engine & { builds: number } {
  const e = {
    name: 'reference', description: 'reference executor', builds: 0,
    async build(graph: Graph, weights: Parameters<Engine['build']>[1]) {
      e.builds++;
      return { graph, async forward(b: { tokens?: Int32Array; n: number }) { return forwardReference(graph, weights, b.tokens!, b.n, { training: false }); }, dispose() {} } as never;
    },
  };
  return e;
}
const usage = (msg: RegExp) => (e: unknown) => e instanceof R2RError && e.code === 'R2R_USAGE' && msg.test(e.message);

it('sample: greedy decoding picks each argmax; a context longer than the block keeps its last T tokens', async () => {
  const g = gpt({ layers: 1, heads: 2, dim: 8, block: 4, vocab: 3 });
  const w = initWeights(g, new Rng(4));
  const vocab = ['a', 'b', 'c'];
  const r = await sampleText(referenceEngine(), g, w, vocab, { prompt: 'abcab', tokens: 5, temperature: 0, seed: 0 });
  // Recompute step by step: logits at the last position of the last 4 ids.
  const ids = [0, 1, 2, 0, 1];
  for (let i = 0; i < 5; i++) {
    const ctx = ids.slice(-4);
    const l = forwardReference(g, w, Int32Array.from(ctx), 1, { training: false }).subarray(9, 12);
    ids.push(l.indexOf(Math.max(...l)));
  }
  assert.equal(r.text, ids.map((i) => vocab[i]).join(''));
  // A shorter prompt is padded after its end; causal attention keeps the padding out.
  const short = await sampleText(referenceEngine(), g, w, vocab, { prompt: 'b', tokens: 1, temperature: 0, seed: 0 });
  const l = forwardReference(g, w, Int32Array.from([1, 2, 2, 2]), 1, { training: false }).subarray(0, 3);
  assert.equal(short.generated, vocab[l.indexOf(Math.max(...l))]);
});

it('sample: bad requests are refused before a model is built', async () => {
  const g = gpt({ layers: 1, heads: 1, dim: 4, block: 4, vocab: 3 });
  const w = initWeights(g, new Rng(1));
  const e = referenceEngine();
  const o = { prompt: 'a', tokens: 3, temperature: 1, seed: 0 };
  await assert.rejects(sampleText(e, g, w, ['a', 'b', 'c'], { ...o, temperature: -1 }), usage(/--temperature must be a finite number >= 0, got -1/));
  await assert.rejects(sampleText(e, g, w, ['a', 'b', 'c'], { ...o, prompt: '' }), usage(/the prompt is empty/));
  const open: Graph = { ...g, nodes: g.nodes.map((n) => (n.kind === 'attention' ? { ...n, causal: false } : n)) };
  await assert.rejects(sampleText(e, open, w, ['a', 'b', 'c'], o), usage(/non-causal attention/));
  const m = zooModel('mlp', { width: 0.05 });
  await assert.rejects(sampleText(e, m, initWeights(m, new Rng(1)), ['a'], o), usage(/is not a token model/));
  assert.equal(e.builds, 0);
});
