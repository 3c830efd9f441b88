/**
 * Widening (SPEC section 2): grow channel groups from C to C + E channels, new channels at the
 * end of every volume's channel axis, by R2WiderR (widen_r2r.ts), Net2WiderNet
 * (widen_net2net.ts), NetMorph (widen_netmorph.ts) or random padding (widen_random.ts).
 * This file picks the groups, runs one method per group (widen_core.ts applies it) and writes
 * the report and the tensor maps. Pure: inputs are never mutated, no engine, no I/O.
 */
import { TransformError } from '../errors.ts';
import { analyzeGroups, describeGroup, type GroupAnalysis } from '../groups/analyze.ts';
import type { ChannelGroup } from '../groups/group.ts';
import { analyzeGraph, countParams } from '../ir/graph.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { validateWeights } from '../ir/weights.ts';
import { Rng } from '../rng.ts';
import type { InitOptions } from './init.ts';
import type { AxisMap, TensorMap, TransformChange, TransformResult } from './types.ts';
import { affectedGroups, applyRule, type WidenContext, type WidenRule } from './widen_core.ts';

/**
 * Node kinds whose channel axes the widening rules know. A group that touches another kind
 * (embedding, position embedding, attention) is refused, never widened wrongly.
 */
const WIDEN_KINDS: ReadonlySet<string> = new Set(['conv2d', 'dense', 'batchNorm', 'activation', 'maxPool', 'avgPool', 'globalAvgPool', 'dropout', 'flatten', 'add', 'concat']);

/** The first node of a group (or a group derived from it) whose kind widening does not handle. */
function unsupportedNode(graph: Graph, analysis: GroupAnalysis, group: ChannelGroup): { node: string; kind: string } | undefined {
  const kinds = new Map(graph.nodes.map((n) => [n.name, n.kind]));
  for (const g of affectedGroups(analysis, group)) {
    for (const name of [...g.producers, ...g.consumers.map((c) => c.node), ...g.channelOps.map((o) => o.node)]) {
      if (!WIDEN_KINDS.has(kinds.get(name)!)) return { node: name, kind: kinds.get(name)! };
    }
  }
  return undefined;
}
import { net2netRule } from './widen_net2net.ts';
import { netmorphRule } from './widen_netmorph.ts';
import { r2rRule } from './widen_r2r.ts';
import { randomRule } from './widen_random.ts';

export type WidenMethod = 'r2r' | 'net2net' | 'netmorph' | 'random';
export const WIDEN_METHODS: readonly WidenMethod[] = ['r2r', 'net2net', 'netmorph', 'random'];

export interface WidenOptions {
  method: WidenMethod;
  /** A node name: widen the group holding that node's output; or 'all' (default): every widenable hidden group. */
  at?: string | 'all';
  /** New C = round(C * factor); 1.5 is the paper's widen. Default 1.5 when neither factor nor add is given. */
  factor?: number;
  /** Or add E channels to each widened group. */
  add?: number;
  init?: InitOptions;
  /** Default 'producers' (U = 0, V free); 'consumers' = U free, V = 0. */
  netmorphZeroSide?: 'producers' | 'consumers';
  /** Default 0; one seed gives the same student bit for bit. */
  seed?: number;
}

export function ruleFor(ctx: WidenContext, opts: WidenOptions): WidenRule {
  switch (opts.method) {
    case 'r2r': return r2rRule(ctx);
    case 'net2net': return net2netRule(ctx);
    case 'netmorph': return netmorphRule(ctx, opts.netmorphZeroSide ?? 'producers');
    case 'random': return randomRule(ctx);
  }
}

function exactness(opts: WidenOptions): { inference: boolean; training: boolean } {
  const noisy = (opts.init?.noise ?? 0) > 0;
  switch (opts.method) {
    case 'r2r': case 'netmorph': return { inference: true, training: true }; // noise goes on free values only
    case 'net2net': return { inference: !noisy, training: !noisy }; // noise on copies breaks the 1/n_c sum
    case 'random': return { inference: false, training: false };
  }
}

export function widen(graph: Graph, weights: Weights, opts: WidenOptions): TransformResult {
  const { method, at = 'all', init = {}, seed = 0 } = opts;
  if (!WIDEN_METHODS.includes(method)) throw new TransformError(`widen: unknown method ${JSON.stringify(method)}; expected one of ${WIDEN_METHODS.join(', ')}`);
  if (opts.factor !== undefined && opts.add !== undefined) throw new TransformError(`widen: give either factor (${opts.factor}) or add (${opts.add}), not both`);
  if (opts.factor !== undefined && !(Number.isFinite(opts.factor) && opts.factor > 1)) throw new TransformError(`widen: factor must be a number > 1, got ${JSON.stringify(opts.factor)}`);
  if (opts.add !== undefined && !(Number.isInteger(opts.add) && opts.add >= 1)) throw new TransformError(`widen: add must be a positive integer, got ${JSON.stringify(opts.add)}`);
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'widen: weights', info);
  const analysis = analyzeGroups(graph, info);
  const extra = (g: ChannelGroup) => opts.add ?? Math.round(g.size * (opts.factor ?? 1.5)) - g.size;

  // Targets are named by their first volume, which survives widening (groups keep their structure).
  const notes: string[] = [];
  let targets: ChannelGroup[];
  if (at === 'all') {
    for (const g of analysis.groups.filter((x) => x.coupled.length && !x.containsInput && !x.feedsOutput && !x.derivedFrom.length)) {
      notes.push(`skipped ${describeGroup(g)}: coupled by ${g.coupled[0].node} (${g.coupled[0].reason})`);
    }
    for (const g of analysis.groups.filter((x) => x.widenable && unsupportedNode(graph, analysis, x))) {
      const u = unsupportedNode(graph, analysis, g)!;
      notes.push(`skipped ${describeGroup(g)}: node '${u.node}' (${u.kind}) is not handled by channel-wise widening`);
    }
    targets = analysis.groups.filter((g) => g.widenable && !unsupportedNode(graph, analysis, g));
    if (targets.length === 0) throw new TransformError(`widen: '${graph.name ?? 'graph'}' has no widenable channel group (every group holds the input, feeds the logits, is coupled by a layer norm or touches a kind widening does not handle)`);
    for (const g of targets.filter((t) => extra(t) < 1)) notes.push(`skipped ${describeGroup(g)}: factor ${opts.factor} adds no channel`);
    targets = targets.filter((t) => extra(t) >= 1);
    if (targets.length === 0) throw new TransformError(`widen: factor ${opts.factor} adds no channel to any group of '${graph.name ?? 'graph'}'; use a larger factor or add`);
  } else {
    targets = [targetGroup(graph, analysis, at)];
    if (extra(targets[0]) < 1) throw new TransformError(`widen: factor ${opts.factor} adds no channel to ${describeGroup(targets[0])}; use a larger factor or add`);
  }

  const rng = new Rng(seed);
  let g = graph, w = weights;
  let maps: Record<string, TensorMap> = Object.fromEntries(Object.keys(weights).map((k) => [k, { kind: 'same', from: k } as TensorMap]));
  const changes: TransformChange[] = [];
  const changed = new Set<string>();
  for (const target of targets) {
    const a = analyzeGroups(g);
    const group = a.groups[a.groupOf.get(target.volumes[0])!];
    const E = extra(target);
    const ctx: WidenContext = { graph: g, analysis: a, group, affected: affectedGroups(a, group), C: group.size, E, init, rng };
    const step = applyRule(ctx, w, ruleFor(ctx, opts));
    g = step.graph; w = step.weights;
    maps = composeMaps(maps, step.tensorMaps);
    changes.push(...step.changes);
    step.tensorsChanged.forEach((k) => changed.add(k));
    notes.push(`widened ${describeGroup(group)} by ${E} to ${group.size + E}`);
    if (method === 'r2r' || method === 'net2net') notes.push(...dropoutNotes(g, ctx, method));
  }

  return {
    graph: g,
    weights: w,
    tensorMaps: maps,
    report: {
      transform: 'widen', method, exact: exactness(opts), changes, tensorsChanged: [...changed].sort(),
      paramsBefore: countParams(graph, info), paramsAfter: countParams(g), notes,
    },
  };
}

/**
 * Dropout masks every channel independently, so in training mode with dropout active the new
 * channels of R2WiderR (pairs) or Net2WiderNet (copies) no longer cancel or sum back: the student
 * equals the teacher with dropout off (and in inference), not per random mask. Says so, per dropout.
 */
function dropoutNotes(graph: Graph, ctx: WidenContext, method: 'r2r' | 'net2net'): string[] {
  const rate = new Map(graph.nodes.flatMap((n) => (n.kind === 'dropout' ? [[n.name, n.rate] as const] : [])));
  const active = ctx.affected.flatMap((grp) => grp.channelOps).filter((op) => op.kind === 'dropout' && (rate.get(op.node) ?? 0) > 0).map((op) => `'${op.node}' (rate ${rate.get(op.node)})`);
  if (active.length === 0) return [];
  return [`${method === 'r2r' ? 'R2WiderR' : 'Net2WiderNet'}: dropout ${active.join(', ')} masks ${describeGroup(ctx.group)}; in training mode with dropout active, the new ${method === 'r2r' ? 'paired' : 'copied'} channels get masks independent of their ${method === 'r2r' ? 'partners' : 'originals'}, so the student differs from the teacher per batch. Exact in inference and in training mode with dropout off (what r2r verify compares)`];
}

function targetGroup(graph: Graph, analysis: GroupAnalysis, at: string): ChannelGroup {
  const id = analysis.groupOf.get(at);
  if (id === undefined) throw new TransformError(`widen: no node named '${at}'; pass a node whose output group to widen (e.g. ${analysis.groups.filter((g) => g.widenable).slice(0, 3).map((g) => `'${g.volumes[0]}'`).join(', ')}) or 'all'`);
  const g = analysis.groups[id];
  if (g.derivedFrom.length) {
    const d = g.derivedFrom[0];
    const srcs = d.kind === 'flatten' ? [d.group] : d.segments.map((s) => s.group);
    throw new TransformError(`widen: '${at}' is in ${describeGroup(g)}, whose channels are a ${d.kind} ('${d.node}') of group(s) ${[...new Set(srcs)].join(', ')}; widen those groups instead`);
  }
  if (g.containsInput) throw new TransformError(`widen: '${at}' is in ${describeGroup(g)}, which holds the network input (or a volume derived from it): its channel count is fixed by the data`);
  if (g.feedsOutput) throw new TransformError(`widen: '${at}' is in ${describeGroup(g)}, which feeds the output logits of '${graph.output}': its channel count is the number of classes`);
  if (g.coupled.length) {
    const c = g.coupled[0];
    throw new TransformError(`widen: '${at}' is in ${describeGroup(g)}, which is coupled by '${c.node}': ${c.reason}; channel-wise widening (R2R, Net2Net, NetMorph) cannot preserve the function; for a transformer's residual stream use the width transform (every channel duplicated: exact)`);
  }
  const u = unsupportedNode(graph, analysis, g);
  if (u) throw new TransformError(`widen: '${at}' is in ${describeGroup(g)}, which node '${u.node}' (${u.kind}) reads or writes; channel-wise widening does not handle ${u.kind} yet`);
  return g;
}

/** step ∘ prev: maps from the new student's tensors to the original teacher's. */
export function composeMaps(prev: Record<string, TensorMap>, step: Record<string, TensorMap>): Record<string, TensorMap> {
  const out: Record<string, TensorMap> = {};
  for (const [key, m] of Object.entries(step)) {
    if (m.kind === 'new') { out[key] = m; continue; }
    const p = prev[m.from];
    if (!p) throw new TransformError(`widen: internal: no provenance for '${m.from}'`);
    if (m.kind === 'same' || p.kind === 'new') { out[key] = p; continue; }
    if (p.kind === 'same') { out[key] = { kind: 'gather', from: p.from, axes: m.axes }; continue; }
    const axes: AxisMap[] = [];
    for (const outer of m.axes) {
      const inner = p.axes.find((x) => x.axis === outer.axis);
      if (!inner) { axes.push(outer); continue; }
      const source = outer.source.map((s) => (s < 0 ? -1 : inner.source[s]));
      const scale = Float32Array.from(outer.source, (s, i) => (s < 0 ? 1 : (outer.scale?.[i] ?? 1) * (inner.scale?.[s] ?? 1)));
      const m: AxisMap = scale.some((v) => v !== 1) ? { axis: outer.axis, source, scale } : { axis: outer.axis, source };
      if (outer.gradScale || inner.gradScale) {
        // Each side's gradient factor defaults to its weight factor (see AxisMap.gradScale).
        const g = (x: AxisMap, i: number) => (x.gradScale ?? x.scale)?.[i] ?? 1;
        m.gradScale = Float32Array.from(outer.source, (s, i) => (s < 0 ? 1 : g(outer, i) * g(inner, s)));
      }
      axes.push(m);
    }
    for (const inner of p.axes) if (!m.axes.some((x) => x.axis === inner.axis)) axes.push(inner);
    out[key] = { kind: 'gather', from: p.from, axes: axes.sort((a, b) => a.axis - b.axis) };
  }
  return out;
}
