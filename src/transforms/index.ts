/**
 * The transforms, one entry point each, plus `applyTransform` for callers that pick a transform
 * by name (the CLI, the trainer's schedule). All are pure: (graph, weights, options) →
 * (graph, weights, report, tensor maps). None imports an engine.
 */
import type { Graph, Weights } from '../ir/types.ts';
import { deepen, type DeepenOptions } from './deepen.ts';
import { morphKernel, type KernelMorphOptions } from './kernel_morph.ts';
import type { TransformResult } from './types.ts';
import { widen, type WidenOptions } from './widen.ts';

export { widen, deepen, morphKernel };
export type { WidenOptions, DeepenOptions, KernelMorphOptions };
export { mapOptimizerState } from './optimizer_state.ts';
export type { TransformResult, TransformReport, TensorMap, AxisMap } from './types.ts';
export type { InitOptions, InitMethod } from './init.ts';

export type TransformSpec =
  | ({ transform: 'widen' } & WidenOptions)
  | ({ transform: 'deepen' } & DeepenOptions)
  | ({ transform: 'kernel'; /** Kernel-size morphing is Network Morphism's; named for uniformity. */ method?: 'netmorph'; seed?: number } & KernelMorphOptions);

export function applyTransform(graph: Graph, weights: Weights, spec: TransformSpec): TransformResult {
  switch (spec.transform) {
    case 'widen': return widen(graph, weights, spec);
    case 'deepen': return deepen(graph, weights, spec);
    case 'kernel': return morphKernel(graph, weights, spec);
  }
}
