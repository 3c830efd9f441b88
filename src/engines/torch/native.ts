/**
 * Loads the libtorch addon (native/build/Release/r2r_torch.node) and types its surface. The
 * addon is optional: when it is not built, or libtorch's shared libraries are missing, loading
 * fails with an EngineUnavailableError that says how to install and build it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { EngineUnavailableError } from '../../errors.ts';

/** One IR node with everything the native interpreter needs resolved (explicit pads, channels). */
export interface NativeOpSpec {
  name: string;
  kind: string;
  inputs: number[];
  shape?: number[];
  cin?: number;
  cout?: number;
  kh?: number; kw?: number; sh?: number; sw?: number;
  /** [top, bottom, left, right] */
  pads?: [number, number, number, number];
  useBias?: boolean;
  eps?: number;
  /** Keras convention (the IR's). */
  momentum?: number;
  fn?: string;
  alpha?: number;
  rate?: number;
  /** The input is spatial [H, W, C] (flatten reorders to NHWC; batch norm runs per channel). */
  spatialIn?: boolean;
  /** The input is a sequence [T, C] (batch norm runs per channel of the last axis). */
  seqIn?: boolean;
  /** attention */
  heads?: number;
  keyDim?: number;
  causal?: boolean;
}

export interface NativeStep { loss: number; correct: number }
export interface NativeEpoch { loss: number; correct: number; examples: number; steps: number }
export interface NativeOptimizerState { kind: 'adam' | 'sgd'; step: number; slots: Record<string, Record<string, Float32Array>> }

export interface NativeDataset { release(): void }

export interface NativeModel {
  setWeights(w: Record<string, Float32Array>): Promise<void>;
  getWeights(): Promise<Record<string, Float32Array>>;
  /** `x`: input values, or token ids (Int32Array) for a tokenInput graph; likewise below. */
  forward(x: Float32Array | Int32Array, n: number, training: boolean): Promise<Float32Array>;
  gradients(x: Float32Array | Int32Array, labels: Int32Array, n: number): Promise<{ loss: number; grads: Record<string, Float32Array> }>;
  setOptimizer(config: object, state?: NativeOptimizerState): void;
  setLearningRate(lr: number): void;
  /** Intra-op threads for later calls (absent in addons built before it existed). */
  setThreads?(n: number): void;
  getOptimizerState(): Promise<NativeOptimizerState | undefined>;
  trainStep(x: Float32Array | Int32Array, labels: Int32Array, n: number): Promise<NativeStep>;
  evaluate(x: Float32Array | Int32Array, labels: Int32Array, n: number): Promise<NativeStep>;
  uploadDataset(x: Float32Array | Int32Array, labels: Int32Array, n: number): NativeDataset;
  trainEpoch(d: NativeDataset, order: Int32Array, batchSize: number, onProgress?: (batches: number, meanLoss: number) => void): Promise<NativeEpoch>;
  evaluateDataset(d: NativeDataset, batchSize: number): Promise<NativeEpoch>;
  /** Settles after every earlier call; rejects with an error from an earlier setter. */
  sync(): Promise<void>;
  dispose(): void;
}

export interface NativeAddon {
  /** `labelsPerExample`: T for a token model (one target per position), else 1. */
  NativeModel: new (ops: NativeOpSpec[], output: number, opts: { device: string; threads: number; channelsLast: boolean; seed?: number; labelsPerExample?: number; onednn?: boolean }) => NativeModel;
  info(): { torchVersion: string; cuda: boolean; cudaDevices: number; defaultThreads: number; parallelInfo: string; openblasThreads?: boolean; openmp?: boolean; onednn?: boolean };
}

/** Where the addon is looked for; R2R_TORCH_ADDON overrides (a prebuilt .node elsewhere). */
export function addonPath(): string {
  return process.env.R2R_TORCH_ADDON ?? fileURLToPath(new URL('../../../native/build/Release/r2r_torch.node', import.meta.url));
}

export const INSTALL_HINT =
  'install libtorch and build the addon: `apt-get install -y libtorch-dev && npm run build:native` ' +
  '(or, with a downloaded LibTorch, `LIBTORCH=/path/to/libtorch npm run build:native`); ' +
  'or choose the TensorFlow.js engine with --engine tfjs (where r2r is an installed package, `npx r2r-build-native` builds the addon)';

const cache = new Map<string, NativeAddon>();
const SPIN_COUNT = '30000';
const OPENBLAS_TIMEOUT = '14';

export function loadAddon(file = addonPath()): NativeAddon {
  const hit = cache.get(file);
  if (hit) return hit;
  if (!existsSync(file)) {
    throw new EngineUnavailableError(`torch engine: the native addon is not built (${file} does not exist); ${INSTALL_HINT}`);
  }
  // libgomp reads its wait policy once, when loading with the addon. Its default spins a worker
  // for ~300,000 pause instructions (milliseconds) after every parallel region, which on a
  // machine shared with other busy processes makes two threads several times slower than one
  // (measured: ResNetCifar-18(1/8) 90-640 img/s at the default, ~1,900 passive, on 2 busy cores).
  // A shorter spin keeps back-to-back ops on the fast path and stops burning a shared core:
  // on an idle 2-core machine 30,000 trained 1.1-1.6x faster than 2,000 (one bench run per setting) and about as fast as the default.
  // OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user win.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) process.env.GOMP_SPINCOUNT = SPIN_COUNT;
  // OpenBLAS (the libblas.so.3 behind libtorch's dense layers and matmuls) has its own worker
  // threads, which by default spin 2^28 cycles (~0.1 s) after each GEMM: through every OpenMP op
  // that follows, on the cores the OpenMP workers need. 2^14 (a few microseconds) before they
  // sleep, read once when libopenblas loads with the addon; measured on 2 idle cores at 2 threads:
  // MLP training 15,000 -> 33,000 img/s, GPT 4/4/128 training 10,900 -> 18,100 tokens/s.
  if (process.env.OPENBLAS_THREAD_TIMEOUT === undefined) process.env.OPENBLAS_THREAD_TIMEOUT = OPENBLAS_TIMEOUT;
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    cache.set(file, addon);
    return addon;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new EngineUnavailableError(
      `torch engine: could not load ${file} (${why}); libtorch's shared libraries may be missing or of another version than the build used; ${INSTALL_HINT}`,
      { cause: e },
    );
  }
}
