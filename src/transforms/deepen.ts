/**
 * Deepening (SPEC section 3): insert new blocks after a volume x, by R2DeeperR
 * (deepen_r2r.ts), Net2DeeperNet (deepen_net2net.ts) or random padding (deepen_random.ts).
 * This file picks the insertion points, splices each method's block into the graph (every
 * consumer of x reads the block's output instead) and writes the report and tensor maps.
 *
 * Stages, found generically: a stage is the set of volumes of one shape ([H, W, C] or [F]) that
 * holds a shape-preserving conv/dense (the layers a block repeats); its end is the last node of
 * that shape in topological order. In ResNetCifar that is the last ReLU of each residual stream
 * (the input of the next stage's first block, or of global pooling), with or without shortcuts;
 * the stem (7x7 conv, input shape differs from output shape) is no stage. A network without
 * stages (SmallConv, the MLP) gets its blocks after every hidden layer instead (`defaultSites`).
 */
import { TransformError } from '../errors.ts';
import { analyzeGroups } from '../groups/analyze.ts';
import { analyzeGraph, countParams, type GraphInfo } from '../ir/graph.ts';
import { shapeToString } from '../ir/shapes.ts';
import type { Graph, Node, Weights } from '../ir/types.ts';
import { cloneWeights, validateWeights } from '../ir/weights.ts';
import { Rng } from '../rng.ts';
import { branchWidth, type Block, type Site } from './deepen_block.ts';
import { NET2NET_LAYERS_PER_BLOCK, net2netBlock } from './deepen_net2net.ts';
import { r2rBlock } from './deepen_r2r.ts';
import { randomBlock } from './deepen_random.ts';
import type { InitOptions } from './init.ts';
import type { TensorMap, TransformChange, TransformResult } from './types.ts';

export type DeepenMethod = 'r2r' | 'net2net' | 'random';
export const DEEPEN_METHODS: readonly DeepenMethod[] = ['r2r', 'net2net', 'random'];

export interface DeepenOptions {
  method: DeepenMethod;
  /** Insert after this node (must be a volume [H,W,C] or [F], normally a ReLU output). */
  after?: string;
  /**
   * Without `after`: insert `perStage` new blocks at the end of every stage (default 1).
   * With `after`: the number of blocks stacked after that node (default 1).
   */
  perStage?: number;
  /** Free parameters: match-std (default; reference = the kernel before the insertion point), he, copy; scale; noise. */
  init?: InitOptions;
  /** Default 0; one seed gives the same student bit for bit. */
  seed?: number;
}

const BUILDERS: Record<DeepenMethod, (site: Site, init: InitOptions, rng: Rng) => Block> = {
  r2r: r2rBlock, net2net: net2netBlock, random: randomBlock,
};

export function deepen(graph: Graph, weights: Weights, opts: DeepenOptions): TransformResult {
  const { method, after, init = {}, seed = 0 } = opts;
  if (!DEEPEN_METHODS.includes(method)) throw new TransformError(`deepen: unknown method ${JSON.stringify(method)}; expected one of ${DEEPEN_METHODS.join(', ')}`);
  const count = opts.perStage ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new TransformError(`deepen: perStage must be a positive integer, got ${JSON.stringify(opts.perStage)}`);
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'deepen: weights', info);

  const ends = after !== undefined ? [checkSite(graph, info, after)] : defaultSites(graph, info);
  if (ends.length === 0) {
    throw new TransformError(`deepen: found no stage and no hidden layer in '${graph.name ?? 'graph'}' (no run of same-shape volumes with a shape-preserving conv or dense, no conv or dense before the logits); pass 'after' with a node to deepen after`);
  }
  if (method === 'net2net') for (const x of ends) refuseResidual(graph, info, x);

  const rng = new Rng(seed);
  let g: Graph = structuredClone(graph);
  const w = cloneWeights(weights);
  const tensorMaps: Record<string, TensorMap> = {};
  for (const key of Object.keys(weights)) tensorMaps[key] = { kind: 'same', from: key };
  const changes: TransformChange[] = [], tensorsChanged: string[] = [], notes: string[] = [];
  const usesBatchNorm = graph.nodes.some((n) => n.kind === 'batchNorm');

  ends.forEach((end, s) => {
    let x = end;
    for (let i = 0; i < count; i++) {
      const site = makeSite(g, analyzeGraph(g), w, x, freshPrefix(g, after !== undefined ? `${after}_deep` : `s${s + 1}_deep`), usesBatchNorm);
      const block = BUILDERS[method](site, init, rng);
      g = splice(g, x, block);
      for (const [key, t] of Object.entries(block.weights)) { w[key] = t; tensorMaps[key] = { kind: 'new' }; tensorsChanged.push(key); }
      changes.push({ node: site.prefix, what: `inserted ${describe(method, site, block)} after '${x}'` });
      notes.push(...(block.notes ?? []));
      x = block.output;
    }
  });

  const info2 = analyzeGraph(g);
  validateWeights(g, w, 'deepen: student weights', info2);
  const noise = (init.noise ?? 0) > 0;
  const exact = method === 'r2r' ? { inference: true, training: true }
    : method === 'net2net' ? { inference: !noise, training: !noise && !usesBatchNorm }
      : { inference: false, training: false };
  if (method === 'r2r') notes.push('R2DeeperR: each new block adds two branches, the second the first with its last kernel negated ([U1; U1], [U2, -U2] as two branches); their sum is exactly 0 in any float precision, so the block is the identity in inference and training mode');
  if (method === 'net2net' && usesBatchNorm) notes.push('Net2DeeperNet: the identity batch norms hold only in inference; in training mode batch statistics make the new layers approximately, not exactly, the identity');
  if (method === 'net2net' && noise) notes.push('Net2DeeperNet: init noise on the identity kernels makes the student only approximately equal to the teacher');
  if (method === 'random') notes.push('random padding: a baseline, not function-preserving');
  return {
    graph: g,
    weights: w,
    report: {
      transform: 'deepen', method, exact, changes, tensorsChanged,
      paramsBefore: countParams(graph, info), paramsAfter: countParams(g, info2), notes,
    },
    tensorMaps,
  };
}

/** `after` must name a volume that is not the logits. */
function checkSite(graph: Graph, info: GraphInfo, after: string): string {
  const ni = info.nodes.get(after);
  if (!ni) throw new TransformError(`deepen: no node named '${after}'; nodes are ${graph.nodes.map((n) => n.name).join(', ')}`);
  if (after === graph.output) throw new TransformError(`deepen: '${after}' is the output (logits); deepen after a hidden volume instead`);
  const s = ni.outputShape;
  if (s.length !== 3 && s.length !== 1) throw new TransformError(`deepen: '${after}' has shape ${shapeToString(s)}; a block needs an [H, W, C] or [F] volume`);
  return after;
}

/** Stage ends, in graph order: see the file comment. */
export function stageEnds(graph: Graph, info: GraphInfo = analyzeGraph(graph)): string[] {
  const last = new Map<string, number>();
  const repeated = new Set<string>();
  graph.nodes.forEach((n, i) => {
    if (n.kind === 'input' || n.name === graph.output) return;
    const ni = info.nodes.get(n.name)!;
    const key = shapeToString(ni.outputShape);
    last.set(key, i);
    if ((n.kind === 'conv2d' || n.kind === 'dense') && shapeToString(ni.inputShapes[0]) === key) repeated.add(key);
  });
  return [...repeated].map((k) => last.get(k)!).sort((a, b) => a - b).map((i) => graph.nodes[i].name);
}

/**
 * Where blocks go without `after`: the end of every stage; in a network without stages (SmallConv,
 * the MLP: no shape-preserving layer to repeat), after every hidden layer.
 */
export function defaultSites(graph: Graph, info: GraphInfo = analyzeGraph(graph)): string[] {
  const stages = stageEnds(graph, info);
  return stages.length > 0 ? stages : hiddenLayerEnds(graph, info);
}

const FOLLOWS_LAYER: ReadonlySet<Node['kind']> = new Set(['batchNorm', 'activation', 'maxPool', 'avgPool', 'dropout']);

/**
 * For each conv/dense other than the logits, the last activation on the chain of channel-wise ops
 * that follows it alone (batch norm, activation, pooling, dropout), else the chain's end: SmallConv
 * gives relu1 and relu2, the MLP act1 and act2.
 */
export function hiddenLayerEnds(graph: Graph, info: GraphInfo = analyzeGraph(graph)): string[] {
  const ends: string[] = [];
  for (const n of graph.nodes) {
    if ((n.kind !== 'conv2d' && n.kind !== 'dense') || n.name === graph.output) continue;
    let end = n.name, act: string | undefined;
    for (;;) {
      const next = info.consumers.get(end)!;
      if (next.length !== 1 || next[0] === graph.output || !FOLLOWS_LAYER.has(info.nodes.get(next[0])!.node.kind)) break;
      end = next[0];
      if (info.nodes.get(end)!.node.kind === 'activation') act = end;
    }
    if (!ends.includes(act ?? end)) ends.push(act ?? end);
  }
  return ends;
}

/**
 * Net2DeeperNet inserts plain layers; on a residual stream (x's channel group, see
 * src/groups, contains an add) that is not the paper's method, so refuse.
 */
function refuseResidual(graph: Graph, info: GraphInfo, x: string): void {
  const { groups, groupOf } = analyzeGroups(graph, info);
  const add = groups[groupOf.get(x)!].adds[0];
  if (add) {
    throw new TransformError(`deepen net2net: '${x}' is on a residual stream (its channel group contains the add '${add}'); Net2DeeperNet adds plain layers and cannot add a residual block. Use method 'r2r' (R2DeeperR), or the NoResidual model (e.g. resnet-cifar10-nores) for Net2Net`);
  }
}

function makeSite(graph: Graph, info: GraphInfo, weights: Weights, x: string, prefix: string, usesBatchNorm: boolean): Site {
  const xNode = graph.nodes.find((n) => n.name === x)!;
  const producer = walkBack(graph, x, (n) => n.kind === 'conv2d' || n.kind === 'dense');
  const bn = walkBack(graph, x, (n) => n.kind === 'batchNorm') ?? graph.nodes.find((n) => n.kind === 'batchNorm');
  return {
    x, prefix,
    shape: info.nodes.get(x)!.outputShape,
    xActivation: xNode.kind === 'activation' ? xNode.fn : undefined,
    batchNorm: !usesBatchNorm ? false : bn?.kind === 'batchNorm' ? { epsilon: bn.epsilon, momentum: bn.momentum } : { epsilon: 1e-5, momentum: 0.9 },
    reference: producer ? weights[`${producer.name}/kernel`] : null,
  };
}

/** The first node (x itself included) on the chain of first inputs above x that matches. */
function walkBack(graph: Graph, x: string, match: (n: Node) => boolean): Node | undefined {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  for (let n = byName.get(x); n; n = byName.get(n.inputs[0])) if (match(n)) return n;
  return undefined;
}

/** `<base><n>` with the smallest n that no existing node name uses as its prefix. */
function freshPrefix(graph: Graph, base: string): string {
  for (let n = 1; ; n++) {
    const p = `${base}${n}`;
    if (!graph.nodes.some((node) => node.name === p || node.name.startsWith(`${p}_`))) return p;
  }
}

/** The block's nodes go right after x; every other reader of x reads the block's output. */
function splice(graph: Graph, x: string, block: Block): Graph {
  const inBlock = new Set(block.nodes.map((n) => n.name));
  for (const n of block.nodes) if (graph.nodes.some((m) => m.name === n.name)) throw new TransformError(`deepen: new node name '${n.name}' is already taken`);
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    nodes.push(inBlock.has(n.name) ? n : { ...n, inputs: n.inputs.map((i) => (i === x ? block.output : i)) });
    if (n.name === x) nodes.push(...block.nodes);
  }
  return { ...graph, nodes };
}

function describe(method: DeepenMethod, site: Site, block: Block): string {
  const c = site.shape[site.shape.length - 1];
  const layer = (cin: number, cout: number) => `${site.shape.length === 3 ? 'conv3x3' : 'dense'} ${cin}->${cout}`;
  const bn = site.batchNorm ? '-BN' : '';
  if (method === 'net2net') return `Net2DeeperNet identity layers ${site.prefix} (${NET2NET_LAYERS_PER_BLOCK} x ${layer(c, c)}${bn}-${site.xActivation})`;
  const k = branchWidth(site);
  const branch = `${layer(c, k)}${bn}-${site.xActivation ?? 'relu'}-${layer(k, c)}${bn}`;
  const layers = block.nodes.filter((n) => n.kind === 'conv2d' || n.kind === 'dense').length;
  return method === 'r2r'
    ? `R2DeeperR residual block ${site.prefix} (2 branches ${branch}, the second's last kernel negated: sum 0; ${layers} layers, add)`
    : `randomly initialised residual block ${site.prefix} (2 branches ${branch}; ${layers} layers, add)`;
}
