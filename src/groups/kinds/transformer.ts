/**
 * Transformer kinds (docs/design/transformer-ir.md, "Groups"): token input, embeddings, layer
 * norm, attention.
 */
import { handler, NO_AXES, type KindHandler } from './handler.ts';

/** Token ids: the network input, a group of its own (its last axis is T, not channels). */
export const tokenInputHandler: KindHandler = handler({
  kind: 'tokenInput', relation: () => 'source', axes: () => NO_AXES, mapsZeroToZero: () => true,
});

/** Produces the residual stream's D channels (columns of the table); reads ids, not channels. */
export const embeddingHandler: KindHandler = handler({
  kind: 'embedding',
  relation: () => 'produce',
  // embeddings [vocab, dim]
  axes: () => ({ in: [], out: [{ param: 'embeddings', axis: 1 }] }),
  mapsZeroToZero: () => true,
});

/** Adds table[t, c] to channel c: channel-wise; a zero column keeps a zero channel zero. */
export const positionEmbeddingHandler: KindHandler = handler({
  kind: 'positionEmbedding',
  relation: () => 'tie',
  // embeddings [maxLength, D]
  axes: () => ({ in: [], out: [{ param: 'embeddings', axis: 1 }] }),
  mapsZeroToZero: () => true,
});

/**
 * Output channel c has channel c's gamma and beta, so input and output share one group; but the
 * mean and variance run over every channel, so the group is coupled: a paired, zero or copied
 * new channel changes every old channel's output.
 */
export const layerNormHandler: KindHandler = handler({
  kind: 'layerNorm',
  relation: () => 'tie',
  axes: () => ({ in: [], out: [{ param: 'gamma', axis: 0 }, { param: 'beta', axis: 0 }] }),
  mapsZeroToZero: () => false, // a zero channel normalises to -mean/std * gamma + beta
  couples: () => 'layer norm normalises over all channels of its input: a new channel changes the mean and variance, so every old channel\'s output',
});

/**
 * Consumes its input's D (rows of the q/k/v kernels `[D, H, K]`) and produces its output's D
 * (the last axis of `outputKernel [H, K, D]`, and `outputBias`); its heads are internal.
 */
export const attentionHandler: KindHandler = handler({
  kind: 'attention',
  relation: () => 'produce',
  axes: (n) => ({
    in: ['queryKernel', 'keyKernel', 'valueKernel'].map((param) => ({ param, axis: 0 })),
    out: [{ param: 'outputKernel', axis: 2 }, ...(n.useBias ? [{ param: 'outputBias', axis: 0 }] : [])],
  }),
  mapsZeroToZero: () => true,
});
