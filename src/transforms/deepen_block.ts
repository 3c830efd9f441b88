/**
 * The pieces every deepening method builds its new block from: where the block goes (a `Site`),
 * its layers (3x3 conv, padding 1, on an [H, W, C] volume; dense on a flat [F] volume), and
 * fresh batch-norm tensors.
 *
 * A block mirrors the network it goes into: if the network already uses batch norm, every new
 * conv/dense is followed by a batch norm and has no bias (as the zoo's ResNet blocks); otherwise
 * the new layers have biases and no batch norm (SmallConv, the MLP).
 *
 * Kernels are handled as `[T, in, out]` with T = 9 taps (3x3 conv) or 1 (dense); that is the
 * row-major layout of both `[3, 3, in, out]` and `[in, out]`.
 */
import type { ActivationFn, Node, Tensor, Weights } from '../ir/types.ts';
import { tensor } from '../ir/weights.ts';

export interface Site {
  /** The volume x the block reads; its consumers read the block's output instead. */
  x: string;
  /** Shape of x: [H, W, C] or [F]. */
  shape: number[];
  /** Prefix of the new nodes' names, e.g. `s1_deep1`. */
  prefix: string;
  /** x's activation when x is an activation output (R2R's branch reuses it; Net2Net needs it idempotent). */
  xActivation?: ActivationFn;
  /** Batch norm settings for the block's batch norms, or false for a network without batch norm. */
  batchNorm: false | { epsilon: number; momentum: number };
  /** The kernel before the insertion point (match-std's reference), or null if there is none. */
  reference: Tensor | null;
}

/** What a method returns: nodes in topological order (reading `site.x`), the output node, and the new tensors. */
export interface Block { nodes: Node[]; output: string; weights: Weights; notes?: string[] }

/** Channels of the volume (last axis). */
export function channelsOf(site: Site): number { return site.shape[site.shape.length - 1]; }

/** Kernel taps: 9 for the block's 3x3 convs, 1 for dense. */
export function tapsOf(site: Site): number { return site.shape.length === 3 ? 9 : 1; }

/** Idempotent activations: f(f(x)) = f(x), so one after a volume that is already f's output changes nothing. */
export function isIdempotent(fn: ActivationFn | undefined): boolean { return fn === 'relu' || fn === 'relu6'; }

/**
 * A new linear layer reading `input`: conv 3x3 (stride 1, padding 1) on a spatial site, dense on a
 * flat one. Returns the node and its kernel shape.
 */
export function linearLayer(site: Site, name: string, input: string, cin: number, cout: number): { node: Node; kernelShape: number[] } {
  const useBias = site.batchNorm === false;
  if (site.shape.length === 3) {
    return {
      node: { kind: 'conv2d', name, inputs: [input], filters: cout, kernelSize: [3, 3], strides: [1, 1], padding: [1, 1, 1, 1], useBias },
      kernelShape: [3, 3, cin, cout],
    };
  }
  return { node: { kind: 'dense', name, inputs: [input], units: cout, useBias }, kernelShape: [cin, cout] };
}

/**
 * One layer (linear, then batch norm if the network uses it) with the given kernel values; the
 * bias, when there is one, is zero. Appends nodes and tensors to `block` and returns the output name.
 */
export function addLayer(block: Block, site: Site, names: { linear: string; bn: string }, input: string, cin: number, cout: number, kernel: Float32Array, bn: BnInit = 'fresh'): string {
  const { node, kernelShape } = linearLayer(site, names.linear, input, cin, cout);
  block.nodes.push(node);
  block.weights[`${names.linear}/kernel`] = tensor(kernelShape, kernel);
  if (site.batchNorm === false) {
    block.weights[`${names.linear}/bias`] = tensor([cout]);
    return names.linear;
  }
  block.nodes.push({ kind: 'batchNorm', name: names.bn, inputs: [names.linear], epsilon: site.batchNorm.epsilon, momentum: site.batchNorm.momentum });
  Object.assign(block.weights, batchNormTensors(names.bn, cout, bn === 'identity' ? 1 - site.batchNorm.epsilon : 1));
  return names.bn;
}

/** 'fresh': gamma 1, beta 0, moving mean 0, variance 1. 'identity': variance 1 - eps, so inference is exactly x. */
export type BnInit = 'fresh' | 'identity';

export function batchNormTensors(name: string, c: number, movingVariance: number): Weights {
  return {
    [`${name}/gamma`]: tensor([c], new Float32Array(c).fill(1)),
    [`${name}/beta`]: tensor([c]),
    [`${name}/movingMean`]: tensor([c]),
    [`${name}/movingVariance`]: tensor([c], new Float32Array(c).fill(movingVariance)),
  };
}

export function activationNode(name: string, input: string, fn: ActivationFn): Node {
  return { kind: 'activation', name, inputs: [input], fn };
}

/**
 * Layer names inside a block: `<prefix>_conv1` (spatial) or `<prefix>_fc1` (flat), `<prefix>_bn1`;
 * with a path letter, `<prefix>_conv1a`, `<prefix>_bn1a`.
 */
export function layerNames(site: Site, i: number, path = ''): { linear: string; bn: string } {
  return { linear: `${site.prefix}_${site.shape.length === 3 ? 'conv' : 'fc'}${i}${path}`, bn: `${site.prefix}_bn${i}${path}` };
}

/** Inner width of each of the block's two branches: half the volume's channels, rounded up. */
export function branchWidth(site: Site): number { return Math.ceil(channelsOf(site) / 2); }

/**
 * Kernels of the block's two branches, `[T, in, out]`: branch a reads x with `a1` (`[T, C, k]`)
 * and writes with `a2` (`[T, k, C]`); branch b with `b1` and `b2`.
 */
export interface BranchKernels { a1: Float32Array; a2: Float32Array; b1: Float32Array; b2: Float32Array }

/**
 * The residual block of R2DeeperR and of random padding: two branches of the zoo's basic-block
 * shape, each at inner width k = ceil(C/2), so together they have the basic block's multiply-adds:
 *
 *   branch p (a, b):  layer1 C->k [+ BN] - act - layer2 k->C [+ BN]
 *   y = act(add(add(branch a, branch b), x))
 *
 * act is x's own activation (ReLU when x is not an activation output). The activation after the
 * add is kept only when it is idempotent (ReLU, ReLU6): on a block output equal to x it is then
 * the identity; otherwise the block ends at the add. The branches are summed first and x is added
 * last, so a branch sum that is exactly 0 gives exactly x (deepen_r2r.ts).
 */
export function residualBlock(site: Site, kernels: BranchKernels): Block {
  const c = channelsOf(site), k = branchWidth(site);
  const fn = site.xActivation ?? 'relu';
  const block: Block = { nodes: [], output: '', weights: {} };
  const branch = (path: 'a' | 'b', w1: Float32Array, w2: Float32Array): string => {
    const y1 = addLayer(block, site, layerNames(site, 1, path), site.x, c, k, w1);
    const act = `${site.prefix}_${fn}1${path}`;
    block.nodes.push(activationNode(act, y1, fn));
    return addLayer(block, site, layerNames(site, 2, path), act, k, c, w2);
  };
  const za = branch('a', kernels.a1, kernels.a2), zb = branch('b', kernels.b1, kernels.b2);
  block.nodes.push({ kind: 'add', name: `${site.prefix}_branch`, inputs: [za, zb] });
  block.nodes.push({ kind: 'add', name: `${site.prefix}_add`, inputs: [`${site.prefix}_branch`, site.x] });
  block.output = `${site.prefix}_add`;
  if (isIdempotent(site.xActivation)) {
    block.nodes.push(activationNode(`${site.prefix}_${fn}2`, block.output, fn));
    block.output = `${site.prefix}_${fn}2`;
  }
  return block;
}
