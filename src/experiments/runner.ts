/**
 * Runs experiments from the catalog: loads the data once, trains each teacher once (cached by its
 * configuration under `<out>/.teachers/`), trains every run into `<out>/<suite>/<name>/`, keeps
 * going when one run fails (the failure is recorded in its run.json), and writes each suite's
 * suite.json, summary.json and summary.md.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadDataset, type DataSpec } from '../data/index.ts';
import type { Dataset } from '../data/dataset.ts';
import type { Engine } from '../engines/engine.ts';
import { getEngine, type EngineName, type EngineOptions } from '../engines/registry.ts';
import { RunExistsError, UsageError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { isCheckpoint, loadCheckpoint } from '../io/checkpoint.ts';
import { initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import type { RunInfo } from '../train/metrics.ts';
import { existingRun, readMetrics, train, validateConfig, type RunStart, type TrainConfig, type TrainHooks } from '../train/trainer.ts';
import { PRESETS, RUNS, scaleRun, teacherOf, type Preset, type PresetName, type RunDef, type SuiteName } from './catalog.ts';
import { seedDir, summarizeSeeds, writeSeededSummary, type SeededSuite } from './seeds.ts';
import { summarizeSuite, writeSuiteSummary, type SuiteSummary } from './summary.ts';

export interface ExperimentOptions {
  /** Results root (default 'runs'). */
  out?: string;
  preset?: PresetName;
  engine?: EngineName;
  engineOptions?: EngineOptions;
  /** Dataset and where to find it; the preset's slice sizes apply unless given here. */
  data?: Partial<DataSpec>;
  seed?: number;
  /** Skip runs already completed and resume interrupted ones from their checkpoints. */
  resume?: boolean;
  /** Replace runs already in `out` (without it or `resume`, existing runs are refused before anything runs). */
  overwrite?: boolean;
  resetOptimizer?: boolean;
  /** Override the preset's epochs for every run (events rescaled). */
  epochs?: number;
  /** Epoch checkpoints kept per run (default 2; 0 = remove them when a run completes, keeping final/). */
  keepCheckpoints?: number;
  /** Retrain teachers even when a cached one matches. */
  retrainTeachers?: boolean;
  hooks?: TrainHooks;
  /** Given an already loaded dataset (tests), skip loading. */
  dataset?: Dataset;
}

export interface RunOutcome { name: string; suite: SuiteName; seed?: number; status: 'completed' | 'failed' | 'skipped'; dir: string; error?: string; wallSeconds: number }

export interface ExperimentResult { outcomes: RunOutcome[]; summaries: SuiteSummary[] }

export interface SeededResult { outcomes: RunOutcome[]; perSeed: { seed: number; summaries: SuiteSummary[] }[]; summaries: SeededSuite[] }

/**
 * The same experiments for several seeds: seed s goes to its own results root `<out>/seed-<s>/`
 * (so its reports and teacher cache stand alone), then each suite's runs are folded into
 * `<out>/summary-<suite>.{json,md}` with the mean and spread per run name. The data is loaded once.
 */
export async function runExperimentSeeds(defs: RunDef[], seeds: number[], opts: ExperimentOptions = {}): Promise<SeededResult> {
  if (!seeds.length || new Set(seeds).size !== seeds.length) throw new UsageError(`seeds must be distinct and at least one, got [${seeds.join(', ')}]`);
  const out = resolve(opts.out ?? 'runs');
  const basePreset = PRESETS[opts.preset ?? 'quick'];
  const dataset = opts.dataset ?? loadDataset({ dataset: opts.data?.dataset ?? 'cifar10', dir: opts.data?.dir, trainLimit: opts.data?.trainLimit ?? basePreset.trainLimit, valLimit: opts.data?.valLimit ?? basePreset.valLimit, synthetic: opts.data?.synthetic });
  const outcomes: RunOutcome[] = [];
  const perSeed: SeededResult['perSeed'] = [];
  for (const seed of seeds) {
    opts.hooks?.log?.(`seed ${seed} (${seeds.indexOf(seed) + 1} of ${seeds.length}): results in ${seedDir(out, seed)}`);
    const r = await runExperiments(defs, { ...opts, out: seedDir(out, seed), seed, dataset });
    outcomes.push(...r.outcomes.map((o) => ({ ...o, seed })));
    perSeed.push({ seed, summaries: r.summaries });
  }
  const summaries = [...new Set(defs.map((d) => d.suite))].map((s) => {
    const sum = summarizeSeeds(out, s, seeds);
    writeSeededSummary(out, sum);
    return sum;
  });
  return { outcomes, perSeed, summaries };
}

export async function runExperiments(defs: RunDef[], opts: ExperimentOptions = {}): Promise<ExperimentResult> {
  const out = resolve(opts.out ?? 'runs');
  const basePreset = PRESETS[opts.preset ?? 'quick'];
  const preset: Preset = opts.epochs ? { ...basePreset, plainEpochs: opts.epochs, midRunEpochs: opts.epochs } : basePreset;
  const log = opts.hooks?.log ?? (() => {});
  const seed = opts.seed ?? 0;

  // The whole request is checked before any run starts: every run's configuration, and no
  // completed run is destroyed (reused with resume, replaced with overwrite, else refused).
  if (opts.resume && opts.overwrite) throw new UsageError('give --resume or --overwrite, not both');
  for (const def of defs) {
    try { validateConfig(trainConfig(def, { preset, seed, opts })); } catch (e) { if (e instanceof Error) e.message = `${def.name}: ${e.message}`; throw e; }
  }
  if (!opts.resume && !opts.overwrite) {
    const taken = defs.map((d) => join(out, d.suite, d.name)).filter((d) => existingRun(d).length > 0);
    if (taken.length) {
      throw new RunExistsError(`${taken.length === 1 ? 'a run already exists' : `${taken.length} runs already exist`}: ${taken.join(', ')}; skip completed runs and continue the others with --resume, replace them with --overwrite, or choose another --out`);
    }
  }

  const spec: DataSpec = { dataset: opts.data?.dataset ?? 'cifar10', dir: opts.data?.dir, trainLimit: opts.data?.trainLimit ?? preset.trainLimit, valLimit: opts.data?.valLimit ?? preset.valLimit, synthetic: opts.data?.synthetic };
  const data = opts.dataset ?? loadDataset(spec);
  const engine = await getEngine(opts.engine ?? 'auto', opts.engineOptions);
  log(`data: ${data.name}, ${data.train.n} training / ${data.val.n} validation examples; engine: ${engine.description}; preset: ${preset.name}`);

  const ctx: Ctx = { out, preset, data, engine, seed, opts, teachers: new Map() };
  const outcomes: RunOutcome[] = [];
  for (const def of defs) {
    const t0 = Date.now();
    const dir = join(out, def.suite, def.name);
    try {
      if (opts.resume && isCompleted(dir)) {
        log(`${def.name}: already completed in ${dir}; skipped (--resume)`);
        outcomes.push({ name: def.name, suite: def.suite, status: 'skipped', dir, wallSeconds: 0 });
        continue;
      }
      await runOne(def, dir, ctx);
      outcomes.push({ name: def.name, suite: def.suite, status: 'completed', dir, wallSeconds: (Date.now() - t0) / 1000 });
    } catch (e) {
      const msg = (e as Error).message;
      log(`${def.name}: FAILED: ${msg}`);
      markFailed(dir, def, engine, msg);
      outcomes.push({ name: def.name, suite: def.suite, status: 'failed', dir, error: msg, wallSeconds: (Date.now() - t0) / 1000 });
    }
    updateSuiteIndex(out, def);
  }
  const suites = [...new Set(defs.map((d) => d.suite))];
  const summaries = suites.map((s) => {
    const sum = summarizeSuite(join(out, s), s);
    writeSuiteSummary(join(out, s), sum);
    return sum;
  });
  return { outcomes, summaries };
}

interface Ctx {
  out: string;
  preset: Preset;
  data: Dataset;
  engine: Engine;
  seed: number;
  opts: ExperimentOptions;
  /** Teacher name -> cached run directory, once trained in this invocation. */
  teachers: Map<string, string>;
}

function trainConfig(def: RunDef, ctx: Pick<Ctx, 'preset' | 'seed' | 'opts'>): TrainConfig {
  const s = scaleRun(def, ctx.preset);
  return {
    epochs: s.epochs, batchSize: ctx.preset.batchSize, optimizer: 'adam', lr: def.lr, weightDecay: def.weightDecay,
    lrDrops: s.lrDrops, transforms: s.transforms, resetOptimizer: ctx.opts.resetOptimizer, seed: ctx.seed, keepCheckpoints: ctx.opts.keepCheckpoints,
  };
}

function freshStart(def: RunDef, ctx: Ctx): RunStart {
  if (!('model' in def.start)) throw new Error(`${def.name} starts from a teacher`);
  const graph = zooModel(def.start.model.zoo, { width: def.start.model.width, inputShape: ctx.data.inputShape, classes: ctx.data.classes });
  // One init seed for every run of a model: runs of one architecture start from the same weights.
  return { graph, weights: initWeights(graph, new Rng(`init:${ctx.seed}`)) };
}

function describe(def: RunDef, ctx: Ctx, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { experiment: def.name, role: def.role, description: def.description, start: def.start, preset: ctx.preset.name, seed: ctx.seed, paperValAcc: def.paperValAcc, ...extra };
}

async function runOne(def: RunDef, dir: string, ctx: Ctx): Promise<void> {
  const hooks = ctx.opts.hooks;
  if (def.role === 'teacher') {
    const cached = await ensureTeacher(def, ctx);
    // The suite's copy of the teacher run, so reports find it beside its students.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    cpSync(join(cached, 'metrics.jsonl'), join(dir, 'metrics.jsonl'));
    cpSync(join(cached, 'final'), join(dir, 'final'), { recursive: true });
    const info = JSON.parse(readFileSync(join(cached, 'run.json'), 'utf8')) as RunInfo;
    writeFileAtomic(join(dir, 'run.json'), JSON.stringify({ ...info, name: def.name, suite: def.suite, config: { ...info.config, cachedFrom: cached } }, null, 2) + '\n');
    return;
  }
  let start: RunStart;
  let teacherInfo: Record<string, unknown> = {};
  const t = teacherOf(def);
  if (t) {
    const tdir = await ensureTeacher(t, ctx);
    const ck = loadCheckpoint(join(tdir, 'final'));
    start = { graph: ck.graph, weights: ck.weights, optimizer: ck.optimizer };
    const last = readMetrics(tdir).filter((r) => r.type === 'epoch').pop();
    teacherInfo = { teacher: { name: t.name, dir: tdir, flops: last?.flops ?? 0, valAcc: last?.valAcc, epochs: last?.epoch } };
  } else {
    start = freshStart(def, ctx);
  }
  await train({ dir, name: def.name, suite: def.suite, config: trainConfig(def, ctx), data: ctx.data, engine: ctx.engine, start, resume: ctx.opts.resume, overwrite: ctx.opts.overwrite, describe: describe(def, ctx, teacherInfo), hooks });
}

/** Trains a teacher once per configuration; returns its run directory under `<out>/.teachers/`. */
async function ensureTeacher(def: RunDef, ctx: Ctx): Promise<string> {
  const known = ctx.teachers.get(def.name);
  if (known) return known;
  const config = trainConfig(def, ctx);
  const key = createHash('sha256').update(JSON.stringify({ start: def.start, config: { ...config, keepCheckpoints: undefined }, data: ctx.data.info, engine: ctx.engine.name })).digest('hex').slice(0, 12);
  const dir = join(ctx.out, '.teachers', `${def.name}-${key}`);
  const log = ctx.opts.hooks?.log ?? (() => {});
  if (!ctx.opts.retrainTeachers && isCompleted(dir)) {
    log(`${def.name}: using the cached teacher ${dir}`);
  } else {
    log(`${def.name}: training the teacher into ${dir}`);
    await train({ dir, name: def.name, suite: def.suite, config, data: ctx.data, engine: ctx.engine, start: freshStart(def, ctx), resume: !ctx.opts.retrainTeachers, overwrite: ctx.opts.retrainTeachers, describe: describe(def, ctx, { teacherKey: key }), hooks: ctx.opts.hooks });
  }
  ctx.teachers.set(def.name, dir);
  return dir;
}

function isCompleted(dir: string): boolean {
  const p = join(dir, 'run.json');
  if (!existsSync(p) || !isCheckpoint(join(dir, 'final'))) return false;
  try { return (JSON.parse(readFileSync(p, 'utf8')) as RunInfo).status === 'completed'; } catch { return false; }
}

function markFailed(dir: string, def: RunDef, engine: Engine, error: string): void {
  const p = join(dir, 'run.json');
  let info: RunInfo = { name: def.name, suite: def.suite, config: { experiment: def.name, role: def.role }, engine: engine.description, startedAt: new Date().toISOString(), status: 'failed' };
  if (existsSync(p)) { try { info = JSON.parse(readFileSync(p, 'utf8')) as RunInfo; } catch { /* rewritten below */ } }
  writeFileAtomic(p, JSON.stringify({ ...info, status: 'failed', finishedAt: new Date().toISOString(), error }, null, 2) + '\n');
}

/** suite.json: the runs of a suite directory, in catalog order, accumulated over invocations. */
function updateSuiteIndex(out: string, def: RunDef): void {
  const p = join(out, def.suite, 'suite.json');
  let idx: { suite: string; runs: string[] } = { suite: def.suite, runs: [] };
  if (existsSync(p)) { try { idx = JSON.parse(readFileSync(p, 'utf8')); } catch { /* rebuilt */ } }
  if (!idx.runs.includes(def.name)) idx.runs.push(def.name);
  const order = (n: string) => { const i = RUNS.findIndex((r) => r.name === n); return i < 0 ? RUNS.length : i; };
  idx.runs.sort((a, b) => order(a) - order(b));
  writeFileAtomic(p, JSON.stringify(idx, null, 2) + '\n');
}
