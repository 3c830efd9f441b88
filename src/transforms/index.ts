/**
 * The transforms, one entry point each, plus `applyTransform` for callers that pick a transform
 * by name (the CLI, the trainer's schedule). All are pure: (graph, weights, options) →
 * (graph, weights, report, tensor maps). None imports an engine.
 *
 * Transformers (src/transforms/transformer/): `mlp` (hidden units of each block's MLP), `heads`
 * (attention heads), `width` (the residual stream, D), and `deepen`, which on a transformer
 * inserts whole blocks (`position`, `after`, `perStage` = the number of blocks).
 */
import { TransformError } from '../errors.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { deepen, type DeepenMethod, type DeepenOptions } from './deepen.ts';
import { morphKernel, type KernelMorphOptions } from './kernel_morph.ts';
import { isTransformer } from './transformer/blocks.ts';
import { deepenBlocks, type BlockDeepenOptions } from './transformer/deepen.ts';
import { addHeads, type HeadsOptions } from './transformer/heads.ts';
import { widenMlp, type MlpOptions } from './transformer/mlp.ts';
import { widenStream, type WidthOptions } from './transformer/width.ts';
import type { TransformResult } from './types.ts';
import { widen, type WidenOptions } from './widen.ts';

export { widen, deepen, morphKernel, widenMlp, addHeads, widenStream, deepenBlocks };
export type { WidenOptions, DeepenOptions, KernelMorphOptions, MlpOptions, HeadsOptions, WidthOptions, BlockDeepenOptions };
export { mapOptimizerState } from './optimizer_state.ts';
export type { TransformResult, TransformReport, TensorMap, AxisMap } from './types.ts';
export type { InitOptions, InitMethod } from './init.ts';

/** Deepening: a CNN's stages (DeepenOptions), or a transformer's blocks (also `position`, and `netmorph`). */
export type DeepenSpec = Omit<DeepenOptions, 'method'> & { method: DeepenMethod | 'netmorph'; position?: number };

export type TransformSpec =
  | ({ transform: 'widen' } & WidenOptions)
  | ({ transform: 'deepen' } & DeepenSpec)
  | ({ transform: 'kernel'; /** Kernel-size morphing is Network Morphism's; named for uniformity. */ method?: 'netmorph'; seed?: number } & KernelMorphOptions)
  | ({ transform: 'mlp' } & MlpOptions)
  | ({ transform: 'heads' } & HeadsOptions)
  | ({ transform: 'width' } & WidthOptions);

export const TRANSFORM_KINDS = ['widen', 'deepen', 'kernel', 'mlp', 'heads', 'width'] as const;

export function applyTransform(graph: Graph, weights: Weights, spec: TransformSpec): TransformResult {
  switch (spec.transform) {
    case 'widen': return widen(graph, weights, spec);
    case 'deepen': {
      const { method, after, perStage, position, init, seed } = spec;
      if (isTransformer(graph)) return deepenBlocks(graph, weights, { method, after, position, count: perStage, init, seed });
      if (method === 'netmorph') throw new TransformError("deepen: method 'netmorph' inserts zero-output transformer blocks; this graph has none. Use r2r, net2net or random");
      if (position !== undefined) throw new TransformError(`deepen: position (${position}) applies to transformer blocks; this graph has none. Use after=<node>`);
      return deepen(graph, weights, { ...spec, method });
    }
    case 'kernel': return morphKernel(graph, weights, spec);
    case 'mlp': return widenMlp(graph, weights, spec);
    case 'heads': return addHeads(graph, weights, spec);
    case 'width': return widenStream(graph, weights, spec);
  }
}
