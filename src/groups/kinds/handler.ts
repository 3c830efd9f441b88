/**
 * One handler per node kind (Torch-Pruning's PrunerBox): how a node ties the channel axes of its
 * inputs and output, and which axes of its parameters are channel axes. The graph walk in
 * `../analyze.ts` has no per-kind special cases; everything kind-specific lives here.
 */
import type { Node, NodeKind, NodeOf } from '../../ir/types.ts';

/**
 * How a node's output channels relate to its inputs' channels.
 * - `source`: the network input; its own group, never widenable.
 * - `produce`: conv2d, dense: output channels are defined by the node's weights (a producer);
 *   it reads (consumes) its input's channels.
 * - `tie`: output channel c depends only on input channel c (channel-wise ops, `add`): the
 *   output and every input share one group.
 * - `concat`: output channels are the inputs' channel ranges, one after another.
 * - `flatten`: [H, W, C] to [H*W*C]; channel c at (h, w) is index (h*W + w)*C + c.
 */
export type Relation = 'source' | 'produce' | 'tie' | 'concat' | 'flatten';

/** A parameter and the axis of it that runs over channels. */
export interface ParamAxis { param: string; axis: number }

export interface KindHandler<K extends NodeKind = NodeKind> {
  kind: K;
  relation(node: NodeOf<K>, inputShapes: number[][]): Relation;
  /**
   * Channel axis per parameter. `in`: axes over the input's channels (a consumer's kernel rows);
   * `out`: axes over the output's channels (a producer's filters, a channel-wise op's
   * per-channel parameters, e.g. BN gamma).
   */
  axes(node: NodeOf<K>): { in: ParamAxis[]; out: ParamAxis[] };
  /**
   * Whether an all-zero channel stays all zero through this node when its per-channel
   * parameters are NetMorph's (BN: beta 0, moving mean 0), in inference and training mode.
   */
  mapsZeroToZero(node: NodeOf<K>): boolean;
  /**
   * Set for a `tie` node whose output channels each depend on *all* input channels (layer norm):
   * the reason its group cannot be widened channel-wise. Absent: channel c depends on channel c.
   */
  couples?(node: NodeOf<K>): string;
}

/** Lets a handler be stored in a Map keyed by kind without losing its node type. */
export function handler<K extends NodeKind>(h: KindHandler<K>): KindHandler { return h as unknown as KindHandler; }

export const NO_AXES = { in: [] as ParamAxis[], out: [] as ParamAxis[] };

export type { Node };
