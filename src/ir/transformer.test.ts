import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { R2RError } from '../errors.ts';
import { gpt, gptParamCount } from '../models/gpt.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import { GraphBuilder } from './builder.ts';
import { analyzeGraph, countMacs, countParams } from './graph.ts';
import { parseGraph, serializeGraph } from './json.ts';
import type { Graph } from './types.ts';
import { initWeights, validateWeights } from './weights.ts';

const fails = (code: string, msg: RegExp) => (e: unknown) => e instanceof R2RError && e.code === code && msg.test(e.message);

describe('transformer IR', () => {
  it('gpt 4/4/128/block 64/vocab 65 has 818,241 parameters (issue 9; PyTorch nn.Embedding/LayerNorm/Linear)', () => {
    const g = zooModel('gpt', { layers: 4, heads: 4, dim: 128, block: 64, vocab: 65 });
    assert.equal(countParams(g), 818_241);
    assert.equal(gptParamCount({ layers: 4, heads: 4, dim: 128, block: 64, vocab: 65 }), 818_241);
  });

  it('gpt 6/6/384 has V*D + T*D + L*(12D^2 + 13D) + 2D + D*V + V parameters', () => {
    const o = { layers: 6, heads: 6, dim: 384, block: 64, vocab: 65 };
    const { layers: L, dim: D, block: T, vocab: V } = o;
    // 24,960 + 24,576 + 6 * (1,769,472 + 4,992) + 768 + 25,025
    assert.equal(countParams(gpt(o)), 10_722_113);
    assert.equal(countParams(gpt(o)), V * D + T * D + L * (12 * D * D + 13 * D) + 2 * D + D * V + V);
  });

  it('gpt shapes: ids [T] -> [T, D] stream -> logits [T, V]; the nodes of the contract', () => {
    const g = gpt({ layers: 2, heads: 2, dim: 16, block: 8, vocab: 11 });
    const info = analyzeGraph(g);
    assert.deepEqual(info.tokens, { length: 8, vocab: 11 });
    assert.deepEqual(info.inputShape, [8]);
    assert.deepEqual(info.outputShape, [8, 11]);
    for (const n of ['wte', 'wpe', 'h0_ln1', 'h0_attn', 'h0_add1', 'h0_ln2', 'h0_proj', 'h1_add2', 'ln_f']) assert.deepEqual(info.nodes.get(n)!.outputShape, [8, 16], n);
    assert.deepEqual(info.nodes.get('h1_fc')!.outputShape, [8, 64]);
    assert.deepEqual(info.nodes.get('h1_gelu')!.outputShape, [8, 64]);
    assert.deepEqual(Object.fromEntries(info.nodes.get('h0_attn')!.params.map((p) => [p.name, p.shape])), {
      queryKernel: [16, 2, 8], queryBias: [2, 8], keyKernel: [16, 2, 8], keyBias: [2, 8],
      valueKernel: [16, 2, 8], valueBias: [2, 8], outputKernel: [2, 8, 16], outputBias: [16],
    });
    assert.deepEqual(info.nodes.get('wte')!.params.map((p) => p.shape), [[11, 16]]);
    assert.deepEqual(info.nodes.get('wpe')!.params.map((p) => p.shape), [[8, 16]]);
    assert.deepEqual(info.nodes.get('ln_f')!.params.map((p) => `${p.name}${JSON.stringify(p.shape)}`), ['gamma[16]', 'beta[16]']);
  });

  it("multiply-adds include attention's T-dependent terms (q k^T and p v over all T x T pairs)", () => {
    const [L, H, D, T, V] = [3, 4, 32, 16, 7];
    const g = gpt({ layers: L, heads: H, dim: D, block: T, vocab: V });
    const info = analyzeGraph(g);
    assert.equal(info.nodes.get('h0_attn')!.macs, 4 * T * D * D + 2 * T * T * D);
    assert.equal(info.nodes.get('h0_fc')!.macs, T * D * 4 * D, 'token-wise dense: T rows');
    assert.equal(countMacs(g), L * (12 * T * D * D + 2 * T * T * D) + T * D * V);
    // Doubling T doubles everything but the attention terms, which grow 4x.
    const g2 = gpt({ layers: L, heads: H, dim: D, block: 2 * T, vocab: V });
    assert.equal(countMacs(g2) - 2 * countMacs(g), L * 2 * T * T * D * (4 - 2));
  });

  it('json: a gpt round-trips through serialize/parse, and parse validates its attributes', () => {
    const g = gpt({ layers: 1, heads: 2, dim: 8, block: 4, vocab: 5 });
    const back = parseGraph(serializeGraph(g));
    assert.deepEqual(back, g);
    assert.equal(countParams(back), countParams(g));
    const broken = JSON.parse(serializeGraph(g));
    broken.nodes.find((n: { name: string }) => n.name === 'h0_attn').causal = 'yes';
    assert.throws(() => parseGraph(broken, 'm.json'), fails('R2R_INVALID_GRAPH', /m\.json: node 'h0_attn': causal must be a boolean, got "yes"/));
  });

  it('initWeights: PyTorch defaults (embeddings N(0,1), LN 1/0, attention U(+-1/sqrt(fan_in)))', () => {
    const g = gpt({ layers: 1, heads: 4, dim: 64, block: 32, vocab: 50 });
    const w = initWeights(g, new Rng(1));
    validateWeights(g, w);
    const e = w['wte/embeddings'].data;
    const mean = e.reduce((a, v) => a + v, 0) / e.length;
    const sd = Math.sqrt(e.reduce((a, v) => a + (v - mean) ** 2, 0) / e.length);
    assert.ok(Math.abs(mean) < 0.05 && Math.abs(sd - 1) < 0.05, `wte mean ${mean} sd ${sd}`);
    assert.ok(w['h0_ln1/gamma'].data.every((v) => v === 1) && w['h0_ln1/beta'].data.every((v) => v === 0));
    const maxAbs = (k: string) => w[k].data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    for (const k of ['queryKernel', 'keyBias', 'valueKernel', 'outputKernel', 'outputBias']) {
      const m = maxAbs(`h0_attn/${k}`);
      assert.ok(m <= 1 / 8 && m > 0.1, `h0_attn/${k}: max |w| ${m} (bound 1/sqrt(64))`);
    }
    const r = initWeights(g, new Rng(1), { randomBatchNorm: true });
    assert.ok(r['h0_ln1/gamma'].data.some((v) => v !== 1), 'randomBatchNorm also randomises layer norms');
  });
});

function tiny(edit: (b: GraphBuilder) => string): Graph {
  const b = new GraphBuilder('t');
  return b.build(edit(b));
}

const BAD: [string, () => Graph, string, RegExp][] = [
  ['attention on token ids', () => tiny((b) => b.dense(b.attention(b.tokenInput(4, 5), 1, 2, { name: 'att' }), 5)), 'R2R_INVALID_GRAPH', /node 'att': reads token ids from tokenInput 'tokens'; only an embedding node/],
  ['embedding of floats', () => tiny((b) => b.dense(b.embedding(b.input([4]), 5, 3, 'emb'), 5)), 'R2R_SHAPE_MISMATCH', /node 'emb' \(embedding\) reads token ids and needs a tokenInput as its input, got 'input' \(input\)/],
  ['embedding vocab too small', () => tiny((b) => b.dense(b.embedding(b.tokenInput(4, 9), 5, 3, 'emb'), 9)), 'R2R_SHAPE_MISMATCH', /node 'emb' \(embedding\): vocab 5 is smaller than tokenInput 'tokens' vocab 9/],
  ['block longer than the position table', () => tiny((b) => b.dense(b.positionEmbedding(b.embedding(b.tokenInput(8, 5), 5, 3), 4, 'pos'), 5)), 'R2R_SHAPE_MISMATCH', /node 'pos' \(positionEmbedding\): sequence length 8 exceeds maxLength 4/],
  ['attention on an image', () => tiny((b) => b.flatten(b.attention(b.input([2, 2, 3]), 1, 2, { name: 'att' }))), 'R2R_SHAPE_MISMATCH', /node 'att' \(attention\) needs a \[T, D\] sequence input, got \[2, 2, 3\]/],
  ['zero heads', () => tiny((b) => b.dense(b.attention(b.embedding(b.tokenInput(4, 5), 5, 3), 0, 2, { name: 'att' }), 5)), 'R2R_INVALID_GRAPH', /node 'att': heads must be a positive integer, got 0/],
  ['layer norm epsilon 0', () => tiny((b) => b.dense(b.layerNorm(b.embedding(b.tokenInput(4, 5), 5, 3), { epsilon: 0, name: 'ln' }), 5)), 'R2R_INVALID_GRAPH', /node 'ln': epsilon must be > 0, got 0/],
  ['token model with flat logits', () => tiny((b) => b.dense(b.flatten(b.embedding(b.tokenInput(4, 5), 5, 3)), 5, { name: 'out' })), 'R2R_SHAPE_MISMATCH', /graph: output 'out' of a token model must be per-token logits \[4, V\], got \[5\]/],
  ['two inputs', () => tiny((b) => { b.tokenInput(4, 5, 'a'); return b.dense(b.embedding(b.tokenInput(4, 5, 'b'), 5, 3), 5); }), 'R2R_INVALID_GRAPH', /node 'b': a second input node; 'a' is already the graph input/],
];

for (const [what, build, code, msg] of BAD) {
  it(`invalid transformer graph: ${what} is an error naming the node`, () => {
    assert.throws(() => analyzeGraph(build()), fails(code, msg));
  });
}

it('gpt: dim must be a multiple of heads', () => {
  assert.throws(() => gpt({ heads: 3, dim: 128 }), fails('R2R_USAGE', /gpt: dim 128 is not a multiple of heads 3/));
});
