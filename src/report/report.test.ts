import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadSuite } from './load.ts';
import { flops, renderReport, writeReport, type RenderedReport } from './report.ts';
import { SYNTHETIC_EXAMPLES_PER_EPOCH, SYNTHETIC_SUITE, writeSyntheticSuite } from './synthetic.ts';
import { TRAIN_FLOPS_PER_FORWARD_MAC } from '../train/metrics.ts';

const root = mkdtempSync(join(tmpdir(), 'r2r-report-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The elements inside the first `<g class="... cls ...">` group of an SVG (vega puts each mark's items there). */
function groupBody(svg: string, cls: string): string[] {
  const re = new RegExp(`<g class="[^"]*\\b${cls}\\b[^"]*"[^>]*>(.*?)</g>`, 'gs');
  return [...svg.matchAll(re)].map((m) => m[1]);
}
const count = (s: string, sub: string) => s.split(sub).length - 1;

describe('renderReport on a synthetic suite', () => {
  const dir = join(root, 'suite');
  let r: RenderedReport;
  before(async () => {
    writeSyntheticSuite(dir);
    r = await renderReport(loadSuite(dir));
  });
  const runs = SYNTHETIC_SUITE.map((x) => x.name);
  const transforms = SYNTHETIC_SUITE.reduce((n, x) => n + (x.transforms?.length ?? 0), 0);

  test('charts: accuracy vs epochs, accuracy vs FLOPs, training loss; one SVG each', () => {
    assert.deepEqual(Object.keys(r.svgs), ['accuracy-vs-epoch.svg', 'accuracy-vs-flops.svg', 'train-loss-vs-epoch.svg']);
    for (const svg of Object.values(r.svgs)) assert.match(svg, /^<svg [^>]*width="\d+" height="\d+"/);
  });

  test('one line per run, in a shared colour legend', () => {
    for (const svg of Object.values(r.svgs)) {
      // Vega draws each series of a line mark as its own group of class curve_marks.
      const lines = groupBody(svg, 'curve_marks');
      assert.equal(lines.length, runs.length);
      for (const l of lines) assert.equal(count(l, '<path'), 1);
      for (const name of runs) assert.ok(svg.includes(`>${name}</text>`), `legend label ${name}`);
    }
  });

  test('axes are titled', () => {
    const [epochSvg, flopsSvg, lossSvg] = Object.values(r.svgs);
    assert.match(epochSvg, /aria-label="X-axis titled 'Epoch'/);
    assert.match(epochSvg, /aria-label="Y-axis titled 'Validation accuracy'/);
    assert.match(flopsSvg, /aria-label="X-axis titled 'Cumulative training FLOPs'/);
    assert.match(flopsSvg, /aria-label="Y-axis titled 'Validation accuracy'/);
    assert.match(lossSvg, /aria-label="Y-axis titled 'Training loss'/);
  });

  test('a marker and a before→after rule at every transform, on both accuracy charts', () => {
    for (const name of ['accuracy-vs-epoch.svg', 'accuracy-vs-flops.svg']) {
      const svg = r.svgs[name];
      const [markers] = groupBody(svg, 'transformMarker_marks');
      const [rules] = groupBody(svg, 'transformRule_marks');
      assert.equal(count(markers, '<path'), transforms, name);
      assert.equal(count(rules, '<line'), transforms, name);
    }
    // The RandPad student's marker sits at its post-transform accuracy, below the one before.
    const spec = JSON.stringify(r.charts[0].spec);
    assert.match(spec, /"spec":"widen@0:randpad:1.5"/);
  });

  test('the FLOPs chart has the from-scratch target line', () => {
    const [label] = groupBody(r.svgs['accuracy-vs-flops.svg'], 'targetLabel_marks');
    assert.match(label, /NCT-Scratch-Widen final: \d+\.\d\d%/);
  });

  test('students are drawn after their teacher on both axes', () => {
    const spec = r.charts.find((c) => c.name === 'accuracy-vs-flops')!.spec as { layer: { data: { values: { run: string; epoch: number; flops: number }[] } }[] };
    const pts = spec.layer[0].data.values;
    const teacherFlops = 6 * 1e6 * TRAIN_FLOPS_PER_FORWARD_MAC * SYNTHETIC_EXAMPLES_PER_EPOCH;
    const first = pts.filter((p) => p.run === 'NCT-R2WiderR').sort((a, b) => a.epoch - b.epoch)[0];
    // The transform's "after" point starts the student's curve at the teacher's last epoch and FLOPs.
    assert.equal(first.epoch, 6);
    assert.equal(first.flops, teacherFlops);
    const ftt = pts.filter((p) => p.run === 'FTT-R2WiderR').sort((a, b) => a.epoch - b.epoch);
    assert.equal(ftt[0].epoch, 1);
  });

  test('summary table: final accuracy, before/after, FLOPs to reach the scratch accuracy', () => {
    const s = r.summary;
    assert.equal(s.target?.run, 'NCT-Scratch-Widen');
    const by = Object.fromEntries(s.runs.map((x) => [x.name, x]));
    assert.equal(by['NCT-WidenTeacher'].reachTarget, null);
    assert.equal(by['NCT-Scratch-Widen'].reachTarget?.epoch, 6);
    assert.equal(by['NCT-R2WiderR'].transforms[0].before, by['NCT-R2WiderR'].transforms[0].after);
    assert.ok(by['NCT-RandPadWiden'].transforms[0].after < by['NCT-RandPadWiden'].transforms[0].before - 0.1);
    // A student's FLOPs to the target include its teacher's.
    assert.ok(by['NCT-R2WiderR'].reachTarget!.flops > by['NCT-WidenTeacher'].totalFlops!);
    assert.equal(by['NCT-R2WiderR'].totalFlopsShared, by['NCT-R2WiderR'].totalFlops! + by['NCT-WidenTeacher'].totalFlops!);
    for (const x of s.runs) assert.equal(x.finalValAcc, loadSuite(dir).runs.find((y) => y.name === x.name)!.epochs.at(-1)!.valAcc);
  });

  test('HTML: self-contained, every chart inline, one table row per run, configurations', () => {
    const html = r.html;
    assert.equal(count(html, '<svg '), 3);
    assert.doesNotMatch(html, /<script|<link |src="http|href="http|@import/);
    const body = /<table id="summary">.*?<tbody>(.*?)<\/tbody>/s.exec(html)![1];
    assert.equal(count(body, '<tr'), runs.length);
    for (const name of runs) assert.ok(body.includes(`<td class="l">${name}</td>`));
    assert.match(body, /not reached/);
    assert.match(body, /widen@3:r2r:1\.5/);
    assert.equal(count(html, '<details>'), runs.length);
    assert.match(html, /&quot;optimizer&quot;: \{/);
  });
});

test('writeReport writes report.html and the SVGs beside it (--out elsewhere)', async () => {
  const dir = join(root, 'w');
  writeSyntheticSuite(dir, SYNTHETIC_SUITE.slice(0, 2));
  const out = join(root, 'docs', 'results', 'x', 'report.html');
  const w = await writeReport(dir, { out });
  assert.equal(w.html, out);
  assert.ok(existsSync(out));
  assert.deepEqual(w.svgs.map((p) => p.slice(join(root, 'docs', 'results', 'x').length + 1)), ['accuracy-vs-epoch.svg', 'accuracy-vs-flops.svg', 'train-loss-vs-epoch.svg']);
  for (const p of w.svgs) assert.match(readFileSync(p, 'utf8'), /^<svg /);
  // No transforms, so no marker layer; the report still renders.
  assert.doesNotMatch(readFileSync(w.svgs[0], 'utf8'), /transformMarker_marks/);
});

test('a report of runs still in progress (no epochs yet) renders with a note', async () => {
  const dir = join(root, 'fresh');
  writeSyntheticSuite(dir, [{ ...SYNTHETIC_SUITE[0], epochs: 0 }, SYNTHETIC_SUITE[1]]);
  const r = await renderReport(loadSuite(dir));
  assert.ok(r.summary.warnings.some((w) => /no epoch records yet/.test(w)));
  assert.equal(r.summary.runs.find((x) => x.name === 'NCT-WidenTeacher')!.finalValAcc, undefined);
});

test('flops formats with SI prefixes', () => {
  assert.equal(flops(1.234e12), '1.23 T');
  assert.equal(flops(999), '999');
  assert.equal(flops(undefined), '');
});

describe('readable reports', () => {
  const markerPaths = (svg: string) => [...(groupBody(svg, 'transformMarker_marks')[0] ?? '').matchAll(/transform="translate\(([-\d.]+),([-\d.]+)\)" d="([^"]+)"/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]), d: m[3] }));
  let r: RenderedReport;
  let body: string;
  before(async () => {
    const dir = join(root, 'readable');
    writeSyntheticSuite(dir);
    // The experiment runner records its teacher cache key in every run's config; it names no run.
    const tj = join(dir, 'NCT-WidenTeacher', 'run.json');
    const info = JSON.parse(readFileSync(tj, 'utf8'));
    writeFileSync(tj, JSON.stringify({ ...info, config: { ...info.config, teacherKey: 'd218d315cb04' } }));
    r = await renderReport(loadSuite(dir));
    body = /<tbody>(.*?)<\/tbody>/s.exec(r.html)![1];
  });

  test('a teacher is not "from" itself', () => {
    assert.equal(r.summary.runs.find((x) => x.name === 'NCT-WidenTeacher')!.teacher, undefined);
    assert.doesNotMatch(body, /<td class="l">NCT-WidenTeacher<\/td><td class="l">teacher<br>/);
    assert.match(body, /student<br><span class="muted">from NCT-WidenTeacher<\/span>/);
  });

  test('a transform spec that holds its epoch is not followed by it again', () => {
    assert.match(body, /widen@0:r2r:1\.5/);
    assert.doesNotMatch(body, /widen@0:r2r:1\.5 <span class="muted">@0/);
  });

  test('"FLOPs to reach" names the run\'s own epoch, within its epoch count', () => {
    for (const x of r.summary.runs) if (x.reachTarget) assert.ok(x.reachTarget.epoch >= 1 && x.reachTarget.epoch <= x.epochs, `${x.name}: epoch ${x.reachTarget.epoch} of ${x.epochs}`);
    assert.match(body, /\(epoch \d of 6\)/);
  });

  test('number cells (wall time, FLOPs) do not wrap', () => {
    assert.match(r.html, /td:not\(\.l\)\{white-space:nowrap\}/);
  });

  test('markers at one x are spread apart, none hidden', () => {
    const ms = markerPaths(r.svgs['accuracy-vs-epoch.svg']);
    assert.equal(ms.length, 3);
    // Both NCT students transform at the teacher's last epoch: drawn side by side.
    const xs = ms.map((m) => Math.round(m.x));
    assert.equal(new Set(xs).size, xs.length, `x positions ${xs}`);
  });

  test('widen and deepen have distinct marker shapes; a marker at the first epoch is inside the plot', async () => {
    const dir = join(root, 'kinds');
    writeSyntheticSuite(dir, [
      { name: 'FTT-R2WiderR', epochs: 4, a0: 0.3, aMax: 0.6, tau: 2, macs: 1e6, params: 10, transforms: [{ epoch: 0, spec: 'widen@0:r2r:1.5', method: 'r2r', drop: 0, macs: 2e6, params: 20 }] },
      { name: 'FTT-R2DeeperR', epochs: 4, a0: 0.3, aMax: 0.6, tau: 2, macs: 1e6, params: 10, transforms: [{ epoch: 2, spec: 'deepen@2:r2r', method: 'r2r', drop: 0, macs: 2e6, params: 20 }] },
    ]);
    const k = await renderReport(loadSuite(dir));
    const ms = markerPaths(k.svgs['accuracy-vs-epoch.svg']);
    assert.equal(ms.length, 2);
    assert.notEqual(ms[0].d, ms[1].d, 'one shape per kind');
    assert.match(k.svgs['accuracy-vs-epoch.svg'], />widen<\/text>/);
    assert.match(k.svgs['accuracy-vs-epoch.svg'], />deepen<\/text>/);
    // The epoch-0 marker sits at the axis' low end: inset by the scale padding, not cut in half.
    assert.ok(Math.min(...ms.map((m) => m.x)) >= 10, `leftmost marker at x=${Math.min(...ms.map((m) => m.x))}`);
    // No teacher in this suite: the chart does not claim students are drawn after one.
    assert.doesNotMatch(k.svgs['accuracy-vs-epoch.svg'], /drawn after their teacher/);
    assert.doesNotMatch(k.svgs['accuracy-vs-flops.svg'], /include their teacher/);
  });

  test('a suite with students and teacher says the students are drawn after it', () => {
    assert.match(r.svgs['accuracy-vs-epoch.svg'], /Students drawn after their teacher/);
  });
});
