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
  error?: string;
}

export interface SuiteSummary { suite: string; flopsConvention: string; runs: RunSummary[] }

export function readRun(dir: string, name: string): RunSummary {
  const empty: RunSummary = { name, status: 'missing', epochs: 0, finalValAcc: null, bestValAcc: null, transforms: [], trainFlops: 0, totalFlops: 0, params: null, wallSeconds: null };
  const rp = join(dir, 'run.json');
  if (!existsSync(rp)) return empty;
  const info = JSON.parse(readFileSync(rp, 'utf8')) as RunInfo;
  const mp = join(dir, 'metrics.jsonl');
  const recs: MetricsRecord[] = existsSync(mp) ? readFileSync(mp, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)) : [];
  const epochs = recs.filter((r): r is EpochRecord => r.type === 'epoch');
  const last = epochs[epochs.length - 1];
  const cfg = info.config as { role?: string; preset?: string; paperValAcc?: number; teacher?: { flops?: number } };
  const trainFlops = last?.flops ?? 0;
  return {
    name, status: info.status, role: cfg.role, preset: cfg.preset, engine: info.engine, epochs: last?.epoch ?? 0,
    finalValAcc: last?.valAcc ?? null, bestValAcc: epochs.length ? Math.max(...epochs.map((r) => r.valAcc)) : null,
    transforms: recs.filter((r): r is TransformRecord => r.type === 'transform').map((t) => ({ spec: t.spec, epoch: t.epoch, valAccBefore: t.valAccBefore, valAccAfter: t.valAccAfter, valLossBefore: t.valLossBefore, valLossAfter: t.valLossAfter })),
    trainFlops, totalFlops: trainFlops + (cfg.teacher?.flops ?? 0), params: last?.params ?? null, wallSeconds: last?.wallSeconds ?? null,
    paperValAcc: cfg.paperValAcc, error: info.error,
  };
}

export function summarizeSuite(suiteDir: string, suite: string): SuiteSummary {
  const ip = join(suiteDir, 'suite.json');
  const names: string[] = existsSync(ip) ? (JSON.parse(readFileSync(ip, 'utf8')) as { runs: string[] }).runs : [];
  return {
    suite,
    flopsConvention: `training FLOPs = ${TRAIN_FLOPS_PER_FORWARD_MAC} x forward multiply-adds (conv and dense) per example x examples trained; BN, pooling and adds not counted`,
    runs: names.map((n) => readRun(join(suiteDir, n), n)),
  };
}

const pct = (a: number | null | undefined) => (a === null || a === undefined ? '-' : `${(100 * a).toFixed(2)}%`);
const sci = (x: number) => (x ? x.toExponential(3) : '-');

export function summaryRows(s: SuiteSummary): { headers: string[]; rows: string[][] } {
  const headers = ['run', 'status', 'epochs', 'final val acc', 'val acc before -> after transform', 'train FLOPs', 'FLOPs incl. teacher', 'params', 'wall s', 'engine'];
  const rows = s.runs.map((r) => [
    r.name, r.status, String(r.epochs), pct(r.finalValAcc),
    r.transforms.length ? r.transforms.map((t) => `${pct(t.valAccBefore)} -> ${pct(t.valAccAfter)} (@${t.epoch})`).join('; ') : '-',
    sci(r.trainFlops), sci(r.totalFlops), r.params === null ? '-' : String(r.params), r.wallSeconds === null ? '-' : r.wallSeconds.toFixed(0), r.engine ?? '-',
  ]);
  return { headers, rows };
}

export function summaryMarkdown(s: SuiteSummary): string {
  const { headers, rows } = summaryRows(s);
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const lines = [`# Suite ${s.suite}`, '', `| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`), '', `FLOPs: ${s.flopsConvention}.`];
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
