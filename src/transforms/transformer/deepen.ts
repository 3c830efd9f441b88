/**
 * Deepening a transformer (issue 10, item 4): insert pre-LN blocks whose output is zero, so the
 * residual stream, and the function, are unchanged. The new block copies the hyper-parameters of
 * its neighbour (heads, head size, MLP width, activation, epsilons, biases); its layer norms start
 * at gamma 1, beta 0 and every bias at 0. With H = 2h heads and F = 2f hidden units:
 *
 * - `r2r` (R2DeeperR, SPEC section 3, by pairing): heads j and j + h have equal query/key/value
 *   kernels (`[U, U]` along the head axis), so equal outputs, and output-projection rows
 *   `[V ; -V]`, so the attention adds 0; MLP columns `[U, U]` and rows `[V ; -V]` likewise, so
 *   the MLP adds 0. Every weight is free and nonzero; the pairs break symmetry once trained.
 * - `netmorph`: free query/key/value and first MLP layer, zero output projections (attention
 *   output kernel, MLP second kernel), as Network Morphism zeroes one side.
 * - `random`: every kernel free (the baseline, not function-preserving).
 * - `net2net` is refused: Net2DeeperNet inserts identity layers, and neither attention nor
 *   layer norm has an identity setting.
 *
 * Free values are drawn like the CNN deepening's (init.ts): `match-std` against the neighbour's
 * tensor of the same role, `he`, or `copy` (the neighbour's values, its first h heads / f units
 * for a paired r2r half). Noise goes on U and V before pairing, so r2r stays exact.
 *
 * Names: in a graph named like the zoo (`h0_*`, `h1_*`, ...) the new block takes the zoo name of
 * its position and later blocks are renumbered, so a grown gpt has the names of a gpt built at
 * the larger depth. Elsewhere new blocks are `deep1_*`, `deep2_*`, ...
 */
import { TransformError } from '../../errors.ts';
import { analyzeGraph, countParams } from '../../ir/graph.ts';
import { sizeOf } from '../../ir/shapes.ts';
import type { Graph, Node, Tensor, Weights } from '../../ir/types.ts';
import { tensor, validateWeights } from '../../ir/weights.ts';
import { Rng } from '../../rng.ts';
import { addNoise, sampleFree, type InitOptions } from '../init.ts';
import type { TensorMap, TransformChange, TransformResult } from '../types.ts';
import { findBlocks, followsZooNames, zooBlockNames, ZOO_BLOCK_PARTS, type TransformerBlock } from './blocks.ts';

export type BlockDeepenMethod = 'r2r' | 'netmorph' | 'random';
export const BLOCK_DEEPEN_METHODS: readonly BlockDeepenMethod[] = ['r2r', 'netmorph', 'random'];

export interface BlockDeepenOptions {
  method: BlockDeepenMethod | 'net2net';
  /** Index the (first) new block takes, 0 .. L; default L (after the last block). */
  position?: number;
  /** Or the stream volume to insert after: a block's output add, or the input of the first block. */
  after?: string;
  /** Blocks to insert there (default 1). */
  count?: number;
  init?: InitOptions;
  seed?: number;
}

export function deepenBlocks(graph: Graph, weights: Weights, opts: BlockDeepenOptions): TransformResult {
  const { method, init = {}, seed = 0 } = opts;
  if (method === 'net2net') throw new TransformError('deepen net2net: Net2DeeperNet inserts identity layers, and a transformer block has none (attention and layer norm cannot be set to the identity); use r2r (a zero-output block by pairing) or netmorph (zero output projections)');
  if (!BLOCK_DEEPEN_METHODS.includes(method)) throw new TransformError(`deepen: unknown method ${JSON.stringify(method)} for a transformer; expected one of ${BLOCK_DEEPEN_METHODS.join(', ')}`);
  const count = opts.count ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new TransformError(`deepen: the number of blocks must be a positive integer, got ${JSON.stringify(opts.count)}`);
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'deepen: weights', info);
  const blocks = findBlocks(graph, info);
  if (blocks.length === 0) throw new TransformError(`deepen: '${graph.name ?? 'graph'}' has no pre-LN transformer block (layerNorm -> attention -> add, layerNorm -> dense -> activation -> dense -> add) to take the new block's shape from`);
  const L = blocks.length;
  let position = opts.position ?? L;
  if (opts.after !== undefined) {
    if (opts.position !== undefined) throw new TransformError(`deepen: give either position (${opts.position}) or after ('${opts.after}'), not both`);
    const i = opts.after === blocks[0].input ? 0 : blocks.findIndex((b) => b.add2.name === opts.after) + 1;
    if (i === 0 && opts.after !== blocks[0].input) throw new TransformError(`deepen: '${opts.after}' is not a block boundary; insert after '${blocks[0].input}' (before the first block) or a block's output (${blocks.map((b) => `'${b.add2.name}'`).join(', ')})`);
    position = i;
  }
  if (!Number.isInteger(position) || position < 0 || position > L) throw new TransformError(`deepen: position must be an integer from 0 to ${L} (the graph has ${L} blocks), got ${JSON.stringify(opts.position)}`);
  for (let i = 1; i < L; i++) {
    if (blocks[i].input !== blocks[i - 1].add2.name) throw new TransformError(`deepen: blocks '${blocks[i - 1].attn.name}' and '${blocks[i].attn.name}' are not consecutive on one residual stream; pass after=<a block output> explicitly`);
  }
  const ref = blocks[Math.max(0, position - 1)];
  const D = info.nodes.get(ref.input)!.outputShape.at(-1)!;
  if (method === 'r2r') {
    if (ref.attn.heads % 2 !== 0) throw new TransformError(`deepen r2r: the new block copies '${ref.attn.name}', which has ${ref.attn.heads} heads; R2DeeperR pairs heads (H = 2h), so H must be even. Add a head first (heads transform) or use netmorph`);
    if (ref.fc.units % 2 !== 0) throw new TransformError(`deepen r2r: the new block copies '${ref.fc.name}', which has ${ref.fc.units} hidden units; R2DeeperR pairs them (F = 2f), so F must be even. Widen the MLP first or use netmorph`);
  }

  // Names: zoo-style renumbering, or fresh deep<n> prefixes.
  const zoo = followsZooNames(blocks);
  const rename = new Map<string, string>();
  if (zoo) {
    for (let i = position; i < L; i++) {
      const from = zooBlockNames(i, blocks[i].act.fn), to = zooBlockNames(i + count, blocks[i].act.fn);
      for (const p of ZOO_BLOCK_PARTS) rename.set(from[p], to[p]);
    }
  }
  const taken = new Set(graph.nodes.map((n) => n.name));
  const newNames: Record<(typeof ZOO_BLOCK_PARTS)[number], string>[] = [];
  for (let j = 0; j < count; j++) {
    if (zoo) { newNames.push(zooBlockNames(position + j, ref.act.fn)); continue; }
    let k = 1;
    while ([...taken].some((n) => n.startsWith(`deep${k}_`))) k++;
    const names = { ln1: `deep${k}_ln1`, attn: `deep${k}_attn`, add1: `deep${k}_add1`, ln2: `deep${k}_ln2`, fc: `deep${k}_fc`, act: `deep${k}_${ref.act.fn}`, proj: `deep${k}_proj`, add2: `deep${k}_add2` };
    Object.values(names).forEach((n) => taken.add(n));
    newNames.push(names);
  }
  const rn = (name: string) => rename.get(name) ?? name;

  const rng = new Rng(seed);
  const x0 = position === 0 ? blocks[0].input : blocks[position - 1].add2.name;
  const newNodes: Node[] = [];
  const newWeights: Weights = {};
  let x = rn(x0);
  for (const names of newNames) {
    const built = buildBlock(ref, weights, D, x, names, method, init, rng);
    newNodes.push(...built.nodes);
    Object.assign(newWeights, built.weights);
    x = names.add2;
  }
  const out = x;

  // Splice: renamed graph, new nodes right after x0, x0's other readers read the last new block.
  const inNew = new Set(newNodes.map((n) => n.name));
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    const renamed = { ...structuredClone(n), name: rn(n.name), inputs: n.inputs.map(rn) };
    if (!inNew.has(renamed.name)) renamed.inputs = renamed.inputs.map((i) => (i === rn(x0) ? out : i));
    nodes.push(renamed);
    if (n.name === x0) nodes.push(...newNodes);
  }
  const g: Graph = { ...structuredClone({ ...graph, nodes: [] }), nodes, output: rn(graph.output) };

  const w: Weights = {};
  const tensorMaps: Record<string, TensorMap> = {};
  for (const [key, t] of Object.entries(weights)) {
    const slash = key.indexOf('/');
    const k2 = `${rn(key.slice(0, slash))}${key.slice(slash)}`;
    w[k2] = { shape: [...t.shape], data: new Float32Array(t.data) };
    tensorMaps[k2] = { kind: 'same', from: key };
  }
  for (const [key, t] of Object.entries(newWeights)) { w[key] = t; tensorMaps[key] = { kind: 'new' }; }
  const info2 = analyzeGraph(g);
  validateWeights(g, w, 'deepen: student weights', info2);

  const changes: TransformChange[] = newNames.map((names) => ({ node: names.attn, what: `inserted ${method === 'r2r' ? 'an R2DeeperR zero-output (paired)' : method === 'netmorph' ? 'a NetMorph zero-output-projection' : 'a randomly initialised'} block (${ref.attn.heads} heads x ${ref.attn.keyDim}, MLP ${ref.fc.units}) after '${rn(x0)}'` }));
  for (const [from, to] of rename) changes.push({ node: to, what: `renamed from '${from}'` });
  const notes: string[] = [];
  if (method === 'random') notes.push('random padding: a baseline, not function-preserving');
  if (method === 'r2r') notes.push('R2DeeperR: the paired heads and units cancel to float rounding (no batch norm here, so training mode is no worse than inference)');
  return {
    graph: g, weights: w, tensorMaps,
    report: {
      transform: 'deepen', method, exact: method === 'random' ? { inference: false, training: false } : { inference: true, training: true },
      changes, tensorsChanged: Object.keys(newWeights), paramsBefore: countParams(graph, info), paramsAfter: countParams(g, info2), notes,
    },
  };
}

/** One new block reading `x`, shaped like `ref`. */
function buildBlock(
  ref: TransformerBlock, weights: Weights, D: number, x: string, names: Record<(typeof ZOO_BLOCK_PARTS)[number], string>,
  method: BlockDeepenMethod, init: InitOptions, rng: Rng,
): { nodes: Node[]; weights: Weights } {
  const { heads: H, keyDim: K } = ref.attn, F = ref.fc.units;
  const w: Weights = {};
  const refT = (node: string, param: string): Tensor => weights[`${node}/${param}`];
  /** Free values shaped like `shape`, drawn against `reference`; `copy` takes its first slices along `axis`. */
  const freeT = (reference: Tensor, shape: number[], axis: number, fanIn: number): Float32Array => {
    let u: Float32Array;
    if (init.method === 'copy') u = firstSlices(reference, axis, shape[axis], init.scale ?? 1);
    else u = sampleFree(sizeOf(shape), init, { reference: reference.data, fanIn }, rng);
    return addNoise(u, init.noise, rng);
  };
  const layerNorm = (name: string, eps: number): Node => {
    w[`${name}/gamma`] = tensor([D], new Float32Array(D).fill(1));
    w[`${name}/beta`] = tensor([D]);
    return { kind: 'layerNorm', name, inputs: [], epsilon: eps };
  };

  // Attention: q, k, v kernels [D, H, K]; r2r pairs heads j and j + H/2 (equal U).
  for (const p of ['query', 'key', 'value']) {
    const r = refT(ref.attn.name, `${p}Kernel`);
    w[`${names.attn}/${p}Kernel`] = tensor([D, H, K], method === 'r2r' ? pairAlong([D, H / 2, K], 1, freeT(r, [D, H / 2, K], 1, D), false) : freeT(r, [D, H, K], 1, D));
    if (ref.attn.useBias) w[`${names.attn}/${p}Bias`] = tensor([H, K]);
  }
  const ro = refT(ref.attn.name, 'outputKernel');
  w[`${names.attn}/outputKernel`] = tensor([H, K, D],
    method === 'r2r' ? pairAlong([H / 2, K, D], 0, freeT(ro, [H / 2, K, D], 0, H * K), true)
      : method === 'netmorph' ? new Float32Array(H * K * D) : freeT(ro, [H, K, D], 0, H * K));
  if (ref.attn.useBias) w[`${names.attn}/outputBias`] = tensor([D]);

  // MLP: fc [D, F] columns paired (r2r), proj [F, D] rows [V ; -V] (r2r) or zero (netmorph).
  const rf = refT(ref.fc.name, 'kernel'), rp = refT(ref.proj.name, 'kernel');
  w[`${names.fc}/kernel`] = tensor([D, F], method === 'r2r' ? pairAlong([D, F / 2], 1, freeT(rf, [D, F / 2], 1, D), false) : freeT(rf, [D, F], 1, D));
  if (ref.fc.useBias) w[`${names.fc}/bias`] = tensor([F]);
  w[`${names.proj}/kernel`] = tensor([F, D],
    method === 'r2r' ? pairAlong([F / 2, D], 0, freeT(rp, [F / 2, D], 0, F), true)
      : method === 'netmorph' ? new Float32Array(F * D) : freeT(rp, [F, D], 0, F));
  if (ref.proj.useBias) w[`${names.proj}/bias`] = tensor([D]);

  const ln1 = { ...layerNorm(names.ln1, ref.ln1.epsilon), inputs: [x] };
  const ln2 = { ...layerNorm(names.ln2, ref.ln2.epsilon), inputs: [names.add1] };
  const nodes: Node[] = [
    ln1,
    { ...structuredClone(ref.attn), name: names.attn, inputs: [names.ln1] },
    { kind: 'add', name: names.add1, inputs: [x, names.attn] },
    ln2,
    { ...structuredClone(ref.fc), name: names.fc, inputs: [names.ln2] },
    { ...structuredClone(ref.act), name: names.act, inputs: [names.fc] },
    { ...structuredClone(ref.proj), name: names.proj, inputs: [names.act] },
    { kind: 'add', name: names.add2, inputs: [names.add1, names.proj] },
  ];
  return { nodes, weights: w };
}

/**
 * `u` (shape `half`) stacked twice along `axis`: `[u, u]`, or `[u, -u]` when `negate` (the
 * second copy of a pair cancels the first).
 */
function pairAlong(half: number[], axis: number, u: Float32Array, negate: boolean): Float32Array {
  const outer = sizeOf(half.slice(0, axis)), len = half[axis], inner = sizeOf(half.slice(axis + 1));
  const out = new Float32Array(2 * u.length);
  for (let o = 0; o < outer; o++) {
    const src = u.subarray(o * len * inner, (o + 1) * len * inner);
    out.set(src, o * 2 * len * inner);
    const second = out.subarray((o * 2 + 1) * len * inner, (o * 2 + 2) * len * inner);
    second.set(src);
    if (negate) for (let i = 0; i < second.length; i++) second[i] = -second[i];
  }
  return out;
}

/** The first `k` slices of `t` along `axis`, times `scale` (init 'copy'). */
function firstSlices(t: Tensor, axis: number, k: number, scale: number): Float32Array {
  const outer = sizeOf(t.shape.slice(0, axis)), len = t.shape[axis], inner = sizeOf(t.shape.slice(axis + 1));
  const out = new Float32Array(outer * k * inner);
  for (let o = 0; o < outer; o++) for (let i = 0; i < k * inner; i++) out[o * k * inner + i] = t.data[o * len * inner + i] * scale;
  return out;
}
