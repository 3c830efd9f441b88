/**
 * Widening the MLP hidden units of transformer blocks (issue 10, item 1). The hidden units
 * (dense D -> F, activation, dense F -> D) are an ordinary channel group: the first dense
 * produces it, the activation is channel-wise (GELU maps 0 to 0, so NetMorph's zero producers
 * work), the second dense consumes it. So this is `widen` (SPEC section 2, every method, the
 * same exactness) applied to each block's group, which this file only picks.
 */
import { TransformError } from '../../errors.ts';
import { analyzeGraph, countParams } from '../../ir/graph.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import type { TensorMap, TransformChange, TransformResult } from '../types.ts';
import { composeMaps, widen, type WidenOptions } from '../widen.ts';
import { findBlocks } from './blocks.ts';

export interface MlpOptions extends Omit<WidenOptions, 'at' | 'factor'> {
  /** A block's first MLP dense (e.g. `h0_fc`), or 'all' (default): every block. */
  at?: string | 'all';
  /** New F = round(F * factor); default 2 when neither factor nor add is given. */
  factor?: number;
}

export function widenMlp(graph: Graph, weights: Weights, opts: MlpOptions): TransformResult {
  const info = analyzeGraph(graph);
  const blocks = findBlocks(graph, info);
  if (blocks.length === 0) throw new TransformError(`mlp: '${graph.name ?? 'graph'}' has no transformer block (layerNorm -> dense -> activation -> dense -> add)`);
  const at = opts.at ?? 'all';
  let targets = blocks.map((b) => b.fc.name);
  if (at !== 'all') {
    const b = blocks.find((x) => x.fc.name === at || x.act.name === at);
    if (!b) throw new TransformError(`mlp: '${at}' is not the first dense (or the activation) of a block's MLP; those are ${blocks.map((x) => `'${x.fc.name}'`).join(', ')}`);
    targets = [b.fc.name];
  }
  const factor = opts.add === undefined ? (opts.factor ?? 2) : undefined;
  let g = graph, w = weights;
  let maps: Record<string, TensorMap> = Object.fromEntries(Object.keys(weights).map((k) => [k, { kind: 'same', from: k } as TensorMap]));
  const changes: TransformChange[] = [], changed = new Set<string>(), notes: string[] = [];
  let exact = { inference: true, training: true }, method = opts.method;
  targets.forEach((fc, i) => {
    // One seed per block, so the blocks do not draw the same free values.
    const r = widen(g, w, { ...opts, at: fc, factor, seed: (opts.seed ?? 0) + i });
    g = r.graph; w = r.weights;
    maps = composeMaps(maps, r.tensorMaps);
    changes.push(...r.report.changes);
    r.report.tensorsChanged.forEach((k) => changed.add(k));
    notes.push(...r.report.notes);
    exact = r.report.exact; method = r.report.method as typeof method;
  });
  return {
    graph: g, weights: w, tensorMaps: maps,
    report: {
      transform: 'mlp', method, exact, changes, tensorsChanged: [...changed].sort(),
      paramsBefore: countParams(graph, info), paramsAfter: countParams(g), notes,
    },
  };
}
