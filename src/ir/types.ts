/**
 * The graph IR: a DAG of typed nodes, NHWC, one example's shapes (no batch axis).
 *
 * Parameter layout (Keras / TensorFlow.js): conv2d kernel `[kh, kw, cin, cout]`, dense kernel
 * `[in, out]`. Weights live outside the graph, keyed `<node>/<param>` (see `params.ts`).
 */

/** Spatial padding: 'same' / 'valid' as in TensorFlow, or explicit [top, bottom, left, right]. */
export type Padding = 'same' | 'valid' | [number, number, number, number];

export type ActivationFn = 'relu' | 'relu6' | 'leakyRelu' | 'elu' | 'tanh' | 'sigmoid' | 'gelu';

interface NodeBase {
  /** Unique name; also the prefix of the node's weight tensors. */
  name: string;
  /** Names of the nodes this node reads, in order. */
  inputs: string[];
}

export interface InputNode extends NodeBase { kind: 'input'; /** [H, W, C] or [F]. */ shape: number[] }
/**
 * A sequence of token ids: output `[length]` integers in `[0, vocab)` (fed as `Batch.tokens`).
 * `length` is the block size T. See docs/design/transformer-ir.md.
 */
export interface TokenInputNode extends NodeBase { kind: 'tokenInput'; length: number; vocab: number }
/** Token ids `[T]` -> rows of `embeddings [vocab, dim]`: `[T, dim]` (Keras `Embedding`). */
export interface EmbeddingNode extends NodeBase { kind: 'embedding'; vocab: number; dim: number }
/** `[T, D]` -> `[T, D]`: adds rows `0..T-1` of a learned `embeddings [maxLength, D]` table. */
export interface PositionEmbeddingNode extends NodeBase { kind: 'positionEmbedding'; maxLength: number }
/**
 * Layer norm over the last axis (biased variance, as PyTorch and Keras): `gamma [D]`, `beta [D]`.
 * Not channel-wise: every output channel depends on every input channel through mean and variance.
 */
export interface LayerNormNode extends NodeBase { kind: 'layerNorm'; epsilon: number }
/**
 * Multi-head self-attention on `[T, D]` with its four projections, laid out as Keras
 * `MultiHeadAttention`: query/key/value kernels `[D, heads, keyDim]`, biases `[heads, keyDim]`,
 * output kernel `[heads, keyDim, D]`, bias `[D]`. Scores are scaled by `1/sqrt(keyDim)`;
 * `causal` masks keys after the query's position. The mapping to PyTorch's `nn.Linear` form is
 * in docs/design/transformer-ir.md.
 */
export interface AttentionNode extends NodeBase { kind: 'attention'; heads: number; keyDim: number; causal: boolean; useBias: boolean }
export interface Conv2dNode extends NodeBase {
  kind: 'conv2d';
  filters: number;
  kernelSize: [number, number];
  strides: [number, number];
  padding: Padding;
  useBias: boolean;
}
/** Dense on the last axis: `[..., F]` -> `[..., units]` (token-wise on `[T, D]`, as Keras `Dense`). */
export interface DenseNode extends NodeBase { kind: 'dense'; units: number; useBias: boolean }
/**
 * Batch norm over the channel (last) axis. `momentum` follows Keras:
 * moving = momentum * moving + (1 - momentum) * batch (0.9 here equals PyTorch's 0.1).
 * The moving variance is updated with the unbiased batch variance, as PyTorch does;
 * normalisation uses the biased one.
 */
export interface BatchNormNode extends NodeBase { kind: 'batchNorm'; epsilon: number; momentum: number }
export interface ActivationNode extends NodeBase {
  kind: 'activation';
  fn: ActivationFn;
  /** Slope for leakyRelu (default 0.01). */
  alpha?: number;
}
export interface PoolNode extends NodeBase {
  kind: 'maxPool' | 'avgPool';
  poolSize: [number, number];
  strides: [number, number];
  /** Explicit padding pads max pooling with -inf; average pooling counts only real cells. */
  padding: Padding;
}
export interface GlobalAvgPoolNode extends NodeBase { kind: 'globalAvgPool' }
/** Flattens [H, W, C] to [H*W*C] in NHWC order: channel c at (h, w) is index (h*W + w)*C + c. */
export interface FlattenNode extends NodeBase { kind: 'flatten' }
export interface AddNode extends NodeBase { kind: 'add' }
/** Concatenates along the channel (last) axis. */
export interface ConcatNode extends NodeBase { kind: 'concat' }
export interface DropoutNode extends NodeBase { kind: 'dropout'; rate: number }

export type Node =
  | InputNode | Conv2dNode | DenseNode | BatchNormNode | ActivationNode | PoolNode
  | GlobalAvgPoolNode | FlattenNode | AddNode | ConcatNode | DropoutNode
  | TokenInputNode | EmbeddingNode | PositionEmbeddingNode | LayerNormNode | AttentionNode;

export type NodeKind = Node['kind'];
export type NodeOf<K extends NodeKind> = Extract<Node, { kind: K }>;

export interface Graph {
  format: 'r2r-graph';
  version: 1;
  /** Optional human name, e.g. "resnet-cifar18(0.125)". */
  name?: string;
  /** Nodes in topological order (validated). */
  nodes: Node[];
  /** The node whose output is the logits: `[K]`, or `[T, V]` per token for a sequence model. */
  output: string;
}

/** A dense float32 tensor, row-major. */
export interface Tensor { shape: number[]; data: Float32Array }

/** Weights keyed `<node>/<param>`, e.g. `conv1/kernel`, `bn1/movingMean`. */
export type Weights = Record<string, Tensor>;

export const NODE_KINDS: readonly NodeKind[] = [
  'input', 'conv2d', 'dense', 'batchNorm', 'activation', 'maxPool', 'avgPool',
  'globalAvgPool', 'flatten', 'add', 'concat', 'dropout',
  'tokenInput', 'embedding', 'positionEmbedding', 'layerNorm', 'attention',
];
export const ACTIVATION_FNS: readonly ActivationFn[] = ['relu', 'relu6', 'leakyRelu', 'elu', 'tanh', 'sigmoid', 'gelu'];
