/**
 * Widening a transformer's residual stream, the model width D (issue 10, item 3).
 *
 * The stream is one channel group (embeddings, position table, every residual add, every layer
 * norm's input and output), and layer norm is not channel-wise: new channels change its mean and
 * variance, so pairs, zeros or a few copies do not preserve the function. What does: replicating
 * every channel the same number of times n. With x' = [x, x, ..., x] (n copies) the mean and the
 * biased variance over nD channels equal those over D, so LayerNorm(x') = [LN(x), ..., LN(x)]
 * when gamma and beta are replicated too. Hence, for D -> nD:
 *
 * - producers of the stream (token and position embeddings, attention output kernel and bias,
 *   the MLP's second dense) replicate their columns: `[e, e]`, `[W, W]`, `[b, b]`;
 * - layer norms replicate gamma and beta;
 * - consumers (query/key/value kernels, the MLP's first dense, the LM head) read n copies, so
 *   their rows are divided by n: `[W/n ; W/n]` (Net2WiderNet with every channel copied once,
 *   `method: 'net2net'`, any integer n);
 * - `method: 'r2r'` (n = 2) adds the pairing trick on the consumers' side: rows
 *   `[W/2 + V ; W/2 - V]` with V free, so `x (W/2 + V) + x (W/2 - V) = x W`. Still exact, and the
 *   two copies of a channel now get different gradients: the duplicated model does not stay
 *   duplicated (plain duplication does, forever, since the copies stay symmetric).
 *
 * `netmorph` (new channels zero where produced, new layer norm gamma and beta 0, consumers' new
 * rows free) and `random` (everything new free, new gamma 1, beta 0) are accepted for any factor
 * and reported inexact: the zero or random channels change every layer norm's statistics.
 *
 * Optimizer state (AxisMap.gradScale): on the duplicated model every copy of a stream channel
 * gets 1/n of the gradient its source got (the stream's gradient splits over the copies), while
 * a row divided by n keeps its full gradient. So replicated producer / layer-norm entries carry
 * m/n and v/n^2, divided rows carry m and v unchanged: every entry then takes the Adam step its
 * source would take. (Adam cannot do better: both halves W/2 of a row step like W, so their sum
 * moves twice as far; the report notes it.)
 */
import { TransformError } from '../../errors.ts';
import { analyzeGroups, describeGroup } from '../../groups/analyze.ts';
import type { ChannelGroup } from '../../groups/group.ts';
import { kindHandler } from '../../groups/kinds/registry.ts';
import { analyzeGraph, countParams } from '../../ir/graph.ts';
import { sizeOf } from '../../ir/shapes.ts';
import type { Graph, Node, Tensor, Weights } from '../../ir/types.ts';
import { cloneWeights, validateWeights } from '../../ir/weights.ts';
import { Rng } from '../../rng.ts';
import type { InitOptions } from '../init.ts';
import type { AxisMap, TensorMap, TransformChange, TransformResult } from '../types.ts';
import { composeMaps, WIDEN_METHODS, type WidenMethod } from '../widen.ts';
import { free, freeBias } from '../widen_core.ts';

export interface WidthOptions {
  method: WidenMethod;
  /** New D = round(D * factor); default 2. Exact methods need an integer (r2r: exactly 2). */
  factor?: number;
  /** Or add E channels (netmorph, random; net2net when E is a multiple of D). */
  add?: number;
  /** A node on the stream to widen; default: every layer-norm-coupled stream of the graph. */
  at?: string;
  init?: InitOptions;
  seed?: number;
}

/** How one entry of a grown axis is made. */
type Fill =
  | { kind: 'copy'; from: number; scale: number; grad: number }
  | { kind: 'value'; values: Float32Array };

export function widenStream(graph: Graph, weights: Weights, opts: WidthOptions): TransformResult {
  const { method, init = {}, seed = 0 } = opts;
  if (!WIDEN_METHODS.includes(method)) throw new TransformError(`width: unknown method ${JSON.stringify(method)}; expected one of ${WIDEN_METHODS.join(', ')}`);
  if (opts.factor !== undefined && opts.add !== undefined) throw new TransformError(`width: give either factor (${opts.factor}) or add (${opts.add}), not both`);
  if (opts.factor !== undefined && !(Number.isFinite(opts.factor) && opts.factor > 1)) throw new TransformError(`width: factor must be a number > 1, got ${JSON.stringify(opts.factor)}`);
  if (opts.add !== undefined && !(Number.isInteger(opts.add) && opts.add >= 1)) throw new TransformError(`width: add must be a positive integer, got ${JSON.stringify(opts.add)}`);
  if ((init.noise ?? 0) !== 0) throw new TransformError(`width: init noise is not supported (got ${init.noise}): noise on the copies would break the layer norms' statistics; r2r breaks the symmetry exactly instead`);
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'width: weights', info);
  const analysis = analyzeGroups(graph, info);

  let targets: ChannelGroup[];
  if (opts.at !== undefined) {
    const id = analysis.groupOf.get(opts.at);
    if (id === undefined) throw new TransformError(`width: no node named '${opts.at}'`);
    targets = [analysis.groups[id]];
  } else {
    targets = analysis.groups.filter((g) => g.coupled.length > 0 && !g.containsInput && !g.feedsOutput && g.derivedFrom.length === 0);
    if (targets.length === 0) throw new TransformError(`width: '${graph.name ?? 'graph'}' has no residual stream (no channel group read by a layer norm); widen channel groups with the widen transform instead`);
  }
  const newSize = (g: ChannelGroup) => opts.add !== undefined ? g.size + opts.add : Math.round(g.size * (opts.factor ?? 2));
  for (const g of targets) {
    if (g.containsInput) throw new TransformError(`width: ${describeGroup(g)} holds the network input; its width is fixed by the data`);
    if (g.feedsOutput) throw new TransformError(`width: ${describeGroup(g)} feeds the logits; its width is the vocabulary`);
    if (g.derivedFrom.length) throw new TransformError(`width: ${describeGroup(g)} is a concat or flatten of other groups; widen those`);
    if (newSize(g) <= g.size) throw new TransformError(`width: factor ${opts.factor} adds no channel to ${describeGroup(g)}; use a larger factor or add`);
    const n = newSize(g) / g.size;
    if (method === 'net2net' && !Number.isInteger(n)) {
      throw new TransformError(`width net2net: ${describeGroup(g)} would grow to ${newSize(g)} channels, not a whole multiple of ${g.size}. ${g.coupled.length ? `'${g.coupled[0].node}': ${g.coupled[0].reason}; only` : 'Only'} copying every channel the same number of times keeps its mean and variance, so use an integer factor (2, 3, ...), or method netmorph / random (inexact)`);
    }
    if (method === 'r2r' && n !== 2) {
      throw new TransformError(`width r2r: ${describeGroup(g)} would grow by a factor ${n}; R2R duplicates every channel once (x' = [x, x], consumer rows [W/2 + V ; W/2 - V]), the one widening of a layer-normed stream that pairs exactly, so the factor must be 2. Use net2net for other integer factors, or netmorph / random (inexact)`);
    }
  }

  const rng = new Rng(seed);
  let g = graph, w = weights;
  let maps: Record<string, TensorMap> = Object.fromEntries(Object.keys(weights).map((k) => [k, { kind: 'same', from: k } as TensorMap]));
  const changes: TransformChange[] = [], changed = new Set<string>(), notes: string[] = [];
  for (const target of targets) {
    const a = analyzeGroups(g);
    const group = a.groups[a.groupOf.get(target.volumes[0])!];
    const step = widenGroup(g, w, a.groupOf, group, newSize(group), method, init, rng);
    g = step.graph; w = step.weights;
    maps = composeMaps(maps, Object.fromEntries(Object.keys(w).map((k) => [k, step.maps[k] ?? { kind: 'same', from: k } as TensorMap])));
    changes.push(...step.changes);
    step.changed.forEach((k) => changed.add(k));
    notes.push(`widened ${describeGroup(group)} to ${newSize(group)} channels by ${method}`);
  }
  const exact = method === 'net2net' || method === 'r2r' ? { inference: true, training: true } : { inference: false, training: false };
  if (!exact.inference) notes.push(`${method}: not function-preserving: the new channels change every layer norm's mean and variance`);
  if (method === 'net2net' || method === 'r2r') notes.push('Adam state: replicated entries carry m/n and v/n^2, divided consumer rows m and v, so each entry takes its source\'s next step; the n rows W/n of a consumer then move n times as far together');
  const info2 = analyzeGraph(g);
  validateWeights(g, w, 'width: student weights', info2);
  return {
    graph: g, weights: w, tensorMaps: maps,
    report: {
      transform: 'width', method, exact, changes, tensorsChanged: [...changed].sort(),
      paramsBefore: countParams(graph, info), paramsAfter: countParams(g, info2), notes,
    },
  };
}

function widenGroup(
  graph: Graph, weights: Weights, groupOf: Map<string, number>, group: ChannelGroup, D2: number,
  method: WidenMethod, init: InitOptions, rng: Rng,
): { graph: Graph; weights: Weights; maps: Record<string, TensorMap>; changes: TransformChange[]; changed: string[] } {
  const D = group.size, n = D2 / D;
  const inGroup = (v: string) => groupOf.get(v) === group.id;
  const duplicate = method === 'net2net' || method === 'r2r';
  const w = cloneWeights(weights);
  const maps: Record<string, TensorMap> = {};
  const changes: TransformChange[] = [], changed: string[] = [];
  const put = (key: string, t: Tensor, m: AxisMap) => {
    w[key] = t;
    const prev = maps[key];
    maps[key] = { kind: 'gather', from: key, axes: prev?.kind === 'gather' ? [...prev.axes, m].sort((x, y) => x.axis - y.axis) : [m] };
    changed.push(key);
  };

  const nodes: Node[] = graph.nodes.map((node) => {
    const axes = kindHandler(node).axes(node);
    // Consumer rows (input side).
    if (node.inputs.length && inGroup(node.inputs[0]) && axes.in.length) {
      changes.push({ node: node.name, what: `in channels ${D} -> ${D2}` });
      for (const a of axes.in) {
        const key = `${node.name}/${a.param}`;
        const t = w[key];
        const len = sliceLength(t, a.axis), fanIn = sizeOf(t.shape.slice(0, a.axis)) * D2;
        const V = method === 'r2r' ? Array.from({ length: D }, () => free(len, t.data, fanIn, init, rng)) : [];
        const fill = (i: number): Fill => {
          if (duplicate) {
            const from = i % D, copy = Math.floor(i / D);
            if (method === 'net2net') return { kind: 'copy', from, scale: 1 / n, grad: 1 };
            const half = slice(t, a.axis, from).map((v, j) => v / 2 + (copy === 0 ? V[from][j] : -V[from][j])); // [W/2 + V ; W/2 - V]
            return { kind: 'value', values: half };
          }
          if (i < D) return { kind: 'copy', from: i, scale: 1, grad: 1 };
          return { kind: 'value', values: free(len, t.data, fanIn, init, rng) };
        };
        const { tensor, map } = grow(t, a.axis, D2, fill, duplicate ? (i) => i % D : undefined, duplicate ? 1 / n : 1);
        put(key, tensor, map);
      }
    }
    // Producer columns and per-channel parameters (output side).
    if (inGroup(node.name)) {
      if (axes.out.length) changes.push({ node: node.name, what: `${kindHandler(node).relation(node, []) === 'produce' ? 'out channels' : 'channels'} ${D} -> ${D2}` });
      for (const a of axes.out) {
        const key = `${node.name}/${a.param}`;
        const t = w[key];
        const len = sliceLength(t, a.axis);
        const fill = (i: number): Fill => {
          if (duplicate) return { kind: 'copy', from: i % D, scale: 1, grad: 1 / n };
          if (i < D) return { kind: 'copy', from: i, scale: 1, grad: 1 };
          if (node.kind === 'layerNorm') return { kind: 'value', values: new Float32Array(len).fill(a.param === 'gamma' && method === 'random' ? 1 : 0) };
          if (method === 'netmorph') return { kind: 'value', values: new Float32Array(len) };
          const isBias = len === 1 && t.shape.length === 1;
          return { kind: 'value', values: isBias ? freeBias(len, t.data, init, rng) : free(len, t.data, len, init, rng) };
        };
        const { tensor, map } = grow(t, a.axis, D2, fill);
        put(key, tensor, map);
      }
    }
    if (inGroup(node.name)) {
      if (node.kind === 'embedding') return { ...node, dim: D2 };
      if (node.kind === 'dense') return { ...node, units: D2 };
      if (node.kind === 'conv2d') return { ...node, filters: D2 };
    }
    return structuredClone(node);
  });
  return { graph: { ...structuredClone({ ...graph, nodes: [] }), nodes }, weights: w, maps, changes, changed };
}

function sliceLength(t: Tensor, axis: number): number { return sizeOf(t.shape) / t.shape[axis]; }

/** Slice `i` along `axis` (all other axes, row-major). */
function slice(t: Tensor, axis: number, i: number): Float32Array {
  const outer = sizeOf(t.shape.slice(0, axis)), len = t.shape[axis], inner = sizeOf(t.shape.slice(axis + 1));
  const s = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) s.set(t.data.subarray((o * len + i) * inner, (o * len + i + 1) * inner), o * inner);
  return s;
}

/**
 * `t` grown along `axis` to `size` entries, entry i made by `fill(i)`. The map's source is
 * `provenance(i)` when given (r2r rows: W/2 ± V come from row i mod D, at weight scale `provScale`),
 * else the copy's source, or -1 for fresh values.
 */
function grow(t: Tensor, axis: number, size: number, fill: (i: number) => Fill, provenance?: (i: number) => number, provScale = 1): { tensor: Tensor; map: AxisMap } {
  const outer = sizeOf(t.shape.slice(0, axis)), len = t.shape[axis], inner = sizeOf(t.shape.slice(axis + 1));
  const data = new Float32Array(outer * size * inner);
  const source = new Int32Array(size), scale = new Float32Array(size).fill(1), gradScale = new Float32Array(size).fill(1);
  for (let i = 0; i < size; i++) {
    const f = fill(i);
    if (f.kind === 'copy') {
      for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) data[(o * size + i) * inner + j] = t.data[(o * len + f.from) * inner + j] * f.scale;
      source[i] = f.from; scale[i] = f.scale; gradScale[i] = f.grad;
    } else {
      for (let o = 0; o < outer; o++) data.set(f.values.subarray(o * inner, (o + 1) * inner), (o * size + i) * inner);
      source[i] = provenance ? provenance(i) : -1;
      scale[i] = provenance ? provScale : 1;
    }
  }
  const shape = [...t.shape]; shape[axis] = size;
  const map: AxisMap = { axis, source, gradScale };
  if (scale.some((v) => v !== 1)) map.scale = scale;
  return { tensor: { shape, data }, map };
}
