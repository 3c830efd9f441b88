/**
 * The `gpt-growth` suite (issue 10): does growing a GPT save training compute?
 *
 * - `GPT-Scratch`: the target GPT trained from random initialisation for `scratchSteps`.
 * - `GPT-Grow-<Method>`: the same recipe from a smaller GPT (half the width, half the heads of
 *   the same head size, fewer layers) grown to the target at two steps of the run:
 *   `width@W:2` + `heads@W:+h` + `mlp@W:2` (the residual stream, heads and MLP doubled), then
 *   `deepen@D:+l` (zero-output blocks appended). Each method grows by its own rule where it has
 *   one; Net2Net has no transformer deepening (Net2DeeperNet needs identity layers), so its run
 *   appends zero-output blocks the NetMorph way, and says so.
 *
 * Every run is a text run (src/train/text_trainer.ts) on the same data, batch, learning rate and
 * seed. The summary reads each run's metrics: final validation loss, training FLOPs (the FLOPs
 * convention of the trainer: 3 x forward multiply-adds per sequence), wall time, validation loss
 * just before and after each transform, and the FLOPs each growth run needed to reach the
 * scratch run's final validation loss (linear between evaluations), as a fraction of the scratch
 * run's FLOPs, drawn in `flops-to-scratch-loss.svg` (the HTML report, `report.html`, is written
 * beside it). Growth runs train for `growthSteps`, enough for their FLOPs to pass the scratch
 * run's, so the crossing is observed rather than extrapolated.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TextDataset } from '../data/text.ts';
import type { Engine } from '../engines/engine.ts';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { initWeights } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { chartSpec, renderSvg, type CurvePoint, type TransformMarker } from '../report/charts.ts';
import { writeReport } from '../report/report.ts';
import { formatTable } from '../report/table.ts';
import { Rng } from '../rng.ts';
import type { EvalRecord, RunInfo, TransformRecord } from '../train/metrics.ts';
import { trainText } from '../train/text_trainer.ts';
import type { TrainHooks } from '../train/trainer.ts';

export interface GptShape { layers: number; heads: number; dim: number }

export interface GptGrowthPreset {
  name: string;
  description: string;
  target: GptShape;
  start: GptShape;
  block: number;
  batchSize: number;
  lr: number;
  evalEvery: number;
  evalBatches: number;
  scratchSteps: number;
  growthSteps: number;
  /** Steps (taken) at which the width/heads/MLP growth and the depth growth apply. */
  growAt: { width: number; depth: number };
  seeds: number[];
}

export const GPT_GROWTH_METHODS = ['r2r', 'net2net', 'netmorph', 'random'] as const;
export type GptGrowthMethod = (typeof GPT_GROWTH_METHODS)[number];
const LABEL: Record<GptGrowthMethod, string> = { r2r: 'R2R', net2net: 'Net2Net', netmorph: 'NetMorph', random: 'Random' };

export const GPT_GROWTH_PRESETS: Record<'quick' | 'paper', GptGrowthPreset> = {
  quick: {
    name: 'quick', description: 'GPT 2 layers / 4 heads / 64 from 1 / 2 / 32, block 32, 600 scratch steps, 1 seed',
    target: { layers: 2, heads: 4, dim: 64 }, start: { layers: 1, heads: 2, dim: 32 }, block: 32, batchSize: 12, lr: 1e-3,
    evalEvery: 50, evalBatches: 10, scratchSteps: 600, growthSteps: 800, growAt: { width: 150, depth: 300 }, seeds: [0],
  },
  paper: {
    name: 'paper', description: 'the issue-10 size: GPT 4 layers / 4 heads / 128 from 2 / 2 / 64, block 64, 3,000 scratch steps, 3 seeds',
    target: { layers: 4, heads: 4, dim: 128 }, start: { layers: 2, heads: 2, dim: 64 }, block: 64, batchSize: 12, lr: 1e-3,
    evalEvery: 100, evalBatches: 20, scratchSteps: 3000, growthSteps: 4200, growAt: { width: 750, depth: 1500 }, seeds: [0, 1, 2],
  },
};

export interface GptGrowthRun {
  name: string;
  seed: number;
  role: 'scratch' | 'growth';
  method?: GptGrowthMethod;
  description: string;
  model: GptShape;
  steps: number;
  transforms: string[];
}

/** Checks that the start grows into the target by the suite's transforms (x2 width, same head size). */
export function checkPreset(p: GptGrowthPreset): void {
  const { start: s, target: t } = p;
  if (t.dim !== 2 * s.dim) throw new UsageError(`gpt-growth preset ${p.name}: the target width ${t.dim} must be twice the start's ${s.dim} (R2R doubles the residual stream)`);
  if (s.dim % s.heads || t.dim % t.heads || s.dim / s.heads !== t.dim / t.heads) throw new UsageError(`gpt-growth preset ${p.name}: start and target need the same head size (dim / heads), got ${s.dim}/${s.heads} and ${t.dim}/${t.heads}`);
  if (t.heads <= s.heads || (t.heads - s.heads) % 2) throw new UsageError(`gpt-growth preset ${p.name}: the target needs an even number of extra heads (R2R adds pairs), got ${s.heads} -> ${t.heads}`);
  if (t.layers <= s.layers) throw new UsageError(`gpt-growth preset ${p.name}: the target needs more layers than the start, got ${s.layers} -> ${t.layers}`);
  if (!(0 <= p.growAt.width && p.growAt.width <= p.growAt.depth && p.growAt.depth < p.growthSteps)) throw new UsageError(`gpt-growth preset ${p.name}: growth steps must satisfy 0 <= width (${p.growAt.width}) <= depth (${p.growAt.depth}) < growthSteps (${p.growthSteps})`);
}

/**
 * The suite's runs. `options` (e.g. 'init=copy' or 'scale=0.5') is appended as `:key=value` to
 * every growth transform, to try another initialisation of the new weights.
 */
export function gptGrowthRuns(p: GptGrowthPreset, methods: readonly GptGrowthMethod[] = GPT_GROWTH_METHODS, options?: string): GptGrowthRun[] {
  checkPreset(p);
  const { start: s, target: t, growAt } = p;
  const runs: GptGrowthRun[] = [];
  const shape = (g: GptShape) => `${g.layers}/${g.heads}/${g.dim}`;
  for (const seed of p.seeds) {
    const suffix = p.seeds.length > 1 ? `-s${seed}` : '';
    runs.push({ name: `GPT-Scratch${suffix}`, seed, role: 'scratch', description: `gpt ${shape(t)} (layers/heads/dim) from scratch`, model: t, steps: p.scratchSteps, transforms: [] });
    for (const m of methods) {
      const deepen = m === 'net2net' ? 'netmorph' : m;
      runs.push({
        name: `GPT-Grow-${LABEL[m]}${suffix}`, seed, role: 'growth', method: m, model: s, steps: p.growthSteps,
        description: `gpt ${shape(s)} grown by ${LABEL[m]} to ${shape(t)}: width, heads and MLP at step ${growAt.width}, depth at step ${growAt.depth}${m === 'net2net' ? ' (depth by zero-output blocks: Net2DeeperNet has no transformer form)' : ''}`,
        transforms: [
          `width@${growAt.width}:${m}:2`, `heads@${growAt.width}:${m}:+${t.heads - s.heads}`, `mlp@${growAt.width}:${m}:2`,
          `deepen@${growAt.depth}:${deepen}:+${t.layers - s.layers}`,
        ].map((x) => (options ? `${x}:${options}` : x)),
      });
    }
  }
  return runs;
}

export interface GptGrowthOptions {
  out: string;
  preset: GptGrowthPreset;
  data: TextDataset;
  engine: Engine;
  methods?: readonly GptGrowthMethod[];
  /** Appended to every growth transform (see gptGrowthRuns). */
  growthOptions?: string;
  resume?: boolean;
  resetOptimizer?: boolean;
  hooks?: TrainHooks;
}

export interface GptGrowthRunSummary {
  name: string;
  seed: number;
  role: 'scratch' | 'growth';
  method?: string;
  status: RunInfo['status'] | 'missing';
  finalValLoss: number | null;
  flops: number;
  wallSeconds: number | null;
  params: number | null;
  transforms: { spec: string; step: number; valLossBefore: number; valLossAfter: number }[];
  /** FLOPs at which validation loss first reached the same seed's scratch final loss (null: never). */
  flopsToScratchLoss: number | null;
  /** flopsToScratchLoss / the scratch run's FLOPs. */
  flopsRatio: number | null;
}

export interface GptGrowthSummary { suite: 'gpt-growth'; preset: string; flopsConvention: string; runs: GptGrowthRunSummary[]; byMethod: { method: string; seeds: number; reached: number; meanRatio: number | null; minRatio: number | null; maxRatio: number | null }[] }

/** Trains every run (skipping completed ones under `resume`), then writes the summary, table and chart. */
export async function runGptGrowth(o: GptGrowthOptions): Promise<GptGrowthSummary> {
  const runs = gptGrowthRuns(o.preset, o.methods, o.growthOptions);
  const suiteDir = join(o.out, 'gpt-growth');
  const log = o.hooks?.log ?? (() => {});
  for (const r of runs) {
    const dir = join(suiteDir, r.name);
    if (o.resume && statusOf(dir) === 'completed') { log(`${r.name}: completed, skipped`); continue; }
    const graph = gpt({ ...r.model, block: o.preset.block, vocab: o.data.vocab.length });
    log(`${r.name}: ${r.description}`);
    await trainText({
      dir, name: r.name, data: o.data, engine: o.engine, resume: o.resume, hooks: o.hooks,
      // One init seed per (architecture, seed): all growth runs start from the same small model.
      start: { graph, weights: initWeights(graph, new Rng(`init:${r.seed}`)) },
      describe: { suite: 'gpt-growth', preset: o.preset.name, role: r.role, method: r.method ?? null, description: r.description, model: r.model },
      config: {
        steps: r.steps, batchSize: o.preset.batchSize, optimizer: 'adam', lr: o.preset.lr, weightDecay: 0, evalEvery: o.preset.evalEvery,
        evalBatches: o.preset.evalBatches, seed: r.seed, transforms: r.transforms, resetOptimizer: o.resetOptimizer, keepCheckpoints: 0,
      },
    });
  }
  const summary = summarizeGptGrowth(suiteDir, runs, o.preset.name);
  writeFileAtomic(join(suiteDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileAtomic(join(suiteDir, 'summary.md'), gptGrowthText(summary));
  // The chart with the scratch run's final loss as a line; `r2r report` adds report.html and its charts.
  writeFileAtomic(join(suiteDir, 'flops-to-scratch-loss.svg'), await gptGrowthChart(suiteDir, runs, summary));
  await writeReport(suiteDir);
  return summary;
}

function statusOf(dir: string): RunInfo['status'] | 'missing' {
  const p = join(dir, 'run.json');
  if (!existsSync(p)) return 'missing';
  try { return (JSON.parse(readFileSync(p, 'utf8')) as RunInfo).status; } catch { return 'missing'; }
}

function readRecords(dir: string): (EvalRecord | TransformRecord)[] {
  const p = join(dir, 'metrics.jsonl');
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as EvalRecord | TransformRecord) : [];
}

/** FLOPs where the evaluations first reach `target` (linear between the two evaluations around it). */
export function flopsToReach(evals: EvalRecord[], target: number): number | null {
  for (let i = 0; i < evals.length; i++) {
    if (evals[i].valLoss > target) continue;
    if (i === 0) return evals[0].flops;
    const [a, b] = [evals[i - 1], evals[i]];
    return a.flops + (b.flops - a.flops) * (a.valLoss - target) / (a.valLoss - b.valLoss);
  }
  return null;
}

export function summarizeGptGrowth(suiteDir: string, runs: GptGrowthRun[], preset: string): GptGrowthSummary {
  const rows: GptGrowthRunSummary[] = runs.map((r) => {
    const recs = readRecords(join(suiteDir, r.name));
    const evals = recs.filter((x): x is EvalRecord => x.type === 'eval');
    const last = evals.at(-1);
    return {
      name: r.name, seed: r.seed, role: r.role, method: r.method, status: statusOf(join(suiteDir, r.name)),
      finalValLoss: last?.valLoss ?? null, flops: last?.flops ?? 0, wallSeconds: last?.wallSeconds ?? null, params: last?.params ?? null,
      transforms: recs.filter((x): x is TransformRecord => x.type === 'transform').map((t) => ({ spec: t.spec, step: t.step, valLossBefore: t.valLossBefore, valLossAfter: t.valLossAfter })),
      flopsToScratchLoss: null, flopsRatio: null,
    };
  });
  for (const row of rows) {
    const scratch = rows.find((x) => x.role === 'scratch' && x.seed === row.seed);
    if (!scratch || scratch.status !== 'completed' || scratch.finalValLoss === null) continue;
    const evals = readRecords(join(suiteDir, row.name)).filter((x): x is EvalRecord => x.type === 'eval');
    row.flopsToScratchLoss = row.role === 'scratch' ? scratch.flops : flopsToReach(evals, scratch.finalValLoss);
    row.flopsRatio = row.flopsToScratchLoss === null ? null : row.flopsToScratchLoss / scratch.flops;
  }
  const methods = [...new Set(rows.filter((r) => r.role === 'growth').map((r) => r.method!))];
  const byMethod = methods.map((m) => {
    const rs = rows.filter((r) => r.method === m && r.status === 'completed');
    const ratios = rs.map((r) => r.flopsRatio).filter((x): x is number => x !== null);
    return {
      method: m, seeds: rs.length, reached: ratios.length,
      meanRatio: ratios.length === rs.length && ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : null,
      minRatio: ratios.length ? Math.min(...ratios) : null, maxRatio: ratios.length ? Math.max(...ratios) : null,
    };
  });
  return { suite: 'gpt-growth', preset, flopsConvention: 'training FLOPs = 3 x forward multiply-adds (attention T-dependent terms included) per training sequence', runs: rows, byMethod };
}

const fmtLoss = (x: number | null) => (x === null ? '-' : x.toFixed(4));
const fmtFlops = (x: number | null) => (x === null ? '-' : x.toExponential(3));

export function gptGrowthText(s: GptGrowthSummary): string {
  const runs = formatTable(['run', 'status', 'final val loss', 'training FLOPs', 'wall s', 'params', 'val loss before -> after each transform', 'FLOPs to scratch final loss', 'x scratch FLOPs'],
    s.runs.map((r) => [
      r.name, r.status, fmtLoss(r.finalValLoss), fmtFlops(r.flops), r.wallSeconds === null ? '-' : r.wallSeconds.toFixed(0), r.params === null ? '-' : r.params.toLocaleString('en-US'),
      r.transforms.length ? r.transforms.map((t) => `${t.spec.split('@')[0]}@${t.step} ${t.valLossBefore.toFixed(4)}->${t.valLossAfter.toFixed(4)}`).join('; ') : '-',
      fmtFlops(r.flopsToScratchLoss), r.flopsRatio === null ? (r.role === 'growth' ? 'not reached' : '-') : r.flopsRatio.toFixed(3),
    ]));
  const methods = formatTable(['method', 'seeds', 'reached scratch loss', 'mean x scratch FLOPs', 'range'],
    s.byMethod.map((m) => [m.method, String(m.seeds), `${m.reached}/${m.seeds}`, m.meanRatio === null ? '-' : m.meanRatio.toFixed(3), m.minRatio === null ? '-' : `${m.minRatio.toFixed(3)}-${m.maxRatio!.toFixed(3)}`]));
  return `# gpt-growth (${s.preset})\n\n${s.flopsConvention}.\n\n${runs}\n\n${methods}\n\nTarget (issue 10): an R2R growth run reaches the scratch run's final validation loss with <= 0.8x its training FLOPs.\n`;
}

/** Validation loss against training FLOPs, every run on one chart, transforms marked (before -> after). */
export async function gptGrowthChart(suiteDir: string, runs: GptGrowthRun[], s: GptGrowthSummary): Promise<string> {
  const points: CurvePoint[] = [], markers: TransformMarker[] = [];
  for (const r of runs) {
    let seq = 0;
    for (const rec of readRecords(join(suiteDir, r.name))) {
      if (rec.type === 'eval') points.push({ run: r.name, epoch: rec.step, flops: rec.flops, valAcc: rec.valAcc, valLoss: rec.valLoss, seq: seq++ });
      else {
        // The loss right after the transform, at the same FLOPs: a jump shows as a vertical step.
        points.push({ run: r.name, epoch: rec.step, flops: rec.flops, valAcc: rec.valAccAfter, valLoss: rec.valLossAfter, seq: seq++ });
        markers.push({ run: r.name, epoch: rec.step, flops: rec.flops, before: rec.valLossBefore, after: rec.valLossAfter, spec: rec.spec, method: rec.method, marker: 'transform (before → after)' });
      }
    }
  }
  const scratch = s.runs.find((r) => r.role === 'scratch' && r.finalValLoss !== null);
  return renderSvg(chartSpec(points, markers, {
    title: `gpt-growth (${s.preset}): validation loss vs training FLOPs`, x: 'flops', y: 'valLoss', runs: runs.map((r) => r.name),
    ...(scratch ? { target: { value: scratch.finalValLoss!, label: `${scratch.name} final val loss` } } : {}),
  }));
}

