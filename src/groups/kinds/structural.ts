/** Nodes that only route channels: the input, add, concat, flatten. */
import { handler, NO_AXES, type KindHandler } from './handler.ts';

export const inputHandler: KindHandler = handler({
  kind: 'input', relation: () => 'source', axes: () => NO_AXES, mapsZeroToZero: () => true,
});

/** add ties all its inputs and its output: a + b is paired/zero/copied when a and b are. */
export const addHandler: KindHandler = handler({
  kind: 'add', relation: () => 'tie', axes: () => NO_AXES, mapsZeroToZero: () => true,
});

export const concatHandler: KindHandler = handler({
  kind: 'concat', relation: () => 'concat', axes: () => NO_AXES, mapsZeroToZero: () => true,
});

/**
 * Flattening a flat [F] volume, or a [1, 1, C] one, keeps channel c at index c, so it ties (as
 * a channel-wise op); [H, W, C] with H*W > 1 maps channel c to H*W indices, stride C.
 */
export const flattenHandler: KindHandler = handler({
  kind: 'flatten',
  relation: (_n, ins) => (ins[0].length === 1 || ins[0][0] * ins[0][1] === 1 ? 'tie' : 'flatten'),
  axes: () => NO_AXES,
  mapsZeroToZero: () => true,
});
