/**
 * Channel-group analysis (Torch-Pruning style dependency analysis, SPEC section 1).
 *
 * Every node output is a volume with a channel (last) axis. A union-find joins volumes whose
 * channel axes must change together: a channel-wise op ties its input and output, `add` ties all
 * its inputs and its output. conv2d/dense start a new volume (they produce its channels and
 * consume their input's). concat and flatten start a *derived* volume whose channels are mapped
 * from their inputs' groups (offsets, stride). Which relation a node has comes from its kind's
 * handler (`kinds/`); this walk has no per-kind code.
 */
import { UnsupportedLayerError } from '../errors.ts';
import { analyzeGraph, type GraphInfo } from '../ir/graph.ts';
import type { Graph } from '../ir/types.ts';
import type { ChannelGroup, Derivation, GroupConsumer, IndexStep } from './group.ts';
import { kindHandler } from './kinds/registry.ts';

export interface GroupAnalysis {
  groups: ChannelGroup[];
  /** Group id of every volume (node name). */
  groupOf: Map<string, number>;
  info: GraphInfo;
}

/** The channel groups of a graph, ordered by their first volume in the graph. */
export function analyzeChannelGroups(graph: Graph): ChannelGroup[] {
  return analyzeGroups(graph).groups;
}

export function analyzeGroups(graph: Graph, info: GraphInfo = analyzeGraph(graph)): GroupAnalysis {
  const order = graph.nodes.map((n) => n.name);
  const index = new Map(order.map((name, i) => [name, i]));
  const parent = order.map((_, i) => i);
  const find = (i: number): number => { while (parent[i] !== i) { parent[i] = parent[parent[i]]; i = parent[i]; } return i; };
  const union = (a: number, b: number): void => {
    const ra = find(a), rb = find(b);
    // The smaller index stays root, so a group's root is its first volume.
    if (ra !== rb) { if (ra < rb) parent[rb] = ra; else parent[ra] = rb; }
  };

  const relations = graph.nodes.map((node) => kindHandler(node).relation(node, info.nodes.get(node.name)!.inputShapes));
  graph.nodes.forEach((node, i) => {
    if (relations[i] === 'tie') for (const inp of node.inputs) union(i, index.get(inp)!);
  });

  // Roots to dense ids, in graph order of each group's first volume.
  const idOfRoot = new Map<number, number>();
  const groupOf = new Map<string, number>();
  order.forEach((name, i) => {
    const r = find(i);
    if (!idOfRoot.has(r)) idOfRoot.set(r, idOfRoot.size);
    groupOf.set(name, idOfRoot.get(r)!);
  });

  const groups: ChannelGroup[] = [...idOfRoot.values()].map((id) => ({
    id, label: '', size: 0, volumes: [], producers: [], consumers: [], channelOps: [], adds: [],
    derivedFrom: [], derivedGroups: [], containsInput: false, feedsOutput: false, coupled: [], widenable: false,
  }));

  graph.nodes.forEach((node, i) => {
    const g = groups[groupOf.get(node.name)!];
    const shape = info.nodes.get(node.name)!.outputShape;
    g.volumes.push(node.name);
    g.size = shape[shape.length - 1];
    const rel = relations[i];
    const h = kindHandler(node);
    if (rel === 'source') g.containsInput = true;
    if (rel === 'produce') g.producers.push(node.name);
    if (rel === 'tie') {
      if (node.kind === 'add') g.adds.push(node.name);
      else g.channelOps.push({ node: node.name, kind: node.kind, params: h.axes(node).out.map((a) => a.param) });
      const reason = h.couples?.(node);
      if (reason) g.coupled.push({ node: node.name, reason });
    }
    if (rel === 'concat') {
      let offset = 0;
      const segments = node.inputs.map((inp) => {
        const s = info.nodes.get(inp)!.outputShape;
        const seg = { group: groupOf.get(inp)!, offset, size: s[s.length - 1] };
        offset += seg.size;
        return seg;
      });
      g.derivedFrom.push({ kind: 'concat', node: node.name, segments });
    }
    if (rel === 'flatten') {
      const [h0, w0, c0] = info.nodes.get(node.inputs[0])!.outputShape;
      g.derivedFrom.push({ kind: 'flatten', node: node.name, group: groupOf.get(node.inputs[0])!, spatial: h0 * w0, channels: c0 });
    }
  });
  groups[groupOf.get(graph.output)!].feedsOutput = true;

  // Derivation edges: source group -> derived group, with the index step.
  const edges = new Map<number, { target: number; step: IndexStep }[]>();
  for (const g of groups) {
    for (const d of g.derivedFrom) {
      for (const [src, step] of derivationSteps(d)) {
        // Unreachable with the IR's kinds: a derivation has more channels than each source (concat
        // adds, flatten with H*W > 1 multiplies), so it cannot be tied back to one.
        if (src === g.id) {
          throw new UnsupportedLayerError(`channel groups: ${d.kind} node '${d.node}' feeds its own input's group (group ${g.id}: ${g.volumes.slice(0, 4).join(', ')}…); its channels would be derived from themselves`);
        }
        if (!edges.has(src)) edges.set(src, []);
        edges.get(src)!.push({ target: g.id, step });
        if (!groups[src].derivedGroups.includes(g.id)) groups[src].derivedGroups.push(g.id);
      }
    }
  }

  // Direct consumers, then consumers through derived groups (with the step prepended).
  const direct = new Map<number, GroupConsumer[]>(groups.map((g) => [g.id, []]));
  graph.nodes.forEach((node, i) => {
    if (relations[i] === 'produce') direct.get(groupOf.get(node.inputs[0])!)!.push({ node: node.name, input: node.inputs[0], steps: [] });
  });
  const memo = new Map<number, { consumers: GroupConsumer[]; input: boolean; output: boolean }>();
  const visit = (id: number, stack: number[]): { consumers: GroupConsumer[]; input: boolean; output: boolean } => {
    if (memo.has(id)) return memo.get(id)!;
    if (stack.includes(id)) throw new UnsupportedLayerError(`channel groups: concat/flatten derivations form a cycle through groups ${[...stack, id].join(' -> ')}`);
    const g = groups[id];
    const r = { consumers: [...direct.get(id)!], input: g.containsInput, output: g.feedsOutput };
    for (const e of edges.get(id) ?? []) {
      const sub = visit(e.target, [...stack, id]);
      for (const c of sub.consumers) r.consumers.push({ ...c, steps: [e.step, ...c.steps] });
      r.input ||= sub.input;
      r.output ||= sub.output;
    }
    memo.set(id, r);
    return r;
  };
  for (const g of groups) {
    const r = visit(g.id, []);
    g.consumers = r.consumers;
    g.containsInput = r.input;
    g.feedsOutput = r.output;
    g.widenable = g.derivedFrom.length === 0 && !g.containsInput && !g.feedsOutput && g.coupled.length === 0;
    g.label = labelOf(g.volumes);
  }
  return { groups, groupOf, info };
}

function derivationSteps(d: Derivation): [number, IndexStep][] {
  if (d.kind === 'flatten') return [[d.group, { kind: 'flatten', node: d.node, spatial: d.spatial, channels: d.channels }]];
  const total = d.segments.reduce((a, s) => a + s.size, 0);
  return d.segments.map((s) => [s.group, { kind: 'concat', node: d.node, offset: s.offset, total }]);
}

function labelOf(volumes: string[]): string {
  if (volumes.length <= 6) return volumes.join('→');
  return `${volumes.slice(0, 4).join('→')}→…→${volumes[volumes.length - 1]}`;
}

/** A short description of a group for error messages: "group 3 (conv1→bn1→relu1, 8 channels)". */
export function describeGroup(g: ChannelGroup): string {
  return `group ${g.id} (${g.label}, ${g.size} channels)`;
}
