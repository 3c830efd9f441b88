/**
 * The one narrow interface every engine implements: build a model from (IR, weights), run it
 * forward in inference or training mode, take training steps, and read/write weights and
 * optimizer state as `Float32Array`s in the project's layout (NHWC, conv `[kh,kw,cin,cout]`,
 * dense `[in,out]`). Layout conversion, kernels and any engine quirk stay behind this interface.
 */
import type { Graph, Weights } from '../ir/types.ts';

/**
 * A batch of examples, NHWC (or [N, F] for flat inputs), row-major. For a token model (input
 * `tokenInput`, logits `[T, V]`) the ids are in `tokens` and labels are per token. An engine may
 * read the arrays until the call's promise settles (the torch engine reads `x` in place, without
 * a copy): leave them unchanged until then.
 */
export interface Batch {
  /** Input values, length N * prod(inputShape); unused (may be empty) for a token model. */
  x: Float32Array;
  /** Number of examples N. */
  n: number;
  /**
   * Class labels, length N (only for training and loss). For a token model: next-token targets,
   * length N * T; the loss is then the mean softmax cross-entropy over all N * T positions and
   * `correct` counts positions.
   */
  labels?: Int32Array;
  /** Token ids, length N * T, for a graph whose input is `tokenInput`. */
  tokens?: Int32Array;
}

/**
 * Optimizer settings. Semantics are PyTorch's (`torch.optim.Adam` / `torch.optim.SGD`):
 * weight decay is L2 added to the gradient (`g += weightDecay * p`), Adam uses bias correction,
 * SGD momentum is `buf = momentum * buf + g` (dampening 0), Nesterov optional.
 */
export type OptimizerConfig =
  | { kind: 'adam'; lr: number; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number }
  | { kind: 'sgd'; lr: number; momentum?: number; nesterov?: boolean; weightDecay?: number };

/**
 * Optimizer state in the project's layout, so transforms can map it (new entries zero).
 * Adam: slots `m` (first moment, `exp_avg`) and `v` (second moment, `exp_avg_sq`), and `step`.
 * SGD: slot `momentum` (`momentum_buffer`); `step` counts steps taken.
 * Each slot maps a trainable weight name (`conv1/kernel`) to a tensor of that weight's shape.
 */
export interface OptimizerState {
  kind: 'adam' | 'sgd';
  step: number;
  slots: Record<string, Weights>;
}

export interface StepResult {
  /** Mean softmax cross-entropy over the batch, before the update. */
  loss: number;
  /** Examples whose argmax logit equals the label, before the update. */
  correct: number;
}

export interface ForwardOptions {
  /**
   * Training mode: batch norm uses batch statistics and dropout is active. A plain forward call
   * never updates batch-norm moving statistics; only `trainStep` does.
   */
  training: boolean;
}

/** A network built on one engine. Not safe for concurrent calls. */
export interface EngineModel {
  readonly graph: Graph;
  /** Logits, row-major [N, K] (token models: [N, T, V]). */
  forward(batch: Batch, opts: ForwardOptions): Promise<Float32Array>;
  /**
   * Mean cross-entropy loss and the gradient of every trainable weight (training mode, no
   * update, moving statistics untouched); zero for a weight the loss does not depend on (a node
   * whose output nothing reads). For conformance tests and analysis.
   */
  gradients(batch: Batch): Promise<{ loss: number; grads: Weights }>;
  /** Sets the optimizer, optionally with carried-over state (e.g. mapped through a transform). */
  setOptimizer(config: OptimizerConfig, state?: OptimizerState): void;
  /** Changes the learning rate without touching optimizer state (lr drops). */
  setLearningRate(lr: number): void;
  /** One step: training-mode forward, loss, backward, optimizer update, BN moving-stat update. */
  trainStep(batch: Batch): Promise<StepResult>;
  /** Loss and correct count in inference mode (validation). */
  evaluate(batch: Batch): Promise<StepResult>;
  getWeights(): Promise<Weights>;
  setWeights(weights: Weights): Promise<void>;
  getOptimizerState(): Promise<OptimizerState | undefined>;
  dispose(): void;

  /**
   * Optional fast path (engines that can hold data natively): keep a dataset in engine memory so
   * a whole epoch runs without crossing into JS for every batch. The trainer falls back to
   * `trainStep`/`evaluate` loops when these are absent; results must be the same either way.
   */
  uploadDataset?(x: Float32Array, labels: Int32Array, n: number): Promise<DatasetHandle>;
  /** Trains on `order` (indices into the dataset) in consecutive batches of `batchSize` (last one may be smaller). */
  trainEpoch?(data: DatasetHandle, order: Int32Array, batchSize: number, onProgress?: (batchesDone: number, meanLoss: number) => void): Promise<EpochResult>;
  /** Inference-mode loss and accuracy over the whole dataset. */
  evaluateDataset?(data: DatasetHandle, batchSize: number): Promise<EpochResult>;
}

export interface DatasetHandle { readonly n: number; release(): void }

export interface EpochResult {
  /** Mean loss over examples. */
  loss: number;
  correct: number;
  examples: number;
  steps: number;
}

export interface BuildOptions {
  /** Seed of the model's own dropout-mask generator (default 0): one seed, one sequence of masks per model. */
  seed?: number;
  /** Device for engines that have several ('cpu', 'cuda'). */
  device?: string;
  /** Intra-op threads, where the engine lets us choose. */
  threads?: number;
}

export interface Engine {
  /** 'tfjs' or 'torch'. */
  readonly name: string;
  /** Human description, e.g. 'tfjs 4.22.0 (wasm)' or 'libtorch 1.13.1 (cpu)'. */
  readonly description: string;
  build(graph: Graph, weights: Weights, opts?: BuildOptions): Promise<EngineModel>;
}
