/**
 * Graph validation, shape inference, parameter specs and cost (params, multiply-adds).
 * One switch per question, over every node kind; an unknown kind is an error, never a default.
 */
import { InvalidGraphError, ShapeMismatchError, UnsupportedLayerError } from '../errors.ts';
import { resolveWindow, shapeToString, sizeOf } from './shapes.ts';
import { ACTIVATION_FNS, type Graph, type Node, type NodeKind, type NodeOf } from './types.ts';

export interface ParamSpec { name: string; shape: number[]; /** Trained by the optimizer (false for BN moving stats). */ trainable: boolean }

/** Per-node facts computed once: output shape, parameters, forward multiply-adds per example. */
export interface NodeInfo { node: Node; inputShapes: number[][]; outputShape: number[]; params: ParamSpec[]; macs: number }

export interface GraphInfo {
  nodes: Map<string, NodeInfo>;
  /** Set when the input is a `tokenInput`: a sequence model, logits `[T, V]` per example. */
  tokens?: { length: number; vocab: number };
  /** Consumers of each node's output, in graph order. */
  consumers: Map<string, string[]>;
  inputName: string;
  inputShape: number[];
  outputShape: number[];
}

const ARITY: Record<NodeKind, [number, number]> = {
  input: [0, 0], conv2d: [1, 1], dense: [1, 1], batchNorm: [1, 1], activation: [1, 1],
  maxPool: [1, 1], avgPool: [1, 1], globalAvgPool: [1, 1], flatten: [1, 1], add: [2, Infinity],
  concat: [2, Infinity], dropout: [1, 1],
  tokenInput: [0, 0], embedding: [1, 1], positionEmbedding: [1, 1], layerNorm: [1, 1], attention: [1, 1],
};

function fail(node: Node | string, msg: string): never {
  const name = typeof node === 'string' ? node : node.name;
  throw new InvalidGraphError(`node '${name}': ${msg}`);
}

function positiveInt(node: Node, field: string, v: unknown): void {
  if (!Number.isInteger(v) || (v as number) < 1) fail(node, `${field} must be a positive integer, got ${JSON.stringify(v)}`);
}
function pair(node: Node, field: string, v: unknown): void {
  if (!Array.isArray(v) || v.length !== 2) fail(node, `${field} must be [a, b], got ${JSON.stringify(v)}`);
  positiveInt(node, `${field}[0]`, v[0]);
  positiveInt(node, `${field}[1]`, v[1]);
}
function padding(node: Node, v: unknown): void {
  if (v === 'same' || v === 'valid') return;
  if (Array.isArray(v) && v.length === 4 && v.every((p) => Number.isInteger(p) && p >= 0)) return;
  fail(node, `padding must be 'same', 'valid' or [top, bottom, left, right] of non-negative integers, got ${JSON.stringify(v)}`);
}

function checkAttributes(node: Node): void {
  switch (node.kind) {
    case 'input':
      if (!Array.isArray(node.shape) || (node.shape.length !== 1 && node.shape.length !== 3)) fail(node, `shape must be [H, W, C] or [F], got ${JSON.stringify(node.shape)}`);
      node.shape.forEach((d, i) => positiveInt(node, `shape[${i}]`, d));
      return;
    case 'conv2d':
      positiveInt(node, 'filters', node.filters); pair(node, 'kernelSize', node.kernelSize); pair(node, 'strides', node.strides);
      padding(node, node.padding);
      if (typeof node.useBias !== 'boolean') fail(node, `useBias must be a boolean, got ${JSON.stringify(node.useBias)}`);
      return;
    case 'dense':
      positiveInt(node, 'units', node.units);
      if (typeof node.useBias !== 'boolean') fail(node, `useBias must be a boolean, got ${JSON.stringify(node.useBias)}`);
      return;
    case 'batchNorm':
      if (!(node.epsilon > 0)) fail(node, `epsilon must be > 0, got ${JSON.stringify(node.epsilon)}`);
      if (!(node.momentum >= 0 && node.momentum < 1)) fail(node, `momentum must be in [0, 1), got ${JSON.stringify(node.momentum)}`);
      return;
    case 'activation':
      if (!ACTIVATION_FNS.includes(node.fn)) fail(node, `unknown activation fn ${JSON.stringify(node.fn)}; expected one of ${ACTIVATION_FNS.join(', ')}`);
      return;
    case 'maxPool': case 'avgPool':
      pair(node, 'poolSize', node.poolSize); pair(node, 'strides', node.strides); padding(node, node.padding);
      return;
    case 'dropout':
      if (!(node.rate >= 0 && node.rate < 1)) fail(node, `rate must be in [0, 1), got ${JSON.stringify(node.rate)}`);
      return;
    case 'tokenInput':
      positiveInt(node, 'length', node.length); positiveInt(node, 'vocab', node.vocab);
      return;
    case 'embedding':
      positiveInt(node, 'vocab', node.vocab); positiveInt(node, 'dim', node.dim);
      return;
    case 'positionEmbedding':
      positiveInt(node, 'maxLength', node.maxLength);
      return;
    case 'layerNorm':
      if (!(node.epsilon > 0)) fail(node, `epsilon must be > 0, got ${JSON.stringify(node.epsilon)}`);
      return;
    case 'attention':
      positiveInt(node, 'heads', node.heads); positiveInt(node, 'keyDim', node.keyDim);
      if (typeof node.causal !== 'boolean') fail(node, `causal must be a boolean, got ${JSON.stringify(node.causal)}`);
      if (typeof node.useBias !== 'boolean') fail(node, `useBias must be a boolean, got ${JSON.stringify(node.useBias)}`);
      return;
    case 'globalAvgPool': case 'flatten': case 'add': case 'concat':
      return;
    default:
      throw new UnsupportedLayerError(`node '${(node as Node).name}': unknown kind ${JSON.stringify((node as Node).kind)}`);
  }
}

function spatial(node: Node, shape: number[]): [number, number, number] {
  if (shape.length !== 3) throw new ShapeMismatchError(`node '${node.name}' (${node.kind}) needs an [H, W, C] input, got ${shapeToString(shape)}`);
  return shape as [number, number, number];
}

/**
 * Every pooling window must cover at least one input cell: one lying wholly in explicit padding
 * has nothing to pool (max -inf, average 0/0). Windows start at o*stride - pad, in order, so the
 * first and the last window per axis decide it.
 */
function poolWindowsTouchInput(node: NodeOf<'maxPool' | 'avgPool'>, size: [number, number], out: [number, number], pad: [number, number]): void {
  for (const a of [0, 1]) {
    const k = node.poolSize[a], s = node.strides[a], axis = a === 0 ? 'rows' : 'columns';
    const first = -pad[a], last = (out[a] - 1) * s - pad[a];
    const bad = first + k - 1 < 0 ? first : last > size[a] - 1 ? last : undefined;
    if (bad !== undefined) {
      fail(node, `a ${node.kind} window covers ${axis} ${bad}..${bad + k - 1} of an input with ${axis} 0..${size[a] - 1}, i.e. only padding (padding ${JSON.stringify(node.padding)}, pool ${node.poolSize.join('x')}, strides ${node.strides.join('x')}): it has nothing to pool. Use padding smaller than the pool size`);
    }
  }
}

function sequence(node: Node, shape: number[]): [number, number] {
  if (shape.length !== 2) throw new ShapeMismatchError(`node '${node.name}' (${node.kind}) needs a [T, D] sequence input, got ${shapeToString(shape)}`);
  return shape as [number, number];
}

function infer(node: Node, ins: number[][], inNodes: Node[]): { out: number[]; params: ParamSpec[]; macs: number } {
  switch (node.kind) {
    case 'input':
      return { out: [...node.shape], params: [], macs: 0 };
    case 'tokenInput':
      return { out: [node.length], params: [], macs: 0 };
    case 'embedding': {
      const src = inNodes[0];
      if (src.kind !== 'tokenInput') throw new ShapeMismatchError(`node '${node.name}' (embedding) reads token ids and needs a tokenInput as its input, got '${src.name}' (${src.kind})`);
      if (node.vocab < src.vocab) throw new ShapeMismatchError(`node '${node.name}' (embedding): vocab ${node.vocab} is smaller than tokenInput '${src.name}' vocab ${src.vocab}; ids up to ${src.vocab - 1} would have no row`);
      return { out: [ins[0][0], node.dim], params: [{ name: 'embeddings', shape: [node.vocab, node.dim], trainable: true }], macs: 0 };
    }
    case 'positionEmbedding': {
      const [t, d] = sequence(node, ins[0]);
      if (t > node.maxLength) throw new ShapeMismatchError(`node '${node.name}' (positionEmbedding): sequence length ${t} exceeds maxLength ${node.maxLength}`);
      return { out: [t, d], params: [{ name: 'embeddings', shape: [node.maxLength, d], trainable: true }], macs: 0 };
    }
    case 'layerNorm': {
      const d = ins[0][ins[0].length - 1];
      return { out: [...ins[0]], params: [{ name: 'gamma', shape: [d], trainable: true }, { name: 'beta', shape: [d], trainable: true }], macs: 0 };
    }
    case 'attention': {
      const [t, d] = sequence(node, ins[0]);
      const { heads: h, keyDim: k } = node;
      const params: ParamSpec[] = [];
      for (const p of ['query', 'key', 'value']) {
        params.push({ name: `${p}Kernel`, shape: [d, h, k], trainable: true });
        if (node.useBias) params.push({ name: `${p}Bias`, shape: [h, k], trainable: true });
      }
      params.push({ name: 'outputKernel', shape: [h, k, d], trainable: true });
      if (node.useBias) params.push({ name: 'outputBias', shape: [d], trainable: true });
      // Projections (q, k, v, output) plus the T-dependent terms q k^T and softmax * v, counted
      // over all T x T pairs (the causal mask's zeros are not subtracted, as nanoGPT counts).
      return { out: [t, d], params, macs: 4 * t * d * h * k + 2 * t * t * h * k };
    }
    case 'conv2d': {
      const [h, w, c] = spatial(node, ins[0]);
      const win = resolveWindow(h, w, node.kernelSize, node.strides, node.padding);
      if (win.outH < 1 || win.outW < 1) throw new ShapeMismatchError(`node '${node.name}' (conv2d): kernel ${node.kernelSize.join('x')} does not fit input ${shapeToString(ins[0])}`);
      const [kh, kw] = node.kernelSize;
      const params: ParamSpec[] = [{ name: 'kernel', shape: [kh, kw, c, node.filters], trainable: true }];
      if (node.useBias) params.push({ name: 'bias', shape: [node.filters], trainable: true });
      return { out: [win.outH, win.outW, node.filters], params, macs: win.outH * win.outW * kh * kw * c * node.filters };
    }
    case 'dense': {
      // Applied to the last axis; leading axes (tokens, pixels) are independent rows.
      const f = ins[0][ins[0].length - 1];
      const rows = sizeOf(ins[0]) / f;
      const params: ParamSpec[] = [{ name: 'kernel', shape: [f, node.units], trainable: true }];
      if (node.useBias) params.push({ name: 'bias', shape: [node.units], trainable: true });
      return { out: [...ins[0].slice(0, -1), node.units], params, macs: rows * f * node.units };
    }
    case 'batchNorm': {
      const c = ins[0][ins[0].length - 1];
      return {
        out: [...ins[0]],
        params: [
          { name: 'gamma', shape: [c], trainable: true }, { name: 'beta', shape: [c], trainable: true },
          { name: 'movingMean', shape: [c], trainable: false }, { name: 'movingVariance', shape: [c], trainable: false },
        ],
        macs: 0,
      };
    }
    case 'activation': case 'dropout':
      return { out: [...ins[0]], params: [], macs: 0 };
    case 'maxPool': case 'avgPool': {
      const [h, w, c] = spatial(node, ins[0]);
      const win = resolveWindow(h, w, node.poolSize, node.strides, node.padding);
      if (win.outH < 1 || win.outW < 1) throw new ShapeMismatchError(`node '${node.name}' (${node.kind}): pool ${node.poolSize.join('x')} does not fit input ${shapeToString(ins[0])}`);
      poolWindowsTouchInput(node, [h, w], [win.outH, win.outW], [win.top, win.left]);
      return { out: [win.outH, win.outW, c], params: [], macs: 0 };
    }
    case 'globalAvgPool': {
      const [, , c] = spatial(node, ins[0]);
      return { out: [c], params: [], macs: 0 };
    }
    case 'flatten':
      return { out: [sizeOf(ins[0])], params: [], macs: 0 };
    case 'add': {
      for (let i = 1; i < ins.length; i++) {
        if (shapeToString(ins[i]) !== shapeToString(ins[0])) {
          throw new ShapeMismatchError(`node '${node.name}' (add): input '${node.inputs[i]}' has shape ${shapeToString(ins[i])} but '${node.inputs[0]}' has ${shapeToString(ins[0])}`);
        }
      }
      return { out: [...ins[0]], params: [], macs: 0 };
    }
    case 'concat': {
      const lead = ins[0].slice(0, -1);
      let c = 0;
      ins.forEach((s, i) => {
        if (s.length !== ins[0].length || shapeToString(s.slice(0, -1)) !== shapeToString(lead)) {
          throw new ShapeMismatchError(`node '${node.name}' (concat): input '${node.inputs[i]}' has shape ${shapeToString(s)}, which does not match '${node.inputs[0]}' ${shapeToString(ins[0])} except in channels`);
        }
        c += s[s.length - 1];
      });
      return { out: [...lead, c], params: [], macs: 0 };
    }
  }
}

/**
 * Validates a graph and infers every node's shape. Throws an error naming the node at fault for
 * duplicate names, unknown inputs, cycles (a node read before it is defined), bad attributes and
 * shape mismatches.
 */
export function analyzeGraph(graph: Graph): GraphInfo {
  if (!graph || !Array.isArray(graph.nodes)) throw new InvalidGraphError('graph: "nodes" must be an array');
  const nodes = new Map<string, NodeInfo>();
  const consumers = new Map<string, string[]>();
  const all = new Map<string, Node>();
  for (const n of graph.nodes) {
    if (typeof n?.name !== 'string' || n.name === '') throw new InvalidGraphError(`graph: every node needs a non-empty string name, got ${JSON.stringify(n?.name)}`);
    if (n.name.includes('/')) fail(n, `names may not contain '/', which separates node and parameter in weight names`);
    if (all.has(n.name)) fail(n, 'duplicate node name');
    all.set(n.name, n);
  }
  let inputName: string | undefined;
  for (const n of graph.nodes) {
    if (!Object.hasOwn(ARITY, n.kind)) throw new UnsupportedLayerError(`node '${n.name}': unknown kind ${JSON.stringify(n.kind)}`);
    if (!Array.isArray(n.inputs)) fail(n, '"inputs" must be an array of node names');
    const [lo, hi] = ARITY[n.kind];
    if (n.inputs.length < lo || n.inputs.length > hi) fail(n, `${n.kind} takes ${lo === hi ? lo : `${lo}+`} input(s), got ${n.inputs.length}`);
    checkAttributes(n);
    if (n.kind === 'input' || n.kind === 'tokenInput') {
      if (inputName !== undefined) fail(n, `a second input node; '${inputName}' is already the graph input (one input is supported)`);
      inputName = n.name;
    }
    for (const i of n.inputs) {
      if (!all.has(i)) fail(n, `unknown input '${i}'`);
      if (!nodes.has(i)) fail(n, `input '${i}' is not defined before this node: the graph has a cycle or is not in topological order`);
    }
    const ins = n.inputs.map((i) => nodes.get(i)!.outputShape);
    const inNodes = n.inputs.map((i) => all.get(i)!);
    // Token ids are integers, meaningful only as rows of an embedding table.
    const tokenSrc = inNodes.find((x) => x.kind === 'tokenInput');
    if (tokenSrc && n.kind !== 'embedding') fail(n, `reads token ids from tokenInput '${tokenSrc.name}'; only an embedding node can read token ids`);
    const { out, params, macs } = infer(n, ins, inNodes);
    nodes.set(n.name, { node: n, inputShapes: ins, outputShape: out, params, macs });
    consumers.set(n.name, []);
    for (const i of n.inputs) consumers.get(i)!.push(n.name);
  }
  if (inputName === undefined) throw new InvalidGraphError('graph: no input node');
  if (!nodes.has(graph.output)) throw new InvalidGraphError(`graph: output '${graph.output}' is not a node`);
  const outputShape = nodes.get(graph.output)!.outputShape;
  const inputNode = all.get(inputName)!;
  const tokens = inputNode.kind === 'tokenInput' ? { length: inputNode.length, vocab: inputNode.vocab } : undefined;
  if (tokens) {
    if (outputShape.length !== 2 || outputShape[0] !== tokens.length) {
      throw new ShapeMismatchError(`graph: output '${graph.output}' of a token model must be per-token logits [${tokens.length}, V], got ${shapeToString(outputShape)}`);
    }
  } else if (outputShape.length !== 1) {
    throw new ShapeMismatchError(`graph: output '${graph.output}' must be flat logits [K], got ${shapeToString(outputShape)}`);
  }
  return { nodes, consumers, ...(tokens ? { tokens } : {}), inputName, inputShape: nodes.get(inputName)!.outputShape, outputShape };
}

/** Every weight tensor the graph needs, keyed `<node>/<param>`. */
export function paramSpecs(graph: Graph, info = analyzeGraph(graph)): Map<string, ParamSpec & { node: string }> {
  const out = new Map<string, ParamSpec & { node: string }>();
  for (const [name, ni] of info.nodes) for (const p of ni.params) out.set(`${name}/${p.name}`, { ...p, node: name });
  return out;
}

/** Trainable parameter count (what PyTorch's `sum(p.numel())` reports: BN moving stats excluded). */
export function countParams(graph: Graph, info = analyzeGraph(graph)): number {
  let n = 0;
  for (const ni of info.nodes.values()) for (const p of ni.params) if (p.trainable) n += sizeOf(p.shape);
  return n;
}

/**
 * Forward multiply-adds per example: conv2d, dense and attention (its projections and its
 * T-dependent q k^T and softmax * v terms over all T x T pairs); norms, pooling, embedding
 * lookups, softmax and adds are not counted.
 */
export function countMacs(graph: Graph, info = analyzeGraph(graph)): number {
  let n = 0;
  for (const ni of info.nodes.values()) n += ni.macs;
  return n;
}

export function getNode(graph: Graph, name: string): Node {
  const n = graph.nodes.find((x) => x.name === name);
  if (!n) throw new InvalidGraphError(`graph: no node named '${name}'; nodes are ${graph.nodes.map((x) => x.name).join(', ')}`);
  return n;
}

/** A short, stable id of the architecture (nodes, attributes, shapes), for metrics and caches. */
export function architectureId(graph: Graph): string {
  // Keys sorted, so a graph read back from JSON (another key order) has the same id.
  const s = JSON.stringify(graph.nodes, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v);
  let h1 = 0x811c9dc5, h2 = 0;
  for (let i = 0; i < s.length; i++) {
    h1 = Math.imul(h1 ^ s.charCodeAt(i), 16777619) >>> 0;
    h2 = (Math.imul(h2, 31) + s.charCodeAt(i)) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
