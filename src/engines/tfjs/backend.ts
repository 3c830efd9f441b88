/**
 * Loading TensorFlow.js and choosing its backend. `tf.setBackend` is process-global, so every
 * model method calls `activate()` first: two models on different backends can then live in one
 * process (the cpu-vs-wasm conformance tests do exactly that).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installConv2dGradient, installMatMulGradient, installMaxPoolGradient } from './ops.ts';
import { installSharingIdentity, loadWasmKernels } from './wasm/kernels.ts';
import { EngineUnavailableError, R2RError, UsageError } from '../../errors.ts';

export type TfjsBackendName = 'wasm' | 'cpu';
export const TFJS_BACKENDS: readonly TfjsBackendName[] = ['wasm', 'cpu'];

let wasmPathsSet = false;
const ready = new Map<TfjsBackendName, Promise<void>>();

/** Initialises `name` once per process (later calls share the first one's promise). */
export function initBackend(name: string): Promise<void> {
  if (!TFJS_BACKENDS.includes(name as TfjsBackendName)) {
    return Promise.reject(new UsageError(`tfjs engine: unknown backend '${name}'; choose one of ${TFJS_BACKENDS.join(', ')}`));
  }
  const b = name as TfjsBackendName;
  let p = ready.get(b);
  if (!p) {
    p = init(b);
    ready.set(b, p);
    p.catch(() => ready.delete(b));
  }
  return p;
}

async function init(name: TfjsBackendName): Promise<void> {
  // Production mode drops debug checks and the "install tfjs-node" banner the cpu backend prints.
  tf.enableProdMode();
  if (name === 'wasm' && !wasmPathsSet) {
    // In Node the wasm backend reads its binaries from the file system; point it at the package's
    // dist folder (a plain path with a trailing slash works, a file:// URL does not).
    const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(join(dirname(main), '/'));
    wasmPathsSet = true;
  }
  installConv2dGradient();
  installMaxPoolGradient();
  installMatMulGradient();
  if (name === 'wasm') installSharingIdentity();
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    throw new EngineUnavailableError(`tfjs engine: backend '${name}' failed to start: ${(e as Error).message}; try --backend cpu`, { cause: e });
  }
  if (!ok || tf.getBackend() !== name) {
    throw new EngineUnavailableError(`tfjs engine: backend '${name}' failed to start; try --backend cpu`);
  }
  // The transformer layers' SIMD kernels (they use the started backend's heap); without them (no
  // WebAssembly SIMD) ops.ts uses tfjs ops.
  if (name === 'wasm') await loadWasmKernels();
}

/**
 * Makes `name` the active backend, synchronously. It must have been initialised; once it has,
 * `tf.setBackend` finishes its work before its first `await`, so the switch is immediate.
 */
export function activate(name: TfjsBackendName): void {
  if (tf.getBackend() === name) return;
  void tf.setBackend(name);
  if (tf.getBackend() !== name) throw new R2RError('R2R_ENGINE', `tfjs engine: could not switch to backend '${name}' (was it initialised?)`);
}

