/**
 * Initialisation of a transform's free parameters (the paper's section 6 and appendix E).
 *
 * - `match-std` (default): U(-s*sqrt(3), s*sqrt(3)) * scale, where s is the numerical standard
 *   deviation of the existing weights of the same kernel (widen) or of the kernel before the
 *   insertion point (deepen). The uniform's std is then exactly s*scale.
 * - `he`: N(0, 2 / fanIn) * scale. Appendix E: far larger than trained weights; destabilises.
 * - `copy`: free filters are copies of existing ones (R2R's future-work hybrid). Only a transform
 *   knows which slices to copy, so it handles `copy` itself and uses `match-std` where it cannot.
 */
import { TransformError } from '../errors.ts';
import type { Rng } from '../rng.ts';

export type InitMethod = 'match-std' | 'he' | 'copy';
export const INIT_METHODS: readonly InitMethod[] = ['match-std', 'he', 'copy'];

export interface InitOptions {
  method?: InitMethod;
  /** Multiplier on the sampled values (default 1). */
  scale?: number;
  /**
   * Std of optional Gaussian noise added to new parameters for symmetry breaking (appendix C
   * note). Default 0: any noise makes a transform only approximately function-preserving.
   */
  noise?: number;
}

/** Numerical standard deviation (population) of an array. */
export function stdOf(a: ArrayLike<number>): number {
  if (a.length === 0) return 0;
  let mean = 0;
  for (let i = 0; i < a.length; i++) mean += a[i];
  mean /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - mean) ** 2;
  return Math.sqrt(v / a.length);
}

/**
 * `n` fresh values for a free parameter. `reference` is the existing kernel whose std match-std
 * copies; `fanIn` is the fan-in of the kernel the values go into (for He).
 */
export function sampleFree(n: number, opts: InitOptions, ctx: { reference: ArrayLike<number>; fanIn: number }, rng: Rng): Float32Array {
  const method = opts.method ?? 'match-std';
  const scale = opts.scale ?? 1;
  const out = new Float32Array(n);
  if (method === 'he') {
    const sd = Math.sqrt(2 / ctx.fanIn) * scale;
    for (let i = 0; i < n; i++) out[i] = rng.normal() * sd;
  } else if (method === 'match-std' || method === 'copy') {
    let s = stdOf(ctx.reference);
    // A kernel with no spread (e.g. all zeros) gives nothing to match: fall back to He's scale.
    if (!(s > 0)) s = Math.sqrt(2 / ctx.fanIn);
    const b = s * Math.sqrt(3) * scale;
    for (let i = 0; i < n; i++) out[i] = rng.uniform(-b, b);
  } else {
    throw new TransformError(`init: unknown method '${method as string}'; expected one of ${INIT_METHODS.join(', ')}`);
  }
  return out;
}

/** Adds N(0, noise^2) to every entry, in place, when noise > 0. */
export function addNoise(a: Float32Array, noise: number | undefined, rng: Rng): Float32Array {
  if (noise && noise > 0) for (let i = 0; i < a.length; i++) a[i] += rng.normal() * noise;
  return a;
}
