/**
 * Random padding (the paper's RandomPadWiden baseline): every new parameter is free (filters,
 * biases, consumer rows), BN channels start as fresh ones (gamma 1, beta 0, mean 0, variance 1).
 * Not function-preserving: the new channels reach the consumers unchecked.
 */
import { TransformError } from '../errors.ts';
import { constant, fresh, free, freeBias, type WidenContext, type WidenRule } from './widen_core.ts';

const NEW_CHANNEL: Record<string, number> = { gamma: 1, beta: 0, movingMean: 0, movingVariance: 1 };

export function randomRule(ctx: WidenContext): WidenRule {
  const { init, rng } = ctx;
  return {
    producer({ kernel, bias, news }) {
      return {
        kernel: news.map(() => fresh(free(kernel.sliceLength, kernel.tensor.data, kernel.sliceLength, init, rng))),
        bias: bias && news.map(() => fresh(freeBias(bias.sliceLength, bias.tensor.data, init, rng))),
      };
    },
    channelOp({ params, news }) {
      return Object.fromEntries(params.map((s) => {
        if (!(s.param in NEW_CHANNEL)) throw new TransformError(`widen random: no value for new per-channel parameter '${s.param}'`);
        return [s.param, news.map(() => constant(s.sliceLength, NEW_CHANNEL[s.param]))];
      }));
    },
    consumer({ kernel, news, fanIn }) {
      return { rows: news.map(() => fresh(free(kernel.sliceLength, kernel.tensor.data, fanIn, init, rng))) };
    },
  };
}
