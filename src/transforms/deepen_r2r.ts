/**
 * R2DeeperR (the paper's section 4.3-4.4, eqs. 19-23; appendix C.3): a new residual block
 * `y = x + z(x)` whose branch z starts at exactly zero, by the pairing trick of R2WiderR.
 *
 * The paper's zero branch is one branch of 2k paired channels: layer 1 `W1 = [U1 ; U1]` makes
 * h_L = h_R, layer 2 `W2 = [U2 , -U2]` computes U2 h_L - U2 h_R = 0. Here the two halves of the
 * pair are two branches (deepen_block.ts), with free U1 (`[T, C, k]`) and U2 (`[T, k, C]`),
 * T = 9 taps (3x3) or 1 (dense), k = ceil(C/2):
 *
 *   branch a:  layer 1 kernel U1,  BN (fresh), act,  layer 2 kernel  U2,  BN (fresh: beta 0, mean 0)
 *   branch b:  layer 1 kernel U1,  BN (fresh), act,  layer 2 kernel -U2,  BN (fresh)
 *   y = act((z_a + z_b) + x)
 *
 * Branch b computes the same h as branch a (same kernel, same batch-norm parameters, so the same
 * batch statistics in training), then -U2 h = -(U2 h); a batch norm with beta 0 and moving mean 0
 * is odd (BN(-v) = -BN(v): in training the batch mean and variance of -v are -mean and var), so
 * z_b = -z_a and the block is x + 0 = x in inference and training mode.
 *
 * Why two branches and not one conv [U2, -U2]: in float32 a conv's sum U2 h_L - U2 h_R cancels
 * only to rounding (~1e-7 of its terms), and in training mode the batch norm after it normalises
 * that residue by its batch std, floored by sqrt(eps): a ~300x amplification (SPEC section 3).
 * Here nothing normalises a cancelled quantity: each branch's batch norm sees a genuine signal,
 * and the cancellation is the single addition z_a + (-z_a), which is exactly 0 in any precision
 * (negating a kernel negates every product and partial sum exactly, as rounding is symmetric).
 * The two branches have the paired form's kernels and multiply-adds; they differ from it only in
 * normalising each branch's output separately (C more batch-norm channels), which also lets the
 * block grow smoothly in training: after a gradient step z_a + z_b is small, where one batch norm
 * over a zero branch would jump to unit scale.
 */
import type { Rng } from '../rng.ts';
import { branchWidth, channelsOf, residualBlock, tapsOf, type Block, type Site } from './deepen_block.ts';
import { addNoise, sampleFree, type InitOptions } from './init.ts';

export function r2rBlock(site: Site, init: InitOptions, rng: Rng): Block {
  const c = channelsOf(site), k = branchWidth(site), t = tapsOf(site);
  const notes: string[] = [];
  const u1 = freeKernel(site, 'out', [t, c, k], init, rng, notes);
  const u2 = freeKernel(site, 'in', [t, k, c], init, rng, notes);
  return { ...residualBlock(site, { a1: u1, a2: u2, b1: u1.slice(), b2: u2.map((v) => -v) }), notes };
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
