/**
 * The transformer part of the conformance suite, engine-agnostic: a tiny GPT must match the
 * reference executor (logits, per-token loss), float64 finite differences of the reference loss
 * (gradients), float64 Adam, and round-trip its optimizer state. Call
 * `describeTransformerConformance(label, makeEngine)` from a `*.test.ts` file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Batch, Engine } from '../../src/engines/engine.ts';
import { R2RError } from '../../src/errors.ts';
import { paramSpecs } from '../../src/ir/graph.ts';
import type { Graph, Weights } from '../../src/ir/types.ts';
import { cloneWeights, initWeights } from '../../src/ir/weights.ts';
import { gpt } from '../../src/models/gpt.ts';
import { compareLogits } from '../../src/reference/compare.ts';
import { forwardReference, runReference } from '../../src/reference/execute.ts';
import { Rng } from '../../src/rng.ts';
import { assertClose, ReferenceOptimizer } from './conformance.ts';

export const TINY_GPT = { layers: 2, heads: 2, dim: 8, block: 5, vocab: 7 };

/** A token batch: random ids and random next-token targets, n sequences of the graph's block. */
export function tokenBatch(n: number, block: number, vocab: number, rng: Rng): Batch {
  const tokens = Int32Array.from({ length: n * block }, () => rng.int(vocab));
  const labels = Int32Array.from({ length: n * block }, () => rng.int(vocab));
  return { x: new Float32Array(0), n, tokens, labels };
}

/** Mean per-token softmax cross-entropy, float64, from the reference executor. */
export function referenceLoss(graph: Graph, w: Weights, batch: Batch): number {
  const logits = runReference(graph, w, batch.tokens!, batch.n, { training: true }).get(graph.output)!;
  const labels = batch.labels!;
  const v = logits.length / labels.length;
  let sum = 0;
  for (let r = 0; r < labels.length; r++) {
    let max = -Infinity;
    for (let j = 0; j < v; j++) max = Math.max(max, logits[r * v + j]);
    let z = 0;
    for (let j = 0; j < v; j++) z += Math.exp(logits[r * v + j] - max);
    sum += Math.log(z) + max - logits[r * v + labels[r]];
  }
  return sum / labels.length;
}

const fails = (code: string, msg: RegExp) => (e: unknown) => e instanceof R2RError && e.code === code && msg.test(e.message);

export function describeTransformerConformance(label: string, makeEngine: () => Promise<Engine>): void {
  describe(`${label}: transformer conformance`, () => {
    let engine: Engine;
    before(async () => { engine = await makeEngine(); });
    const g = gpt(TINY_GPT);
    const { block: T, vocab: V } = TINY_GPT;

    it('gpt forward: the reference logits [N, T, V] within 1e-5 (both modes); a non-causal graph is caught', async () => {
      const w = initWeights(g, new Rng(1), { randomBatchNorm: true });
      const batch = tokenBatch(3, T, V, new Rng(2));
      const m = await engine.build(g, w);
      try {
        for (const training of [false, true]) {
          const got = await m.forward(batch, { training });
          const ref = forwardReference(g, w, batch.tokens!, 3, { training });
          assert.equal(got.length, 3 * T * V);
          const d = compareLogits(ref, got);
          assert.ok(d.relDiff <= 1e-5, `training=${training}: relDiff ${d.relDiff}`);
        }
        const open: Graph = { ...g, nodes: g.nodes.map((n) => (n.kind === 'attention' ? { ...n, causal: false } : n)) };
        const d = compareLogits(forwardReference(open, w, batch.tokens!, 3, { training: false }), await m.forward(batch, { training: false }));
        assert.ok(d.relDiff > 1e-3, `the causal mask must matter: relDiff ${d.relDiff}`);
      } finally { m.dispose(); }
    });

    it('per-token loss equals the float64 reference; gradients match its finite differences', async () => {
      const w = initWeights(g, new Rng(3), { randomBatchNorm: true });
      const batch = tokenBatch(2, T, V, new Rng(4));
      const m = await engine.build(g, w);
      try {
        const { loss, grads } = await m.gradients(batch);
        assert.ok(Math.abs(loss - referenceLoss(g, w, batch)) <= 1e-5, `loss ${loss} vs ${referenceLoss(g, w, batch)}`);
        const ev = await m.evaluate(batch);
        assert.ok(Math.abs(ev.loss - loss) <= 1e-6 && ev.correct >= 0 && ev.correct <= 2 * T);
        const rng = new Rng(5);
        const h = 1e-4;
        for (const [key, spec] of paramSpecs(g)) {
          assert.deepEqual(grads[key].shape, spec.shape, key);
          // A few entries of every tensor: central differences of the float64 reference loss.
          for (let s = 0; s < 4; s++) {
            const i = rng.int(grads[key].data.length);
            const plus = cloneWeights(w), minus = cloneWeights(w);
            plus[key].data[i] += h; minus[key].data[i] -= h;
            // The float32 perturbation actually applied.
            const step = plus[key].data[i] - minus[key].data[i];
            const num = (referenceLoss(g, plus, batch) - referenceLoss(g, minus, batch)) / step;
            assertClose([grads[key].data[i]], [num], 2e-4, 2e-3, `d loss / d ${key}[${i}]`);
          }
        }
      } finally { m.dispose(); }
    });

    it('Adam: three steps equal float64 torch.optim.Adam on the engine\'s gradients; state round-trips exactly', async () => {
      const w = initWeights(g, new Rng(6));
      const batches = [0, 1, 2, 3].map((i) => tokenBatch(2, T, V, new Rng(10 + i)));
      const cfg = { kind: 'adam' as const, lr: 1e-2 };
      const a = await engine.build(g, w), b = await engine.build(g, w);
      try {
        a.setOptimizer(cfg);
        const ref = new ReferenceOptimizer(cfg);
        const params: Record<string, Float64Array> = Object.fromEntries(Object.entries(w).map(([k, t]) => [k, Float64Array.from(t.data)]));
        for (const batch of batches.slice(0, 3)) {
          const { grads } = await b.gradients(batch);
          await a.trainStep(batch);
          ref.apply(params, grads);
          await b.setWeights(Object.fromEntries(Object.entries(params).map(([k, p]) => [k, { shape: w[k].shape, data: Float32Array.from(p) }])));
        }
        const got = await a.getWeights();
        // keyBias's gradient is 0 in exact arithmetic (q.(k + b) shifts every key's score of one
        // query alike, and softmax ignores that); Adam's m / sqrt(v) turns its float32 rounding
        // noise into +-lr steps, different in every run, so it is not compared.
        for (const k of Object.keys(w).filter((k) => !k.endsWith('/keyBias'))) assertClose(got[k].data, params[k], 1e-5, 1e-4, k);
        // Resume: a fresh model from the weights and optimizer state takes the same fourth step.
        const state = await a.getOptimizerState();
        assert.equal(state?.step, 3);
        const c = await engine.build(g, got);
        try {
          c.setOptimizer(cfg, state);
          const [ra, rc] = [await a.trainStep(batches[3]), await c.trainStep(batches[3])];
          assert.equal(rc.loss, ra.loss);
          const [wa, wc] = [await a.getWeights(), await c.getWeights()];
          for (const k of Object.keys(w)) assert.deepEqual(wc[k].data, wa[k].data, k);
        } finally { c.dispose(); }
      } finally { a.dispose(); b.dispose(); }
    });

    it('training lowers the loss on a fixed batch (the model can learn)', async () => {
      const m = await engine.build(g, initWeights(g, new Rng(7)));
      try {
        m.setOptimizer({ kind: 'adam', lr: 1e-2 });
        const batch = tokenBatch(4, T, V, new Rng(8));
        const first = (await m.trainStep(batch)).loss;
        let last = first;
        for (let i = 0; i < 30; i++) last = (await m.trainStep(batch)).loss;
        assert.ok(last < 0.5 * first, `loss ${first} -> ${last}`);
      } finally { m.dispose(); }
    });

    it('bad token batches are errors naming what is wrong', async () => {
      const m = await engine.build(g, initWeights(g, new Rng(9)));
      try {
        const good = tokenBatch(2, T, V, new Rng(1));
        await assert.rejects(m.forward({ x: new Float32Array(0), n: 2 }, { training: false }), fails('R2R_USAGE', /batch has no tokens/));
        await assert.rejects(m.forward({ ...good, tokens: good.tokens!.map((v, i) => (i === 3 ? V : v)) }, { training: false }), fails('R2R_DATA', new RegExp(`token ${V} at position 3 is outside the vocabulary`)));
        await assert.rejects(m.evaluate({ ...good, labels: good.labels!.slice(0, 2) }), fails('R2R_DATA', /2 labels for 2 examples of 5 tokens/));
      } finally { m.dispose(); }
    });

    after(() => {});
  });
}
