/**
 * Channel-wise ops (the paper's "maintains channel dependencies"): output channel c depends only
 * on input channel c, so input and output share one group.
 */
import type { ActivationFn } from '../../ir/types.ts';
import { handler, NO_AXES, type KindHandler } from './handler.ts';

export const batchNormHandler: KindHandler = handler({
  kind: 'batchNorm',
  relation: () => 'tie',
  axes: () => ({ in: [], out: ['gamma', 'beta', 'movingMean', 'movingVariance'].map((param) => ({ param, axis: 0 })) }),
  // With beta 0 and moving mean 0: inference 0 -> 0; training, a zero channel has batch mean 0
  // and variance 0, so it normalises to beta = 0.
  mapsZeroToZero: () => true,
});

/** f(0) for every activation the IR knows; sigmoid is the one that does not keep 0. */
const ZERO_TO_ZERO: Record<ActivationFn, boolean> = {
  relu: true, relu6: true, leakyRelu: true, elu: true, tanh: true, gelu: true, sigmoid: false,
};

export const activationHandler: KindHandler = handler({
  kind: 'activation',
  relation: () => 'tie',
  axes: () => NO_AXES,
  mapsZeroToZero: (n) => ZERO_TO_ZERO[n.fn],
});

const plain = (kind: 'maxPool' | 'avgPool' | 'dropout' | 'globalAvgPool'): KindHandler => handler({
  kind,
  relation: () => 'tie',
  axes: () => NO_AXES,
  mapsZeroToZero: () => true,
});

export const maxPoolHandler = plain('maxPool');
export const avgPoolHandler = plain('avgPool');
export const dropoutHandler = plain('dropout');
export const globalAvgPoolHandler = plain('globalAvgPool');
