/**
 * A small synthetic suite (run.json + metrics.jsonl per run) with the shapes real suites have: a
 * teacher, a from-scratch baseline, students that start from the teacher (transform at epoch 0,
 * one exact, one with a drop), and a run transformed mid-training. For tests and demos of
 * `r2r report`; the numbers are made up.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveCheckpoint } from '../io/checkpoint.ts';
import type { Weights } from '../ir/types.ts';
import { cloneWeights, initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import { TRAIN_FLOPS_PER_FORWARD_MAC, type EpochRecord, type MetricsRecord, type RunInfo, type TransformRecord } from '../train/metrics.ts';

export interface SyntheticRun {
  name: string;
  epochs: number;
  /** Accuracy curve: a0 + (aMax - a0) * (1 - exp(-epoch / tau)). */
  a0: number;
  aMax: number;
  tau: number;
  macs: number;
  params: number;
  teacher?: string;
  /** Transforms: at which epoch, accuracy change, new MACs and params. */
  transforms?: { epoch: number; spec: string; method: string; drop: number; macs: number; params: number }[];
}

export const SYNTHETIC_EXAMPLES_PER_EPOCH = 1000;

/** The default suite: 5 runs, 6 epochs each, like a quick NCT/FTT widen suite. */
export const SYNTHETIC_SUITE: SyntheticRun[] = [
  { name: 'NCT-WidenTeacher', epochs: 6, a0: 0.3, aMax: 0.6, tau: 2, macs: 1e6, params: 23794 },
  { name: 'NCT-Scratch-Widen', epochs: 6, a0: 0.3, aMax: 0.66, tau: 2.5, macs: 2.2e6, params: 52198 },
  { name: 'NCT-R2WiderR', epochs: 6, a0: 0.585, aMax: 0.68, tau: 2, macs: 1e6, params: 23794, teacher: '../NCT-WidenTeacher', transforms: [{ epoch: 0, spec: 'widen@0:r2r:1.5', method: 'r2r', drop: 0, macs: 2.2e6, params: 52198 }] },
  { name: 'NCT-RandPadWiden', epochs: 6, a0: 0.585, aMax: 0.64, tau: 2, macs: 1e6, params: 23794, teacher: 'NCT-WidenTeacher', transforms: [{ epoch: 0, spec: 'widen@0:randpad:1.5', method: 'randpad', drop: 0.25, macs: 2.2e6, params: 52198 }] },
  { name: 'FTT-R2WiderR', epochs: 6, a0: 0.3, aMax: 0.67, tau: 2, macs: 1e6, params: 23794, transforms: [{ epoch: 3, spec: 'widen@3:r2r:1.5', method: 'r2r', drop: 0, macs: 2.2e6, params: 52198 }] },
];

/** Writes each run as `<dir>/<name>/{run.json,metrics.jsonl}` and returns the run directories. */
export function writeSyntheticSuite(dir: string, runs: SyntheticRun[] = SYNTHETIC_SUITE, suite = 'synthetic'): string[] {
  return runs.map((r) => {
    const runDir = join(dir, r.name);
    mkdirSync(runDir, { recursive: true });
    const info: RunInfo = {
      name: r.name, suite, engine: 'synthetic', startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:10:00.000Z', status: 'completed',
      config: { model: 'resnet-cifar18', epochs: r.epochs, optimizer: { kind: 'adam', lr: 3e-3 }, schedule: (r.transforms ?? []).map((t) => t.spec), ...(r.teacher ? { teacher: r.teacher } : {}) },
    };
    writeFileSync(join(runDir, 'run.json'), JSON.stringify(info, null, 2) + '\n');
    writeFileSync(join(runDir, 'metrics.jsonl'), syntheticRecords(r).map((rec) => JSON.stringify(rec)).join('\n') + '\n');
    return runDir;
  });
}

export function syntheticRecords(r: SyntheticRun): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  let macs = r.macs, params = r.params, flops = 0, offset = 0, arch = `arch-${macs}`;
  const acc = (e: number) => r.a0 + (r.aMax - r.a0) * (1 - Math.exp(-e / r.tau)) - offset;
  const transformsAt = (e: number) => (r.transforms ?? []).filter((t) => t.epoch === e);
  for (let e = 0; e <= r.epochs; e++) {
    for (const t of transformsAt(e)) {
      const before = acc(e);
      // The drop fades as training goes on (halved each epoch).
      offset = t.drop;
      const rec: TransformRecord = {
        type: 'transform', epoch: e, step: e * 8, transform: t.spec.split('@')[0] as TransformRecord['transform'], method: t.method, spec: t.spec,
        valAccBefore: before, valAccAfter: acc(e), valLossBefore: 2 - before, valLossAfter: 2 - acc(e),
        paramsBefore: params, paramsAfter: t.params, archBefore: arch, archAfter: `arch-${t.macs}`, flops,
      };
      out.push(rec);
      macs = t.macs; params = t.params; arch = rec.archAfter;
    }
    if (e === r.epochs) break;
    const ep = e + 1;
    offset *= 0.5;
    flops += macs * TRAIN_FLOPS_PER_FORWARD_MAC * SYNTHETIC_EXAMPLES_PER_EPOCH;
    const valAcc = acc(ep);
    const rec: EpochRecord = {
      type: 'epoch', epoch: ep, step: ep * 8, lr: 3e-3, trainLoss: 2.3 * Math.exp(-ep / 3), trainAcc: Math.min(1, valAcc + 0.05),
      valLoss: 2 - valAcc, valAcc, flops, macsPerExample: macs, params, arch, wallSeconds: ep * 1.5,
    };
    out.push(rec);
  }
  return out;
}

/**
 * Three SmallConv checkpoints like the paper's figure 4: the teacher (16 filters), right after an
 * R2R-style widen to 32 (old filters kept, new ones in equal pairs [U; U]), and after "training"
 * (every weight nudged).
 */
export function makeFilterCheckpoints(dir: string): { teacher: string; widened: string; trained: string } {
  const rng = new Rng(7);
  const tGraph = zooModel('small-conv');
  const tWeights = initWeights(tGraph, rng);
  const wGraph = zooModel('small-conv', { width: 2 });
  const wWeights = initWeights(wGraph, rng);
  const tk = tWeights['conv1/kernel'], wk = wWeights['conv1/kernel'];
  const [kh, kw, cin] = tk.shape;
  for (let i = 0; i < kh * kw * cin; i++) {
    for (let f = 0; f < 16; f++) wk.data[i * 32 + f] = tk.data[i * 16 + f];
    for (let f = 0; f < 8; f++) wk.data[i * 32 + 24 + f] = wk.data[i * 32 + 16 + f];
  }
  const trained: Weights = cloneWeights(wWeights);
  for (const t of Object.values(trained)) for (let i = 0; i < t.data.length; i++) t.data[i] += 0.05 * rng.normal();
  const paths = { teacher: join(dir, 'teacher'), widened: join(dir, 'widened'), trained: join(dir, 'trained') };
  saveCheckpoint(paths.teacher, { graph: tGraph, weights: tWeights });
  saveCheckpoint(paths.widened, { graph: wGraph, weights: wWeights });
  saveCheckpoint(paths.trained, { graph: wGraph, weights: trained });
  return paths;
}
