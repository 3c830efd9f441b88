/**
 * Adding heads to attention nodes (issue 10, item 2). The heads of an `attention` node are a
 * channel axis of its own: the query, key and value projections produce them (kernels
 * `[D, H, K]` along H, biases `[H, K]` along H) and the output projection consumes them (kernel
 * `[H, K, D]` along H). So the widening methods apply unchanged, with a head (K values) where a
 * channel was (one value), and each method reads as in SPEC section 2:
 *
 * - R2R: new heads in equal pairs, `Wq' = [Wq, U_q, U_q]` (likewise k, v, and their biases), so
 *   the two heads of a pair compute the same output o_L = o_R; the output projection gets rows
 *   `[V ; -V]` for the pair, so `V o_L - V o_R = 0`.
 * - Net2Net: new head j copies head g(j) (q, k, v and biases); the output rows of head c (the
 *   original and its copies) are divided by their count n_c.
 * - NetMorph: zero values (producers' side, the default: `Wv`, `bv` of the new heads are zero,
 *   so the heads output 0; their q and k are zero too, as the rule zeroes every producer) or
 *   zero output rows (consumers' side).
 * - random: every new value free (the baseline).
 *
 * The score scale 1/sqrt(K) depends on the head size K only, which does not change.
 * Exact in inference and training mode (no batch statistics) except random, and Net2Net with
 * noise.
 */
import { TransformError } from '../../errors.ts';
import { analyzeGroups } from '../../groups/analyze.ts';
import type { ChannelGroup } from '../../groups/group.ts';
import { analyzeGraph, countParams } from '../../ir/graph.ts';
import type { Graph, Node, NodeOf, Tensor, Weights } from '../../ir/types.ts';
import { cloneWeights, validateWeights } from '../../ir/weights.ts';
import { Rng } from '../../rng.ts';
import type { InitOptions } from '../init.ts';
import type { AxisMap, TensorMap, TransformChange, TransformResult } from '../types.ts';
import { ruleFor, WIDEN_METHODS, type WidenMethod } from '../widen.ts';
import { rebuild, source, type Layout, type WidenContext } from '../widen_core.ts';

export interface HeadsOptions {
  method: WidenMethod;
  /** An attention node, or 'all' (default): every attention node. */
  at?: string | 'all';
  /** Heads to add to each node. */
  add?: number;
  /** Or new H = round(H * factor). Default: factor 2 when neither is given. */
  factor?: number;
  init?: InitOptions;
  /** NetMorph: 'producers' (default) zeroes the new heads' q/k/v, 'consumers' their output rows. */
  netmorphZeroSide?: 'producers' | 'consumers';
  seed?: number;
}

const PROJECTIONS = ['query', 'key', 'value'] as const;

export function addHeads(graph: Graph, weights: Weights, opts: HeadsOptions): TransformResult {
  const { method, at = 'all', init = {}, seed = 0 } = opts;
  if (!WIDEN_METHODS.includes(method)) throw new TransformError(`heads: unknown method ${JSON.stringify(method)}; expected one of ${WIDEN_METHODS.join(', ')}`);
  if (opts.factor !== undefined && opts.add !== undefined) throw new TransformError(`heads: give either factor (${opts.factor}) or add (${opts.add}), not both`);
  if (opts.factor !== undefined && !(Number.isFinite(opts.factor) && opts.factor > 1)) throw new TransformError(`heads: factor must be a number > 1, got ${JSON.stringify(opts.factor)}`);
  if (opts.add !== undefined && !(Number.isInteger(opts.add) && opts.add >= 1)) throw new TransformError(`heads: add must be a positive integer, got ${JSON.stringify(opts.add)}`);
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'heads: weights', info);
  const attns = graph.nodes.filter((n): n is NodeOf<'attention'> => n.kind === 'attention');
  if (attns.length === 0) throw new TransformError(`heads: '${graph.name ?? 'graph'}' has no attention node`);
  let targets = attns;
  if (at !== 'all') {
    const n = graph.nodes.find((x) => x.name === at);
    if (!n) throw new TransformError(`heads: no node named '${at}'; attention nodes are ${attns.map((a) => `'${a.name}'`).join(', ')}`);
    if (n.kind !== 'attention') throw new TransformError(`heads: '${at}' is a ${n.kind} node, not attention; attention nodes are ${attns.map((a) => `'${a.name}'`).join(', ')}`);
    targets = [n];
  }
  const extra = (h: number) => opts.add ?? Math.round(h * (opts.factor ?? 2)) - h;
  // Validate every target before the first change.
  for (const n of targets) {
    const E = extra(n.heads);
    if (E < 1) throw new TransformError(`heads: factor ${opts.factor} adds no head to '${n.name}' (${n.heads} heads); use a larger factor or add`);
    if (method === 'r2r' && E % 2 !== 0) throw new TransformError(`heads r2r: '${n.name}' would gain ${E} heads; R2R adds heads in equal pairs, so the increase must be even (try ${E + 1}${E > 1 ? ` or ${E - 1}` : ''})`);
  }

  const rng = new Rng(seed);
  const analysis = analyzeGroups(graph, info);
  const w = cloneWeights(weights);
  const tensorMaps: Record<string, TensorMap> = Object.fromEntries(Object.keys(weights).map((k) => [k, { kind: 'same', from: k } as TensorMap]));
  const changes: TransformChange[] = [], tensorsChanged: string[] = [];
  const targetNames = new Set(targets.map((t) => t.name));
  const nodes: Node[] = graph.nodes.map((n) => structuredClone(n));

  for (const [i, node] of graph.nodes.entries()) {
    if (node.kind !== 'attention' || !targetNames.has(node.name)) continue;
    const H = node.heads, E = extra(H), K = node.keyDim;
    const layout: Layout = [
      ...Array.from({ length: H }, (_, c) => ({ old: c, c, t: -1, pos: '' })),
      ...Array.from({ length: E }, (_, t) => ({ old: -1, c: -1, t, pos: '' })),
    ];
    const news = layout.slice(H);
    // The heads as a channel group of their own, for the rules (they read size and label only).
    const group: ChannelGroup = {
      id: -1, label: `${node.name} heads`, size: H, volumes: [], producers: [], consumers: [], channelOps: [], adds: [],
      derivedFrom: [], derivedGroups: [], containsInput: false, feedsOutput: false, coupled: [], widenable: true,
    };
    const ctx: WidenContext = { graph, analysis, group, affected: [], C: H, E, init, rng };
    const rule = ruleFor(ctx, { method, netmorphZeroSide: opts.netmorphZeroSide });
    const put = (param: string, t: Tensor, map: AxisMap) => {
      const key = `${node.name}/${param}`;
      w[key] = t;
      tensorMaps[key] = { kind: 'gather', from: key, axes: [map] };
      tensorsChanged.push(key);
    };
    const producerMaps: AxisMap[] = [];
    for (const p of PROJECTIONS) {
      const kernel = source(weights[`${node.name}/${p}Kernel`], `${p}Kernel`, 1);
      const bias = node.useBias ? source(weights[`${node.name}/${p}Bias`], `${p}Bias`, 0) : undefined;
      const r = rule.producer({ node, layout, news, kernel, bias });
      const k = rebuild(kernel.tensor, 1, layout, r.kernel);
      put(`${p}Kernel`, k.tensor, k.map); producerMaps.push(k.map);
      if (bias && r.bias) {
        const b = rebuild(bias.tensor, 0, layout, r.bias);
        put(`${p}Bias`, b.tensor, b.map); producerMaps.push(b.map);
      }
    }
    const out = source(weights[`${node.name}/outputKernel`], 'outputKernel', 0);
    const r = rule.consumer({ node, layout, news, kernel: out, fanIn: (H + E) * K });
    const o = rebuild(out.tensor, 0, layout, r.rows, r.oldScale);
    put('outputKernel', o.tensor, o.map);
    if (rule.gradScale) {
      // Net2Net: head c and its copies share one head's gradient (1/n_c each); the output rows,
      // divided by n_c, keep their full gradient (see AxisMap.gradScale).
      for (const m of producerMaps) m.gradScale = Float32Array.from(layout, (e) => rule.gradScale!.out(e));
      o.map.gradScale = Float32Array.from(layout, (e) => rule.gradScale!.in(e));
    }
    nodes[i] = { ...node, heads: H + E };
    changes.push({ node: node.name, what: `heads ${H} -> ${H + E}` });
  }

  const g: Graph = { ...structuredClone({ ...graph, nodes: [] }), nodes };
  const info2 = analyzeGraph(g);
  validateWeights(g, w, 'heads: student weights', info2);
  const noisy = (init.noise ?? 0) > 0;
  const exact = method === 'random' || (method === 'net2net' && noisy) ? { inference: false, training: false } : { inference: true, training: true };
  const notes = [`added heads to ${targets.length} attention node(s) by ${method}`];
  if (method === 'random') notes.push('random padding: a baseline, not function-preserving');
  if (init.method === 'copy' && method === 'r2r') notes.push("init 'copy': each projection of a new pair copies a head drawn on its own (q, k and v may copy different heads)");
  return {
    graph: g, weights: w, tensorMaps,
    report: {
      transform: 'heads', method, exact, changes, tensorsChanged,
      paramsBefore: countParams(graph, info), paramsAfter: countParams(g, info2), notes,
    },
  };
}
