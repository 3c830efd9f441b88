/** How far apart two sets of logits are; `r2r verify` and the exactness tests use this definition. */
import { ShapeMismatchError } from '../errors.ts';

export interface LogitsDiff {
  /** max_i |a_i - b_i|. */
  maxAbsDiff: number;
  /** maxAbsDiff / max_i |a_i| (a is the reference); 0 when both are all zero, Infinity when only a is. */
  relDiff: number;
}

export function compareLogits(a: ArrayLike<number>, b: ArrayLike<number>): LogitsDiff {
  if (a.length !== b.length) throw new ShapeMismatchError(`compareLogits: ${a.length} logits vs ${b.length}; compare the same batch of the same classes`);
  let maxAbsDiff = 0, maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    // NaN anywhere must not read as "equal".
    if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? NaN : d;
    if (Number.isNaN(maxAbsDiff)) break;
    maxAbs = Math.max(maxAbs, Math.abs(a[i]));
  }
  const relDiff = Number.isNaN(maxAbsDiff) ? NaN : maxAbsDiff === 0 ? 0 : maxAbs === 0 ? Infinity : maxAbsDiff / maxAbs;
  return { maxAbsDiff, relDiff };
}
