/**
 * The machinery shared by every widening method: where the new channels of one group land in
 * every volume (its layout), and the gathering of each affected tensor along its channel axes.
 * A method (widen_r2r.ts, widen_net2net.ts, widen_netmorph.ts, widen_random.ts) only says what
 * the new slices hold; this file applies them, one kind-handler call per node.
 *
 * Layout: widening group G from C to C + E appends E channels to G's channel axis. A volume
 * derived from G (concat, flatten) gets those channels at the mapped positions: after G's
 * segment for concat, after the C channels of every spatial position for flatten. Each entry of
 * a widened axis records where it comes from (`old`), which of G's channels it carries (`c` for
 * old, `t` for new) and in which copy of G's axis it sits (`pos`): the concat segment and/or
 * spatial position. Methods key their free values by (pos, t), so a paired channel stays paired
 * at every position.
 */
import { TransformError } from '../errors.ts';
import type { GroupAnalysis } from '../groups/analyze.ts';
import { describeGroup } from '../groups/analyze.ts';
import type { ChannelGroup, Derivation } from '../groups/group.ts';
import { kindHandler } from '../groups/kinds/registry.ts';
import { sizeOf } from '../ir/shapes.ts';
import type { Graph, Node, Tensor, Weights } from '../ir/types.ts';
import type { Rng } from '../rng.ts';
import { addNoise, sampleFree, stdOf, type InitOptions } from './init.ts';
import type { AxisMap, TensorMap, TransformChange } from './types.ts';

/** One entry of a widened channel axis. */
export interface Entry {
  /** Index in the teacher's axis; -1 for a new channel. */
  old: number;
  /** For an old entry that carries channel c of the widened group: c; else -1. */
  c: number;
  /** For a new entry: which of the group's new channels (0 .. E-1); else -1. */
  t: number;
  /** Which copy of the group's axis the entry sits in: '' in the group, '.k' per concat segment, '@p' per spatial position. */
  pos: string;
}
export type Layout = Entry[];

/** A new slice along a channel axis, and its provenance for the tensor maps. */
export interface NewSlice {
  values: Float32Array;
  /** Old index it copies (Net2Net), or -1 for fresh values. */
  from: number;
  /** Multiplier on the copied old values (Net2Net's 1/n_c); 1 otherwise. */
  scale: number;
}

/** One parameter along its channel axis: read access to the old slices. */
export interface SliceSource {
  param: string;
  axis: number;
  tensor: Tensor;
  /** Length of one slice (the product of the other axes). */
  sliceLength: number;
  slice(i: number): Float32Array;
}

export interface ProducerArgs {
  node: Node;
  /** The producer's output layout and its new entries. */
  layout: Layout;
  news: Entry[];
  /** Output-axis parameters: kernel (filters along the out axis), bias if any. */
  kernel: SliceSource;
  bias?: SliceSource;
}
export interface ChannelOpArgs { node: Node; layout: Layout; news: Entry[]; params: SliceSource[] }
export interface ConsumerArgs {
  node: Node;
  layout: Layout;
  news: Entry[];
  /** Kernel rows along the input-channel axis. */
  kernel: SliceSource;
  /** Fan-in of the widened kernel (everything but the output axis). */
  fanIn: number;
}

/** What one method does to the group; every callback gets the slices it may copy from. */
export interface WidenRule {
  /** New output slices of a producer (conv filters, dense columns; bias entries). */
  producer(a: ProducerArgs): { kernel: NewSlice[]; bias?: NewSlice[] };
  /** New per-channel parameters of a channel-wise op (BN: gamma, beta, movingMean, movingVariance). */
  channelOp(a: ChannelOpArgs): Record<string, NewSlice[]>;
  /** New input rows of a consumer, and a factor on its old rows (Net2Net's 1/n_c). */
  consumer(a: ConsumerArgs): { rows: NewSlice[]; oldScale?: (e: Entry) => number };
  /**
   * Gradient factors of the student's entries against their sources' (AxisMap.gradScale), for
   * methods where they differ from the weight factors: Net2Net's copies of channel c share its
   * gradient (1/n_c on the producer and channel-wise side) while a row divided by n_c keeps a
   * full gradient. Absent: the weight factors serve (1 for fresh or unchanged entries).
   */
  gradScale?: { out(e: Entry): number; in(e: Entry): number };
}

/** What a method is given about the group it widens. */
export interface WidenContext {
  graph: Graph;
  analysis: GroupAnalysis;
  group: ChannelGroup;
  /** Every group whose layout changes: the group and its concat/flatten descendants. */
  affected: ChannelGroup[];
  C: number;
  E: number;
  init: InitOptions;
  rng: Rng;
}

export interface StepResult {
  graph: Graph;
  weights: Weights;
  tensorMaps: Record<string, TensorMap>;
  changes: TransformChange[];
  tensorsChanged: string[];
}

// ---------------------------------------------------------------------------------------------
// Fresh values and slice helpers for the methods.

/** Free values, per the init options: sampleFree (match-std / he), plus optional noise. */
export function free(n: number, reference: Float32Array, fanIn: number, init: InitOptions, rng: Rng): Float32Array {
  return addNoise(sampleFree(n, init, { reference: spreadOf(reference), fanIn }, rng), init.noise, rng);
}

const spreads = new WeakMap<Float32Array, number[]>();
/**
 * A two-value stand-in with the same std as `reference` ([-s, s] has population std s), computed
 * once per kernel: a widen draws many slices against one large kernel.
 */
function spreadOf(reference: Float32Array): number[] {
  let r = spreads.get(reference);
  if (!r) { const s = stdOf(reference); r = [-s, s]; spreads.set(reference, r); }
  return r;
}

/**
 * Free bias values: match the std of the existing biases; zero when those have no spread
 * (a bias is an offset, not a fan-in-scaled weight, so He's scale means nothing for it).
 */
export function freeBias(n: number, reference: Float32Array, init: InitOptions, rng: Rng): Float32Array {
  const spread = spreadOf(reference);
  if (!(spread[1] > 0)) return addNoise(new Float32Array(n), init.noise, rng);
  return addNoise(sampleFree(n, { method: 'match-std', scale: init.scale }, { reference: spread, fanIn: 1 }, rng), init.noise, rng);
}

export const fresh = (values: Float32Array): NewSlice => ({ values, from: -1, scale: 1 });
export const constant = (n: number, v: number): NewSlice => fresh(new Float32Array(n).fill(v));
export const negate = (s: NewSlice): NewSlice => fresh(s.values.map((v) => -v));
export function copyOf(src: SliceSource, from: number, scale = 1): NewSlice {
  const v = src.slice(from);
  if (scale !== 1) for (let i = 0; i < v.length; i++) v[i] *= scale;
  return { values: v, from, scale };
}

/** Memoises one value per key, computed in first-use order (so a seed fixes every draw). */
export function perKey<T>(make: (key: string) => T): (key: string) => T {
  const m = new Map<string, T>();
  return (key) => { if (!m.has(key)) m.set(key, make(key)); return m.get(key)!; };
}

/** Old index of (channel c of the group, copy pos) in a layout. */
export function oldIndexMap(layout: Layout): (c: number, pos: string) => number {
  const m = new Map<string, number>();
  for (const e of layout) if (e.c >= 0) m.set(`${e.c}|${e.pos}`, e.old);
  return (c, pos) => {
    const i = m.get(`${c}|${pos}`);
    if (i === undefined) throw new TransformError(`widen: internal: channel ${c} at '${pos}' not in layout`);
    return i;
  };
}

// ---------------------------------------------------------------------------------------------
// Layouts.

function identity(size: number): Layout {
  return Array.from({ length: size }, (_, i) => ({ old: i, c: -1, t: -1, pos: '' }));
}

/** The layout of every group whose channel axis changes when `group` gains E channels. */
export function layoutsFor(analysis: GroupAnalysis, group: ChannelGroup, E: number): Map<number, Layout> {
  const layouts = new Map<number, Layout>();
  layouts.set(group.id, [
    ...Array.from({ length: group.size }, (_, i) => ({ old: i, c: i, t: -1, pos: '' })),
    ...Array.from({ length: E }, (_, t) => ({ old: -1, c: -1, t, pos: '' })),
  ]);
  const visit = (id: number): void => {
    for (const d of analysis.groups[id].derivedGroups) {
      const target = analysis.groups[d];
      if (layouts.has(d)) continue;
      // Every source of the target must have its layout first (a concat of two descendants).
      const ready = target.derivedFrom.every((der) => sourcesOf(der).every((s) => layouts.has(s) || !isDescendant(analysis, group.id, s)));
      if (!ready) continue;
      const candidates = target.derivedFrom.map((der) => derive(der, (g) => layouts.get(g) ?? identity(analysis.groups[g].size)));
      const key = (l: Layout) => l.map((e) => `${e.old}:${e.t}`).join(',');
      for (let i = 1; i < candidates.length; i++) {
        if (key(candidates[i]) !== key(candidates[0])) {
          throw new TransformError(`widen: ${describeGroup(target)} is made both by '${target.derivedFrom[0].node}' and by '${target.derivedFrom[i].node}', which would place the new channels of ${describeGroup(group)} differently; widen another group`);
        }
      }
      layouts.set(d, candidates[0]);
      visit(d);
    }
  };
  visit(group.id);
  return layouts;
}

function sourcesOf(d: Derivation): number[] {
  return d.kind === 'flatten' ? [d.group] : d.segments.map((s) => s.group);
}

function isDescendant(analysis: GroupAnalysis, root: number, id: number): boolean {
  if (root === id) return true;
  return analysis.groups[root].derivedGroups.some((d) => isDescendant(analysis, d, id));
}

function derive(d: Derivation, layoutOf: (g: number) => Layout): Layout {
  if (d.kind === 'concat') {
    return d.segments.flatMap((s, k) => layoutOf(s.group).map((e) => ({ ...e, old: e.old >= 0 ? e.old + s.offset : -1, pos: `${e.pos}.${k}` })));
  }
  const src = layoutOf(d.group);
  const out: Layout = [];
  for (let p = 0; p < d.spatial; p++) for (const e of src) out.push({ ...e, old: e.old >= 0 ? p * d.channels + e.old : -1, pos: `${e.pos}@${p}` });
  return out;
}

/** Every group whose layout changes: `group` and its concat/flatten descendants, by id. */
export function affectedGroups(analysis: GroupAnalysis, group: ChannelGroup): ChannelGroup[] {
  const seen = new Set<number>();
  const walk = (id: number): void => { if (!seen.has(id)) { seen.add(id); analysis.groups[id].derivedGroups.forEach(walk); } };
  walk(group.id);
  return [...seen].sort((a, b) => a - b).map((id) => analysis.groups[id]);
}

// ---------------------------------------------------------------------------------------------
// Applying a rule.

export function source(t: Tensor, param: string, axis: number): SliceSource {
  const outer = sizeOf(t.shape.slice(0, axis)), len = t.shape[axis], inner = sizeOf(t.shape.slice(axis + 1));
  return {
    param, axis, tensor: t, sliceLength: outer * inner,
    slice(i: number): Float32Array {
      const s = new Float32Array(outer * inner);
      for (let o = 0; o < outer; o++) s.set(t.data.subarray((o * len + i) * inner, (o * len + i + 1) * inner), o * inner);
      return s;
    },
  };
}

/** Rebuilds `t` along `axis` from `layout`: old entries copy (times oldScale), new ones take `news` in order. */
export function rebuild(t: Tensor, axis: number, layout: Layout, news: NewSlice[], oldScale?: (e: Entry) => number): { tensor: Tensor; map: AxisMap } {
  const outer = sizeOf(t.shape.slice(0, axis)), len = t.shape[axis], inner = sizeOf(t.shape.slice(axis + 1));
  const L = layout.length;
  const data = new Float32Array(outer * L * inner);
  const src = new Int32Array(L);
  const scale = new Float32Array(L);
  let k = 0;
  layout.forEach((e, i) => {
    let values: Float32Array, s: number, from: number;
    if (e.old >= 0) {
      s = oldScale ? oldScale(e) : 1; from = e.old;
      values = new Float32Array(outer * inner);
      for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) values[o * inner + j] = t.data[(o * len + e.old) * inner + j] * s;
    } else {
      const n = news[k++];
      if (!n || n.values.length !== outer * inner) throw new TransformError(`widen: internal: new slice ${k - 1} has ${n?.values.length} values, expected ${outer * inner}`);
      values = n.values; s = n.scale; from = n.from;
    }
    src[i] = from; scale[i] = s;
    for (let o = 0; o < outer; o++) data.set(values.subarray(o * inner, (o + 1) * inner), (o * L + i) * inner);
  });
  if (k !== news.length) throw new TransformError(`widen: internal: ${news.length} new slices for ${k} new entries`);
  const shape = [...t.shape]; shape[axis] = L;
  const map: AxisMap = { axis, source: src };
  if (scale.some((v) => v !== 1)) map.scale = scale;
  return { tensor: { shape, data }, map };
}

/**
 * Widens one group by E channels with `rule`: graph attributes, every affected tensor, the tensor
 * maps of this step (student key -> teacher key of this step) and the change list.
 */
export function applyRule(ctx: WidenContext, weights: Weights, rule: WidenRule): StepResult {
  const { graph, analysis, group, E } = ctx;
  const layouts = layoutsFor(analysis, group, E);
  const layoutOf = (volume: string): Layout | undefined => layouts.get(analysis.groupOf.get(volume)!);
  const newWeights: Weights = {};
  const tensorMaps: Record<string, TensorMap> = {};
  const axisMaps = new Map<string, AxisMap[]>();
  const changes: TransformChange[] = [];
  const nodes: Node[] = [];

  for (const node of graph.nodes) {
    const h = kindHandler(node);
    const axes = h.axes(node);
    const inLayout = axes.in.length ? layoutOf(node.inputs[0]) : undefined;
    const outLayout = axes.out.length ? layoutOf(node.name) : undefined;
    const cur = new Map<string, Tensor>();
    for (const a of [...axes.in, ...axes.out]) cur.set(a.param, weights[`${node.name}/${a.param}`]);
    const note = (param: string, m: AxisMap) => {
      const key = `${node.name}/${param}`;
      if (!axisMaps.has(key)) axisMaps.set(key, []);
      axisMaps.get(key)!.push(m);
    };

    // Input side first, so an output slice copied afterwards includes the new rows.
    if (inLayout) {
      const a = axes.in[0];
      const k = source(cur.get(a.param)!, a.param, a.axis);
      const newIn = inLayout.length;
      const fanIn = sizeOf(k.tensor.shape.slice(0, -1)) / k.tensor.shape[a.axis] * newIn;
      const news = inLayout.filter((e) => e.old < 0);
      const r = rule.consumer({ node, layout: inLayout, news, kernel: k, fanIn });
      const { tensor, map } = rebuild(k.tensor, a.axis, inLayout, r.rows, r.oldScale);
      if (rule.gradScale) map.gradScale = Float32Array.from(inLayout, (e) => rule.gradScale!.in(e));
      cur.set(a.param, tensor); note(a.param, map);
      changes.push({ node: node.name, what: `in channels ${k.tensor.shape[a.axis]} -> ${newIn}` });
    }
    if (outLayout) {
      const news = outLayout.filter((e) => e.old < 0);
      let slices: Record<string, NewSlice[]>;
      if (node.kind === 'conv2d' || node.kind === 'dense') {
        const kernelAxis = axes.out.find((a) => a.param === 'kernel')!;
        const biasAxis = axes.out.find((a) => a.param === 'bias');
        const r = rule.producer({
          node, layout: outLayout, news,
          kernel: source(cur.get('kernel')!, 'kernel', kernelAxis.axis),
          bias: biasAxis ? source(cur.get('bias')!, 'bias', biasAxis.axis) : undefined,
        });
        slices = { kernel: r.kernel, ...(r.bias ? { bias: r.bias } : {}) };
      } else {
        slices = rule.channelOp({ node, layout: outLayout, news, params: axes.out.map((a) => source(cur.get(a.param)!, a.param, a.axis)) });
      }
      for (const a of axes.out) {
        const s = slices[a.param];
        if (!s) throw new TransformError(`widen: internal: no new slices for '${node.name}/${a.param}'`);
        const { tensor, map } = rebuild(cur.get(a.param)!, a.axis, outLayout, s);
        if (rule.gradScale) map.gradScale = Float32Array.from(outLayout, (e) => rule.gradScale!.out(e));
        cur.set(a.param, tensor); note(a.param, map);
      }
      const before = cur.get(axes.out[0].param)!.shape[axes.out[0].axis] - news.length;
      changes.push({ node: node.name, what: `${node.kind === 'conv2d' || node.kind === 'dense' ? 'out channels' : 'channels'} ${before} -> ${outLayout.length}` });
    }
    if (node.kind === 'conv2d' && outLayout) nodes.push({ ...node, filters: outLayout.length });
    else if (node.kind === 'dense' && outLayout) nodes.push({ ...node, units: outLayout.length });
    else nodes.push(structuredClone(node));
    // Untouched tensors are copied below, so the student never shares memory with the teacher.
    for (const [p, t] of cur) if (axisMaps.has(`${node.name}/${p}`)) newWeights[`${node.name}/${p}`] = t;
  }

  const tensorsChanged: string[] = [];
  for (const key of Object.keys(weights)) {
    if (!(key in newWeights)) newWeights[key] = { shape: [...weights[key].shape], data: new Float32Array(weights[key].data) };
    const maps = axisMaps.get(key);
    if (maps) { tensorMaps[key] = { kind: 'gather', from: key, axes: maps }; tensorsChanged.push(key); }
    else tensorMaps[key] = { kind: 'same', from: key };
  }
  return { graph: { ...structuredClone({ ...graph, nodes: [] }), nodes }, weights: newWeights, tensorMaps, changes, tensorsChanged };
}
