/**
 * Exactness checks on the reference executor: run teacher and student on one random batch and
 * measure the logits' relative difference (the `compareLogits` definition `r2r verify` uses).
 */
import assert from 'node:assert/strict';
import { analyzeGraph } from '../../src/ir/graph.ts';
import type { Graph, Weights } from '../../src/ir/types.ts';
import { compareLogits, type LogitsDiff } from '../../src/reference/compare.ts';
import { forwardReference, runReference } from '../../src/reference/execute.ts';
import { initWeights } from '../../src/ir/weights.ts';
import { Rng } from '../../src/rng.ts';
import { randomBatch } from '../../src/verify.ts';

export interface Net { graph: Graph; weights: Weights }
export type Mode = 'inference' | 'training';
export const MODES: readonly Mode[] = ['inference', 'training'];

/** A standard-normal batch of n examples for the graph's input. */
export function randomInput(graph: Graph, n: number, seed = 1234): Float32Array {
  return randomBatch(analyzeGraph(graph).inputShape, n, new Rng(seed));
}

export interface DiffOptions { n?: number; seed?: number; x?: Float32Array }

/** relDiff / maxAbsDiff of the student's logits against the teacher's, per mode. */
export function referenceDiff(teacher: Net, student: Net, opts: DiffOptions = {}): Record<Mode, LogitsDiff> {
  const n = opts.n ?? 4;
  const x = opts.x ?? randomInput(teacher.graph, n, opts.seed);
  const out = {} as Record<Mode, LogitsDiff>;
  for (const mode of MODES) {
    const training = mode === 'training';
    out[mode] = compareLogits(
      forwardReference(teacher.graph, teacher.weights, x, n, { training }),
      forwardReference(student.graph, student.weights, x, n, { training }),
    );
  }
  return out;
}

/** Asserts relDiff <= tol (default 1e-5) in every mode; returns the differences for reporting. */
export function expectPreserved(teacher: Net, student: Net, opts: DiffOptions & { tol?: number; modes?: readonly Mode[] } = {}): Record<Mode, LogitsDiff> {
  const tol = opts.tol ?? 1e-5;
  const d = referenceDiff(teacher, student, opts);
  for (const mode of opts.modes ?? MODES) {
    assert.ok(d[mode].relDiff <= tol, `${mode} mode: relDiff ${d[mode].relDiff} > ${tol} (maxAbsDiff ${d[mode].maxAbsDiff})`);
  }
  return d;
}

/** Asserts relDiff > tol (default 1e-2) in every mode: the check can fail. */
export function expectChanged(teacher: Net, student: Net, opts: DiffOptions & { tol?: number } = {}): Record<Mode, LogitsDiff> {
  const tol = opts.tol ?? 1e-2;
  const d = referenceDiff(teacher, student, opts);
  for (const mode of MODES) assert.ok(d[mode].relDiff > tol, `${mode} mode: relDiff ${d[mode].relDiff} <= ${tol}; expected the function to change`);
  return d;
}

/**
 * Random weights whose BN moving statistics are the batch statistics of a separate random
 * batch (as after training). With plain random BN statistics a deep ReLU net without shortcuts
 * shrinks the signal layer by layer until the logits are nearly the dense bias, and an
 * inference-mode check would then pass whatever the transform did. gamma and beta stay random.
 */
export function calibratedNet(graph: Graph, seed = 1, n = 8): Net {
  const weights = initWeights(graph, new Rng(seed), { randomBatchNorm: true });
  const outs = runReference(graph, weights, randomInput(graph, n, seed + 1000), n, { training: true });
  for (const node of graph.nodes) {
    if (node.kind !== 'batchNorm') continue;
    const x = outs.get(node.inputs[0])!;
    const c = weights[`${node.name}/gamma`].data.length;
    const rows = x.length / c;
    const mean = new Float64Array(c), v = new Float64Array(c);
    for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) mean[j] += x[r * c + j] / rows;
    for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) v[j] += (x[r * c + j] - mean[j]) ** 2 / rows;
    weights[`${node.name}/movingMean`].data.set(mean);
    weights[`${node.name}/movingVariance`].data.set(v);
  }
  return { graph, weights };
}
