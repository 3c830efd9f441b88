/** What channel-group analysis returns (see `analyze.ts`). */

/**
 * One step of an index map from a group's channel c to positions in a derived volume:
 * - `concat`: c -> offset + c (the group is one input of the concat node);
 * - `flatten`: c -> (h*W + w)*channels + c for every one of `spatial` = H*W positions.
 */
export type IndexStep =
  | { kind: 'concat'; node: string; offset: number; total: number }
  | { kind: 'flatten'; node: string; spatial: number; channels: number };

/** A weighted node reading the group's channels through `steps` (empty: directly). */
export interface GroupConsumer {
  node: string;
  /** The volume (node output) it reads. */
  input: string;
  steps: IndexStep[];
}

/** A channel-wise op in the group and its per-channel parameters (BN's four; none for ReLU). */
export interface ChannelOp { node: string; kind: string; params: string[] }

/** How a derived group's channels are made of other groups' channels. */
export type Derivation =
  | { kind: 'concat'; node: string; segments: { group: number; offset: number; size: number }[] }
  | { kind: 'flatten'; node: string; group: number; spatial: number; channels: number };

export interface ChannelGroup {
  /** 0, 1, ... in order of the group's first volume in the graph (deterministic). */
  id: number;
  /** Readable chain of the group's volumes, e.g. "conv1→bn1→relu1→pool1→…→s1b4_relu2". */
  label: string;
  /** Channel count. */
  size: number;
  /** Nodes whose outputs are the group's volumes, in graph order. */
  volumes: string[];
  /** conv2d/dense nodes whose output channels are the group's. */
  producers: string[];
  /** conv2d/dense nodes reading the group's channels, directly or through concat/flatten. */
  consumers: GroupConsumer[];
  /** Channel-wise ops (BN, activations, pools, dropout, global average pooling). */
  channelOps: ChannelOp[];
  /** add nodes in the group. */
  adds: string[];
  /** Set when the group's channels are a concat or flatten of other groups' (it is not widened by itself). */
  derivedFrom: Derivation[];
  /** Groups derived from this one (through concat/flatten), by id. */
  derivedGroups: number[];
  /** The network input is in the group, or in a group derived from it. */
  containsInput: boolean;
  /** The logits are in the group, or in a group derived from it. */
  feedsOutput: boolean;
  /**
   * Nodes that couple all the group's channels (layer norm), with the reason: channel-wise
   * widening (R2R, Net2Net, NetMorph pairing) would change the function. Empty for most groups.
   */
  coupled: { node: string; reason: string }[];
  /** Can be widened: not derived, neither containsInput nor feedsOutput, not coupled. */
  widenable: boolean;
}
