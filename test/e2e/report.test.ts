/**
 * End to end: `r2r report` and `r2r filters` through the real command line, and the report opened
 * in headless Chromium (offline: any request that is not a local file fails the test). Without
 * Chromium the browser tests skip on a developer machine but fail in CI (CI=true).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Command } from '@commander-js/extra-typings';
import { PNG } from 'pngjs';
import * as filters from '../../src/cli/commands/filters.ts';
import * as report from '../../src/cli/commands/report.ts';
import { CHROMIUM_FLAGS, findChromium, svgSize, svgToPng } from '../../src/report/browser.ts';
import { makeFilterCheckpoints, SYNTHETIC_SUITE, writeSyntheticSuite } from '../../src/report/synthetic.ts';

const BIN = resolve('bin/r2r.js');
const root = mkdtempSync(join(tmpdir(), 'r2r-e2e-report-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The real command line, in a child process (one run per command: each start costs seconds). */
function r2r(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same commands in-process, for output and error cases: returns stdout, throws the command's error. */
async function r2rInProcess(...args: string[]): Promise<string> {
  const program = new Command().name('r2r').exitOverride();
  report.register(program);
  filters.register(program);
  let out = '';
  const write = process.stdout.write;
  // Tee, not swallow: node --test's own report of this file also goes through process.stdout, and
  // a line it writes meanwhile (another test's "ok") must not be lost.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    out += String(chunk);
    return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'r2r', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const chromium = findChromium();
function needChromium(t: { skip(msg: string): void }): boolean {
  if (chromium) return true;
  if (process.env.CI === 'true') assert.fail('headless Chromium not found (install Debian `chromium` or set R2R_CHROMIUM); CI must run the browser tests');
  t.skip('no chromium on this machine');
  return false;
}

describe('r2r report', () => {
  const suite = join(root, 'runs', 'nct-widen');
  const out = join(root, 'docs', 'results', 'nct-widen', 'report.html');
  let written: { html: string; svgs: string[]; summary: { runs: { name: string }[]; target?: { run: string } } };
  before(() => {
    writeSyntheticSuite(suite);
    const r = r2r('report', suite, '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    written = JSON.parse(r.stdout);
  });

  test('--out puts report.html and one SVG per chart where asked', () => {
    assert.equal(written.html, out);
    assert.deepEqual(written.svgs, ['accuracy-vs-epoch', 'accuracy-vs-flops', 'train-loss-vs-epoch'].map((n) => join(root, 'docs', 'results', 'nct-widen', `${n}.svg`)));
    assert.deepEqual(written.summary.runs.map((r) => r.name).sort(), SYNTHETIC_SUITE.map((r) => r.name).sort());
    assert.equal(written.summary.target?.run, 'NCT-Scratch-Widen');
  });

  test('plain output: the table and the files written', async () => {
    const stdout = await r2rInProcess('report', suite);
    assert.match(stdout, /NCT-RandPadWiden\s+student\s+6\s+\d+\.\d\d%\s+58\.50% -> 33\.50%/);
    assert.match(stdout, /wrote .*report\.html/);
  });

  test('a directory without runs: a data error that says what to do', async () => {
    await assert.rejects(r2rInProcess('report', join(root, 'nothing-here')), (e: Error & { code?: string }) => e.code === 'R2R_DATA' && /not a directory/.test(e.message));
  });

  test('opens offline in headless Chromium with no console errors; every chart visible', async (t) => {
    if (!needChromium(t)) return;
    const { chromium: pw } = await import('playwright-core');
    const profile = mkdtempSync(join(tmpdir(), 'r2r-chromium-'));
    const context = await pw.launchPersistentContext(profile, { executablePath: chromium, headless: true, args: CHROMIUM_FLAGS.filter((f) => f !== '--headless'), viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('request', (req) => { if (!req.url().startsWith('file:')) problems.push(`network request: ${req.url()}`); });
      page.on('requestfailed', (req) => problems.push(`failed request: ${req.url()}`));
      await page.goto(pathToFileURL(out).href, { waitUntil: 'load' });
      const dom = await page.evaluate(() => ({
        svgs: [...document.querySelectorAll('figure svg')].map((s) => { const b = s.getBoundingClientRect(); return { w: b.width, h: b.height }; }),
        curves: [...document.querySelectorAll('figure')].map((f) => f.querySelectorAll('g.curve_marks path').length),
        markers: [...document.querySelectorAll('figure')].map((f) => f.querySelectorAll('g.transformMarker_marks path').length),
        markerBoxes: [...document.querySelectorAll('g.transformMarker_marks path')].map((p) => { const b = p.getBoundingClientRect(); return b.width * b.height; }),
        rows: document.querySelectorAll('#summary tbody tr').length,
        configs: document.querySelectorAll('details pre').length,
      }));
      assert.deepEqual(problems, []);
      assert.equal(dom.svgs.length, 3);
      for (const s of dom.svgs) assert.ok(s.w > 300 && s.h > 200, `chart drawn at ${s.w}x${s.h}`);
      assert.deepEqual(dom.curves, [5, 5, 5]);
      assert.deepEqual(dom.markers, [3, 3, 0]);
      for (const a of dom.markerBoxes) assert.ok(a > 4, 'markers have an area');
      assert.equal(dom.rows, SYNTHETIC_SUITE.length);
      assert.equal(dom.configs, SYNTHETIC_SUITE.length);
      // The first chart really paints: plenty of non-white pixels in its screenshot.
      const shot = PNG.sync.read(await page.locator('figure').first().screenshot());
      let ink = 0;
      for (let i = 0; i < shot.data.length; i += 4) if (shot.data[i] + shot.data[i + 1] + shot.data[i + 2] < 600) ink++;
      assert.ok(ink / (shot.width * shot.height) > 0.02, `chart screenshot ${shot.width}x${shot.height} is ${(100 * ink / (shot.width * shot.height)).toFixed(1)}% ink`);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

  test('a chart as PNG (for the README), via headless Chromium', (t) => {
    if (!needChromium(t)) return;
    const svg = written.svgs[1];
    const png = join(root, 'flops.png');
    svgToPng(svg, png, { scale: 2 });
    const img = PNG.sync.read(readFileSync(png));
    const { width, height } = svgSize(readFileSync(svg, 'utf8'));
    assert.deepEqual([img.width, img.height], [2 * width, 2 * height]);
  });
});

describe('r2r filters', () => {
  let ck: ReturnType<typeof makeFilterCheckpoints>;
  before(() => { ck = makeFilterCheckpoints(join(root, 'ckpt')); });

  test('--compare draws two panels; the teacher sets which filters are new', () => {
    const out = join(root, 'filters.png');
    const r = r2r('filters', ck.widened, '--compare', ck.trained, '--teacher', ck.teacher, '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { width: number; height: number; old: number; panels: { filters: number }[] };
    assert.equal(j.old, 16);
    assert.deepEqual(j.panels.map((p) => p.filters), [32, 32]);
    const img = PNG.sync.read(readFileSync(out));
    assert.deepEqual([img.width, img.height], [j.width, j.height]);
  });

  test('plain output describes the layout; bad flags and paths are refused by code', async () => {
    const out = join(root, 'f2.png');
    const stdout = await r2rInProcess('filters', ck.teacher, '--compare', ck.widened, '--out', out);
    assert.match(stdout, /panel 2 .*: 32 filters, 16 old \(grey\) \+ 16 new \(orange/);
    await assert.rejects(r2rInProcess('filters', ck.teacher, '--old', '3', '--teacher', ck.teacher, '--out', out), (e: Error & { code?: string }) => e.code === 'R2R_USAGE' && /--old N or --teacher/.test(e.message));
    await assert.rejects(r2rInProcess('filters', root, '--out', out), (e: Error & { code?: string }) => e.code === 'R2R_CHECKPOINT' && /not a checkpoint/.test(e.message));
  });
});
