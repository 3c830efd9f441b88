/**
 * What the TensorFlow.js layers format can hold and which files it writes, without loading tfjs
 * (the format registry asks before any work is done).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Graph } from '../ir/types.ts';

/** Why each node of `graph` cannot be written as a tfjs layer (empty: all can). */
export function tfjsExportProblems(graph: Graph): string[] {
  const out: string[] = [];
  for (const n of graph.nodes) {
    if ((n.kind === 'maxPool' || n.kind === 'avgPool') && Array.isArray(n.padding)) {
      out.push(`${n.kind} '${n.name}': explicit padding [${n.padding.join(', ')}] (tfjs pools pad only 'same' or 'valid')`);
    }
  }
  return out;
}

/** tfjs-node names the shard of model.json weights.bin; another X.json gets X.weights.bin. */
export function tfjsShardName(path: string): string {
  const stem = basename(path).replace(/\.json$/i, '');
  return stem === 'model' ? 'weights.bin' : `${stem}.weights.bin`;
}

/** The files writeTfjs writes for `path`, in order: the weight shard, then the model.json. */
export function tfjsOutputs(path: string): string[] {
  return [join(dirname(path), tfjsShardName(path)), path];
}

/** Options of `writeTfjs` and `toLayersModel` (from `r2r/tfjs`). */
export interface TfjsExportOptions {
  /** Append a softmax after the logits (the IR's output), as the imported model had. */
  outputActivation?: 'softmax';
}

/** Tensor names r2r can use as IR node names (the IR itself accepts any string). */
export function uniqueNamer(taken: Set<string>) {
  return (base: string): string => {
    let n = base;
    for (let i = 2; taken.has(n); i++) n = `${base}_${i}`;
    taken.add(n);
    return n;
  };
}

/** Whether `path` holds a TensorFlow.js layers-model JSON (an object with a modelTopology). */
export function isTfjsModelJson(path: string): boolean {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { modelTopology?: unknown } | null;
    return typeof j === 'object' && j !== null && typeof j.modelTopology === 'object' && j.modelTopology !== null;
  } catch { return false; }
}
