/**
 * The step-based trainer for token models (an epoch means little for a text corpus): `steps`
 * optimizer steps on seeded random windows of the training split, an evaluation every
 * `evalEvery` steps (and at step 0) on `evalBatches` fixed validation batches, a checkpoint after
 * every evaluation, and `final/` at the end. The run directory has the layout of the epoch
 * trainer: run.json, metrics.jsonl (one EvalRecord per evaluation), checkpoints/step-NNNNNNN,
 * final/. Every checkpoint carries the vocabulary (vocab.json), so `r2r sample` needs no data.
 *
 * Transforms (`transforms`, e.g. `heads@500:r2r:+2`, `deepen@1000:r2r:+1`; @N = after N steps)
 * apply between steps: an evaluation right before (val loss before), the transform with the
 * optimizer state mapped through it (unless `resetOptimizer`), an evaluation right after, and a
 * TransformRecord in metrics.jsonl; the untrained student is kept in `after-transform-sNNNNNNN-I/`.
 *
 * Resume: the latest checkpoint restores weights, Adam state, the training-window RNG and the
 * counters, and metrics.jsonl is cut back to that checkpoint's lines; validation batches are
 * drawn from a fresh RNG seeded by `seed` at every evaluation. A run stopped after any
 * evaluation and resumed writes the same metrics (wall-clock fields aside) as one that was not.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, RunExistsError, UsageError } from '../errors.ts';
import { sampleWindows, type TextDataset } from '../data/text.ts';
import type { Batch, Engine, EngineModel, OptimizerConfig } from '../engines/engine.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.ts';
import { analyzeGraph, architectureId, countMacs, countParams } from '../ir/graph.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { validateWeights } from '../ir/weights.ts';
import { Rng } from '../rng.ts';
import { applyTransform, mapOptimizerState } from '../transforms/index.ts';
import { parseMetrics, TRAIN_FLOPS_PER_FORWARD_MAC, type EvalRecord, type RunInfo, type TransformRecord } from './metrics.ts';
import { parseTransformSpec, type ScheduledTransform } from './schedule.ts';
import { existingRun, latestCheckpoint, pruneCheckpoints, TrainingDivergedError, type RunStart, type TrainHooks } from './trainer.ts';

export interface TextTrainConfig {
  steps: number;
  /** Sequences per step (the block size comes from the graph's tokenInput). */
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  weightDecay: number;
  momentum?: number;
  /** Evaluate (and checkpoint) every this many steps, and after the last step. */
  evalEvery: number;
  /** Validation batches (of `batchSize` sequences) per evaluation. */
  evalBatches: number;
  seed: number;
  /** Step checkpoints kept (default 2); 0 removes them once the run completes (final/ stays). */
  keepCheckpoints?: number;
  /** Transforms, e.g. ['heads@500:r2r:+2', 'deepen@1000:r2r:+1'] (@N: after N steps). */
  transforms?: string[];
  /** Start a fresh optimizer after each transform instead of mapping its state. */
  resetOptimizer?: boolean;
}

export interface TextTrainOptions {
  dir: string;
  name: string;
  config: TextTrainConfig;
  data: TextDataset;
  engine: Engine;
  start: RunStart;
  resume?: boolean;
  /** Replace a run already in `dir` (default: refuse, so no run is lost). */
  overwrite?: boolean;
  /** Stop (as if killed) after the evaluation at this step, leaving its checkpoint to resume from. */
  stopAfterStep?: number;
  describe?: Record<string, unknown>;
  hooks?: TrainHooks;
}

export interface TextTrainResult {
  status: 'completed' | 'stopped';
  steps: number;
  /** The evaluations in metrics.jsonl. */
  records: EvalRecord[];
  /** The transforms in metrics.jsonl. */
  transforms: TransformRecord[];
  finalValLoss: number;
  flops: number;
  wallSeconds: number;
  graph: Graph;
  weights: Weights;
}

interface TextTrainerState {
  step: number;
  flops: number;
  wallSeconds: number;
  dataRng: number[];
  metricsLines: number;
  configKey: string;
  /** Transforms of the schedule applied so far (in schedule order), and the architecture they made. */
  transformsApplied?: number;
  arch?: string;
}

const STEP_DIR = (s: number) => `step-${String(s).padStart(7, '0')}`;

export function validateTextConfig(c: TextTrainConfig): ScheduledTransform[] {
  const int = (v: number, what: string, min: number) => { if (!Number.isInteger(v) || v < min) throw new UsageError(`${what} must be an integer >= ${min}, got ${v}`); };
  int(c.steps, 'steps', 1);
  int(c.batchSize, 'batch size', 1);
  int(c.evalEvery, 'eval-every', 1);
  int(c.evalBatches, 'eval-batches', 1);
  if (!(c.lr > 0)) throw new UsageError(`learning rate must be > 0, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) throw new UsageError(`weight decay must be >= 0, got ${c.weightDecay}`);
  if (c.optimizer !== 'adam' && c.optimizer !== 'sgd') throw new UsageError(`optimizer must be adam or sgd, got '${c.optimizer}'`);
  const schedule = (c.transforms ?? []).map(parseTransformSpec);
  for (const t of schedule) if (t.epoch >= c.steps) throw new UsageError(`transform '${t.spec}' is at step ${t.epoch}, but the run has only ${c.steps} steps`);
  // Stable by step: transforms at one step apply in the order given.
  return schedule.map((t, i) => ({ t, i })).sort((a, b) => a.t.epoch - b.t.epoch || a.i - b.i).map((x) => x.t);
}

function optimizerConfig(c: TextTrainConfig): OptimizerConfig {
  return c.optimizer === 'adam' ? { kind: 'adam', lr: c.lr, weightDecay: c.weightDecay } : { kind: 'sgd', lr: c.lr, momentum: c.momentum ?? 0.9, weightDecay: c.weightDecay };
}

export async function trainText(opts: TextTrainOptions): Promise<TextTrainResult> {
  const { dir, config, data, engine } = opts;
  const schedule = validateTextConfig(config);
  const log = opts.hooks?.log ?? (() => {});
  const info = analyzeGraph(opts.start.graph);
  if (!info.tokens) throw new UsageError(`${opts.name}: the text trainer needs a token model (a graph whose input is tokenInput); '${opts.start.graph.name ?? 'graph'}' reads ${JSON.stringify(info.inputShape)} floats`);
  const { length: block, vocab } = info.tokens;
  if (data.vocab.length > vocab) throw new UsageError(`${opts.name}: the data has ${data.vocab.length} distinct characters but the model's vocabulary is ${vocab}; build the model with --vocab ${data.vocab.length} (or leave --vocab out to take it from the data)`);
  const configKey = JSON.stringify({ config: { ...config, keepCheckpoints: undefined }, data: data.info, block });
  if (opts.resume && opts.overwrite) throw new UsageError('give --resume or --overwrite, not both');
  // Never destroy a previous run by default: it is resumed, replaced on request, or refused.
  const existing = existingRun(dir);
  if (existing.length && !opts.resume && !opts.overwrite) {
    throw new RunExistsError(`${dir} already holds a run (${existing.join(', ')}); continue it with --resume, replace it with --overwrite, or choose another --out or --name`);
  }
  const metricsPath = join(dir, 'metrics.jsonl');
  const ckptRoot = join(dir, 'checkpoints');
  mkdirSync(dir, { recursive: true });

  let graph = opts.start.graph;
  let weights = opts.start.weights;
  let optState = opts.start.optimizer && opts.start.optimizer.kind === config.optimizer ? opts.start.optimizer : undefined;
  let st: TextTrainerState = { step: 0, flops: 0, wallSeconds: 0, dataRng: new Rng(`text-data:${config.seed}`).getState(), metricsLines: 0, configKey };
  let records: (EvalRecord | TransformRecord)[] = [];

  const latest = opts.resume ? latestStepCheckpoint(ckptRoot) : undefined;
  if (latest) {
    const ck = loadCheckpoint(latest);
    const s = ck.state as unknown as TextTrainerState | undefined;
    if (!s || typeof s.step !== 'number') throw new CheckpointError(`${latest}: no trainer state (state.json); cannot resume from it`);
    if (s.configKey !== configKey) throw new UsageError(`${latest}: the checkpoint was written with a different configuration or data; resume with the same flags, or start a new run without --resume`);
    // A run grown by its transforms resumes with the grown model its state names.
    if (architectureId(ck.graph) !== (s.transformsApplied ? s.arch : architectureId(graph))) throw new UsageError(`${latest}: the checkpoint's model differs from the one asked for; resume with the same model flags`);
    graph = ck.graph; weights = ck.weights; optState = ck.optimizer; st = s;
    const text = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8') : '';
    // The kept lines are checked against the record schemas before anything is written.
    const kept = parseMetrics(text, metricsPath, s.metricsLines);
    if (kept.lines.length < s.metricsLines) throw new CheckpointError(`${metricsPath}: has ${kept.lines.length} records but checkpoint ${latest} expects ${s.metricsLines}; the run directory is inconsistent`);
    writeFileAtomic(metricsPath, kept.lines.map((l) => l + '\n').join(''));
    records = kept.records as (EvalRecord | TransformRecord)[];
    log(`${opts.name}: resuming from ${latest} (step ${s.step}/${config.steps})`);
  } else {
    writeFileAtomic(metricsPath, '');
    rmSync(ckptRoot, { recursive: true, force: true });
  }

  const runInfo: RunInfo = {
    name: opts.name, engine: engine.description, startedAt: new Date().toISOString(), status: 'running',
    config: { ...opts.describe, train: config, data: data.info, block, resumedFromStep: latest ? st.step : undefined },
  };
  writeFileAtomic(join(dir, 'run.json'), JSON.stringify(runInfo, null, 2) + '\n');

  const dataRng = new Rng(0);
  dataRng.setState(st.dataRng);
  const t0 = Date.now() - st.wallSeconds * 1000;
  const wall = () => (Date.now() - t0) / 1000;
  let macs = countMacs(graph), params = countParams(graph), arch = architectureId(graph);
  const tokensPerStep = config.batchSize * block;
  let model: EngineModel | undefined;

  try {
    model = await engine.build(graph, weights, { seed: config.seed });
    model.setOptimizer(optimizerConfig(config), optState);
    let applied = st.transformsApplied ?? 0;

    const evaluate = async (): Promise<{ loss: number; acc: number }> => {
      const rng = new Rng(`text-eval:${config.seed}`);
      let loss = 0, correct = 0;
      for (let b = 0; b < config.evalBatches; b++) {
        const w = sampleWindows(data.val, config.batchSize, block, rng);
        const r = await model!.evaluate({ x: new Float32Array(0), n: config.batchSize, tokens: w.tokens, labels: w.labels });
        loss += r.loss; correct += r.correct;
      }
      return { loss: loss / config.evalBatches, acc: correct / (config.evalBatches * tokensPerStep) };
    };
    const checkpoint = async () => {
      weights = await model!.getWeights();
      optState = await model!.getOptimizerState();
      st = { ...st, wallSeconds: wall(), dataRng: dataRng.getState(), metricsLines: records.length };
      saveCheckpoint(join(ckptRoot, STEP_DIR(st.step)), { graph, weights, optimizer: optState, state: st as unknown as Record<string, unknown>, vocab: data.vocab });
      pruneCheckpoints(ckptRoot, config.keepCheckpoints ?? 2, 'step');
    };
    const emit = (r: EvalRecord) => {
      records.push(r);
      appendFileSync(metricsPath, JSON.stringify(r) + '\n');
      const tps = r.tokensPerSecond === null ? '' : ` | ${Math.round(r.tokensPerSecond).toLocaleString('en-US')} tok/s`;
      log(`${opts.name}: step ${r.step}/${config.steps}${r.trainLoss === null ? '' : ` train loss ${r.trainLoss.toFixed(4)}`} | val loss ${r.valLoss.toFixed(4)} acc ${(100 * r.valAcc).toFixed(2)}%${tps} | ${r.wallSeconds.toFixed(1)} s`);
    };

    if (st.step === 0 && records.length === 0) {
      const v = await evaluate();
      emit({ type: 'eval', step: 0, lr: config.lr, trainLoss: null, valLoss: v.loss, valAcc: v.acc, tokens: 0, flops: 0, macsPerExample: macs, params, arch, tokensPerSecond: null, wallSeconds: wall() });
      await checkpoint();
    }

    /** Applies every scheduled transform due at this step: evaluate, transform, map state, evaluate. */
    const transformNow = async (): Promise<void> => {
      while (applied < schedule.length && schedule[applied].epoch === st.step) {
        const t = schedule[applied];
        const before = records.length && records[records.length - 1].type === 'eval' && records[records.length - 1].step === st.step
          ? { loss: (records[records.length - 1] as EvalRecord).valLoss, acc: (records[records.length - 1] as EvalRecord).valAcc }
          : await evaluate();
        const w = await model!.getWeights();
        const state = await model!.getOptimizerState();
        const res = applyTransform(graph, w, { ...t.transform, seed: t.transform.seed ?? config.seed + applied });
        validateWeights(res.graph, res.weights, `${opts.name}: ${t.spec}: student weights`);
        const mapped = config.resetOptimizer || !state ? undefined : mapOptimizerState(state, res);
        const archBefore = arch;
        graph = res.graph; weights = res.weights; optState = mapped;
        saveCheckpoint(join(dir, `after-transform-s${String(st.step).padStart(7, '0')}-${applied}`), { graph, weights, vocab: data.vocab });
        model!.dispose();
        model = await engine.build(graph, weights, { seed: config.seed + applied + 1 });
        model.setOptimizer(optimizerConfig(config), mapped);
        macs = countMacs(graph); params = countParams(graph); arch = architectureId(graph);
        applied++;
        st = { ...st, transformsApplied: applied, arch };
        const after = await evaluate();
        const rec: TransformRecord = {
          type: 'transform', epoch: st.step, step: st.step, transform: res.report.transform, method: res.report.method, spec: t.spec,
          valAccBefore: before.acc, valAccAfter: after.acc, valLossBefore: before.loss, valLossAfter: after.loss,
          paramsBefore: res.report.paramsBefore, paramsAfter: res.report.paramsAfter, archBefore, archAfter: arch, flops: st.flops,
        };
        records.push(rec);
        appendFileSync(metricsPath, JSON.stringify(rec) + '\n');
        log(`${opts.name}: ${t.spec} at step ${st.step}: params ${rec.paramsBefore.toLocaleString('en-US')} -> ${rec.paramsAfter.toLocaleString('en-US')}, val loss ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)}${res.report.exact.training ? '' : ' (not function-preserving)'}`);
      }
    };

    while (st.step < config.steps) {
      await transformNow();
      const nextTransform = applied < schedule.length ? schedule[applied].epoch : Infinity;
      const end = Math.min(config.steps, (Math.floor(st.step / config.evalEvery) + 1) * config.evalEvery, nextTransform);
      const bar = opts.hooks?.progress?.(`${opts.name} steps ${st.step + 1}-${end}/${config.steps}`, end - st.step);
      const first = st.step;
      let lossSum = 0;
      const tStart = Date.now();
      try {
        while (st.step < end) {
          const w = sampleWindows(data.train, config.batchSize, block, dataRng);
          const batch: Batch = { x: new Float32Array(0), n: config.batchSize, tokens: w.tokens, labels: w.labels };
          const r = await model.trainStep(batch);
          if (!Number.isFinite(r.loss)) {
            throw new TrainingDivergedError(`${opts.name}: training diverged at step ${st.step + 1} (loss ${r.loss}, learning rate ${config.lr}); the last good checkpoint is ${latestStepCheckpoint(ckptRoot) ?? '(none yet)'}; lower the learning rate`);
          }
          st.step++;
          st.flops += macs * TRAIN_FLOPS_PER_FORWARD_MAC * config.batchSize;
          lossSum += r.loss;
          const secs = (Date.now() - tStart) / 1000;
          bar?.update(st.step - first, `loss ${(lossSum / (st.step - first)).toFixed(4)}${secs > 0 ? `, ${Math.round(((st.step - first) * tokensPerStep) / secs)} tok/s` : ''}`);
        }
      } finally {
        bar?.stop();
      }
      const secs = (Date.now() - tStart) / 1000;
      const v = await evaluate();
      emit({
        type: 'eval', step: st.step, lr: config.lr, trainLoss: lossSum / (st.step - first), valLoss: v.loss, valAcc: v.acc,
        tokens: st.step * tokensPerStep, flops: st.flops, macsPerExample: macs, params, arch,
        tokensPerSecond: secs > 0 ? ((st.step - first) * tokensPerStep) / secs : null, wallSeconds: wall(),
      });
      await checkpoint();
      if (opts.stopAfterStep !== undefined && st.step >= opts.stopAfterStep && st.step < config.steps) {
        log(`${opts.name}: stopped after step ${st.step} as asked; continue with --resume`);
        return result('stopped');
      }
    }
    saveCheckpoint(join(dir, 'final'), { graph, weights, optimizer: optState, state: st as unknown as Record<string, unknown>, vocab: data.vocab });
    if (config.keepCheckpoints === 0) rmSync(ckptRoot, { recursive: true, force: true });
    writeFileAtomic(join(dir, 'run.json'), JSON.stringify({ ...runInfo, status: 'completed', finishedAt: new Date().toISOString() }, null, 2) + '\n');
    return result('completed');
  } catch (e) {
    writeFileAtomic(join(dir, 'run.json'), JSON.stringify({ ...runInfo, status: 'failed', finishedAt: new Date().toISOString(), error: (e as Error).message }, null, 2) + '\n');
    throw e;
  } finally {
    model?.dispose();
  }

  function result(status: 'completed' | 'stopped'): TextTrainResult {
    const evals = records.filter((r): r is EvalRecord => r.type === 'eval');
    const last = evals.at(-1);
    return { status, steps: st.step, records: evals, transforms: records.filter((r): r is TransformRecord => r.type === 'transform'), finalValLoss: last?.valLoss ?? NaN, flops: st.flops, wallSeconds: st.wallSeconds, graph, weights };
  }
}

export const latestStepCheckpoint = (root: string): string | undefined => latestCheckpoint(root, 'step');
