/**
 * Engines by name. `auto` prefers the native libtorch engine and falls back to TensorFlow.js when
 * the native addon is not built. Engines are imported lazily so that a missing one costs nothing.
 */
import { EngineUnavailableError, UsageError } from '../errors.ts';
import type { Engine } from './engine.ts';

export type EngineName = 'auto' | 'torch' | 'tfjs';
export const ENGINE_NAMES: readonly EngineName[] = ['auto', 'torch', 'tfjs'];

export interface EngineOptions {
  /** TensorFlow.js backend: 'wasm' (default) or 'cpu'. */
  backend?: string;
  /** libtorch device: 'cpu' (default) or 'cuda'. */
  device?: string;
  /** Intra-op threads: a count, or 'auto' (the torch engine's default: the cores other processes leave free). */
  threads?: number | 'auto';
}

export async function getEngine(name: EngineName | string = 'auto', opts: EngineOptions = {}): Promise<Engine> {
  switch (name) {
    case 'tfjs': {
      const { createTfjsEngine } = await import('./tfjs/index.ts');
      return createTfjsEngine(opts);
    }
    case 'torch': {
      const { createTorchEngine } = await import('./torch/index.ts');
      return createTorchEngine(opts);
    }
    case 'auto':
      try {
        return await getEngine('torch', opts);
      } catch (e) {
        if (e instanceof EngineUnavailableError) return getEngine('tfjs', opts);
        throw e;
      }
    default:
      throw new UsageError(`unknown engine '${name}'; choose one of ${ENGINE_NAMES.join(', ')}`);
  }
}
