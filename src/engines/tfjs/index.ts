/**
 * The TensorFlow.js engine: `wasm` backend by default (XNNPACK kernels, single-threaded in Node),
 * `cpu` (pure JS) as the fallback. See `model.ts` for the network, `ops.ts` for the layers,
 * `optimizers.ts` for PyTorch-exact Adam/SGD, and `wasm/` for r2r's own WebAssembly SIMD kernels:
 * on the wasm backend the transformer layers (attention from one fused q/k/v matmul, exact GELU,
 * layer norm) and dense layers' bias gradients and transposes run there, forward and backward,
 * because tfjs-backend-wasm runs attention's batched matmuls in a scalar loop and builds the rest
 * from many small ops; without WebAssembly SIMD (or on cpu) the same layers are tfjs ops.
 */
import * as tf from '@tensorflow/tfjs';
import type { Graph, Weights } from '../../ir/types.ts';
import type { BuildOptions, Engine, EngineModel } from '../engine.ts';
import { initBackend, type TfjsBackendName } from './backend.ts';
import { TfjsModel } from './model.ts';

export interface TfjsEngineOptions {
  /** 'wasm' (default) or 'cpu'. */
  backend?: string;
  /** Ignored: the wasm backend runs single-threaded in Node (no worker threads), cpu always is. */
  threads?: number | 'auto';
}

export async function createTfjsEngine(opts: TfjsEngineOptions = {}): Promise<Engine> {
  const backend = (opts.backend ?? 'wasm') as TfjsBackendName;
  await initBackend(backend);
  return {
    name: 'tfjs',
    description: `tfjs ${tf.version_core} (${backend})`,
    async build(graph: Graph, weights: Weights, buildOpts?: BuildOptions): Promise<EngineModel> {
      return new TfjsModel(graph, weights, backend, buildOpts);
    },
  };
}

export { TfjsModel };
