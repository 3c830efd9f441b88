/**
 * Transformers on the native libtorch engine: the shared transformer conformance suite (reference
 * logits, float64 finite differences, float64 Adam, state round trip), agreement with the
 * TensorFlow.js engine (gradients and three Adam steps of a GPT), and the transformer kinds in
 * the layouts a GPT does not exercise (layer norm and dense on [H, W, C], batch norm and concat on
 * [T, C], non-causal attention with H*K != D and no biases, tables longer than needed).
 *
 * Without the addon these tests skip with a loud message locally; with CI=true they fail
 * (torch.test.ts asserts that the addon is built).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBatch } from '../../../test/engines/conformance.ts';
import { describeTransformerConformance, tokenBatch } from '../../../test/engines/transformer_conformance.ts';
import { R2RError } from '../../errors.ts';
import { GraphBuilder } from '../../ir/builder.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { initWeights } from '../../ir/weights.ts';
import { gpt } from '../../models/gpt.ts';
import { compareLogits } from '../../reference/compare.ts';
import { forwardReference } from '../../reference/execute.ts';
import { Rng } from '../../rng.ts';
import type { Engine, EngineModel, OptimizerConfig } from '../engine.ts';
import { getEngine } from '../registry.ts';
import { createTorchEngine } from './index.ts';
import { requireTorch, torchUnavailable } from '../../../test/helpers/torch_available.ts';

const skip = requireTorch('the native torch transformer tests');

if (!torchUnavailable) describeTransformerConformance('torch (cpu)', () => createTorchEngine({ threads: 1 }));

/** maxAbs(a - b) / max|b|. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return compareLogits(b, a).relDiff;
}

/** Transformer kinds on the layouts a GPT does not use. */
function offGptGraphs(): { name: string; graph: Graph; tokens: boolean }[] {
  const seq = new GraphBuilder('sequence-odds');
  let s = seq.tokenInput(6, 9, 'tokens');
  s = seq.embedding(s, 11, 10, 'emb');              // a table with more rows than the vocabulary
  s = seq.positionEmbedding(s, 8, 'pos');           // and more positions than the block
  const att = seq.attention(s, 3, 4, { causal: false, useBias: false, name: 'att' });  // H*K = 12 != D = 10
  const bn = seq.batchNorm(s, { momentum: 0.8, name: 'bn_seq' });
  let c = seq.concat([att, bn], 'cat_seq');         // [6, 20]
  c = seq.layerNorm(c, { epsilon: 1e-3, name: 'ln_seq' });
  c = seq.activation(seq.dense(c, 7, { name: 'fc_seq' }), 'gelu', 'gelu');
  const causal = seq.attention(c, 2, 3, { causal: true, useBias: true, name: 'att_causal' });
  const seqGraph = seq.build(seq.dense(seq.add([c, causal], 'res'), 5, { useBias: false, name: 'head' }));

  const img = new GraphBuilder('spatial-token-wise');
  let x = img.input([4, 5, 3]);
  x = img.conv2d(x, 6, 3, { padding: 'same', name: 'conv' });
  x = img.layerNorm(x, { name: 'ln_hwc' });         // over C at every pixel
  x = img.dense(x, 4, { name: 'fc_hwc' });          // [4, 5, 6] -> [4, 5, 4]
  x = img.flatten(x, 'flat');
  const imgGraph = img.build(img.dense(x, 3, { name: 'logits' }));
  return [{ name: 'sequence-odds', graph: seqGraph, tokens: true }, { name: 'spatial-token-wise', graph: imgGraph, tokens: false }];
}

describe('torch engine: transformers', { skip }, () => {
  let engine: Engine;
  const models: EngineModel[] = [];
  const build = async (g: Graph, w: Weights, e: Engine = engine) => {
    const m = await e.build(g, w);
    models.push(m);
    return m;
  };
  before(async () => { engine = await createTorchEngine({ threads: 1 }); });
  after(() => { for (const m of models) m.dispose(); });

  for (const { name, graph, tokens } of offGptGraphs()) {
    it(`${name}: forward matches the reference executor in both modes (<= 1e-5 relative)`, async () => {
      const rng = new Rng(`odds-${name}`);
      const w = initWeights(graph, rng, { randomBatchNorm: true });
      const batch = tokens ? tokenBatch(3, 6, 9, rng) : randomBatch([4, 5, 3], 3, 3, rng);
      const m = await build(graph, w);
      for (const training of [false, true]) {
        const got = await m.forward(batch, { training });
        const want = forwardReference(graph, w, tokens ? batch.tokens! : batch.x, batch.n, { training });
        const d = compareLogits(want, got);
        assert.ok(d.relDiff <= 1e-5, `training=${training}: relDiff ${d.relDiff} (maxAbs ${d.maxAbsDiff})`);
      }
    });
  }

  it('the comparison sees layouts: nn.Linear-ordered attention kernels give other logits', async () => {
    // The counterpart of the test above: the plausible mistake of reading a [D, H, K] kernel as
    // PyTorch's [H*K, D] weight changes the reference logits far beyond the tolerance.
    const { graph } = offGptGraphs()[0];
    const rng = new Rng('layout');
    const w = initWeights(graph, rng, { randomBatchNorm: true });
    const batch = tokenBatch(2, 6, 9, rng);
    const m = await build(graph, w);
    const got = await m.forward(batch, { training: false });
    const q = w['att_causal/queryKernel'];
    const [d, h, k] = q.shape;
    const asLinear = new Float32Array(q.data.length);
    for (let i = 0; i < d; i++) for (let j = 0; j < h * k; j++) asLinear[i * h * k + j] = q.data[j * d + i];
    const wrong = { ...w, 'att_causal/queryKernel': { shape: q.shape, data: asLinear } };
    assert.ok(relDiff(got, forwardReference(graph, w, batch.tokens!, 2, { training: false })) <= 1e-5);
    assert.ok(relDiff(got, forwardReference(graph, wrong, batch.tokens!, 2, { training: false })) > 1e-3);
  });

  describe('agrees with the TensorFlow.js engine (cpu backend) on a GPT', () => {
    let tfjs: Engine;
    before(async () => { tfjs = await getEngine('tfjs', { backend: 'cpu' }); });

    it('gpt(2 layers, 2 heads, 16, block 8): same loss and gradients, same weights and Adam state after 3 steps (<= 1e-4 relative)', async () => {
      const cfg = { layers: 2, heads: 2, dim: 16, block: 8, vocab: 11 };
      const g = gpt(cfg);
      const rng = new Rng('gpt-vs-tfjs');
      const w = initWeights(g, rng);
      const batches = [0, 1, 2].map(() => tokenBatch(3, cfg.block, cfg.vocab, rng));
      const t = await build(g, w), f = await build(g, w, tfjs);
      const gt = await t.gradients(batches[0]), gf = await f.gradients(batches[0]);
      assert.ok(Math.abs(gt.loss - gf.loss) <= 1e-5 * Math.max(1, Math.abs(gf.loss)), `loss ${gt.loss} vs ${gf.loss}`);
      // keyBias: zero gradient in exact arithmetic (softmax ignores a shift shared by every key),
      // float noise in both engines; compared against the largest gradient instead of its own.
      let largest = 0;
      for (const v of Object.values(gf.grads)) for (const x of v.data) largest = Math.max(largest, Math.abs(x));
      for (const k of Object.keys(gf.grads)) {
        const { maxAbsDiff } = compareLogits(gf.grads[k].data, gt.grads[k].data);
        const own = Math.max(...Array.from(gf.grads[k].data, Math.abs));
        const tol = k.endsWith('/keyBias') ? 1e-5 * largest : 1e-4 * own;
        assert.ok(maxAbsDiff <= tol, `gradient ${k}: maxAbsDiff ${maxAbsDiff}, max|g| ${own}`);
      }
      // eps = lr so that gradient noise (keyBias) is not amplified into +-lr steps (see torch.test.ts).
      const config: OptimizerConfig = { kind: 'adam', lr: 1e-3, epsilon: 1e-3 };
      t.setOptimizer(config);
      f.setOptimizer(config);
      for (const b of batches) {
        const rt = await t.trainStep(b), rf = await f.trainStep(b);
        assert.equal(rt.correct, rf.correct);
        assert.ok(Math.abs(rt.loss - rf.loss) <= 1e-5 * Math.abs(rf.loss), `step loss ${rt.loss} vs ${rf.loss}`);
      }
      const wt = await t.getWeights(), wf = await f.getWeights();
      for (const k of Object.keys(wf)) {
        if (k.endsWith('/keyBias')) continue;
        assert.ok(relDiff(wt[k].data, wf[k].data) <= 1e-4, `weight ${k}: relDiff ${relDiff(wt[k].data, wf[k].data)}`);
      }
      const st = (await t.getOptimizerState())!, sf = (await f.getOptimizerState())!;
      assert.equal(st.step, 3);
      assert.equal(sf.step, 3);
      for (const slot of ['m', 'v']) {
        for (const k of Object.keys(sf.slots[slot])) {
          if (k.endsWith('/keyBias')) continue;
          assert.ok(relDiff(st.slots[slot][k].data, sf.slots[slot][k].data) <= 1e-3, `slot ${slot} ${k}`);
        }
      }
    });
  });

  it('getWeights returns what setWeights wrote, in the contract layout (attention [D, H, K] / [H, K, D])', async () => {
    const g = gpt({ layers: 1, heads: 2, dim: 6, block: 4, vocab: 5 });
    const w = initWeights(g, new Rng('roundtrip'));
    const m = await build(g, w);
    assert.deepEqual(await m.getWeights(), w);
    assert.deepEqual((await m.getWeights())['h0_attn/queryKernel'].shape, [6, 2, 3]);
    assert.deepEqual((await m.getWeights())['h0_attn/outputKernel'].shape, [2, 3, 6]);
  });

  it('refuses the float dataset path for a token model, and float batches', async () => {
    const g = gpt({ layers: 1, heads: 1, dim: 4, block: 3, vocab: 5 });
    const m = await build(g, initWeights(g, new Rng(1)));
    const code = (e: unknown) => (e instanceof R2RError ? e.code : String(e));
    await assert.rejects(m.uploadDataset!(new Float32Array(6), new Int32Array(6), 2), (e) => code(e) === 'R2R_USAGE' && /trainStep/.test(String(e)));
    await assert.rejects(m.forward({ x: new Float32Array(6), n: 2 }, { training: false }), (e) => code(e) === 'R2R_USAGE' && /no tokens/.test(String(e)));
    await assert.rejects(m.forward({ x: new Float32Array(0), n: 2, tokens: new Int32Array(5) }, { training: false }), (e) => code(e) === 'R2R_SHAPE_MISMATCH');
  });
});
