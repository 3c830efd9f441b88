/**
 * R2WiderR (the paper's section 4.1): widen a channel group from C to C + E channels, E = 2k,
 * so that the network computes exactly the same function.
 *
 * Eqs. (8)-(13): every producer of the group gets 2k new output filters made of k free filters U
 * stacked twice, `W' = [W; U; U]`, biases `b' = [b; c; c]`, and every channel-wise op gets its
 * new per-channel parameters in equal pairs `[ρ; ρ]` (BN: gamma 1, beta 0, moving mean 0,
 * moving variance 1 for both of a pair). The new channels therefore come in equal pairs
 * x_L = x_R, at every volume of the group, in inference and in training mode (equal channels
 * have equal batch statistics).
 * Eqs. (14)-(18), the residual rule in its coupled form (SPEC section 2): an `add` of paired
 * volumes is paired, so a residual stream is widened as one group with every op standard.
 * Every consumer gets new input rows `[V, −V]`: k free slices then their negation, and computes
 * W x + V x_L − V x_R = W x.
 *
 * Layout: kernels are [kh, kw, cin, cout] / [in, out]; "filters" are slices along cout / out,
 * "rows" along cin / in. Through concat or flatten the same pairing holds at every position
 * (`pos`), with independent U and V per position.
 */
import { TransformError } from '../errors.ts';
import { describeGroup } from '../groups/analyze.ts';
import { addNoise } from './init.ts';
import { constant, fresh, free, freeBias, negate, perKey, type Entry, type NewSlice, type WidenContext, type WidenRule } from './widen_core.ts';

export function r2rRule(ctx: WidenContext): WidenRule {
  const { E, init, rng } = ctx;
  if (E % 2 !== 0) {
    throw new TransformError(`widen r2r: ${describeGroup(ctx.group)} needs an even channel increase (new channels come in equal pairs), got ${E}; try ${E - 1 > 0 ? `${E - 1} or ` : ''}${E + 1}`);
  }
  const k = E / 2;
  /** Which pair a new channel belongs to, and whether it is the second (negated) one. */
  const pair = (t: number) => ({ p: t % k, second: t >= k });

  return {
    producer({ kernel, bias, news }) {
      const oldFilters = kernel.tensor.shape[kernel.axis] - news.length;
      // One free filter U (and bias c) per pair and position.
      const pairFilter = perKey((_key: string) => {
        if (init.method === 'copy') {
          // The paper's future-work hybrid: U (and c) copy an existing filter of this producer.
          const i = rng.int(oldFilters);
          return { U: addNoise(kernel.slice(i), init.noise, rng), c: bias ? bias.slice(i) : undefined };
        }
        return { U: free(kernel.sliceLength, kernel.tensor.data, kernel.sliceLength, init, rng), c: bias ? freeBias(bias.sliceLength, bias.tensor.data, init, rng) : undefined };
      });
      const at = (e: Entry) => pairFilter(`${e.pos}|${pair(e.t).p}`);
      return {
        kernel: news.map((e) => fresh(at(e).U)), // [U; U]
        bias: bias && news.map((e) => fresh(at(e).c!)), // [c; c]
      };
    },
    channelOp({ params, news }) {
      // [ρ; ρ]: the same constants for both channels of a pair (and every pair).
      const rho: Record<string, number> = { gamma: 1, beta: 0, movingMean: 0, movingVariance: 1 };
      return Object.fromEntries(params.map((s) => {
        if (!(s.param in rho)) throw new TransformError(`widen r2r: no paired value for per-channel parameter '${s.param}'`);
        return [s.param, news.map(() => constant(s.sliceLength, rho[s.param]))];
      }));
    },
    consumer({ kernel, news, fanIn }) {
      const V = perKey((_key: string) => fresh(free(kernel.sliceLength, kernel.tensor.data, fanIn, init, rng)));
      const rows: NewSlice[] = news.map((e) => {
        const { p, second } = pair(e.t);
        const v = V(`${e.pos}|${p}`);
        return second ? negate(v) : v; // [V, −V]
      });
      return { rows };
    },
  };
}
