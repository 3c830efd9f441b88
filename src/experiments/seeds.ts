/**
 * Several seeds of the same experiments: each seed is a full results root `<out>/seed-<s>/`
 * (teacher cache, suites, per-seed summaries, reports), and this file folds them into one table
 * per suite with the mean and spread of every run name, `<out>/summary-<suite>.{json,md}`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { formatTable } from '../report/table.ts';
import { summarizeSuite, type RunSummary } from './summary.ts';

export const seedDir = (out: string, seed: number): string => join(out, `seed-${seed}`);

/** Mean, sample standard deviation (0 for one value), min and max. */
export interface Spread { n: number; mean: number; std: number; min: number; max: number }

export function spread(xs: number[]): Spread | null {
  if (!xs.length) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { n: xs.length, mean, std, min: Math.min(...xs), max: Math.max(...xs) };
}

export interface SeededRun {
  name: string;
  role?: string;
  /** Seeds whose run completed. */
  seeds: number[];
  finalValAcc: Spread | null;
  /** Per transform (in order): accuracy just before and just after, over seeds. */
  transforms: { spec: string; epoch: number; before: Spread | null; after: Spread | null }[];
  /** FLOPs (incl. teacher) to reach that seed's scratch accuracy, over the seeds that reached it. */
  reachFlops: Spread | null;
  /** Seeds that never reached their scratch run's accuracy. */
  notReached: number[];
  totalFlops: number | null;
  wallSeconds: Spread | null;
}

export interface SeededSuite { suite: string; seeds: number[]; flopsConvention: string; runs: SeededRun[] }

export function summarizeSeeds(out: string, suite: string, seeds: number[]): SeededSuite {
  const per = seeds
    .filter((s) => existsSync(join(seedDir(out, s), suite)))
    .map((s) => ({ seed: s, sum: summarizeSuite(join(seedDir(out, s), suite), suite) }));
  const names: string[] = [];
  for (const p of per) for (const r of p.sum.runs) if (!names.includes(r.name)) names.push(r.name);
  const runs = names.map((name): SeededRun => {
    const got = per.flatMap((p) => p.sum.runs.filter((r) => r.name === name && r.status === 'completed').map((r) => ({ seed: p.seed, r })));
    const rs: RunSummary[] = got.map((g) => g.r);
    const nT = Math.max(0, ...rs.map((r) => r.transforms.length));
    return {
      name, role: rs[0]?.role, seeds: got.map((g) => g.seed),
      finalValAcc: spread(rs.flatMap((r) => (r.finalValAcc === null ? [] : [r.finalValAcc]))),
      transforms: Array.from({ length: nT }, (_, i) => {
        const ts = rs.flatMap((r) => (r.transforms[i] ? [r.transforms[i]] : []));
        return { spec: ts[0]!.spec, epoch: ts[0]!.epoch, before: spread(ts.map((t) => t.valAccBefore)), after: spread(ts.map((t) => t.valAccAfter)) };
      }),
      reachFlops: spread(rs.flatMap((r) => (r.reach ? [r.reach.flops] : []))),
      notReached: got.filter((g) => g.r.reach === null).map((g) => g.seed),
      totalFlops: rs[0]?.totalFlops ?? null,
      wallSeconds: spread(rs.flatMap((r) => (r.wallSeconds === null ? [] : [r.wallSeconds]))),
    };
  });
  return { suite, seeds: per.map((p) => p.seed), flopsConvention: per[0]?.sum.flopsConvention ?? '', runs };
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
/** "61.23% ± 0.41 (n=2)": mean ± sample standard deviation in percentage points. */
export const pctSpread = (s: Spread | null): string => (s ? `${pct(s.mean)}${s.n > 1 ? ` ± ${(100 * s.std).toFixed(2)}` : ''}` : '-');
const sciSpread = (s: Spread | null): string => (s ? `${s.mean.toExponential(3)}${s.n > 1 ? ` ± ${s.std.toExponential(1)}` : ''}` : '-');

export function seededRows(s: SeededSuite): { headers: string[]; rows: string[][] } {
  const headers = ['run', 'seeds', 'final val acc (mean ± sd)', 'min - max', 'val acc before -> after transform', 'FLOPs incl. teacher', 'FLOPs to reach scratch acc', 'wall s'];
  const rows = s.runs.map((r) => [
    r.name, r.seeds.join(',') || '-', pctSpread(r.finalValAcc), r.finalValAcc ? `${pct(r.finalValAcc.min)} - ${pct(r.finalValAcc.max)}` : '-',
    r.transforms.length ? r.transforms.map((t) => `${pctSpread(t.before)} -> ${pctSpread(t.after)} (@${t.epoch})`).join('; ') : '-',
    r.totalFlops ? r.totalFlops.toExponential(3) : '-',
    r.reachFlops || r.notReached.length ? `${sciSpread(r.reachFlops)}${r.notReached.length ? ` (not reached: seed ${r.notReached.join(',')})` : ''}` : '-',
    r.wallSeconds ? r.wallSeconds.mean.toFixed(0) : '-',
  ]);
  return { headers, rows };
}

export function seededMarkdown(s: SeededSuite): string {
  const { headers, rows } = seededRows(s);
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `# Suite ${s.suite}, seeds ${s.seeds.join(', ')}`, '',
    `| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`), '',
    '± is the sample standard deviation over seeds (percentage points for accuracies). "FLOPs to reach": per seed, the FLOPs (including a student\'s teacher) at the first epoch reaching that seed\'s from-scratch final accuracy.',
    `FLOPs: ${s.flopsConvention}.`, '',
  ].join('\n');
}

export function seededText(s: SeededSuite): string {
  const { headers, rows } = seededRows(s);
  return `suite ${s.suite}, seeds ${s.seeds.join(', ')}\n${formatTable(headers, rows)}\n`;
}

export function writeSeededSummary(out: string, s: SeededSuite): void {
  writeFileAtomic(join(out, `summary-${s.suite}.json`), JSON.stringify(s, null, 2) + '\n');
  writeFileAtomic(join(out, `summary-${s.suite}.md`), seededMarkdown(s));
}
