/**
 * NetMorph widening (Wei et al. 2016): one side of the new channels is zero, the other free.
 * - zero side 'producers' (default): new filters U = 0 and biases 0, so the new channels are 0
 *   everywhere in the group, provided every op in it maps 0 to 0 (checked: sigmoid does not; BN
 *   does with beta 0 and moving mean 0, in training mode too). Consumers' new rows V are free.
 * - zero side 'consumers': U free, consumers' new rows V = 0: the new channels may hold anything,
 *   nobody reads them. Exact for any channel-wise op.
 * New BN channels: gamma 1, beta 0, moving mean 0, moving variance 1.
 */
import { TransformError } from '../errors.ts';
import { describeGroup } from '../groups/analyze.ts';
import { kindHandler } from '../groups/kinds/registry.ts';
import { constant, fresh, free, freeBias, type WidenContext, type WidenRule } from './widen_core.ts';

export type NetMorphZeroSide = 'producers' | 'consumers';

const NEW_CHANNEL: Record<string, number> = { gamma: 1, beta: 0, movingMean: 0, movingVariance: 1 };

export function netmorphRule(ctx: WidenContext, zeroSide: NetMorphZeroSide = 'producers'): WidenRule {
  const { init, rng } = ctx;
  if (zeroSide !== 'producers' && zeroSide !== 'consumers') {
    throw new TransformError(`widen netmorph: netmorphZeroSide must be 'producers' or 'consumers', got ${JSON.stringify(zeroSide)}`);
  }
  if (zeroSide === 'producers') {
    for (const g of ctx.affected) {
      for (const op of g.channelOps) {
        const node = ctx.graph.nodes.find((n) => n.name === op.node)!;
        if (!kindHandler(node).mapsZeroToZero(node)) {
          throw new TransformError(`widen netmorph: ${op.kind} '${op.node}'${node.kind === 'activation' ? ` (${node.fn})` : ''} in ${describeGroup(g)} does not map 0 to 0, so zero new filters would not give zero channels; use netmorphZeroSide 'consumers' or another method`);
        }
      }
    }
  }
  const zeroProducers = zeroSide === 'producers';
  return {
    producer({ kernel, bias, news }) {
      return {
        kernel: news.map(() => (zeroProducers ? constant(kernel.sliceLength, 0) : fresh(free(kernel.sliceLength, kernel.tensor.data, kernel.sliceLength, init, rng)))),
        bias: bias && news.map(() => (zeroProducers ? constant(bias.sliceLength, 0) : fresh(freeBias(bias.sliceLength, bias.tensor.data, init, rng)))),
      };
    },
    channelOp({ params, news }) {
      return Object.fromEntries(params.map((s) => {
        if (!(s.param in NEW_CHANNEL)) throw new TransformError(`widen netmorph: no value for new per-channel parameter '${s.param}'`);
        return [s.param, news.map(() => constant(s.sliceLength, NEW_CHANNEL[s.param]))];
      }));
    },
    consumer({ kernel, news, fanIn }) {
      return { rows: news.map(() => (zeroProducers ? fresh(free(kernel.sliceLength, kernel.tensor.data, fanIn, init, rng)) : constant(kernel.sliceLength, 0))) };
    },
  };
}
