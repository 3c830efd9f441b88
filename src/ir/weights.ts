/** Weights: validation against a graph, copying, and default initialisation. */
import { InvalidWeightsError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { analyzeGraph, paramSpecs, type GraphInfo } from './graph.ts';
import { shapeToString, sizeOf } from './shapes.ts';
import type { Graph, Tensor, Weights } from './types.ts';

export function tensor(shape: number[], data?: Float32Array | number[]): Tensor {
  const n = sizeOf(shape);
  const d = data instanceof Float32Array ? data : data ? Float32Array.from(data) : new Float32Array(n);
  if (d.length !== n) throw new InvalidWeightsError(`tensor: shape ${shapeToString(shape)} needs ${n} values, got ${d.length}`);
  return { shape: [...shape], data: d };
}

export function cloneTensor(t: Tensor): Tensor { return { shape: [...t.shape], data: new Float32Array(t.data) }; }

export function cloneWeights(w: Weights): Weights {
  const out: Weights = {};
  for (const [k, t] of Object.entries(w)) out[k] = cloneTensor(t);
  return out;
}

/**
 * Checks that `weights` holds exactly the tensors the graph needs, each with the right shape and
 * length. `where` names the source (a file) in messages.
 */
export function validateWeights(graph: Graph, weights: Weights, where = 'weights', info?: GraphInfo): void {
  const specs = paramSpecs(graph, info ?? analyzeGraph(graph));
  for (const [key, spec] of specs) {
    const t = weights[key];
    if (!t) throw new InvalidWeightsError(`${where}: missing tensor '${key}' (shape ${shapeToString(spec.shape)}) for node '${spec.node}'`);
    if (shapeToString(t.shape) !== shapeToString(spec.shape)) {
      throw new InvalidWeightsError(`${where}: tensor '${key}' has shape ${shapeToString(t.shape)}, but node '${spec.node}' needs ${shapeToString(spec.shape)}`);
    }
    if (!(t.data instanceof Float32Array) || t.data.length !== sizeOf(spec.shape)) {
      throw new InvalidWeightsError(`${where}: tensor '${key}' holds ${t.data?.length} values, shape ${shapeToString(spec.shape)} needs ${sizeOf(spec.shape)}`);
    }
  }
  for (const key of Object.keys(weights)) {
    if (!specs.has(key)) throw new InvalidWeightsError(`${where}: tensor '${key}' belongs to no parameter of the graph`);
  }
}

export interface InitOptions {
  /**
   * Give batch norms non-trivial statistics and affine parameters, and layer norms non-trivial
   * gamma and beta (as after training), so exactness checks cannot pass by accident on identity
   * norms.
   */
  randomBatchNorm?: boolean;
}

/**
 * Fresh weights, PyTorch's defaults: kernels and biases uniform with bound 1/sqrt(fan_in)
 * (`nn.Conv2d`/`nn.Linear`); attention as PyTorch's `nn.Linear(D, 3D)` for q/k/v (fan-in D)
 * and `nn.Linear(H*K, D)` for the output; embedding tables N(0, 1) (`nn.Embedding`, not
 * GPT-2's N(0, 0.02)); BN gamma 1, beta 0, mean 0, variance 1; layer norm gamma 1, beta 0.
 */
export function initWeights(graph: Graph, rng: Rng, opts: InitOptions = {}): Weights {
  const w: Weights = {};
  const info = analyzeGraph(graph);
  for (const [key, spec] of paramSpecs(graph, info)) {
    const t = tensor(spec.shape);
    const d = t.data;
    const node = graph.nodes.find((n) => n.name === spec.node)!;
    const pname = key.slice(key.indexOf('/') + 1);
    if (node.kind === 'conv2d' || node.kind === 'dense') {
      // Kernel and bias share the kernel's fan-in (everything but the output axis).
      const fanIn = sizeOf(w[`${spec.node}/kernel`]?.shape.slice(0, -1) ?? spec.shape.slice(0, -1));
      const bound = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < d.length; i++) d[i] = rng.uniform(-bound, bound);
    } else if (node.kind === 'attention') {
      // q/k/v kernels [D, H, K] read D inputs; the output kernel [H, K, D] reads H*K.
      const inShape = info.nodes.get(node.name)!.inputShapes[0];
      const bound = 1 / Math.sqrt(pname.startsWith('output') ? node.heads * node.keyDim : inShape[inShape.length - 1]);
      for (let i = 0; i < d.length; i++) d[i] = rng.uniform(-bound, bound);
    } else if (node.kind === 'embedding' || node.kind === 'positionEmbedding') {
      for (let i = 0; i < d.length; i++) d[i] = rng.normal();
    } else if (node.kind === 'layerNorm') {
      const r = opts.randomBatchNorm;
      for (let i = 0; i < d.length; i++) d[i] = pname === 'gamma' ? (r ? rng.uniform(0.5, 1.5) : 1) : (r ? rng.uniform(-0.2, 0.2) : 0);
    } else if (node.kind === 'batchNorm') {
      const r = opts.randomBatchNorm;
      for (let i = 0; i < d.length; i++) {
        if (pname === 'gamma') d[i] = r ? rng.uniform(0.5, 1.5) : 1;
        else if (pname === 'beta') d[i] = r ? rng.uniform(-0.2, 0.2) : 0;
        else if (pname === 'movingMean') d[i] = r ? rng.uniform(-0.2, 0.2) : 0;
        else if (pname === 'movingVariance') d[i] = r ? rng.uniform(0.5, 1.5) : 1;
      }
    }
    w[key] = t;
  }
  return w;
}
