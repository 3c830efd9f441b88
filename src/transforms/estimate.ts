/**
 * The student's size before a transform runs, for the size guard (src/ir/budget.ts): widening
 * changes only producers' filters/units and kernel morphing one kernel, so the student is known
 * without weights. Deepening adds blocks: one block per site is built
 * for real and the growth scaled by the number of blocks. Returns undefined when the request is
 * malformed; the transform itself then reports the error.
 */
import { analyzeGroups } from '../groups/analyze.ts';
import type { ChannelGroup } from '../groups/group.ts';
import { estimateSize, PARAM_COPIES, type SizeEstimate } from '../ir/budget.ts';
import { analyzeGraph } from '../ir/graph.ts';
import type { Graph, Node, Weights } from '../ir/types.ts';
import { deepen } from './deepen.ts';
import type { TransformSpec } from './index.ts';

export type GraphSketch = { graph: Graph; /** Deepen: the student is `graph` plus this many copies of (graph - teacher). */ repeat?: number; teacher?: Graph };

export function studentSketch(graph: Graph, weights: Weights, spec: TransformSpec): GraphSketch | undefined {
  try {
    if (spec.transform === 'widen') {
      const a = analyzeGroups(graph);
      const targets: ChannelGroup[] = !spec.at || spec.at === 'all' ? a.groups.filter((g) => g.widenable) : [a.groups[a.groupOf.get(spec.at) ?? -1]].filter(Boolean);
      const grow = new Map<string, number>();
      for (const g of targets) {
        const e = spec.add ?? Math.round(g.size * (spec.factor ?? 1.5)) - g.size;
        for (const p of g.producers) grow.set(p, e);
      }
      const nodes = graph.nodes.map((n): Node => {
        const e = grow.get(n.name);
        if (!e || e < 1) return n;
        return n.kind === 'conv2d' ? { ...n, filters: n.filters + e } : n.kind === 'dense' ? { ...n, units: n.units + e } : n;
      });
      return { graph: { ...graph, nodes } };
    }
    if (spec.transform !== 'deepen' || spec.method === 'netmorph') return undefined;
    const blocks = spec.perStage ?? 1;
    if (blocks <= 1) return undefined;
    return { graph: deepen(graph, weights, { ...spec, method: spec.method, perStage: 1 }).graph, repeat: blocks, teacher: graph };
  } catch {
    return undefined;
  }
}

/** The student's size estimate (see estimateSize), or undefined when it cannot be sketched. */
export function estimateStudent(graph: Graph, weights: Weights, spec: TransformSpec, batch: number): SizeEstimate | undefined {
  if (spec.transform === 'kernel') {
    // Output shapes stay (padding grows with the kernel): only the kernel grows.
    try {
      const info = analyzeGraph(graph);
      const node = graph.nodes.find((n) => n.name === spec.node);
      if (node?.kind !== 'conv2d') return undefined;
      const [nh, nw] = typeof spec.size === 'number' ? [spec.size, spec.size] : spec.size;
      const cin = info.nodes.get(node.name)!.inputShapes[0][2];
      const added = Math.max(0, nh * nw - node.kernelSize[0] * node.kernelSize[1]) * cin * node.filters;
      const t = estimateSize(graph, batch);
      return { ...t, params: t.params + added, bytes: t.bytes + 4 * PARAM_COPIES * added };
    } catch {
      return undefined;
    }
  }
  const sk = studentSketch(graph, weights, spec);
  if (!sk) return undefined;
  try {
    const s = estimateSize(sk.graph, batch);
    if (!sk.repeat || !sk.teacher) return s;
    const t = estimateSize(sk.teacher, batch), k = sk.repeat - 1;
    const params = s.params + k * (s.params - t.params), acts = s.activationsPerExample + k * (s.activationsPerExample - t.activationsPerExample);
    return { params, activationsPerExample: acts, batch, bytes: s.bytes + k * (s.bytes - t.bytes) };
  } catch {
    return undefined;
  }
}
