import { z } from 'zod';
import { CheckpointError } from '../errors.ts';

/**
 * The records a training run writes to `metrics.jsonl`, one JSON object a line, and the run's
 * `run.json`. Reports read these; keep fields additive.
 */
import { TRANSFORM_KINDS } from '../transforms/index.ts';
import type { TransformReport } from '../transforms/types.ts';

/** FLOPs convention, stated once: a training step costs 3x the forward multiply-adds (forward + backward). */
export const TRAIN_FLOPS_PER_FORWARD_MAC = 3;

/** One line per epoch. */
export interface EpochRecord {
  type: 'epoch';
  /** 1-based epoch just finished. */
  epoch: number;
  /** Optimizer steps taken so far in the run. */
  step: number;
  lr: number;
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  /** Cumulative training FLOPs (multiply-adds x TRAIN_FLOPS_PER_FORWARD_MAC x examples). */
  flops: number;
  /** Forward multiply-adds per example of the current architecture. */
  macsPerExample: number;
  params: number;
  /** `architectureId(graph)` of the current architecture. */
  arch: string;
  /** Wall seconds since the run started (excluding time before a resume). */
  wallSeconds: number;
}

/** One line per transform applied during the run (at the start of `epoch` + 1). */
export interface TransformRecord {
  type: 'transform';
  /** Epochs completed when the transform happened (0 = before any training of the student); text runs: steps taken, as `step`. */
  epoch: number;
  step: number;
  transform: TransformReport['transform'];
  method: string;
  /** Spec as written in the schedule, e.g. 'widen@25:r2r:1.5'. */
  spec: string;
  valAccBefore: number;
  valAccAfter: number;
  valLossBefore: number;
  valLossAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  archBefore: string;
  archAfter: string;
  /** Cumulative FLOPs at the transform. */
  flops: number;
}

export type MetricsRecord = EpochRecord | TransformRecord;

/** `run.json`: what a run was, so a report can show its configuration. */
export interface RunInfo {
  name: string;
  suite?: string;
  /** The run's full configuration (model, optimizer, schedule, data, seed, ...). */
  config: Record<string, unknown>;
  engine: string;
  startedAt: string;
  finishedAt?: string;
  /** 'stopped': ended early as asked (`stopAfterEpoch`), to be continued with resume. */
  status: 'running' | 'completed' | 'stopped' | 'failed';
  /** Every engine the run has trained on, with the epoch (completed) it took over from. */
  engines?: { engine: string; fromEpoch: number }[];
  stoppedAt?: string;
  error?: string;
}

// Schemas of the records, to check a metrics.jsonl before a resume builds on it. Loose objects:
// fields are additive. NaN and infinities are written by JSON as null.
const metric = z.number().nullable();
const count = z.number().int().min(0);
const EpochRecordSchema = z.looseObject({
  type: z.literal('epoch'), epoch: z.number().int().min(1), step: count, lr: z.number(), trainLoss: metric, trainAcc: metric, valLoss: metric, valAcc: metric,
  flops: z.number().min(0), macsPerExample: count, params: count, arch: z.string(), wallSeconds: z.number().min(0),
});
const TransformRecordSchema = z.looseObject({
  type: z.literal('transform'), epoch: count, step: count, transform: z.enum(TRANSFORM_KINDS), method: z.string(), spec: z.string(),
  valAccBefore: metric, valAccAfter: metric, valLossBefore: metric, valLossAfter: metric, paramsBefore: count, paramsAfter: count,
  archBefore: z.string(), archAfter: z.string(), flops: z.number().min(0),
});
const EvalRecordSchema = z.looseObject({
  type: z.literal('eval'), step: count, lr: z.number(), trainLoss: metric, valLoss: metric, valAcc: metric, tokens: count,
  flops: z.number().min(0), macsPerExample: count, params: count, arch: z.string(), tokensPerSecond: metric, wallSeconds: z.number().min(0),
});
const MetricsRecordSchema = z.discriminatedUnion('type', [EpochRecordSchema, TransformRecordSchema, EvalRecordSchema]);

/**
 * Parses metrics.jsonl text (blank lines skipped), at most `max` records, each checked against
 * the record schemas. A bad line is a CheckpointError naming `path:line`. Returns the records
 * and their lines as written.
 */
export function parseMetrics(text: string, path: string, max = Infinity): { records: MetricsRecord[]; lines: string[] } {
  const records: MetricsRecord[] = [], lines: string[] = [];
  const all = text.split('\n');
  for (let i = 0; i < all.length && records.length < max; i++) {
    const line = all[i];
    if (!line.trim()) continue;
    let obj: unknown;
    try { obj = JSON.parse(line); } catch (e) { throw new CheckpointError(`${path}:${i + 1}: not JSON (${(e as Error).message}); the run's metrics are damaged`); }
    const r = MetricsRecordSchema.safeParse(obj);
    if (!r.success) throw new CheckpointError(`${path}:${i + 1}: not a metrics record:\n${z.prettifyError(r.error)}`);
    records.push(r.data as unknown as MetricsRecord);
    lines.push(line);
  }
  return { records, lines };
}

/**
 * One line per evaluation of a step-based (text) run, in the same metrics.jsonl. FLOPs follow
 * TRAIN_FLOPS_PER_FORWARD_MAC: 3 x the forward multiply-adds of a sequence (attention's
 * T-dependent terms included, see `countMacs`) per training sequence, i.e. per token
 * 3 x macsPerExample / T.
 */
export interface EvalRecord {
  type: 'eval';
  /** Optimizer steps taken (0: before training). */
  step: number;
  lr: number;
  /** Mean training loss (per token) over the steps since the previous evaluation; null at step 0. */
  trainLoss: number | null;
  /** Mean per-token validation cross-entropy over `evalBatches` fixed validation batches. */
  valLoss: number;
  /** Fraction of validation positions whose argmax is the next character. */
  valAcc: number;
  /** Training tokens seen (steps x batch x block). */
  tokens: number;
  /** Cumulative training FLOPs. */
  flops: number;
  /** Forward multiply-adds per sequence of `block` tokens. */
  macsPerExample: number;
  params: number;
  arch: string;
  /** Training tokens per second over the steps since the previous evaluation (evaluation time excluded); null at step 0. */
  tokensPerSecond: number | null;
  wallSeconds: number;
}
