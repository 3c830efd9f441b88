import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { R2RError } from '../errors.ts';
import { GraphBuilder } from '../ir/builder.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { initWeights, tensor } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { Rng } from '../rng.ts';
import { forwardReference, runReference } from './execute.ts';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what} index ${i}: ${actual[i]} vs ${expected[i]}`);
}

/** [T, D] floats in, node `y` out: an embedding of ids 0..T-1 through an identity table gives x. */
function onSequence(t: number, d: number, body: (b: GraphBuilder, x: string) => string): { graph: Graph; out: string } {
  const b = new GraphBuilder('t');
  const x = b.embedding(b.tokenInput(t, t), t, d, 'x');
  const y = body(b, x);
  return { graph: b.build(b.dense(y, 2, { name: 'logits' })), out: y };
}

/** Weights whose embedding table is `x` ([T, D], row t = token t), so ids 0..T-1 feed x exactly. */
function withInput(graph: Graph, x: Float32Array, rng: Rng): Weights {
  const w = initWeights(graph, rng);
  w['x/embeddings'] = tensor(w['x/embeddings'].shape, x);
  return w;
}

/** Matrices as arrays of rows: the textbook attention, written independently of execute.ts. */
type M = number[][];
const matmul = (a: M, b: M): M => a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const transpose = (a: M): M => a[0].map((_, j) => a.map((r) => r[j]));
function naiveAttention(x: M, w: Weights, H: number, K: number, causal: boolean): M {
  const D = x[0].length, T = x.length;
  const slice = (name: string, h: number): M => Array.from({ length: D }, (_, i) => Array.from({ length: K }, (_, k) => w[`att/${name}Kernel`].data[(i * H + h) * K + k]));
  const addBias = (m: M, name: string, h: number): M => m.map((r) => r.map((v, k) => v + w[`att/${name}Bias`].data[h * K + k]));
  let y: M = Array.from({ length: T }, () => Array.from(w['att/outputBias'].data));
  for (let h = 0; h < H; h++) {
    const q = addBias(matmul(x, slice('query', h)), 'query', h);
    const k = addBias(matmul(x, slice('key', h)), 'key', h);
    const v = addBias(matmul(x, slice('value', h)), 'value', h);
    const s = matmul(q, transpose(k)).map((r, i) => r.map((e, j) => (causal && j > i ? -Infinity : e / Math.sqrt(K))));
    const p = s.map((r) => { const m = Math.max(...r); const e = r.map((z) => Math.exp(z - m)); const z = e.reduce((a, b) => a + b, 0); return e.map((c) => c / z); });
    const wo: M = Array.from({ length: K }, (_, kk) => Array.from({ length: D }, (_, j) => w['att/outputKernel'].data[(h * K + kk) * D + j]));
    const yh = matmul(matmul(p, v), wo);
    y = y.map((r, i) => r.map((e, j) => e + yh[i][j]));
  }
  return y;
}

describe('reference executor: transformer kinds', () => {
  for (const causal of [true, false]) {
    it(`attention (${causal ? 'causal' : 'not causal'}, 3 heads of 2, D 5) equals the textbook computation`, () => {
      const [T, D, H, K] = [4, 5, 3, 2];
      const { graph, out } = onSequence(T, D, (b, x) => b.attention(x, H, K, { causal, name: 'att' }));
      const rng = new Rng(7);
      const xs = Float32Array.from({ length: T * D }, () => rng.normal());
      const w = withInput(graph, xs, rng);
      const got = runReference(graph, w, Int32Array.from([0, 1, 2, 3]), 1, { training: false }).get(out)!;
      const x: M = Array.from({ length: T }, (_, t) => Array.from(xs.subarray(t * D, (t + 1) * D)));
      close(got, naiveAttention(x, w, H, K, causal).flat(), 1e-12, 'attention');
    });
  }

  it('a non-preserving change fails the attention check: scaling by 1/K instead of 1/sqrt(K) is caught', () => {
    const [T, D, H, K] = [4, 5, 1, 4];
    const { graph, out } = onSequence(T, D, (b, x) => b.attention(x, H, K, { name: 'att' }));
    const rng = new Rng(3);
    const xs = Float32Array.from({ length: T * D }, () => rng.normal());
    const w = withInput(graph, xs, rng);
    const got = runReference(graph, w, Int32Array.from([0, 1, 2, 3]), 1, { training: false }).get(out)!;
    const x: M = Array.from({ length: T }, (_, t) => Array.from(xs.subarray(t * D, (t + 1) * D)));
    // The same as the textbook run with keys scaled by 1/sqrt(K) (so scores scale by 1/K overall).
    const wrong: Weights = { ...w, 'att/keyKernel': tensor([D, H, K], w['att/keyKernel'].data.map((v) => v / 2)), 'att/keyBias': tensor([H, K], w['att/keyBias'].data.map((v) => v / 2)) };
    assert.throws(() => close(got, naiveAttention(x, wrong, H, K, true).flat(), 1e-6), /index/);
  });

  it('layerNorm: hand-computed, biased variance over the last axis', () => {
    const { graph, out } = onSequence(2, 4, (b, x) => b.layerNorm(x, { epsilon: 1e-5, name: 'ln' }));
    const w = withInput(graph, Float32Array.from([1, 2, 3, 4, 10, 10, 10, 14]), new Rng(1));
    w['ln/gamma'] = tensor([4], [1, 1, 2, 2]);
    w['ln/beta'] = tensor([4], [0, 0, 0, 1]);
    const got = runReference(graph, w, Int32Array.from([0, 1]), 1, { training: true }).get(out)!;
    // row 0: mean 2.5, var 1.25; row 1: mean 11, var 3
    const a = 1 / Math.sqrt(1.25 + 1e-5), c = 1 / Math.sqrt(3 + 1e-5);
    close(got, [-1.5 * a, -0.5 * a, 2 * 0.5 * a, 2 * 1.5 * a + 1, -c, -c, -2 * c, 2 * 3 * c + 1], 1e-12);
  });

  it('embedding looks up rows; positionEmbedding adds row t at position t; dense acts per token', () => {
    const b = new GraphBuilder('t');
    const e = b.embedding(b.tokenInput(3, 4), 4, 2, 'emb');
    const p = b.positionEmbedding(e, 5, 'pos');
    const g = b.build(b.dense(p, 1, { name: 'out' }));
    const w: Weights = {
      'emb/embeddings': tensor([4, 2], [0, 0, 1, 10, 2, 20, 3, 30]),
      'pos/embeddings': tensor([5, 2], [100, 200, 300, 400, 500, 600, 7, 7, 7, 7]),
      'out/kernel': tensor([2, 1], [1, -1]), 'out/bias': tensor([1], [0.5]),
    };
    const outs = runReference(g, w, Int32Array.from([3, 3, 1, 0, 2, 1]), 2, { training: false });
    assert.deepEqual([...outs.get('emb')!], [3, 30, 3, 30, 1, 10, 0, 0, 2, 20, 1, 10]);
    assert.deepEqual([...outs.get('pos')!], [103, 230, 303, 430, 501, 610, 100, 200, 302, 420, 501, 610]);
    assert.deepEqual([...forwardReference(g, w, Int32Array.from([3, 3, 1, 0, 2, 1]), 2, { training: false })], [-126.5, -126.5, -108.5, -99.5, -117.5, -108.5]);
  });

  it('gpt: causal masking, changing a later token does not change earlier logits (and does change later ones)', () => {
    const g = gpt({ layers: 2, heads: 2, dim: 8, block: 6, vocab: 5 });
    const w = initWeights(g, new Rng(11));
    const a = Int32Array.from([1, 2, 3, 4, 0, 1]);
    const b = Int32Array.from([1, 2, 3, 0, 0, 1]); // position 3 changed
    const la = forwardReference(g, w, a, 1, { training: false }), lb = forwardReference(g, w, b, 1, { training: false });
    assert.equal(la.length, 6 * 5);
    close(la.subarray(0, 3 * 5), lb.subarray(0, 3 * 5), 0, 'positions 0..2');
    for (let t = 3; t < 6; t++) {
      const d = Math.max(...la.subarray(t * 5, (t + 1) * 5).map((v, i) => Math.abs(v - lb[t * 5 + i])));
      assert.ok(d > 1e-4, `position ${t} should change, max |diff| ${d}`);
    }
    // Without the mask, every position sees the change.
    const nc: Graph = { ...g, nodes: g.nodes.map((n) => (n.kind === 'attention' ? { ...n, causal: false } : n)) };
    const ma = forwardReference(nc, w, a, 1, { training: false }), mb = forwardReference(nc, w, b, 1, { training: false });
    assert.ok(Math.max(...ma.subarray(0, 5).map((v, i) => Math.abs(v - mb[i]))) > 1e-4, 'not causal: position 0 changes');
  });

  it('gpt: examples in a batch are independent; ids outside the vocabulary are an error', () => {
    const g = gpt({ layers: 1, heads: 2, dim: 8, block: 4, vocab: 5 });
    const w = initWeights(g, new Rng(2));
    const one = forwardReference(g, w, Int32Array.from([4, 3, 2, 1]), 1, { training: false });
    const two = forwardReference(g, w, Int32Array.from([0, 0, 0, 0, 4, 3, 2, 1]), 2, { training: false });
    close(two.subarray(20), one, 0);
    assert.throws(() => forwardReference(g, w, Int32Array.from([0, 5, 0, 0]), 1, { training: false }),
      (e: unknown) => e instanceof R2RError && e.code === 'R2R_SHAPE_MISMATCH' && /token 1 is 5, not an id in \[0, 5\) of tokenInput 'tokens'/.test(e.message));
  });
});
