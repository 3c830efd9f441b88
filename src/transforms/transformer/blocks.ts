/**
 * Transformer blocks, found by structure rather than by name: a pre-LN block (the zoo's `gpt`,
 * docs/design/transformer-ir.md) is
 *
 *   x -> layerNorm -> attention -> add(x, attn) = y;  y -> layerNorm -> dense -> activation -> dense -> add(y, mlp)
 *
 * The transforms of issue 10 read blocks from here: the MLP transform widens each block's hidden
 * units, deepening copies a block's hyper-parameters and splices a new block into the stream.
 */
import type { GraphInfo } from '../../ir/graph.ts';
import { analyzeGraph } from '../../ir/graph.ts';
import type { Graph, Node, NodeOf } from '../../ir/types.ts';

export interface TransformerBlock {
  /** The residual-stream volume the block reads. */
  input: string;
  ln1: NodeOf<'layerNorm'>;
  attn: NodeOf<'attention'>;
  add1: NodeOf<'add'>;
  ln2: NodeOf<'layerNorm'>;
  fc: NodeOf<'dense'>;
  act: NodeOf<'activation'>;
  proj: NodeOf<'dense'>;
  /** The block's output (the second residual add). */
  add2: NodeOf<'add'>;
}

/** Whether the graph is a token model with attention (the transforms of this folder apply). */
export function isTransformer(graph: Graph): boolean {
  return graph.nodes.some((n) => n.kind === 'attention' || n.kind === 'tokenInput');
}

/** Every pre-LN block of the graph, in graph order. Attention nodes outside the pattern are skipped. */
export function findBlocks(graph: Graph, info: GraphInfo = analyzeGraph(graph)): TransformerBlock[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const only = (name: string): Node | undefined => {
    const c = info.consumers.get(name) ?? [];
    return c.length === 1 ? byName.get(c[0]) : undefined;
  };
  const addOf = (a: string, b: string): NodeOf<'add'> | undefined => {
    const n = (info.consumers.get(a) ?? []).map((c) => byName.get(c)!).find((c) => c.kind === 'add' && c.inputs.length === 2 && c.inputs.includes(a) && c.inputs.includes(b));
    return n?.kind === 'add' ? n : undefined;
  };
  const blocks: TransformerBlock[] = [];
  for (const attn of graph.nodes) {
    if (attn.kind !== 'attention') continue;
    const ln1 = byName.get(attn.inputs[0]);
    if (ln1?.kind !== 'layerNorm') continue;
    const x = ln1.inputs[0];
    const add1 = addOf(attn.name, x);
    if (!add1 || only(attn.name) !== add1) continue;
    const ln2 = (info.consumers.get(add1.name) ?? []).map((c) => byName.get(c)!).find((c) => c.kind === 'layerNorm');
    if (ln2?.kind !== 'layerNorm') continue;
    const fc = only(ln2.name);
    if (fc?.kind !== 'dense') continue;
    const act = only(fc.name);
    if (act?.kind !== 'activation') continue;
    const proj = only(act.name);
    if (proj?.kind !== 'dense') continue;
    const add2 = addOf(proj.name, add1.name);
    if (!add2 || only(proj.name) !== add2) continue;
    blocks.push({ input: x, ln1, attn, add1, ln2, fc, act, proj, add2 });
  }
  return blocks;
}

/** Zoo names `h{i}_ln1 ... h{i}_add2` for block i (the gpt zoo model's). */
export const ZOO_BLOCK_PARTS = ['ln1', 'attn', 'add1', 'ln2', 'fc', 'act', 'proj', 'add2'] as const;

/** The name of each part of block `i`, zoo style; the activation is `h{i}_{fn}` (`h0_gelu`). */
export function zooBlockNames(i: number, fn: string): Record<(typeof ZOO_BLOCK_PARTS)[number], string> {
  return {
    ln1: `h${i}_ln1`, attn: `h${i}_attn`, add1: `h${i}_add1`, ln2: `h${i}_ln2`,
    fc: `h${i}_fc`, act: `h${i}_${fn}`, proj: `h${i}_proj`, add2: `h${i}_add2`,
  };
}

/** Whether block i of `blocks` carries exactly the zoo names of block i (so a rename keeps the zoo's layout). */
export function followsZooNames(blocks: TransformerBlock[]): boolean {
  return blocks.every((b, i) => {
    const z = zooBlockNames(i, b.act.fn);
    return ZOO_BLOCK_PARTS.every((p) => b[p].name === z[p]);
  });
}
