/**
 * The report of a run or a suite: charts (SVG), a table like the paper's table 2, and each run's
 * configuration, as one self-contained HTML page (inline CSS and SVG, no script, no network) plus
 * every chart as a standalone SVG file beside it.
 *
 * Shared axes: a student that starts from its teacher (transform at epoch 0, epochs numbered from 1)
 * is drawn after its teacher when the teacher is in the suite: its epochs are shifted by the
 * teacher's last epoch and its FLOPs by the teacher's total, so the curves read as one training
 * history and the FLOPs a student needed include its teacher's.
 */
import { checkOutputFile, writeFileAtomic } from '../io/atomic.ts';
import { dirname, join, resolve } from 'node:path';
import { TRAIN_FLOPS_PER_FORWARD_MAC } from '../train/metrics.ts';
import { chartSpec, renderSvg, type CurvePoint, type TransformMarker, type XAxis, type YField } from './charts.ts';
import { loadSuite, type RunData, type SuiteData } from './load.ts';

export interface TransformSummary {
  spec: string;
  method: string;
  epoch: number;
  /** Validation accuracy just before and just after the transform (fractions). */
  before: number;
  after: number;
  paramsBefore?: number;
  paramsAfter?: number;
}

export interface RunSummary {
  name: string;
  role: string;
  status?: string;
  engine?: string;
  teacher?: string;
  epochs: number;
  finalValAcc?: number;
  bestValAcc?: number;
  transforms: TransformSummary[];
  params?: number;
  macsPerExample?: number;
  /** FLOPs of this run alone. */
  totalFlops?: number;
  /** FLOPs on the shared axis: includes the teacher's when the run is drawn after its teacher. */
  totalFlopsShared?: number;
  /**
   * When the run first reached the target accuracy: FLOPs on the shared axis (its teacher's
   * included), and the run's own epoch (1 = its first); null: not reached.
   */
  reachTarget?: { flops: number; epoch: number } | null;
  wallSeconds?: number;
}

export interface ReportSummary {
  suite: string;
  /** The from-scratch run whose final accuracy is the target, and that accuracy. */
  target?: { run: string; valAcc: number };
  runs: RunSummary[];
  warnings: string[];
}

export interface ChartOutput { name: string; title: string; svg: string; spec: unknown }

export interface RenderedReport {
  html: string;
  /** Standalone SVG per chart, keyed by file name (e.g. `accuracy-vs-flops.svg`). */
  svgs: Record<string, string>;
  charts: ChartOutput[];
  summary: ReportSummary;
}

interface Placement { epochOffset: number; flopsOffset: number }

/** Where each run sits on the shared axes (see the module comment). */
function placements(suite: SuiteData): Map<string, Placement> {
  const out = new Map<string, Placement>();
  const byName = new Map(suite.runs.map((r) => [r.name, r]));
  const place = (r: RunData, depth = 0): Placement => {
    const known = out.get(r.name);
    if (known) return known;
    let p: Placement = { epochOffset: 0, flopsOffset: 0 };
    const t = r.teacher ? byName.get(r.teacher) : undefined;
    if (t && t !== r && depth < 8 && t.epochs.length > 0) {
      const tp = place(t, depth + 1);
      const last = t.epochs[t.epochs.length - 1];
      const first = r.epochs[0];
      // Numbered from 1: the student's own history; shift it after the teacher's.
      const epochOffset = !first || first.epoch <= 1 ? tp.epochOffset + last.epoch : tp.epochOffset;
      // Student FLOPs below the teacher's total cannot include the teacher's.
      const flopsOffset = !first || first.flops < last.flops ? tp.flopsOffset + last.flops : tp.flopsOffset;
      p = { epochOffset, flopsOffset };
    }
    out.set(r.name, p);
    return p;
  };
  for (const r of suite.runs) place(r);
  return out;
}

function curves(suite: SuiteData, pl: Map<string, Placement>): { points: CurvePoint[]; markers: TransformMarker[] } {
  const points: CurvePoint[] = [];
  const markers: TransformMarker[] = [];
  for (const r of suite.runs) {
    const { epochOffset: eo, flopsOffset: fo } = pl.get(r.name)!;
    const items: { epoch: number; order: number; p: Omit<CurvePoint, 'seq'> }[] = [];
    for (const e of r.epochs) items.push({ epoch: e.epoch, order: 0, p: { run: r.name, epoch: e.epoch + eo, flops: e.flops + fo, valAcc: e.valAcc, valLoss: e.valLoss, trainLoss: e.trainLoss, trainAcc: e.trainAcc } });
    for (const t of r.transforms) {
      const flops = Number.isFinite(t.flops) ? t.flops : flopsAtEpoch(r, t.epoch);
      if (Number.isFinite(t.valAccAfter)) items.push({ epoch: t.epoch, order: 1, p: { run: r.name, epoch: t.epoch + eo, flops: flops + fo, valAcc: t.valAccAfter, valLoss: t.valLossAfter } });
      if (!Number.isFinite(t.valAccBefore) || !Number.isFinite(t.valAccAfter)) continue;
      markers.push({ run: r.name, epoch: t.epoch + eo, flops: flops + fo, before: t.valAccBefore, after: t.valAccAfter, spec: t.spec ?? t.transform, method: t.method ?? '', marker: t.transform ?? kindOf(t.spec) });
    }
    items.sort((a, b) => a.epoch - b.epoch || a.order - b.order);
    items.forEach((it, seq) => points.push({ ...it.p, seq }));
  }
  return { points, markers };
}

/** The transform kind from a spec like `widen@25:r2r:1.5`. */
function kindOf(spec: string | undefined): string {
  return spec?.split('@')[0] || 'transform';
}

function flopsAtEpoch(r: RunData, epoch: number): number {
  let f = 0;
  for (const e of r.epochs) if (e.epoch <= epoch) f = e.flops;
  return f;
}

/** The from-scratch baseline: a suite normally has one; with several, none is the target. */
function scratchTarget(suite: SuiteData): { run: string; valAcc: number } | undefined {
  const scratch = suite.runs.filter((r) => r.role === 'scratch' && r.epochs.length > 0);
  if (scratch.length !== 1) return undefined;
  const last = scratch[0].epochs[scratch[0].epochs.length - 1];
  return { run: scratch[0].name, valAcc: last.valAcc };
}

export function summarize(suite: SuiteData): ReportSummary {
  const pl = placements(suite);
  const target = scratchTarget(suite);
  const warnings = [...suite.warnings, ...suite.runs.flatMap((r) => r.warnings)];
  if (!target) {
    const n = suite.runs.filter((r) => r.role === 'scratch').length;
    warnings.push(n === 0 ? 'no from-scratch run in this suite (named like NCT-Scratch-Widen): the "FLOPs to reach" column is empty' : `${n} from-scratch runs in this suite: no single target accuracy; report each suite separately`);
  }
  const runs = suite.runs.map((r): RunSummary => {
    const { flopsOffset } = pl.get(r.name)!;
    const last = r.epochs[r.epochs.length - 1];
    let reachTarget: RunSummary['reachTarget'];
    if (target) {
      const hit = r.epochs.find((e) => e.valAcc >= target.valAcc - 1e-12);
      reachTarget = hit ? { flops: hit.flops + flopsOffset, epoch: hit.epoch } : null;
    }
    return {
      name: r.name,
      role: r.role === 'run' && r.transforms.length > 0 ? 'transformed' : r.role,
      status: r.info?.status,
      engine: r.info?.engine,
      teacher: r.teacher,
      epochs: r.epochs.length,
      finalValAcc: last?.valAcc,
      bestValAcc: r.epochs.length ? Math.max(...r.epochs.map((e) => e.valAcc)) : undefined,
      transforms: r.transforms.map((t) => ({ spec: t.spec ?? t.transform, method: t.method, epoch: t.epoch, before: t.valAccBefore, after: t.valAccAfter, paramsBefore: t.paramsBefore, paramsAfter: t.paramsAfter })),
      params: last?.params,
      macsPerExample: last?.macsPerExample,
      totalFlops: last?.flops,
      totalFlopsShared: last ? last.flops + flopsOffset : undefined,
      reachTarget,
      wallSeconds: last?.wallSeconds,
    };
  });
  return { suite: suite.name, target, runs, warnings };
}

interface ChartDef { name: string; x: XAxis; y: YField; title: string; subtitle: string; target: boolean; xTitle?: string }

/** Text runs (evaluations by step): validation loss, the quantity language models are compared on. */
const TEXT_CHARTS: ChartDef[] = [
  { name: 'val-loss-vs-flops', x: 'flops', y: 'valLoss', title: 'Validation loss vs cumulative training FLOPs', subtitle: `FLOPs = ${TRAIN_FLOPS_PER_FORWARD_MAC} x forward multiply-adds per training sequence; a transform that changes the function shows as a vertical step`, target: false },
  { name: 'val-loss-vs-step', x: 'epoch', y: 'valLoss', title: 'Validation loss vs optimizer steps', subtitle: 'Evaluations every --eval-every steps', target: false, xTitle: 'Step' },
];

const CHARTS: ChartDef[] = [
  { name: 'accuracy-vs-epoch', x: 'epoch', y: 'valAcc', title: 'Validation accuracy vs epochs', subtitle: '', target: false },
  { name: 'accuracy-vs-flops', x: 'flops', y: 'valAcc', title: 'Validation accuracy vs cumulative training FLOPs', subtitle: `FLOPs = ${TRAIN_FLOPS_PER_FORWARD_MAC} x forward multiply-adds per training example`, target: true },
  { name: 'train-loss-vs-epoch', x: 'epoch', y: 'trainLoss', title: 'Training loss vs epochs', subtitle: 'Mean loss over each epoch', target: false },
];

export async function renderReport(suite: SuiteData): Promise<RenderedReport> {
  const summary = summarize(suite);
  const pl = placements(suite);
  const { points, markers } = curves(suite, pl);
  // Say only what this report shows: students after teachers only when one is placed so.
  const notes = [
    ...([...pl.values()].some((p) => p.epochOffset > 0) ? ['students drawn after their teacher'] : []),
    ...(markers.length ? ['a marker and a bar at each transform, from the accuracy before it to the one after'] : []),
  ];
  const placed = notes.length > 0 && notes[0].startsWith('students');
  const epochSubtitle = notes.length ? notes.join('; ').replace(/^./, (c) => c.toUpperCase()) : undefined;
  const subtitle = (c: ChartDef) => c.name === 'accuracy-vs-epoch' ? epochSubtitle : c.name === 'accuracy-vs-flops' && placed ? `${c.subtitle}; students include their teacher's` : c.subtitle;
  const runs = suite.runs.map((r) => r.name);
  const charts: ChartOutput[] = [];
  const text = suite.runs.some((r) => r.unit === 'step');
  for (const [i, c] of (text ? TEXT_CHARTS : CHARTS).entries()) {
    if (!points.some((p) => Number.isFinite(p[c.y] as number))) continue;
    const target = c.target && summary.target ? { value: summary.target.valAcc, label: `${summary.target.run} final: ${pct(summary.target.valAcc)}` } : undefined;
    const spec = chartSpec(points, markers, { title: c.title, subtitle: subtitle(c), x: c.x, y: c.y, runs, target, xTitle: c.xTitle });
    charts.push({ name: c.name, title: c.title, spec, svg: await renderSvg(spec, `c${i}-`) });
  }
  const svgs = Object.fromEntries(charts.map((c) => [`${c.name}.svg`, c.svg]));
  return { html: renderHtml(suite, summary, charts), svgs, charts, summary };
}

export interface WriteReportOptions {
  /** The HTML file to write; default `<dir>/report.html`. SVGs go beside it. */
  out?: string;
}

export interface WrittenReport { html: string; svgs: string[]; summary: ReportSummary }

/** Loads the run or suite in `dir`, renders it and writes report.html plus one SVG per chart. */
export async function writeReport(dir: string, opts: WriteReportOptions = {}): Promise<WrittenReport> {
  const html = resolve(opts.out ?? join(dir, 'report.html'));
  checkOutputFile(html, 'report file');
  const suite = loadSuite(dir);
  const rendered = await renderReport(suite);
  const outDir = dirname(html);
  writeFileAtomic(html, rendered.html);
  const svgs: string[] = [];
  for (const [name, svg] of Object.entries(rendered.svgs)) {
    const p = join(outDir, name);
    writeFileAtomic(p, svg);
    svgs.push(p);
  }
  return { html, svgs, summary: rendered.summary };
}

// ---- HTML -------------------------------------------------------------------------------------

const CSS = `
body{font-family:Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}
table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.l,th.l{text-align:left}td:not(.l){white-space:nowrap}tr.target td{background:#fff8e1}
.drop{color:#b00020}.muted{color:#777}pre{background:#f7f7f7;padding:.5rem;overflow:auto;font-size:.8rem}
details{margin:.3rem 0}summary{cursor:pointer}ul.warn li{color:#8a5a00;font-size:.85rem}
`;

function renderHtml(suite: SuiteData, s: ReportSummary, charts: ChartOutput[]): string {
  const figs = charts.map((c) => `<figure id="${c.name}">\n${stripXmlDecl(c.svg)}\n<figcaption>${esc(c.title)}. Also as <a href="${c.name}.svg">${c.name}.svg</a>.</figcaption>\n</figure>`).join('\n');
  const target = s.target ? `${esc(s.target.run)}'s final validation accuracy, ${pct(s.target.valAcc)}` : 'the from-scratch run\'s final accuracy (none in this suite)';
  const rows = s.runs.map((r) => {
    const tr = r.transforms.length
      ? r.transforms.map((t) => t.spec.includes('@') ? esc(t.spec) : `${esc(t.spec)} <span class="muted">@${t.epoch}</span>`).join('<br>') : '<span class="muted">none</span>';
    const acc = (f: (t: TransformSummary) => string) => r.transforms.length ? r.transforms.map(f).join('<br>') : '';
    const reach = r.reachTarget === undefined ? '' : r.reachTarget === null ? '<span class="muted">not reached</span>' : `${flops(r.reachTarget.flops)} <span class="muted">(epoch ${r.reachTarget.epoch} of ${r.epochs})</span>`;
    return `<tr${s.target?.run === r.name ? ' class="target"' : ''}><td class="l">${esc(r.name)}</td><td class="l">${esc(r.role)}${r.teacher ? `<br><span class="muted">from ${esc(r.teacher)}</span>` : ''}</td>`
      + `<td>${r.epochs}</td><td><b>${pct(r.finalValAcc)}</b></td><td>${pct(r.bestValAcc)}</td><td class="l">${tr}</td>`
      + `<td>${acc((t) => pct(t.before))}</td><td>${acc((t) => `<span class="${t.after < t.before - 0.005 ? 'drop' : ''}">${pct(t.after)}</span>`)}</td>`
      + `<td>${r.params?.toLocaleString('en-US') ?? ''}</td><td>${reach}</td><td>${flops(r.totalFlops)}</td><td>${r.totalFlopsShared !== r.totalFlops ? flops(r.totalFlopsShared) : ''}</td>`
      + `<td>${duration(r.wallSeconds)}</td><td class="l">${esc(r.status ?? '')}</td></tr>`;
  }).join('\n');
  const configs = suite.runs.map((r) => {
    const shown = r.info ? { ...r.info, name: undefined } : undefined;
    return `<details><summary>${esc(r.name)}${r.info?.engine ? ` <span class="muted">(${esc(r.info.engine)})</span>` : ''}</summary><pre>${esc(shown ? JSON.stringify(shown, null, 2) : 'no run.json')}</pre></details>`;
  }).join('\n');
  const warn = s.warnings.length ? `<h2>Notes</h2><ul class="warn">${s.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>r2r report: ${esc(s.suite)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>r2r report: ${esc(s.suite)}</h1>
<p class="muted">${s.runs.length} run${s.runs.length === 1 ? '' : 's'}: ${s.runs.map((r) => esc(r.name)).join(', ')}.</p>
<h2>Validation curves</h2>
${figs}
<h2>Summary</h2>
<p>Accuracies are validation accuracies. "Before / after" are measured just before and just after each transform.
"FLOPs to reach" is the training FLOPs a run needed to first reach ${target} (at the run's own epoch shown, counted from its start); for a student these include its teacher's FLOPs when the teacher is in this report.
FLOPs count ${TRAIN_FLOPS_PER_FORWARD_MAC} x the forward multiply-adds of every conv and dense layer per training example.</p>
<table id="summary">
<thead><tr><th class="l">Run</th><th class="l">Role</th><th>Epochs</th><th>Final val. acc.</th><th>Best</th><th class="l">Transform</th><th>Acc. before</th><th>Acc. after</th><th>Params</th><th>FLOPs to reach target</th><th>Total FLOPs</th><th>incl. teacher</th><th>Wall time</th><th class="l">Status</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<h2>Configuration</h2>
${configs}
${warn}
</body>
</html>
`;
}

function stripXmlDecl(svg: string): string { return svg.replace(/^<\?xml[^>]*>\s*/, ''); }

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function pct(x: number | undefined): string { return x === undefined || !Number.isFinite(x) ? '' : `${(x * 100).toFixed(2)}%`; }

/** FLOPs in engineering notation: 1.23e12 -> "1.23 T". */
export function flops(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '';
  const units = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  let v = x;
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v.toPrecision(3)}${units[i] ? ` ${units[i]}` : ''}`;
}

function duration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}
