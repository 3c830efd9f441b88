/**
 * The trainer: epochs of minibatch training on one engine, with a schedule of learning-rate drops
 * and function-preserving transforms, FLOP accounting, per-epoch metrics and checkpoints.
 *
 * Order at the start of epoch index e (0-based; "@E" means after E epochs):
 *   1. every transform scheduled @e: validate, transform (optimizer state mapped through it unless
 *      `resetOptimizer`), validate again -> a TransformRecord;
 *   2. the learning rate for epoch e (drops @E apply from index E on);
 *   3. one pass over the training set in a seeded order, then validation -> an EpochRecord;
 *   4. a checkpoint `checkpoints/epoch-NNNN` (epochs completed), keeping the last `keepCheckpoints`.
 *      Each transform also leaves the untrained student in `after-transform-eNNNN-I/` (kept).
 * A run directory holds run.json, metrics.jsonl, checkpoints/ and final/ (the last checkpoint).
 *
 * Resume: the latest checkpoint restores weights, optimizer state, the data RNG and the trainer
 * state, and metrics.jsonl is cut back to the lines it had when that checkpoint was written, so a
 * run stopped after any epoch and resumed writes the same metrics as an uninterrupted run.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CheckpointError, FileError, R2RError, RunExistsError, UsageError } from '../errors.ts';
import type { Dataset, Split } from '../data/dataset.ts';
import { augmentBatch, gatherBatch, shuffledOrder } from '../data/dataset.ts';
import type { DatasetHandle, Engine, EngineModel, OptimizerConfig, OptimizerState } from '../engines/engine.ts';
import { checkOutputDir, removeStaleTemps, writeFileAtomic } from '../io/atomic.ts';
import { isCheckpoint, loadCheckpoint, saveCheckpoint } from '../io/checkpoint.ts';
import { architectureId, countMacs, countParams } from '../ir/graph.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { Rng } from '../rng.ts';
import { applyTransform, mapOptimizerState } from '../transforms/index.ts';
import { estimateStudent } from '../transforms/estimate.ts';
import { assertFits, estimateSize, type MemoryLimit } from '../ir/budget.ts';
import { parseMetrics, TRAIN_FLOPS_PER_FORWARD_MAC, type EpochRecord, type MetricsRecord, type RunInfo, type TransformRecord } from './metrics.ts';
import { lrAt, parseLrDrop, parseTransformSpec, type LrDrop, type ScheduledTransform } from './schedule.ts';

/** Training stopped on a NaN or infinite loss. */
export class TrainingDivergedError extends R2RError {
  constructor(message: string) { super('R2R_TRAINING_DIVERGED', message); this.name = 'TrainingDivergedError'; }
}

export interface TrainConfig {
  /** Total epochs of the run (transforms and drops happen inside it). */
  epochs: number;
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  weightDecay: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Learning-rate drops, e.g. ['/5@25']. */
  lrDrops: string[];
  /** Transforms, e.g. ['widen@25:r2r:1.5']. */
  transforms: string[];
  /** Start with a fresh optimizer after every transform instead of mapping its state. */
  resetOptimizer?: boolean;
  /** Random crop (padding 4) and horizontal flip; off by default, as in the paper. */
  augment?: boolean;
  seed: number;
  /** Epoch checkpoints kept (default 2); 0 keeps the newest while running and removes them all once the run completes (final/ stays). */
  keepCheckpoints?: number;
  evalBatchSize?: number;
}

export interface RunStart {
  graph: Graph;
  weights: Weights;
  /** Optimizer state carried in (e.g. the teacher's), used unless `resetOptimizer`. */
  optimizer?: OptimizerState;
}

/** Hooks for the command line: per-batch progress and one line per epoch. */
export interface TrainHooks {
  progress?: (label: string, total: number) => { update(done: number, info?: string): void; stop(): void };
  log?: (line: string) => void;
}

export interface TrainOptions {
  /** Run directory. */
  dir: string;
  name: string;
  suite?: string;
  config: TrainConfig;
  data: Dataset;
  engine: Engine;
  start: RunStart;
  /** Continue from the latest checkpoint in `dir` (a fresh start when there is none). */
  resume?: boolean;
  /**
   * Replace a run already in `dir` (its metrics, checkpoints, final/ and after-transform
   * checkpoints). Without it (and without `resume`), a directory holding a run is refused.
   */
  overwrite?: boolean;
  /** Stop (as if killed) after this many epochs, leaving the checkpoint to resume from. */
  stopAfterEpoch?: number;
  /** Extra fields for run.json's config (model, data, teacher, ...). */
  describe?: Record<string, unknown>;
  hooks?: TrainHooks;
  /** Size guard for scheduled transforms (default: R2R_MEMORY_LIMIT, else half the machine's memory). */
  memoryLimit?: MemoryLimit;
}

export interface TrainResult {
  status: 'completed' | 'stopped';
  epochs: number;
  records: MetricsRecord[];
  finalValAcc: number;
  flops: number;
  wallSeconds: number;
  graph: Graph;
  weights: Weights;
  optimizer?: OptimizerState;
}

/** What a checkpoint's state.json holds (checked before a resume writes anything). */
const TrainerStateSchema = z.object({
  epoch: z.number().int().min(0),
  step: z.number().int().min(0),
  flops: z.number().min(0),
  wallSeconds: z.number().min(0),
  /** Rng.getState(): four words and the spare normal (NaN, written as null, when none). */
  dataRng: z.array(z.number().nullable()).min(4),
  metricsLines: z.number().int().min(0),
  configKey: z.string(),
});
type TrainerState = z.infer<typeof TrainerStateSchema>;

/** What a run directory holds that a new run would replace. */
const RUN_ARTIFACTS = /^(run\.json|metrics\.jsonl|checkpoints|final|after-transform-e\d+-\d+)$/;

/** Run names become one directory: one path segment of safe characters. */
const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** Refuses a run name that is not one safe path segment (`../x`, '', '.', 'a/b'). */
export function validateRunName(name: string, what = 'run name'): void {
  if (!RUN_NAME.test(name)) {
    throw new UsageError(`${what} ${JSON.stringify(name)} is not allowed: use 1 to 128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit (it names one directory)`);
  }
}

const EPOCH_DIR = (e: number) => `epoch-${String(e).padStart(4, '0')}`;

export function validateConfig(c: TrainConfig): { drops: LrDrop[]; schedule: ScheduledTransform[] } {
  const posInt = (v: number, what: string, min = 1) => { if (!Number.isInteger(v) || v < min) throw new UsageError(`${what} must be an integer >= ${min}, got ${v}`); };
  posInt(c.epochs, 'epochs');
  posInt(c.batchSize, 'batch size');
  if (c.keepCheckpoints !== undefined) posInt(c.keepCheckpoints, 'checkpoints to keep (--keep)', 0);
  if (!Number.isInteger(c.seed)) throw new UsageError(`seed must be an integer, got ${c.seed}`);
  if (c.momentum !== undefined && !(c.momentum >= 0 && c.momentum < 1)) throw new UsageError(`SGD momentum must be in [0, 1), got ${c.momentum}`);
  if (!(c.lr > 0)) throw new UsageError(`learning rate must be > 0, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) throw new UsageError(`weight decay must be >= 0, got ${c.weightDecay}`);
  if (c.optimizer !== 'adam' && c.optimizer !== 'sgd') throw new UsageError(`optimizer must be adam or sgd, got '${c.optimizer}'`);
  const drops = c.lrDrops.map(parseLrDrop);
  const schedule = c.transforms.map(parseTransformSpec);
  for (const t of schedule) if (t.epoch >= c.epochs) throw new UsageError(`transform '${t.spec}' is at epoch ${t.epoch}, but the run has only ${c.epochs} epochs`);
  drops.forEach((d, i) => {
    if (d.epoch >= c.epochs) throw new UsageError(`learning-rate drop '${c.lrDrops[i]}' is at epoch ${d.epoch}, but the run has only ${c.epochs} epochs: it would never apply`);
  });
  return { drops, schedule };
}

export function optimizerConfig(c: TrainConfig, lr: number): OptimizerConfig {
  return c.optimizer === 'adam' ? { kind: 'adam', lr, weightDecay: c.weightDecay } : { kind: 'sgd', lr, momentum: c.momentum ?? 0.9, weightDecay: c.weightDecay };
}

/**
 * The run artefacts in `dir` (empty when there is none). Throws when `dir` or its metrics.jsonl
 * is not what a run directory needs (a file where a directory must be, or the reverse).
 */
export function existingRun(dir: string): string[] {
  checkOutputDir(dir, 'run directory (--out)');
  if (!existsSync(dir)) return [];
  const m = join(dir, 'metrics.jsonl');
  if (existsSync(m) && !statSync(m).isFile()) throw new FileError(`${m} is not a file (a directory?); the run directory ${dir} is damaged: move it away or give another --out`);
  return readdirSync(dir).filter((n) => RUN_ARTIFACTS.test(n)).sort();
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { dir, config, data, engine } = opts;
  const { drops, schedule } = validateConfig(config);
  if (opts.stopAfterEpoch !== undefined && !(Number.isInteger(opts.stopAfterEpoch) && opts.stopAfterEpoch >= 1)) {
    throw new UsageError(`--stop-after must be an integer >= 1 (epochs to train before stopping), got ${opts.stopAfterEpoch}`);
  }
  if (opts.resume && opts.overwrite) throw new UsageError('give --resume or --overwrite, not both');
  const log = opts.hooks?.log ?? (() => {});
  // What must match for a resume (how many checkpoints to keep need not).
  const configKey = JSON.stringify({ config: { ...config, keepCheckpoints: undefined }, data: data.info });
  const metricsPath = join(dir, 'metrics.jsonl');
  const ckptRoot = join(dir, 'checkpoints');
  const existing = existingRun(dir);
  // Never destroy a previous run by default: it is resumed, replaced on request, or refused.
  if (existing.length && !opts.resume && !opts.overwrite) {
    throw new RunExistsError(`${dir} already holds a run (${existing.join(', ')}); continue it with --resume, replace it with --overwrite, or choose another --out or --name`);
  }

  let graph = opts.start.graph, weights = opts.start.weights;
  let optState = config.resetOptimizer ? undefined : opts.start.optimizer;
  if (optState && optState.kind !== config.optimizer) {
    log(`${opts.name}: the starting optimizer state is ${optState.kind}, the run uses ${config.optimizer}: starting with a fresh optimizer`);
    optState = undefined;
  }
  let st: TrainerState = { epoch: 0, step: 0, flops: 0, wallSeconds: 0, dataRng: new Rng(`data:${config.seed}`).getState(), metricsLines: 0, configKey };
  let records: MetricsRecord[] = [];

  // Everything a resume needs is read and checked before anything in the run directory changes.
  // A completed run whose epoch checkpoints were removed (keep 0) resumes from final/.
  const finalDir = join(dir, 'final');
  const latest = opts.resume ? latestCheckpoint(ckptRoot) ?? (isCheckpoint(finalDir) ? finalDir : undefined) : undefined;
  let metricsLines: string[] = [];
  if (latest) {
    const ck = loadCheckpoint(latest);
    if (!ck.state) throw new CheckpointError(`${latest}: no trainer state (state.json); cannot resume from it`);
    const parsed = TrainerStateSchema.safeParse(ck.state);
    if (!parsed.success) throw new CheckpointError(`${join(latest, 'state.json')}: not a trainer state:\n${z.prettifyError(parsed.error)}`);
    const s = parsed.data;
    if (s.configKey !== configKey) throw new UsageError(`${latest}: the checkpoint was written with a different configuration or data; resume with the same flags, or start a new run without --resume`);
    graph = ck.graph; weights = ck.weights; optState = ck.optimizer; st = s;
    const text = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8') : '';
    const count = text.split('\n').filter((l) => l.trim()).length;
    if (count < s.metricsLines) throw new CheckpointError(`${metricsPath}: has ${count} records but checkpoint ${latest} expects ${s.metricsLines}; the run directory is inconsistent`);
    // Lines after the checkpoint are cut (a killed epoch may have left a half-written one); the kept ones must be valid records.
    ({ records, lines: metricsLines } = parseMetrics(text, metricsPath, s.metricsLines));
  }
  assertFits(`${opts.name}: the model (batch ${config.batchSize})`, [estimateSize(graph, config.batchSize)], opts.memoryLimit);
  // Transforms still to come are dry-run now, so a bad spec fails before the first step, not at its epoch.
  checkSchedule(graph, weights, schedule, config.seed, st.epoch, { batch: config.batchSize, memoryLimit: opts.memoryLimit });

  mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir);
  removeStaleTemps(ckptRoot);
  let previous: RunInfo | undefined;
  if (latest) {
    previous = readRunInfo(dir);
    writeFileAtomic(metricsPath, metricsLines.map((l) => l + '\n').join(''));
    log(`${opts.name}: resuming from ${latest} (epoch ${st.epoch}/${config.epochs})`);
  } else {
    for (const n of existing) rmSync(join(dir, n), { recursive: true, force: true });
    writeFileAtomic(metricsPath, '');
  }

  // A run resumed on another engine is accepted (checkpoints are engine-independent) and run.json
  // lists every engine with the epoch it took over from, so no number is attributed to the wrong one.
  const engines = previous?.engines ?? (previous ? [{ engine: previous.engine, fromEpoch: 0 }] : []);
  const last = engines[engines.length - 1];
  if (!last || last.engine !== engine.description) {
    if (last) log(`${opts.name}: note: epochs ${last.fromEpoch + 1}-${st.epoch} ran on ${last.engine}, the rest runs on ${engine.description}; run.json records both`);
    engines.push({ engine: engine.description, fromEpoch: st.epoch });
  }
  const runInfo: RunInfo = {
    name: opts.name, suite: opts.suite, engine: engine.description, engines, startedAt: previous?.startedAt ?? new Date().toISOString(), status: 'running',
    config: { ...opts.describe, train: config, data: data.info, resumedFromEpoch: latest ? st.epoch : undefined },
  };
  writeRunInfo(dir, runInfo);

  const dataRng = new Rng(0);
  dataRng.setState(st.dataRng.map((v) => v ?? NaN));
  const t0 = Date.now() - st.wallSeconds * 1000;
  const wall = () => (Date.now() - t0) / 1000;
  const emit = (r: MetricsRecord) => { records.push(r); appendFileSync(metricsPath, JSON.stringify(r) + '\n'); };

  let model: EngineModel | undefined;
  let handles: { train?: DatasetHandle; val?: DatasetHandle } = {};
  const release = () => { handles.train?.release(); handles.val?.release(); handles = {}; };
  const build = async (lr: number, state: OptimizerState | undefined) => {
    release();
    model?.dispose();
    model = await engine.build(graph, weights, { seed: config.seed });
    model.setOptimizer(optimizerConfig(config, lr), state);
    if (model.uploadDataset && model.trainEpoch && model.evaluateDataset) {
      if (!config.augment) handles.train = await model.uploadDataset(data.train.x, data.train.labels, data.train.n);
      handles.val = await model.uploadDataset(data.val.x, data.val.labels, data.val.n);
    }
  };

  try {
    let lr = lrAt(config.lr, drops, st.epoch);
    await build(lr, optState);
    let macs = countMacs(graph);
    let lastVal: { loss: number; acc: number } | undefined;

    for (let e = st.epoch; e < config.epochs; e++) {
      const epochStart = wall();
      for (const t of schedule.filter((s) => s.epoch === e)) {
        const before = await validate(model!, data.val, handles.val, config, data.inputShape);
        const w = await model!.getWeights();
        const state = await model!.getOptimizerState();
        const seed = t.transform.seed ?? config.seed + schedule.indexOf(t);
        const res = applyTransform(graph, w, { ...t.transform, seed });
        const mapped = config.resetOptimizer || !state ? undefined : mapOptimizerState(state, res);
        const archBefore = architectureId(graph);
        graph = res.graph; weights = res.weights;
        // The student as the transform made it, before any training: what the paper's figure 4
        // shows next to the trained filters (`r2r filters DIR/after-transform-... --compare DIR/final`).
        saveCheckpoint(join(dir, `after-transform-e${String(e).padStart(4, '0')}-${schedule.indexOf(t)}`), { graph, weights });
        await build(lrAt(config.lr, drops, e), mapped);
        macs = countMacs(graph);
        const afterV = await validate(model!, data.val, handles.val, config, data.inputShape);
        const rec: TransformRecord = {
          type: 'transform', epoch: e, step: st.step, transform: t.transform.transform, method: res.report.method, spec: t.spec,
          valAccBefore: before.acc, valAccAfter: afterV.acc, valLossBefore: before.loss, valLossAfter: afterV.loss,
          paramsBefore: res.report.paramsBefore, paramsAfter: res.report.paramsAfter, archBefore, archAfter: architectureId(graph), flops: st.flops,
        };
        emit(rec);
        log(`${opts.name}: ${t.spec} at epoch ${e}: params ${rec.paramsBefore} -> ${rec.paramsAfter}, val acc ${pct(before.acc)} -> ${pct(afterV.acc)}, val loss ${before.loss.toFixed(4)} -> ${afterV.loss.toFixed(4)}`);
      }
      const newLr = lrAt(config.lr, drops, e);
      if (newLr !== lr) { lr = newLr; model!.setLearningRate(lr); }

      const order = shuffledOrder(data.train.n, dataRng);
      const tr = await trainOneEpoch(model!, data, order, handles.train, config, dataRng, opts.hooks, `${opts.name} epoch ${e + 1}/${config.epochs}`);
      if (!Number.isFinite(tr.loss)) {
        throw new TrainingDivergedError(`${opts.name}: training diverged in epoch ${e + 1} (loss ${tr.loss}, learning rate ${lr}); the last good checkpoint is ${latestCheckpoint(ckptRoot) ?? '(none yet)'}; lower the learning rate or check the data`);
      }
      st.step += tr.steps;
      st.flops += macs * TRAIN_FLOPS_PER_FORWARD_MAC * tr.examples;
      const v = await validate(model!, data.val, handles.val, config, data.inputShape);
      lastVal = v;
      const rec: EpochRecord = {
        type: 'epoch', epoch: e + 1, step: st.step, lr, trainLoss: tr.loss, trainAcc: tr.correct / tr.examples, valLoss: v.loss, valAcc: v.acc,
        flops: st.flops, macsPerExample: macs, params: countParams(graph), arch: architectureId(graph), wallSeconds: wall(),
      };
      emit(rec);
      log(`${opts.name}: epoch ${e + 1}/${config.epochs} lr ${lr.toPrecision(3)} train loss ${tr.loss.toFixed(4)} acc ${pct(rec.trainAcc)} | val loss ${v.loss.toFixed(4)} acc ${pct(v.acc)} | epoch ${(rec.wallSeconds - epochStart).toFixed(1)} s, run ${rec.wallSeconds.toFixed(1)} s so far`);

      weights = await model!.getWeights();
      optState = await model!.getOptimizerState();
      st = { ...st, epoch: e + 1, wallSeconds: rec.wallSeconds, dataRng: dataRng.getState(), metricsLines: records.length };
      saveCheckpoint(join(ckptRoot, EPOCH_DIR(e + 1)), { graph, weights, optimizer: optState, state: st as unknown as Record<string, unknown> });
      pruneCheckpoints(ckptRoot, config.keepCheckpoints ?? 2);
      if (opts.stopAfterEpoch !== undefined && e + 1 >= opts.stopAfterEpoch && e + 1 < config.epochs) {
        log(`${opts.name}: stopped after epoch ${e + 1} as asked; continue with --resume`);
        writeRunInfo(dir, { ...runInfo, status: 'stopped', stoppedAt: new Date().toISOString() });
        return result('stopped');
      }
    }
    saveCheckpoint(join(dir, 'final'), { graph, weights, optimizer: optState, state: st as unknown as Record<string, unknown> });
    if (config.keepCheckpoints === 0) rmSync(ckptRoot, { recursive: true, force: true });
    writeRunInfo(dir, { ...runInfo, status: 'completed', finishedAt: new Date().toISOString() });
    return result('completed');

    function result(status: 'completed' | 'stopped'): TrainResult {
      const last = [...records].reverse().find((r): r is EpochRecord => r.type === 'epoch');
      return { status, epochs: st.epoch, records, finalValAcc: lastVal?.acc ?? last?.valAcc ?? NaN, flops: st.flops, wallSeconds: st.wallSeconds, graph, weights, optimizer: optState };
    }
  } catch (e) {
    writeRunInfo(dir, { ...runInfo, status: 'failed', finishedAt: new Date().toISOString(), error: (e as Error).message });
    throw e;
  } finally {
    release();
    model?.dispose();
  }
}

const pct = (a: number) => `${(100 * a).toFixed(2)}%`;

function writeRunInfo(dir: string, info: RunInfo): void {
  writeFileAtomic(join(dir, 'run.json'), JSON.stringify(info, null, 2) + '\n');
}

/** The run.json a resumed run carries on (start time, engines); undefined when unreadable. */
function readRunInfo(dir: string): RunInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunInfo;
    if (typeof info !== 'object' || info === null || typeof info.engine !== 'string') return undefined;
    const engines = Array.isArray(info.engines) && info.engines.every((x) => typeof x?.engine === 'string' && Number.isInteger(x?.fromEpoch)) ? info.engines : undefined;
    return { ...info, startedAt: typeof info.startedAt === 'string' ? info.startedAt : new Date().toISOString(), engines };
  } catch {
    return undefined;
  }
}

/**
 * Applies every transform still to come (epoch >= `fromEpoch`) in schedule order to the graph,
 * as the run will, and throws the first error, prefixed with its spec. Transforms are pure, so
 * this is the real check at the cost of one transform each; weights are the starting ones
 * (transforms check structure and shapes, not values).
 */
export function checkSchedule(graph: Graph, weights: Weights, schedule: ScheduledTransform[], seed: number, fromEpoch = 0, size: { batch?: number; memoryLimit?: MemoryLimit } = {}): void {
  const order = schedule.map((t, i) => ({ t, i })).filter(({ t }) => t.epoch >= fromEpoch).sort((a, b) => a.t.epoch - b.t.epoch || a.i - b.i);
  let g = graph, w = weights;
  for (const { t, i } of order) {
    try {
      const spec = { ...t.transform, seed: t.transform.seed ?? seed + i };
      // The student must fit before it is built (a widen by 1e6 would otherwise fill the memory).
      const est = estimateStudent(g, w, spec, size.batch ?? 1);
      if (est) assertFits('the student', [est], size.memoryLimit);
      const res = applyTransform(g, w, spec);
      g = res.graph; w = res.weights;
    } catch (e) {
      if (e instanceof R2RError) e.message = `transform '${t.spec}' (checked before training): ${e.message}`;
      throw e;
    }
  }
}

/** Checkpoint folders `<unit>-NNNN` under `root` (epochs for image runs, steps for text runs), oldest first. */
function checkpointNames(root: string, unit: 'epoch' | 'step'): string[] {
  if (!existsSync(root)) return [];
  const re = new RegExp(`^${unit}-\\d+$`);
  return readdirSync(root).filter((n) => re.test(n)).sort();
}

export function latestCheckpoint(root: string, unit: 'epoch' | 'step' = 'epoch'): string | undefined {
  const names = checkpointNames(root, unit);
  return names.length ? join(root, names[names.length - 1]) : undefined;
}

/** Keeps the newest `keep` (at least one) checkpoints. */
export function pruneCheckpoints(root: string, keep: number, unit: 'epoch' | 'step' = 'epoch'): void {
  const names = checkpointNames(root, unit);
  for (const n of names.slice(0, Math.max(0, names.length - Math.max(1, keep)))) rmSync(join(root, n), { recursive: true, force: true });
}

interface PassResult { loss: number; correct: number; examples: number; steps: number }

async function trainOneEpoch(model: EngineModel, data: Dataset, order: Int32Array, handle: DatasetHandle | undefined, c: TrainConfig, rng: Rng, hooks: TrainHooks | undefined, label: string): Promise<PassResult> {
  const batches = Math.ceil(order.length / c.batchSize);
  const bar = hooks?.progress?.(label, batches);
  try {
    if (handle && model.trainEpoch) {
      return await model.trainEpoch(handle, order, c.batchSize, (done, meanLoss) => bar?.update(done, `loss ${meanLoss.toFixed(4)}`));
    }
    let loss = 0, correct = 0, examples = 0;
    for (let b = 0; b < batches; b++) {
      const start = b * c.batchSize, end = Math.min(order.length, start + c.batchSize);
      const batch = gatherBatch(data.train, order, start, end, data.inputShape);
      if (c.augment) augmentBatch(batch.x, batch.n, data.inputShape, rng);
      const r = await model.trainStep(batch);
      loss += r.loss * batch.n; correct += r.correct; examples += batch.n;
      // Stop at once: more steps on NaN weights only waste time.
      if (!Number.isFinite(r.loss)) return { loss: r.loss, correct, examples, steps: b + 1 };
      bar?.update(b + 1, `loss ${(loss / examples).toFixed(4)}`);
    }
    return { loss: loss / examples, correct, examples, steps: batches };
  } finally {
    bar?.stop();
  }
}

async function validate(model: EngineModel, split: Split, handle: DatasetHandle | undefined, c: TrainConfig, inputShape: number[]): Promise<{ loss: number; acc: number }> {
  const bs = c.evalBatchSize ?? 500;
  if (handle && model.evaluateDataset) {
    const r = await model.evaluateDataset(handle, bs);
    return { loss: r.loss, acc: r.correct / r.examples };
  }
  const order = new Int32Array(split.n).map((_, i) => i);
  let loss = 0, correct = 0;
  for (let s = 0; s < split.n; s += bs) {
    const batch = gatherBatch(split, order, s, Math.min(split.n, s + bs), inputShape);
    const r = await model.evaluate(batch);
    loss += r.loss * batch.n; correct += r.correct;
  }
  return { loss: loss / split.n, acc: correct / split.n };
}

/** Reads a run's metrics.jsonl, every line checked (CheckpointError naming file and line). */
export function readMetrics(dir: string): MetricsRecord[] {
  const p = join(dir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  return parseMetrics(readFileSync(p, 'utf8'), p).records;
}
