/**
 * Net2DeeperNet (Chen et al. 2015; SPEC section 3): insert layers that compute the identity.
 * One "block" is two layers, each: conv 3x3 (padding 1) whose centre tap is the identity
 * matrix I (dense: the kernel is I), then, in a network with batch norm, a batch norm set to the
 * identity in inference (gamma 1, beta 0, moving mean 0, moving variance 1 - eps, so
 * (x - 0) / sqrt(1 - eps + eps) = x), then x's activation. That activation must be idempotent
 * (ReLU, ReLU6) and x must already be its output, so f(I x) = f(x) = x.
 *
 * Exact in inference. In training mode a batch norm normalises with the batch statistics instead,
 * which are not (0, 1), so the block is only approximately the identity (the paper's "in
 * expectation"); without batch norm it is exact in both modes. Net2Net adds plain layers, no
 * residual connection, so it is refused on a residual stream (deepen.ts checks that).
 */
import { TransformError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { activationNode, addLayer, channelsOf, isIdempotent, layerNames, tapsOf, type Block, type Site } from './deepen_block.ts';
import { addNoise, type InitOptions } from './init.ts';

/** Layers per block: two, like the residual block, so the same `perStage` adds the same depth. */
export const NET2NET_LAYERS_PER_BLOCK = 2;

export function net2netBlock(site: Site, init: InitOptions, rng: Rng): Block {
  const fn = site.xActivation;
  if (!isIdempotent(fn)) {
    throw new TransformError(`deepen net2net: '${site.x}' is ${fn ? `a ${fn} output` : 'not an activation output'}; Net2DeeperNet needs an idempotent activation (relu, relu6) at the insertion point, so that f(I x) = x. Choose a ReLU output as 'after', or use method 'r2r'`);
  }
  const c = channelsOf(site);
  const block: Block = { nodes: [], output: site.x, weights: {} };
  for (let i = 1; i <= NET2NET_LAYERS_PER_BLOCK; i++) {
    const y = addLayer(block, site, layerNames(site, i), block.output, c, c, addNoise(identityKernel(tapsOf(site), c), init.noise, rng), 'identity');
    block.output = `${site.prefix}_${fn}${i}`;
    block.nodes.push(activationNode(block.output, y, fn!));
  }
  return block;
}

/** `[T, C, C]` with the identity on the centre tap (T = 9: tap 4 of 3x3; T = 1: the kernel itself). */
function identityKernel(t: number, c: number): Float32Array {
  const w = new Float32Array(t * c * c);
  const centre = (t - 1) / 2;
  for (let i = 0; i < c; i++) w[(centre * c + i) * c + i] = 1;
  return w;
}
