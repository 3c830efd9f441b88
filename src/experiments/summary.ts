/**
 * A suite's summary table, read back from its run directories (run.json and metrics.jsonl), so it
 * covers every run the suite directory holds, whichever invocation trained it.
 * Columns: final validation accuracy, accuracy just before and after each transform, training
 * FLOPs (the run's own, and including its teacher's), parameters, wall time, engine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { EpochRecord, MetricsRecord, RunInfo, TransformRecord } from '../train/metrics.ts';
import { TRAIN_FLOPS_PER_FORWARD_MAC } from '../train/metrics.ts';
import { formatTable } from '../report/table.ts';

export interface RunSummary {
  name: string;
  status: RunInfo['status'] | 'missing';
  role?: string;
  preset?: string;
  engine?: string;
  epochs: number;
  finalValAcc: number | null;
  bestValAcc: number | null;
  transforms: { spec: string; epoch: number; valAccBefore: number; valAccAfter: number; valLossBefore: number; valLossAfter: number }[];
  /** Training FLOPs of this run (multiply-adds x TRAIN_FLOPS_PER_FORWARD_MAC x examples). */
  trainFlops: number;
  /** Including the teacher's training, for students. */
  totalFlops: number;
  params: number | null;
  wallSeconds: number | null;
  paperValAcc?: number;
  /**
   * The first epoch at which this run's validation accuracy reached the suite's from-scratch run's
   * final accuracy, with the FLOPs spent by then (including the teacher's, for students); null when
   * never reached; absent when the suite has no single scratch run.
   */
  reach?: { epoch: number; flops: number } | null;
  error?: string;
}

export interface SuiteSummary {
  suite: string;
  flopsConvention: string;
  /** The suite's single from-scratch run and its final accuracy, when there is one. */
  reachTarget?: { run: string; valAcc: number };
  runs: RunSummary[];
}

/** A run as read back, with its accuracy curve on the FLOPs axis that includes the teacher. */
type RunRead = RunSummary & { curve: { epoch: number; valAcc: number; flops: number }[] };

export function readRun(dir: string, name: string): RunRead {
  const empty: RunRead = { name, status: 'missing', epochs: 0, finalValAcc: null, bestValAcc: null, transforms: [], trainFlops: 0, totalFlops: 0, params: null, wallSeconds: null, curve: [] };
  const rp = join(dir, 'run.json');
  if (!existsSync(rp)) return empty;
  const info = JSON.parse(readFileSync(rp, 'utf8')) as RunInfo;
  const mp = join(dir, 'metrics.jsonl');
  const recs: MetricsRecord[] = existsSync(mp) ? readFileSync(mp, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)) : [];
  const epochs = recs.filter((r): r is EpochRecord => r.type === 'epoch');
  const last = epochs[epochs.length - 1];
  const cfg = info.config as { role?: string; preset?: string; paperValAcc?: number; teacher?: { flops?: number } };
  const trainFlops = last?.flops ?? 0;
  const teacherFlops = cfg.teacher?.flops ?? 0;
  return {
    curve: epochs.map((e) => ({ epoch: e.epoch, valAcc: e.valAcc, flops: e.flops + teacherFlops })),
    name, status: info.status, role: cfg.role, preset: cfg.preset, engine: info.engine, epochs: last?.epoch ?? 0,
    finalValAcc: last?.valAcc ?? null, bestValAcc: epochs.length ? Math.max(...epochs.map((r) => r.valAcc)) : null,
    transforms: recs.filter((r): r is TransformRecord => r.type === 'transform').map((t) => ({ spec: t.spec, epoch: t.epoch, valAccBefore: t.valAccBefore, valAccAfter: t.valAccAfter, valLossBefore: t.valLossBefore, valLossAfter: t.valLossAfter })),
    trainFlops, totalFlops: trainFlops + teacherFlops, params: last?.params ?? null, wallSeconds: last?.wallSeconds ?? null,
    paperValAcc: cfg.paperValAcc, error: info.error,
  };
}

export function summarizeSuite(suiteDir: string, suite: string): SuiteSummary {
  const ip = join(suiteDir, 'suite.json');
  const names: string[] = existsSync(ip) ? (JSON.parse(readFileSync(ip, 'utf8')) as { runs: string[] }).runs : [];
  const read = names.map((n) => readRun(join(suiteDir, n), n));
  // The from-scratch baseline's final accuracy is the target of the "FLOPs to reach" column.
  const scratch = read.filter((r) => r.role === 'scratch' && r.finalValAcc !== null);
  const target = scratch.length === 1 ? scratch[0].finalValAcc! : undefined;
  return {
    suite,
    flopsConvention: `training FLOPs = ${TRAIN_FLOPS_PER_FORWARD_MAC} x forward multiply-adds (conv and dense) per example x examples trained; BN, pooling and adds not counted`,
    ...(target === undefined ? {} : { reachTarget: { run: scratch[0].name, valAcc: target } }),
    runs: read.map(({ curve, ...r }) => {
      if (target === undefined) return r;
      const hit = curve.find((e) => e.valAcc >= target - 1e-12);
      return { ...r, reach: hit ? { epoch: hit.epoch, flops: hit.flops } : null };
    }),
  };
}

const pct = (a: number | null | undefined) => (a === null || a === undefined ? '-' : `${(100 * a).toFixed(2)}%`);
const sci = (x: number) => (x ? x.toExponential(3) : '-');

export function summaryRows(s: SuiteSummary): { headers: string[]; rows: string[][] } {
  const headers = ['run', 'status', 'epochs', 'final val acc', 'val acc before -> after transform', 'train FLOPs', 'FLOPs incl. teacher', 'FLOPs to reach scratch acc', 'params', 'wall s', 'engine'];
  const rows = s.runs.map((r) => [
    r.name, r.status, String(r.epochs), pct(r.finalValAcc),
    r.transforms.length ? r.transforms.map((t) => `${pct(t.valAccBefore)} -> ${pct(t.valAccAfter)} (@${t.epoch})`).join('; ') : '-',
    sci(r.trainFlops), sci(r.totalFlops), reachText(r), r.params === null ? '-' : String(r.params), r.wallSeconds === null ? '-' : r.wallSeconds.toFixed(0), r.engine ?? '-',
  ]);
  return { headers, rows };
}

function reachText(r: RunSummary): string {
  if (r.reach === undefined) return '-';
  return r.reach === null ? 'not reached' : `${sci(r.reach.flops)} (epoch ${r.reach.epoch})`;
}

export function summaryMarkdown(s: SuiteSummary): string {
  const { headers, rows } = summaryRows(s);
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const lines = [`# Suite ${s.suite}`, '', `| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`), '', `FLOPs: ${s.flopsConvention}.`];
  if (s.reachTarget) lines.push('', `FLOPs to reach: the FLOPs (including a student's teacher) at the first epoch whose validation accuracy is at least ${s.reachTarget.run}'s final ${pct(s.reachTarget.valAcc)}.`);
  const failed = s.runs.filter((r) => r.error);
  if (failed.length) lines.push('', 'Failures:', ...failed.map((r) => `- ${r.name}: ${r.error}`));
  return lines.join('\n') + '\n';
}

/** The table as aligned plain text for a terminal. */
export function summaryText(s: SuiteSummary): string {
  const { headers, rows } = summaryRows(s);
  const out = [`suite ${s.suite}`, formatTable(headers, rows)];
  for (const r of s.runs) if (r.error) out.push(`${r.name} failed: ${r.error}`);
  return out.join('\n') + '\n';
}

export function writeSuiteSummary(suiteDir: string, s: SuiteSummary): void {
  writeFileAtomic(join(suiteDir, 'summary.json'), JSON.stringify(s, null, 2) + '\n');
  writeFileAtomic(join(suiteDir, 'summary.md'), summaryMarkdown(s));
}
