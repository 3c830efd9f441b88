/**
 * The native engine: the IR compiled once into a libtorch interpreter (native/src/net.cc) that
 * runs forward, autograd, libtorch's Adam/SGD and batch-norm statistics on one engine thread,
 * off the JS main thread. Weights and optimizer state cross the boundary as Float32Arrays in the
 * project's layout (NHWC, conv [kh,kw,cin,cout], dense [in,out], attention as Keras
 * MultiHeadAttention); layout conversion happens in the addon, at the boundary only. Token models
 * (input `tokenInput`, logits [T, V]) take `Batch.tokens` and one label per token.
 */
import { availableParallelism } from 'node:os';
import { DataError, EngineUnavailableError, R2RError, ShapeMismatchError, UnsupportedLayerError, UsageError } from '../../errors.ts';
import { analyzeGraph, paramSpecs, type GraphInfo } from '../../ir/graph.ts';
import { resolveWindow, shapeToString, sizeOf } from '../../ir/shapes.ts';
import type { Graph, Node, Weights } from '../../ir/types.ts';
import { validateWeights } from '../../ir/weights.ts';
import type {
  Batch, BuildOptions, DatasetHandle, Engine, EngineModel, EpochResult, ForwardOptions, OptimizerConfig,
  OptimizerState, StepResult,
} from '../engine.ts';
import { ThreadAdvisor } from '../cpu_load.ts';
import { loadAddon, type NativeAddon, type NativeDataset, type NativeModel, type NativeOpSpec } from './native.ts';

export interface TorchEngineOptions {
  /** 'cpu' (default) or 'cuda' / 'cuda:N' where the libtorch build has CUDA. */
  device?: string;
  /**
   * Intra-op threads (at::set_num_threads). Default 'auto' (or OMP_NUM_THREADS when set): the
   * cores other processes leave free, re-checked between calls (cpu_load.ts says why).
   */
  threads?: number | 'auto';
  /**
   * Train with activations and conv kernels in channels_last memory format (the IR's own NHWC
   * order). Default off (NCHW, PyTorch's default): on 2 cores NCHW trained ResNetCifar-18 1.1-1.3x
   * faster, and oneDNN 2.6's channels_last weight gradient of strided 1x1 convs races on 2+
   * threads. Inference runs channels_last either way (faster forward convs).
   * R2R_TORCH_CHANNELS_LAST=1 turns it on.
   */
  channelsLast?: boolean;
}

const OPTIMIZER_SLOTS = { adam: ['m', 'v'], sgd: ['momentum'] } as const;

/** The IR as the native interpreter's op list: node indices, explicit pads, channel counts. */
export function compileGraph(graph: Graph, info: GraphInfo = analyzeGraph(graph)): { ops: NativeOpSpec[]; output: number } {
  const index = new Map(graph.nodes.map((n, i) => [n.name, i]));
  const ops = graph.nodes.map((node: Node): NativeOpSpec => {
    const ni = info.nodes.get(node.name)!;
    const inShape = ni.inputShapes[0] ?? [];
    const base = { name: node.name, kind: node.kind, inputs: node.inputs.map((i) => index.get(i)!) };
    // Rank 3 is [H, W, C] (NCHW inside the addon), rank 2 a token sequence [T, C].
    const spatialIn = inShape.length === 3, seqIn = inShape.length === 2;
    switch (node.kind) {
      case 'input':
        return { ...base, shape: node.shape };
      case 'tokenInput':
        return { ...base, shape: [node.length] };
      case 'embedding':
        return { ...base, cin: node.vocab, cout: node.dim };
      case 'positionEmbedding':
        return { ...base, cin: node.maxLength, cout: inShape[1] };
      case 'layerNorm':
        return { ...base, cout: inShape[inShape.length - 1], eps: node.epsilon, spatialIn };
      case 'attention':
        return { ...base, cin: inShape[1], heads: node.heads, keyDim: node.keyDim, causal: node.causal, useBias: node.useBias, shape: inShape };
      case 'conv2d': {
        const [h, w, c] = inShape;
        const win = resolveWindow(h, w, node.kernelSize, node.strides, node.padding);
        return {
          ...base, cin: c, cout: node.filters, kh: node.kernelSize[0], kw: node.kernelSize[1], sh: node.strides[0], sw: node.strides[1],
          pads: [win.top, win.bottom, win.left, win.right], useBias: node.useBias,
        };
      }
      case 'dense':
        return { ...base, cin: inShape[inShape.length - 1], cout: node.units, useBias: node.useBias, spatialIn, seqIn };
      case 'batchNorm':
        return { ...base, cout: inShape[inShape.length - 1], eps: node.epsilon, momentum: node.momentum, spatialIn, seqIn };
      case 'activation':
        return { ...base, fn: node.fn, alpha: node.alpha ?? 0.01 };
      case 'maxPool': case 'avgPool': {
        const [h, w] = inShape;
        const win = resolveWindow(h, w, node.poolSize, node.strides, node.padding);
        return {
          ...base, kh: node.poolSize[0], kw: node.poolSize[1], sh: node.strides[0], sw: node.strides[1],
          pads: [win.top, win.bottom, win.left, win.right],
        };
      }
      case 'flatten': case 'concat':
        return { ...base, spatialIn };
      case 'dropout':
        return { ...base, rate: node.rate };
      case 'globalAvgPool': case 'add':
        return base;
      default:
        throw new UnsupportedLayerError(`torch engine: node '${(node as Node).name}' has kind ${JSON.stringify((node as Node).kind)}, which the torch engine does not support`);
    }
  });
  return { ops, output: index.get(graph.output)! };
}

class TorchDataset implements DatasetHandle {
  constructor(readonly n: number, readonly native: NativeDataset, readonly owner: TorchModel) {}
  private released = false;
  release(): void {
    if (this.released) return;
    this.released = true;
    this.native.release();
  }
  get isReleased(): boolean { return this.released; }
}

function engineError(what: string, e: unknown): R2RError {
  if (e instanceof R2RError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new R2RError('R2R_ENGINE', `torch engine: ${what} failed: ${msg}`, { cause: e });
}

export class TorchModel implements EngineModel {
  private readonly info: GraphInfo;
  private readonly specs: ReturnType<typeof paramSpecs>;
  private readonly inputSize: number;
  private readonly classes: number;
  /** Labels per example: T for a token model (next-token targets), else 1. */
  private readonly perExample: number;
  private optimizer?: OptimizerConfig;
  private disposed = false;

  private constructor(readonly graph: Graph, private readonly native: NativeModel, private threads: number, private readonly advisor?: ThreadAdvisor) {
    this.info = analyzeGraph(graph);
    this.specs = paramSpecs(graph, this.info);
    this.inputSize = sizeOf(this.info.inputShape);
    this.classes = this.info.tokens ? this.info.outputShape[1] : this.info.outputShape[0];
    this.perExample = this.info.tokens?.length ?? 1;
  }

  static async create(addon: NativeAddon, graph: Graph, weights: Weights, opts: { device: string; threads: number; channelsLast: boolean; seed?: number }, advisor?: ThreadAdvisor): Promise<TorchModel> {
    const info = analyzeGraph(graph);
    validateWeights(graph, weights, 'weights', info);
    const { ops, output } = compileGraph(graph, info);
    let native: NativeModel;
    try {
      native = new addon.NativeModel(ops, output, { ...opts, labelsPerExample: info.tokens?.length ?? 1 });
    } catch (e) {
      throw engineError(`building '${graph.name ?? 'graph'}'`, e);
    }
    const m = new TorchModel(graph, native, opts.threads, typeof native.setThreads === 'function' ? advisor : undefined);
    await m.setWeights(weights);
    return m;
  }

  private live(): NativeModel {
    if (this.disposed) throw new UsageError(`torch model '${this.graph.name ?? 'graph'}' was disposed; build a new one`);
    return this.native;
  }

  /** Validates a batch and returns what the addon reads as its input (values, or token ids). */
  private checkBatch(batch: Batch, needLabels: boolean): Float32Array | Int32Array {
    if (!Number.isInteger(batch.n) || batch.n < 1) throw new UsageError(`batch.n must be a positive integer, got ${batch.n}`);
    let input: Float32Array | Int32Array = batch.x;
    const tokens = this.info.tokens;
    if (tokens) {
      const ids = batch.tokens;
      if (!ids) throw new UsageError(`torch engine: the graph reads token ids (tokenInput '${this.info.inputName}') but the batch has no tokens`);
      if (ids.length !== batch.n * tokens.length) {
        throw new ShapeMismatchError(`batch.tokens holds ${ids.length} ids; ${batch.n} sequences of ${tokens.length} need ${batch.n * tokens.length}`);
      }
      for (let i = 0; i < ids.length; i++) {
        if (!(ids[i] >= 0 && ids[i] < tokens.vocab)) throw new DataError(`torch engine: token ${ids[i]} at position ${i} is outside the vocabulary [0, ${tokens.vocab})`);
      }
      input = ids;
    } else if (batch.x.length !== batch.n * this.inputSize) {
      throw new ShapeMismatchError(`batch.x holds ${batch.x.length} values; ${batch.n} examples of shape ${shapeToString(this.info.inputShape)} need ${batch.n * this.inputSize}`);
    }
    if (needLabels) {
      if (!batch.labels) throw new UsageError('batch.labels is required for training and loss');
      this.checkLabels(batch.labels, batch.n, 'batch.labels');
    }
    return input;
  }

  private checkLabels(labels: Int32Array, n: number, what: string): void {
    if (labels.length !== n * this.perExample) {
      if (this.perExample === 1) throw new ShapeMismatchError(`${what} holds ${labels.length} labels for ${n} examples`);
      throw new DataError(`${what} holds ${labels.length} labels for ${n} examples of ${this.perExample} tokens (one target per token, ${n * this.perExample})`);
    }
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] < 0 || labels[i] >= this.classes) throw new DataError(`${what}[${i}] = ${labels[i]} is not a class of this ${this.classes}-class network`);
    }
  }

  /** With automatic threads: follow the free cores (cheap; decides at most every 250 ms). */
  private adaptThreads(): void {
    if (!this.advisor) return;
    const t = this.advisor.recheck();
    if (t !== this.threads) {
      this.native.setThreads!(t);
      this.threads = t;
    }
  }

  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    this.adaptThreads();
    try {
      return await f();
    } catch (e) {
      throw engineError(what, e);
    }
  }

  private toWeights(data: Record<string, Float32Array>, trainableOnly: boolean): Weights {
    const w: Weights = {};
    for (const [key, spec] of this.specs) {
      if (trainableOnly && !spec.trainable) continue;
      const d = data[key];
      if (!d) throw new R2RError('R2R_ENGINE', `torch engine: the addon returned no tensor '${key}'`);
      w[key] = { shape: [...spec.shape], data: d };
    }
    return w;
  }

  async forward(batch: Batch, opts: ForwardOptions): Promise<Float32Array> {
    const input = this.checkBatch(batch, false);
    const native = this.live();
    return this.call('forward', () => native.forward(input, batch.n, opts.training));
  }

  async gradients(batch: Batch): Promise<{ loss: number; grads: Weights }> {
    const input = this.checkBatch(batch, true);
    const native = this.live();
    const r = await this.call('gradients', () => native.gradients(input, batch.labels!, batch.n));
    return { loss: r.loss, grads: this.toWeights(r.grads, true) };
  }

  setOptimizer(config: OptimizerConfig, state?: OptimizerState): void {
    const native = this.live();
    if (config.kind !== 'adam' && config.kind !== 'sgd') throw new UsageError(`optimizer kind must be 'adam' or 'sgd', got ${JSON.stringify((config as { kind: unknown }).kind)}`);
    if (!(config.lr >= 0)) throw new UsageError(`optimizer lr must be a number >= 0, got ${config.lr}`);
    if (config.kind === 'sgd' && config.nesterov && !((config.momentum ?? 0) > 0)) throw new UsageError('sgd: nesterov needs momentum > 0');
    if (state) {
      if (state.kind !== config.kind) throw new UsageError(`optimizer state is for '${state.kind}', but the optimizer is '${config.kind}'`);
      if (!Number.isInteger(state.step) || state.step < 0) throw new UsageError(`optimizer state step must be a non-negative integer, got ${state.step}`);
      const allowed: readonly string[] = OPTIMIZER_SLOTS[config.kind];
      for (const [slot, ws] of Object.entries(state.slots)) {
        if (!allowed.includes(slot)) throw new UsageError(`optimizer state slot '${slot}' is not one of ${config.kind}'s (${allowed.join(', ')})`);
        for (const [key, t] of Object.entries(ws)) {
          const spec = this.specs.get(key);
          if (!spec || !spec.trainable) throw new UsageError(`optimizer state slot '${slot}': '${key}' is not a trainable weight of this graph`);
          if (t.data.length !== sizeOf(spec.shape) || shapeToString(t.shape) !== shapeToString(spec.shape)) {
            throw new UsageError(`optimizer state slot '${slot}': '${key}' has shape ${shapeToString(t.shape)}, the weight has ${shapeToString(spec.shape)}`);
          }
        }
      }
    }
    const slots: Record<string, Record<string, Float32Array>> = {};
    for (const [slot, ws] of Object.entries(state?.slots ?? {})) {
      slots[slot] = {};
      for (const [key, t] of Object.entries(ws)) slots[slot][key] = t.data;
    }
    native.setOptimizer(config, state ? { kind: state.kind, step: state.step, slots } : undefined);
    this.optimizer = { ...config };
  }

  setLearningRate(lr: number): void {
    const native = this.live();
    if (!this.optimizer) throw new UsageError('setLearningRate: call setOptimizer first');
    if (!(lr >= 0)) throw new UsageError(`learning rate must be a number >= 0, got ${lr}`);
    native.setLearningRate(lr);
    this.optimizer = { ...this.optimizer, lr };
  }

  async trainStep(batch: Batch): Promise<StepResult> {
    const input = this.checkBatch(batch, true);
    const native = this.live();
    if (!this.optimizer) throw new UsageError('trainStep: call setOptimizer first');
    return this.call('trainStep', () => native.trainStep(input, batch.labels!, batch.n));
  }

  async evaluate(batch: Batch): Promise<StepResult> {
    const input = this.checkBatch(batch, true);
    const native = this.live();
    return this.call('evaluate', () => native.evaluate(input, batch.labels!, batch.n));
  }

  async getWeights(): Promise<Weights> {
    const native = this.live();
    return this.toWeights(await this.call('getWeights', () => native.getWeights()), false);
  }

  async setWeights(weights: Weights): Promise<void> {
    validateWeights(this.graph, weights, 'weights', this.info);
    const native = this.live();
    const data: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(weights)) data[k] = t.data;
    await this.call('setWeights', () => native.setWeights(data));
  }

  async getOptimizerState(): Promise<OptimizerState | undefined> {
    const native = this.live();
    const s = await this.call('getOptimizerState', () => native.getOptimizerState());
    if (!s) return undefined;
    const slots: Record<string, Weights> = {};
    for (const [slot, data] of Object.entries(s.slots)) slots[slot] = this.toWeights(data, true);
    return { kind: s.kind, step: s.step, slots };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.native.dispose();
  }

  async uploadDataset(x: Float32Array, labels: Int32Array, n: number): Promise<DatasetHandle> {
    // The interface carries float inputs only; a token model's steps are cheap to post one by one.
    if (this.info.tokens) throw new UsageError(`torch engine: uploadDataset takes float inputs; the token model '${this.graph.name ?? 'graph'}' trains with trainStep`);
    this.checkBatch({ x, n, labels }, true);
    const native = this.live();
    try {
      return new TorchDataset(n, native.uploadDataset(x, labels, n), this);
    } catch (e) {
      throw engineError('uploadDataset', e);
    }
  }

  private dataset(data: DatasetHandle): TorchDataset {
    if (!(data instanceof TorchDataset) || data.owner !== this) throw new UsageError('dataset handle does not come from this model\'s uploadDataset');
    if (data.isReleased) throw new UsageError('dataset handle was released');
    return data;
  }

  async trainEpoch(data: DatasetHandle, order: Int32Array, batchSize: number, onProgress?: (batchesDone: number, meanLoss: number) => void): Promise<EpochResult> {
    const d = this.dataset(data);
    const native = this.live();
    if (!this.optimizer) throw new UsageError('trainEpoch: call setOptimizer first');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`batchSize must be a positive integer, got ${batchSize}`);
    for (let i = 0; i < order.length; i++) {
      if (!(order[i] >= 0 && order[i] < d.n)) throw new UsageError(`order[${i}] = ${order[i]} is outside the dataset of ${d.n} examples`);
    }
    return this.call('trainEpoch', () => native.trainEpoch(d.native, order, batchSize, onProgress));
  }

  async evaluateDataset(data: DatasetHandle, batchSize: number): Promise<EpochResult> {
    const d = this.dataset(data);
    const native = this.live();
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`batchSize must be a positive integer, got ${batchSize}`);
    return this.call('evaluateDataset', () => native.evaluateDataset(d.native, batchSize));
  }
}

/** OMP_NUM_THREADS, as PyTorch reads it: a fixed thread count when set to a positive integer. */
function ompNumThreads(): number | undefined {
  const v = Number(process.env.OMP_NUM_THREADS);
  return Number.isInteger(v) && v >= 1 ? v : undefined;
}

function envFlag(name: string): boolean | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  return v !== '0' && v.toLowerCase() !== 'false';
}

/**
 * The libtorch engine. Throws EngineUnavailableError (with install instructions) when the addon
 * is not built or libtorch cannot be loaded, and when CUDA is asked of a CPU-only build.
 */
export async function createTorchEngine(opts: TorchEngineOptions = {}): Promise<Engine> {
  const addon = loadAddon();
  const info = addon.info();
  const device = opts.device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new UsageError(`torch engine: device must be 'cpu', 'cuda' or 'cuda:N', got '${device}'`);
  if (device.startsWith('cuda') && !info.cuda) {
    throw new EngineUnavailableError(
      `torch engine: device '${device}' needs a CUDA build of libtorch and a visible GPU, but libtorch ${info.torchVersion} here has none; ` +
      'download a CUDA LibTorch, then `LIBTORCH=/path/to/libtorch npm run build:native`, or use --device cpu');
  }
  const fixed = opts.threads ?? ompNumThreads() ?? 'auto';
  if (fixed !== 'auto' && (!Number.isInteger(fixed) || fixed < 1)) throw new UsageError(`torch engine: threads must be a positive integer or 'auto', got ${fixed}`);
  // Automatic threads only make sense on the CPU; a GPU run keeps one host thread per core.
  const advisor = fixed === 'auto' && device === 'cpu' ? new ThreadAdvisor() : undefined;
  const start = advisor ? await advisor.threads() : fixed === 'auto' ? availableParallelism() : fixed;
  const threadText = advisor ? `auto threads, ${start} at start` : `${start} thread${start === 1 ? '' : 's'}`;
  const channelsLast = opts.channelsLast ?? envFlag('R2R_TORCH_CHANNELS_LAST') ?? false;
  return {
    name: 'torch',
    description: `libtorch ${info.torchVersion} (${device}, ${threadText}${channelsLast ? ', channels_last' : ''}${info.onednn && device === 'cpu' ? ', oneDNN dense' : ''})`,
    async build(graph: Graph, weights: Weights, b: BuildOptions = {}): Promise<EngineModel> {
      const threads = b.threads ?? (advisor ? await advisor.threads() : start);
      return TorchModel.create(addon, graph, weights, {
        device: b.device ?? device, threads, channelsLast, ...(b.seed !== undefined ? { seed: b.seed } : {}),
      }, b.threads === undefined ? advisor : undefined);
    },
  };
}
