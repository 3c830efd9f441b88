/**
 * Net2WiderNet (Chen et al. 2016): each new channel j copies an existing channel g(j), drawn
 * uniformly; a consumer divides the rows of channel c (old and copies alike) by its count n_c,
 * so sum over copies of (W_c / n_c) x_c = W_c x_c. Exact in inference and training mode (copies
 * have equal batch statistics); optional noise on the copies breaks exactness slightly.
 *
 * Producers copy filters and biases, channel-wise ops copy every per-channel parameter including
 * BN's moving statistics. One g serves the whole group, so an `add` of copies is a copy.
 * Provenance is a gather: new channel j reads old channel g(j) (times 1/n_c in consumers), so
 * optimizer state follows the copies, scaled by each entry's gradient factor (`gradScale`):
 * 1/n_c for the copies' producer and channel-wise entries (old channel included), 1 for rows.
 */
import { addNoise } from './init.ts';
import { copyOf, oldIndexMap, type Entry, type WidenContext, type WidenRule } from './widen_core.ts';

export function net2netRule(ctx: WidenContext): WidenRule {
  const { C, E, init, rng } = ctx;
  const g = Int32Array.from({ length: E }, () => rng.int(C));
  const count = new Int32Array(C).fill(1);
  for (const c of g) count[c]++;
  const noisy = <T extends { values: Float32Array }>(s: T): T => { addNoise(s.values, init.noise, rng); return s; };

  return {
    producer({ layout, news, kernel, bias }) {
      const at = oldIndexMap(layout);
      return {
        kernel: news.map((e) => noisy(copyOf(kernel, at(g[e.t], e.pos)))),
        bias: bias && news.map((e) => copyOf(bias, at(g[e.t], e.pos))),
      };
    },
    channelOp({ layout, news, params }) {
      const at = oldIndexMap(layout);
      return Object.fromEntries(params.map((s) => [s.param, news.map((e) => copyOf(s, at(g[e.t], e.pos)))]));
    },
    consumer({ layout, news, kernel }) {
      const at = oldIndexMap(layout);
      const n = (c: number) => count[c];
      return {
        rows: news.map((e) => noisy(copyOf(kernel, at(g[e.t], e.pos), 1 / n(g[e.t])))),
        oldScale: (e: Entry) => (e.c >= 0 ? 1 / n(e.c) : 1),
      };
    },
    gradScale: {
      // Channel c and its copies each carry 1/n_c of what c carried (consumers read them at
      // W_c / n_c), so their producers' and channel-wise parameters get 1/n_c of c's gradient;
      // a divided row sees the same input as before and keeps its full gradient.
      out: (e: Entry) => (e.c >= 0 ? 1 / count[e.c] : e.t >= 0 ? 1 / count[g[e.t]] : 1), // else: another concat segment's channel
      in: () => 1,
    },
  };
}
