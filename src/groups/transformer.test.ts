import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { R2RError } from '../errors.ts';
import { GraphBuilder } from '../ir/builder.ts';
import { initWeights } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { compareLogits } from '../reference/compare.ts';
import { forwardReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { widen } from '../transforms/widen.ts';
import { analyzeChannelGroups } from './analyze.ts';

const fails = (code: string, msg: RegExp) => (e: unknown) => e instanceof R2RError && e.code === code && msg.test(e.message);

describe('channel groups: transformer', () => {
  const g = gpt({ layers: 2, heads: 2, dim: 8, block: 4, vocab: 5 });
  const groups = analyzeChannelGroups(g);
  const holding = (v: string) => groups.find((x) => x.volumes.includes(v))!;

  it('gpt: the residual stream is one group, coupled by the layer norms; attention consumes and produces it', () => {
    const s = holding('wte');
    for (const v of ['wpe', 'h0_ln1', 'h0_attn', 'h0_add1', 'h0_ln2', 'h0_proj', 'h1_add2', 'ln_f']) assert.ok(s.volumes.includes(v), v);
    assert.equal(s.size, 8);
    assert.deepEqual(s.producers, ['wte', 'h0_attn', 'h0_proj', 'h1_attn', 'h1_proj']);
    assert.deepEqual(s.consumers.map((c) => c.node), ['h0_attn', 'h0_fc', 'h1_attn', 'h1_fc', 'head']);
    assert.deepEqual(s.coupled.map((c) => c.node), ['h0_ln1', 'h0_ln2', 'h1_ln1', 'h1_ln2', 'ln_f']);
    assert.match(s.coupled[0].reason, /mean and variance/);
    assert.deepEqual(s.channelOps.find((o) => o.node === 'wpe')?.params, ['embeddings']);
    assert.equal(s.containsInput, false);
    assert.equal(s.feedsOutput, false);
    assert.equal(s.widenable, false);
  });

  it('gpt: MLP hidden groups stay widenable; token ids and logits are not', () => {
    for (const i of [0, 1]) {
      const m = holding(`h${i}_fc`);
      assert.deepEqual(m.volumes, [`h${i}_fc`, `h${i}_gelu`]);
      assert.equal(m.size, 32);
      assert.deepEqual(m.coupled, []);
      assert.ok(m.widenable);
    }
    assert.ok(holding('tokens').containsInput && !holding('tokens').widenable);
    assert.ok(holding('head').feedsOutput && !holding('head').widenable);
    assert.equal(groups.filter((x) => x.widenable).length, 2);
  });

  it('widen refuses the coupled stream with a message naming the layer norm', () => {
    const w = initWeights(g, new Rng(1));
    for (const at of ['h0_ln1', 'wte', 'h1_attn']) {
      assert.throws(() => widen(g, w, { method: 'r2r', at, add: 2 }), fails('R2R_TRANSFORM', /coupled by 'h0_ln1': layer norm normalises over all channels/));
    }
  });

  it("widen 'all' on a gpt widens the MLP groups exactly (r2r) and notes the skipped stream; random widening is caught", () => {
    const w = initWeights(g, new Rng(2), { randomBatchNorm: true });
    const r = widen(g, w, { method: 'r2r', add: 4, seed: 3 });
    assert.deepEqual(r.report.notes.filter((n) => n.startsWith('widened')).length, 2);
    assert.ok(r.report.notes.some((n) => /skipped group \d+ \(wte.*coupled by h0_ln1/.test(n)), r.report.notes.join('\n'));
    assert.deepEqual(r.weights['h0_fc/kernel'].shape, [8, 36]);
    assert.deepEqual(r.weights['h1_proj/kernel'].shape, [36, 8]);
    const ids = Int32Array.from({ length: 3 * 4 }, (_, i) => (i * 7) % 5);
    const before = forwardReference(g, w, ids, 3, { training: false });
    assert.ok(compareLogits(before, forwardReference(r.graph, r.weights, ids, 3, { training: false })).relDiff < 1e-6);
    const bad = widen(g, w, { method: 'random', add: 4, seed: 3 });
    assert.ok(compareLogits(before, forwardReference(bad.graph, bad.weights, ids, 3, { training: false })).relDiff > 1e-3);
  });

  it('widen refuses a group read by attention when no layer norm couples it (the rules do not handle attention yet)', () => {
    const b = new GraphBuilder('att-no-ln');
    const x = b.dense(b.embedding(b.tokenInput(4, 5), 5, 6, 'emb'), 6, { name: 'fc' });
    const y = b.attention(b.activation(x, 'relu', 'act'), 2, 3, { name: 'att' });
    const h = b.build(b.dense(y, 5, { name: 'head' }));
    const w = initWeights(h, new Rng(1));
    assert.ok(analyzeChannelGroups(h).find((x) => x.volumes.includes('fc'))!.widenable);
    assert.throws(() => widen(h, w, { method: 'r2r', at: 'fc', add: 2 }), fails('R2R_TRANSFORM', /node 'att' \(attention\) reads or writes; channel-wise widening does not handle attention yet/));
    assert.throws(() => widen(h, w, { method: 'r2r', add: 2 }), fails('R2R_TRANSFORM', /no widenable channel group/));
  });
});
