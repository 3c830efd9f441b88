/**
 * R2DeeperR (the paper's section 4.3-4.4, eqs. 19-23; appendix C.3): a new residual block
 * `y = x + z(x)` whose branch z starts at exactly zero, by the pairing trick of R2WiderR.
 *
 * With C = 2k channels, free U1 (`[T, C, k]`) and U2 (`[T, k, C]`), T = 9 taps (3x3) or 1 (dense):
 *
 *   layer 1 kernel  W1 = [U1 ; U1]      (out axis: filters j and j + k are equal)
 *   layer 1 BN      paired (fresh: gamma 1, beta 0, mean 0, var 1, the same for j and j + k)
 *   layer 2 kernel  W2 = [U2 , -U2]     (in axis: slice j + k is minus slice j), bias 0
 *   layer 2 BN      beta 0, moving mean 0
 *
 * The volume after layer 1's activation is paired, h_j = h_{j+k}, in inference and in training
 * (equal channels have equal batch statistics), so W2 h = U2 h_L - U2 h_R = 0: the branch is
 * BN(0) = 0 (inference: (0 - 0)/sqrt(1 + eps) * gamma + 0; training: a zero channel has batch
 * mean and variance 0). Then y = x + 0 = x, and the ReLU after the add is the identity because x
 * is already a ReLU output. Exact in both modes.
 *
 * Numerics (SPEC section 3): in float32, U2 h_L - U2 h_R cancels only to rounding, and in
 * training mode BN2 divides that residue by its batch std floored by sqrt(eps) (~3e-3), i.e.
 * multiplies it by ~300. The tests measure the result.
 */
import { TransformError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { residualBlock, channelsOf, tapsOf, type Block, type Site } from './deepen_block.ts';
import { addNoise, sampleFree, type InitOptions } from './init.ts';

export function r2rBlock(site: Site, init: InitOptions, rng: Rng): Block {
  const c = channelsOf(site);
  if (c % 2 !== 0) {
    throw new TransformError(`deepen r2r: volume '${site.x}' has ${c} channels; R2DeeperR pairs the block's channels (C = 2k), so C must be even. Deepen after an even-width volume, or widen it first`);
  }
  const k = c / 2, t = tapsOf(site);
  const notes: string[] = [];
  const u1 = freeKernel(site, 'out', [t, c, k], init, rng, notes);
  const u2 = freeKernel(site, 'in', [t, k, c], init, rng, notes);
  return { ...residualBlock(site, pairOutputs(u1, t, c, k), pairNegatedInputs(u2, t, k, c)), notes };
}

/** W1 = [U1 ; U1]: `[T, C, 2k]` from `[T, C, k]`, filter j + k = filter j. */
function pairOutputs(u1: Float32Array, t: number, c: number, k: number): Float32Array {
  const w = new Float32Array(t * c * 2 * k);
  for (let r = 0; r < t * c; r++) {
    for (let j = 0; j < k; j++) {
      w[r * 2 * k + j] = u1[r * k + j];
      w[r * 2 * k + j + k] = u1[r * k + j];
    }
  }
  return w;
}

/** W2 = [U2 , -U2]: `[T, 2k, C]` from `[T, k, C]`, input slice j + k = -(input slice j). */
function pairNegatedInputs(u2: Float32Array, t: number, k: number, c: number): Float32Array {
  const w = new Float32Array(t * 2 * k * c);
  for (let tap = 0; tap < t; tap++) {
    for (let j = 0; j < k; j++) {
      for (let o = 0; o < c; o++) {
        const v = u2[(tap * k + j) * c + o];
        w[(tap * 2 * k + j) * c + o] = v;
        w[(tap * 2 * k + j + k) * c + o] = -v;
      }
    }
  }
  return w;
}

/**
 * Free values U of shape `[T, in, out]`. match-std / he via `sampleFree` (reference: the kernel
 * before the insertion point). `copy` takes the reference kernel's first filters (`side` 'out')
 * or first input slices ('in') when its taps and other axis fit, else falls back to match-std.
 * Noise, if asked for, goes on U before pairing, so the pairs stay equal and the block exact.
 */
export function freeKernel(site: Site, side: 'in' | 'out', [t, cin, cout]: [number, number, number], init: InitOptions, rng: Rng, notes: string[]): Float32Array {
  const ref = site.reference;
  let u: Float32Array | undefined;
  if (init.method === 'copy' && ref) u = copySlices(ref.shape, ref.data, side, t, cin, cout, init.scale ?? 1);
  if (init.method === 'copy' && !u) notes.push(`${site.prefix}: init 'copy' found no reference kernel of a fitting shape for [${t}, ${cin}, ${cout}]; used match-std`);
  u ??= sampleFree(t * cin * cout, init.method === 'copy' ? { ...init, method: 'match-std' } : init, { reference: ref?.data ?? [], fanIn: t * cin }, rng);
  return addNoise(u, init.noise, rng);
}

function copySlices(shape: number[], data: Float32Array, side: 'in' | 'out', t: number, cin: number, cout: number, scale: number): Float32Array | undefined {
  const rt = shape.length === 4 ? shape[0] * shape[1] : shape.length === 2 ? 1 : -1;
  const rin = shape[shape.length - 2], rout = shape[shape.length - 1];
  if (rt !== t) return undefined;
  if (side === 'out' ? !(rin === cin && rout >= cout) : !(rout === cout && rin >= cin)) return undefined;
  const u = new Float32Array(t * cin * cout);
  for (let tap = 0; tap < t; tap++) {
    for (let i = 0; i < cin; i++) {
      for (let o = 0; o < cout; o++) u[(tap * cin + i) * cout + o] = data[(tap * rin + i) * rout + o] * scale;
    }
  }
  return u;
}
