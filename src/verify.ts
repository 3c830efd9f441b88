/**
 * The exactness check: run teacher and student on the same batch, in inference and in training
 * mode, and measure max |Δ| of the logits and the relative error max |Δ| / max |teacher logits|.
 *
 * Training mode is compared with dropout off (every dropout's rate set to 0 in both networks;
 * batch norms still use batch statistics). Dropout draws a random mask per channel, and teacher
 * and student cannot share masks (a widened student has more channels; its paired or copied
 * channels would need equal masks), so a comparison with dropout on measures the masks, not the
 * transform. `dropoutOff` in the result says when that applied.
 */
import type { Engine } from './engines/engine.ts';
import { UsageError } from './errors.ts';
import { assertFits, estimateSize, type MemoryLimit } from './ir/budget.ts';
import { analyzeGraph, countParams } from './ir/graph.ts';
import { estimateStudent } from './transforms/estimate.ts';
import { sizeOf } from './ir/shapes.ts';
import type { Graph, Weights } from './ir/types.ts';
import { compareLogits } from './reference/compare.ts';
import type { Rng } from './rng.ts';
import { applyTransform, type TransformResult, type TransformSpec } from './transforms/index.ts';

/** Relative error above which a method that SPEC calls exact fails verification. */
export const EXACT_TOLERANCE = 1e-5;

export type Mode = 'inference' | 'training';

export interface VerifyModeResult {
  transform: string;
  method: string;
  mode: Mode;
  maxAbsDiff: number;
  relDiff: number;
  maxAbsLogit: number;
  paramsBefore: number;
  paramsAfter: number;
  /** Whether SPEC calls this method exact in this mode. */
  exactExpected: boolean;
  /** exactExpected implies relDiff <= tolerance. */
  pass: boolean;
  /** Training mode only: the networks have active dropout, compared here with dropout off. */
  dropoutOff: boolean;
  engine: string;
}

export interface VerifyOutcome {
  results: VerifyModeResult[];
  student: TransformResult;
  /** The input batch (a token model: `tokens`, and the same ids as floats in `x`) and the logits of both networks per mode, for re-checking elsewhere. */
  batch: { x: Float32Array; n: number; shape: number[]; tokens?: Int32Array };
  logits: Record<Mode, { teacher: Float32Array; student: Float32Array }>;
}

export function hasActiveDropout(graph: Graph): boolean {
  return graph.nodes.some((n) => n.kind === 'dropout' && n.rate > 0);
}

/** The graph with every dropout's rate set to 0: training mode keeps batch statistics, draws no masks. */
export function withoutDropout(graph: Graph): Graph {
  return { ...graph, nodes: graph.nodes.map((n) => (n.kind === 'dropout' ? { ...n, rate: 0 } : n)) };
}

/** A standard-normal batch for the graph's input shape. */
export function randomBatch(inputShape: number[], n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n * sizeOf(inputShape));
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return x;
}

/** Uniform random token ids for a token model: `n` sequences of `length` ids in `[0, vocab)`. */
export function randomTokens(tokens: { length: number; vocab: number }, n: number, rng: Rng): Int32Array {
  return Int32Array.from({ length: n * tokens.length }, () => rng.int(tokens.vocab));
}

export async function verifyTransform(
  engine: Engine, graph: Graph, weights: Weights, spec: TransformSpec,
  opts: { batchSize?: number; rng: Rng; tolerance?: number; memoryLimit?: MemoryLimit },
): Promise<VerifyOutcome> {
  const tol = opts.tolerance ?? EXACT_TOLERANCE;
  const n = opts.batchSize ?? 32;
  if (!(Number.isInteger(n) && n >= 1)) throw new UsageError(`verify: batch size must be an integer >= 1, got ${n}`);
  if (!(tol >= 0)) throw new UsageError(`verify: tolerance must be >= 0, got ${tol}`);
  // Teacher and student must fit together, before the student or the batch is allocated.
  const parts = [estimateSize(graph, n)];
  const est = estimateStudent(graph, weights, spec, n);
  if (est) parts.push(est);
  assertFits(`verify of ${spec.transform}${'method' in spec && spec.method ? ` ${spec.method}` : ''} (teacher${est ? ' and student' : ''}, batch ${n})`, parts, opts.memoryLimit);
  const student = applyTransform(graph, weights, spec);
  const { inputShape, tokens: tokenInput } = analyzeGraph(graph);
  // A token model gets random ids (kept in x as floats too, for --save).
  const tokens = tokenInput ? randomTokens(tokenInput, n, opts.rng) : undefined;
  const x = tokens ? Float32Array.from(tokens) : randomBatch(inputShape, n, opts.rng);
  const dropoutOff = hasActiveDropout(graph) || hasActiveDropout(student.graph);
  const results: VerifyModeResult[] = [];
  const logits = {} as VerifyOutcome['logits'];
  const build = async (off: boolean) => [
    await engine.build(off ? withoutDropout(graph) : graph, weights),
    await engine.build(off ? withoutDropout(student.graph) : student.graph, student.weights),
  ];
  let [t, s] = await build(false);
  try {
    for (const mode of ['inference', 'training'] as const) {
      const training = mode === 'training';
      const off = training && dropoutOff;
      if (off) { t.dispose(); s.dispose(); [t, s] = await build(true); }
      const a = await t.forward({ x, n, tokens }, { training });
      const b = await s.forward({ x, n, tokens }, { training });
      logits[mode] = { teacher: a, student: b };
      const { maxAbsDiff, relDiff } = compareLogits(a, b);
      let maxAbsLogit = 0;
      for (const v of a) maxAbsLogit = Math.max(maxAbsLogit, Math.abs(v));
      const exactExpected = student.report.exact[mode];
      results.push({
        transform: spec.transform, method: student.report.method, mode, maxAbsDiff, relDiff, maxAbsLogit,
        paramsBefore: countParams(graph), paramsAfter: countParams(student.graph),
        exactExpected, pass: !exactExpected || relDiff <= tol, dropoutOff: off, engine: engine.description,
      });
    }
  } finally {
    t.dispose();
    s.dispose();
  }
  return { results, student, batch: { x, n, shape: [n, ...inputShape], ...(tokens ? { tokens } : {}) }, logits };
}
